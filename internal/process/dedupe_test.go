package process

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/units"
)

func TestDedupe(t *testing.T) {
	type event struct {
		id   string // the value's id field
		at   time.Duration
		kept bool
	}
	tests := []struct {
		name    string
		window  time.Duration
		maxKeys int
		events  []event
	}{
		{
			name: "window", window: 10 * time.Minute,
			events: []event{
				{"a", 0, true},
				{"a", time.Minute, false},
				{"b", 2 * time.Minute, true},
				{"a", 10 * time.Minute, false}, // exactly window after: still a repeat
				{"a", 11 * time.Minute, true},  // past the window of the first kept
				{"a", 15 * time.Minute, false}, // within the window of the second
				{"b", 30 * time.Minute, true},
			},
		},
		{
			name: "repeats do not extend the window", window: 10 * time.Minute,
			events: []event{
				{"a", 0, true},
				{"a", 9 * time.Minute, false},
				{"a", 18 * time.Minute, true},
			},
		},
		{
			name: "out of order", window: 10 * time.Minute,
			events: []event{
				{"a", 20 * time.Minute, true},
				{"a", 15 * time.Minute, false}, // an earlier copy that arrives late
				{"a", 5 * time.Minute, true},   // more than window before
				{"a", 29 * time.Minute, false}, // still within the window of 20m
			},
		},
		{
			name: "eviction of the oldest", window: time.Hour, maxKeys: 2,
			events: []event{
				{"a", 0, true},
				{"b", time.Second, true},
				{"c", 2 * time.Second, true}, // forgets a
				{"a", 3 * time.Second, true}, // a passes again, and forgets b
				{"c", 4 * time.Second, false},
				{"b", 5 * time.Second, true},
			},
		},
		{
			name: "numbers and strings", window: time.Hour,
			events: []event{
				{"12", 0, true},
				{"12.0", 0, false}, // the double 12 is written "12"
				{`"12"`, 0, false},
				{"12.5", 0, true},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustChain(t, []Config{{Dedupe: &DedupeConfig{Key: "record.value.id", Window: units.Duration(tt.window), MaxKeys: tt.maxKeys}}}, Options{})
			for i, e := range tt.events {
				r := newRec(`{"id": ` + quoteID(e.id) + `}`)
				r.Timestamp = testTime.Add(e.at)
				got, err := c.Process(context.Background(), r)
				if err != nil {
					t.Fatal(err)
				}
				if got != e.kept {
					t.Errorf("event %d (%s at %v): got kept %v, want %v", i, e.id, e.at, got, e.kept)
				}
			}
		})
	}
}

func quoteID(id string) string {
	if id == "" || strings.ContainsAny(id[:1], "0123456789\"") {
		return id
	}
	return `"` + id + `"`
}

// TestDedupePrunes: keys that fell out of the window are forgotten as
// time moves on, so memory follows the keys of one window, not all keys.
func TestDedupePrunes(t *testing.T) {
	c := mustChain(t, []Config{{Dedupe: &DedupeConfig{Key: "record.value.id", Window: units.Duration(time.Minute)}}}, Options{})
	d := c.procs[0].(*dedupeProc)
	for i := range 10000 {
		r := newRec(fmt.Sprintf(`{"id": %d}`, i))
		r.Timestamp = testTime.Add(time.Duration(i) * time.Second)
		if ok, err := c.Process(context.Background(), r); !ok || err != nil {
			t.Fatalf("record %d: got %v, %v, want kept", i, ok, err)
		}
	}
	// One record a second and a one-minute window: about 61 keys live.
	if n := len(d.seen); n > 70 {
		t.Errorf("got %d keys remembered, want at most 70", n)
	}
	if n := len(d.fifo) - d.head; n != len(d.seen) {
		t.Errorf("got %d queued keys for %d remembered", n, len(d.seen))
	}
	if cap(d.fifo) > 1000 {
		t.Errorf("got a queue of capacity %d, want it reclaimed", cap(d.fifo))
	}
}

func TestDedupeKeys(t *testing.T) {
	tests := []struct {
		key, in string
		err     string
	}{
		{key: "record.key", in: `{}`},
		{key: "b'\\xff'", in: `{}`},
		{key: "record.timestamp", in: `{}`},
		{key: "[record.value.a, record.value.b]", in: `{"a": 1, "b": 2}`, err: "got list, want a string"},
		{key: "record.value.id", in: `{"id": null}`, err: "dedupe key is null"},
		{key: "record.value.id", in: `{}`, err: "no such key: id"},
	}
	for _, tt := range tests {
		c := mustChain(t, []Config{{Dedupe: &DedupeConfig{Key: tt.key, Window: units.Duration(time.Minute)}}}, Options{})
		_, err := c.Process(context.Background(), newRec(tt.in))
		checkErr(t, err, tt.err)
	}
}

// TestDedupeExtremeTimes: timestamps far outside UnixNano's range neither
// overflow nor panic.
func TestDedupeExtremeTimes(t *testing.T) {
	c := mustChain(t, []Config{{Dedupe: &DedupeConfig{Key: "record.key", Window: units.Duration(1<<63 - 1)}}}, Options{})
	for i, ts := range []time.Time{{}, time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), {}, time.Unix(0, 0)} {
		r := newRec(`{}`)
		r.Timestamp = ts
		ok, err := c.Process(context.Background(), r)
		if err != nil || ok != (i == 0) {
			t.Errorf("record %d at %v: got %v, %v, want kept only the first", i, ts, ok, err)
		}
	}
}

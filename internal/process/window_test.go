package process

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/aggregate"
	"github.com/sluice-dev/sluice/internal/units"
	"github.com/sluice-dev/sluice/internal/window"
)

func tumbling(mod func(*WindowConfig)) []Config {
	w := &WindowConfig{Type: "tumbling", Size: units.Duration(time.Minute),
		Aggregates: map[string]string{"n": "count()"}}
	if mod != nil {
		mod(w)
	}
	return []Config{{Window: w}}
}

func TestWindowConfigErrors(t *testing.T) {
	tests := []struct {
		name  string
		cfgs  []Config
		field string
		want  string
	}{
		{"type", tumbling(func(w *WindowConfig) { w.Type = "sliding" }), "window.type", "unknown window type"},
		{"no size", tumbling(func(w *WindowConfig) { w.Size = 0 }), "window.size", "required for tumbling"},
		{"gap on tumbling", tumbling(func(w *WindowConfig) { w.Gap = units.Duration(time.Second) }), "window.gap", "not a setting of tumbling"},
		{"hopping without advance", tumbling(func(w *WindowConfig) { w.Type = "hopping" }), "window.advance", "required for hopping"},
		{"advance over size", tumbling(func(w *WindowConfig) { w.Type, w.Advance = "hopping", units.Duration(2*time.Minute) }), "window.size", "longer than size"},
		{"session with size", tumbling(func(w *WindowConfig) { w.Type = "session" }), "window.size", "not a setting of session"},
		{"sub-millisecond", tumbling(func(w *WindowConfig) { w.Size = units.Duration(1500 * time.Microsecond) }), "window.size", "whole number of milliseconds"},
		{"emit", tumbling(func(w *WindowConfig) { w.Emit = "always" }), "window.emit", "onClose or onUpdate"},
		{"every without onUpdate", tumbling(func(w *WindowConfig) { w.Every = units.Duration(time.Second) }), "window.every", "emit: onUpdate"},
		{"late", tumbling(func(w *WindowConfig) { w.Late = "merge" }), "window.late", "deadLetter or drop"},
		{"no aggregates", tumbling(func(w *WindowConfig) { w.Aggregates = nil }), "window.aggregates", "at least one"},
		{"unknown function", tumbling(func(w *WindowConfig) { w.Aggregates = map[string]string{"x": "median(record.value.a)"} }), "window.aggregates.x", "median"},
		{"not a call", tumbling(func(w *WindowConfig) { w.Aggregates = map[string]string{"x": "record.value.a"} }), "window.aggregates.x", "want a call"},
		{"count with argument", tumbling(func(w *WindowConfig) { w.Aggregates = map[string]string{"x": "count(record.value.a)"} }), "window.aggregates.x", "no arguments"},
		{"sum without argument", tumbling(func(w *WindowConfig) { w.Aggregates = map[string]string{"x": "sum()"} }), "window.aggregates.x", "one expression"},
		{"quantile without q", tumbling(func(w *WindowConfig) { w.Aggregates = map[string]string{"x": "quantile(record.value.a)"} }), "window.aggregates.x", "a quantile"},
		{"quantile q", tumbling(func(w *WindowConfig) { w.Aggregates = map[string]string{"x": "quantile(record.value.a, 1.5)"} }), "window.aggregates.x", "from 0 to 1"},
		{"bad CEL", tumbling(func(w *WindowConfig) { w.Aggregates = map[string]string{"x": "sum(record.value.)"} }), "window.aggregates.x", ""},
		{"reserved name", tumbling(func(w *WindowConfig) { w.Aggregates = map[string]string{"key": "count()"} }), "window.aggregates.key", "every window's output"},
		{"bad name", tumbling(func(w *WindowConfig) { w.Aggregates = map[string]string{"a-b": "count()"} }), "window.aggregates.a-b", "letters, digits"},
		{"bad time", tumbling(func(w *WindowConfig) { w.Time = "record.value." }), "window.time", ""},
		{"bad groupBy", tumbling(func(w *WindowConfig) { w.GroupBy = "nope" }), "window.groupBy", ""},
		{"two windows", append(tumbling(nil), tumbling(nil)...), "window", "at most one window"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewChain(tc.cfgs, Options{})
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want a ConfigError", err)
			}
			if ce.Field != tc.field {
				t.Errorf("field %q, want %q (%v)", ce.Field, tc.field, err)
			}
			if !strings.Contains(ce.Err.Error(), tc.want) {
				t.Errorf("error %q, want it to contain %q", ce.Err, tc.want)
			}
		})
	}
}

func TestParseAggregate(t *testing.T) {
	tests := []struct {
		call string
		spec aggregate.Spec
		arg  string
	}{
		{"count()", aggregate.Spec{Func: aggregate.Count}, ""},
		{" sum( record.value.amount ) ", aggregate.Spec{Func: aggregate.Sum}, "record.value.amount"},
		{"max(record.value.a + int(\"1,2\"))", aggregate.Spec{Func: aggregate.Max}, "record.value.a + int(\"1,2\")"},
		{"quantile(record.value.ms, 0.99)", aggregate.Spec{Func: aggregate.Quantile, Q: 0.99}, "record.value.ms"},
		{"count_distinct([record.value.a, record.value.b], 5000)", aggregate.Spec{Func: aggregate.CountDistinct, MaxExact: 5000}, "[record.value.a, record.value.b]"},
	}
	for _, tc := range tests {
		spec, arg, err := parseAggregate(tc.call)
		if err != nil {
			t.Errorf("%s: %v", tc.call, err)
			continue
		}
		if spec != tc.spec || arg != tc.arg {
			t.Errorf("%s: %+v %q, want %+v %q", tc.call, spec, arg, tc.spec, tc.arg)
		}
	}
}

func TestWindowEvent(t *testing.T) {
	c := mustChain(t, []Config{
		{Filter: "record.value.ok"},
		{Window: &WindowConfig{Type: "tumbling", Size: units.Duration(time.Minute), Time: "record.value.ts",
			GroupBy: "record.value.region",
			Aggregates: map[string]string{"n": "count()", "s": "sum(record.value.amount * 2.0)",
				"d": "count_distinct(record.value.user)", "m": "max(record.value.amount)"}}},
		{Set: map[string]string{"doubled": "record.value.n * 2"}},
	}, Options{})
	w := c.Window()
	if w == nil || w.Config.Kind != window.Tumbling || w.Config.Size != 60_000 {
		t.Fatalf("window %+v", w)
	}
	if got := strings.Join(w.Names, ","); got != "d,m,n,s" {
		t.Fatalf("names %s, want sorted", got)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		value, key, err string
		time            int64
		num             []float64
	}{
		{value: `{"ok":true,"ts":1700000000123,"region":"eu","amount":2.5,"user":"u1"}`, key: "eu", time: 1700000000123, num: []float64{0, 2.5, 0, 5}},
		{value: `{"ok":true,"ts":"2023-11-14T22:13:20.5Z","region":7,"amount":1,"user":1}`, key: "7", time: 1700000000500, num: []float64{0, 1, 0, 2}},
		{value: `{"ok":true,"ts":1.7e12,"region":"x","amount":"1","user":1}`, err: "m: got string, want a number"},
		{value: `{"ok":true,"ts":"yesterday","region":"x","amount":1,"user":1}`, err: "not an RFC 3339 time"},
		{value: `{"ok":true,"ts":1,"amount":1,"user":1}`, err: "groupBy"},
		{value: `{"ok":true,"ts":{},"region":"x","amount":1,"user":1}`, err: "time: got map"},
	} {
		r := newRec(tc.value)
		ok, err := c.Process(ctx, r)
		if !ok || err != nil {
			t.Fatalf("%s: Process %v %v", tc.value, ok, err)
		}
		ev, err := c.Event(ctx, r)
		if tc.err != "" {
			var re *RecordError
			if !errors.As(err, &re) || re.Stage != "processors[1].window" || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: err = %v, want a RecordError of processors[1].window with %q", tc.value, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tc.value, err)
		}
		if ev.Key != tc.key || ev.Time != tc.time {
			t.Errorf("%s: key %q time %d, want %q %d", tc.value, ev.Key, ev.Time, tc.key, tc.time)
		}
		for i, n := range tc.num {
			if ev.In[i].Num != n {
				t.Errorf("%s: %s = %v, want %v", tc.value, w.Names[i], ev.In[i].Num, n)
			}
		}
		if len(ev.In[0].Key) == 0 || ev.In[0].Key[0] != map[bool]byte{true: 's', false: 'n'}[tc.key == "eu"] {
			t.Errorf("%s: distinct key %q", tc.value, ev.In[0].Key)
		}
	}

	out := c.Output("orders", window.Result{Key: "eu", Start: 1700000040000, End: 1700000100000, Values: []any{int64(3), 9.5, int64(4), 7.25}})
	if string(out.Key) != "eu|2023-11-14T22:14:00.000Z" || out.Timestamp.UnixMilli() != 1700000100000 {
		t.Errorf("output key %s, time %v", out.Key, out.Timestamp)
	}
	ok, err := c.ProcessOutput(ctx, out)
	if !ok || err != nil {
		t.Fatal(ok, err)
	}
	want := `{"d":3,"doubled":8,"key":"eu","m":9.5,"n":4,"s":7.25,"window_end":"2023-11-14T22:15:00.000Z","window_start":"2023-11-14T22:14:00.000Z"}`
	if got := valueOf(t, out); got != want {
		t.Errorf("output\n%s, want\n%s", got, want)
	}
}

// The direct path read and CEL agree on what they both can read, and CEL
// decides what the direct path cannot.
func TestFieldExprDirect(t *testing.T) {
	c := mustChain(t, tumbling(func(w *WindowConfig) {
		w.GroupBy = "record.value.a.b"
		w.Aggregates = map[string]string{"s": "sum(record.value.n)"}
	}), Options{})
	ctx := context.Background()
	for _, tc := range []struct{ value, key, err string }{
		{`{"a":{"b":"x"},"n":1}`, "x", ""},
		{`{"a":{"b":12.0},"n":1}`, "12", ""},
		{`{"a":{"b":123456789012345678},"n":1}`, "123456789012345680", ""},
		{`{"a":{"b":true},"n":1}`, "true", ""},
		{`{"a":{"b":null},"n":1}`, "", "groupBy"},
		{`{"a":{},"n":1}`, "", "groupBy"},
		{`{"a":[1],"n":1}`, "", "groupBy"},
		{`{"a":{"b":"x"}}`, "", "s:"},
	} {
		ev, err := c.Event(ctx, newRec(tc.value))
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: err = %v, want %q", tc.value, err, tc.err)
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", tc.value, err)
		case tc.err == "" && ev.Key != tc.key:
			t.Errorf("%s: key %q, want %q", tc.value, ev.Key, tc.key)
		}
	}
}

func BenchmarkWindowEvent(b *testing.B) {
	c := mustChain(b, tumbling(func(w *WindowConfig) {
		w.Time = "record.value.ts"
		w.GroupBy = "record.value.region"
		w.Aggregates = map[string]string{"n": "count()", "s": "sum(record.value.amount)"}
	}), Options{})
	r := newRec(`{"ts":1700000000123,"region":"eu-west","amount":12.5}`)
	if _, err := r.Doc(); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Event(ctx, r); err != nil {
			b.Fatal(err)
		}
	}
}

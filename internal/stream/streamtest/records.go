package streamtest

import (
	"errors"
	"testing"

	"github.com/sluice-dev/sluice/internal/record"
	"github.com/sluice-dev/sluice/internal/stream"
)

// testDeleteRecords checks that DeleteRecords moves the log start offset
// forward only, that reads below it fail, and its errors.
func testDeleteRecords(t *testing.T, l stream.Log) {
	c := ctx(t)
	if _, err := l.CreateTopic(c, "t", 2, nil); err != nil {
		t.Fatal(err)
	}
	for i := int64(0); i < 10; i++ {
		if _, err := l.Produce(c, "t", 0, batch(t, "x", 10, 1_000_000+i)); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := l.DeleteRecords(c, "t", 0, 35); err != nil || got != 35 {
		t.Fatalf("delete records before 35: got %d, %v; want 35", got, err)
	}
	if got, err := l.ListOffset(c, "t", 0, stream.Earliest); err != nil || got != 35 {
		t.Fatalf("earliest offset after delete: got %d, %v; want 35", got, err)
	}
	if _, err := l.Fetch(c, stream.FetchRequest{Topic: "t", Offset: 34, MaxBytes: 1 << 20}); !errors.Is(err, stream.ErrOffsetOutOfRange) {
		t.Fatalf("fetch below the log start: got %v, want ErrOffsetOutOfRange", err)
	}
	res, err := l.Fetch(c, stream.FetchRequest{Topic: "t", Offset: 35, MaxBytes: 1 << 20})
	if err != nil || res.LogStartOffset != 35 {
		t.Fatalf("fetch at the log start: got log start %d, %v; want 35", res.LogStartOffset, err)
	}
	if got := values(t, res.Batches, 35); len(got) == 0 || got[0] != "x-5" {
		t.Fatalf("fetch at the log start: got %v, want x-5 first", got)
	}
	for _, tt := range []struct {
		partition int32
		before    int64
		want      int64
		err       error
	}{
		{0, 35, 35, nil}, // at the log start: nothing changes
		{0, 101, 0, stream.ErrOffsetOutOfRange},
		{0, -2, 0, stream.ErrOffsetOutOfRange},
		{1, 0, 0, nil}, // an empty partition
		{0, stream.HighWatermark, 100, nil},
		{0, 100, 100, nil},
	} {
		got, err := l.DeleteRecords(c, "t", tt.partition, tt.before)
		if tt.err != nil {
			if !errors.Is(err, tt.err) {
				t.Errorf("delete records of %d before %d: got %d, %v; want %v", tt.partition, tt.before, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("delete records of %d before %d: got %d, %v; want %d", tt.partition, tt.before, got, err, tt.want)
		}
	}
	if r, err := l.Produce(c, "t", 0, batch(t, "y", 1, 2_000_000)); err != nil || r.BaseOffset != 100 {
		t.Fatalf("produce after deleting everything: got %+v, %v; want offset 100", r, err)
	}
	if _, err := l.DeleteRecords(c, "nope", 0, 1); !errors.Is(err, stream.ErrUnknownTopic) {
		t.Errorf("delete records of a missing topic: got %v, want ErrUnknownTopic", err)
	}
	if _, err := l.DeleteRecords(c, "t", 7, 1); !errors.Is(err, stream.ErrUnknownPartition) && !errors.Is(err, stream.ErrUnknownTopic) {
		t.Errorf("delete records of a missing partition: got %v, want ErrUnknownPartition", err)
	}
}

// idempotent encodes one batch of n records from producer pid.
func idempotent(t *testing.T, pid int64, epoch int16, seq int32, n int) []byte {
	t.Helper()
	var c record.Codecs
	recs := make([]record.Record, n)
	for i := range recs {
		recs[i] = record.Record{Value: []byte("v"), Timestamp: 1_000_000}
	}
	b, err := c.AppendBatch(nil, recs, record.BatchOptions{Producer: &record.Producer{ID: pid, Epoch: epoch, BaseSequence: seq}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// testIdempotentProduce checks the producer sequence rules of the Produce
// contract.
func testIdempotentProduce(t *testing.T, l stream.Log) {
	c := ctx(t)
	if _, err := l.CreateTopic(c, "t", 1, nil); err != nil {
		t.Fatal(err)
	}
	const pid = 1000
	steps := []struct {
		name     string
		b        []byte
		wantBase int64
		wantErr  error
	}{
		{"first batch", idempotent(t, pid, 0, 0, 3), 0, nil},
		{"next batch", idempotent(t, pid, 0, 3, 2), 3, nil},
		{"retry of the first", idempotent(t, pid, 0, 0, 3), 0, nil},
		{"retry of the second", idempotent(t, pid, 0, 3, 2), 3, nil},
		{"gap", idempotent(t, pid, 0, 9, 1), 0, stream.ErrOutOfOrderSequence},
		{"new epoch not at 0", idempotent(t, pid, 1, 5, 1), 0, stream.ErrOutOfOrderSequence},
		{"new epoch at 0", idempotent(t, pid, 1, 0, 1), 5, nil},
		{"old epoch", idempotent(t, pid, 0, 5, 1), 0, stream.ErrProducerFenced},
		{"another producer at a later sequence", idempotent(t, pid+1, 0, 42, 1), 6, nil},
	}
	for _, s := range steps {
		res, err := l.Produce(c, "t", 0, s.b)
		if s.wantErr != nil {
			if !errors.Is(err, s.wantErr) {
				t.Fatalf("%s: got %+v, %v; want %v", s.name, res, err, s.wantErr)
			}
			continue
		}
		if err != nil || res.BaseOffset != s.wantBase {
			t.Fatalf("%s: got %+v, %v; want base offset %d", s.name, res, err, s.wantBase)
		}
	}
	if hw, err := l.ListOffset(c, "t", 0, stream.Latest); err != nil || hw != 7 {
		t.Fatalf("high watermark: got %d, %v; want 7 (duplicates or refused batches stored?)", hw, err)
	}
}

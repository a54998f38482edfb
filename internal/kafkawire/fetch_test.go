package kafkawire

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-dev/sluice/internal/record"
)

// appendBatch appends one batch of the given values to topic/partition.
func (e *testEnv) appendBatch(topic string, partition int32, values ...string) {
	e.t.Helper()
	req := produceRequest(e.t, 9, 1, topic, partition, values...)
	if _, err := e.log.Produce(context.Background(), topic, partition, req.Topics[0].Partitions[0].Records); err != nil {
		e.t.Fatal(err)
	}
}

// batchBases returns the base offsets of the batches in b.
func batchBases(t *testing.T, b []byte) []int64 {
	t.Helper()
	var out []int64
	for len(b) > 0 {
		h, err := record.ParseHeader(b)
		if err != nil || h.Size() > len(b) {
			t.Fatalf("fetched batches: %v", err)
		}
		out = append(out, h.BaseOffset)
		b = b[h.Size():]
	}
	return out
}

func twoPartitionFetch(topic string, maxWait, minBytes, maxBytes, partMax int32) *kmsg.FetchRequest {
	req := fetchRequest(topic, 0, 0)
	rp := req.Topics[0].Partitions[0]
	rp.Partition = 1
	req.Topics[0].Partitions = append(req.Topics[0].Partitions, rp)
	req.MaxWaitMillis, req.MinBytes, req.MaxBytes = maxWait, minBytes, maxBytes
	for i := range req.Topics[0].Partitions {
		req.Topics[0].Partitions[i].PartitionMaxBytes = partMax
	}
	return req
}

func TestFetchWait(t *testing.T) {
	e := newTestEnv(t, Options{})
	e.createTopic("w", 2, nil)
	rc := e.dial()

	// Nothing arrives: the answer comes after MaxWait, empty.
	start := time.Now()
	resp := roundTrip[*kmsg.FetchResponse](rc, twoPartitionFetch("w", 300, 1, 1<<20, 1<<20))
	if d := time.Since(start); d < 250*time.Millisecond || d > 3*time.Second {
		t.Errorf("empty fetch took %v, want about 300ms", d)
	}
	for _, p := range resp.Topics[0].Partitions {
		if p.ErrorCode != 0 || len(p.RecordBatches) != 0 || p.HighWatermark != 0 {
			t.Errorf("empty fetch, partition %d: %+v", p.Partition, p)
		}
		if p.RecordBatches == nil { // librdkafka refuses a null record set
			t.Errorf("empty fetch, partition %d: null record set, want empty", p.Partition)
		}
	}

	// Data arriving on the second partition ends the wait at once.
	go func() {
		time.Sleep(300 * time.Millisecond)
		e.appendBatch("w", 1, "late")
	}()
	start = time.Now()
	resp = roundTrip[*kmsg.FetchResponse](rc, twoPartitionFetch("w", 10000, 1, 1<<20, 1<<20))
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("fetch woken by data took %v", d)
	}
	if p := resp.Topics[0].Partitions[1]; len(p.RecordBatches) == 0 || p.HighWatermark != 1 {
		t.Errorf("partition 1 after the wait: %+v", p)
	}

	// MinBytes not reached: data is returned after MaxWait, without
	// spinning on the partition that has it.
	start = time.Now()
	resp = roundTrip[*kmsg.FetchResponse](rc, twoPartitionFetch("w", 400, 1<<20, 1<<20, 1<<20))
	if d := time.Since(start); d < 350*time.Millisecond || d > 3*time.Second {
		t.Errorf("fetch below MinBytes took %v, want about 400ms", d)
	}
	if p := resp.Topics[0].Partitions[1]; len(p.RecordBatches) == 0 {
		t.Errorf("partition 1 below MinBytes: no records")
	}

	// A partition held back by its byte limit is not waited on (the
	// other one, caught up, would be).
	for i := 0; i < 5; i++ {
		e.appendBatch("w", 0, strings.Repeat("x", 100))
	}
	req := fetchRequest("w", 0, 0)
	req.MaxWaitMillis, req.MinBytes, req.Topics[0].Partitions[0].PartitionMaxBytes = 5000, 1<<20, 1
	start = time.Now()
	resp = roundTrip[*kmsg.FetchResponse](rc, req)
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("fetch of saturated partitions waited %v", d)
	}
	if got := batchBases(t, resp.Topics[0].Partitions[0].RecordBatches); len(got) != 1 {
		t.Errorf("partition 0 with a 1-byte limit: batches at %v, want one", got)
	}
}

func TestFetchLimitsAndErrors(t *testing.T) {
	e := newTestEnv(t, Options{})
	e.createTopic("l", 2, nil)
	for i := 0; i < 3; i++ {
		e.appendBatch("l", 0, strings.Repeat("a", 1000), strings.Repeat("b", 10))
	}
	e.appendBatch("l", 1, strings.Repeat("c", 1000))
	rc := e.dial()

	// The first batch comes whole even above every limit; the second
	// partition does not fit but reports its offsets.
	resp := roundTrip[*kmsg.FetchResponse](rc, twoPartitionFetch("l", 0, 1, 10, 10))
	p0, p1 := resp.Topics[0].Partitions[0], resp.Topics[0].Partitions[1]
	if got := batchBases(t, p0.RecordBatches); len(got) != 1 || got[0] != 0 {
		t.Errorf("partition 0: batches at %v, want [0]", got)
	}
	if len(p1.RecordBatches) != 0 || p1.HighWatermark != 1 || p1.LogStartOffset != 0 || p1.ErrorCode != 0 {
		t.Errorf("partition 1 over the limit: %+v", p1)
	}

	// Generous limits: everything.
	resp = roundTrip[*kmsg.FetchResponse](rc, twoPartitionFetch("l", 0, 1, 1<<20, 1<<20))
	p0, p1 = resp.Topics[0].Partitions[0], resp.Topics[0].Partitions[1]
	if got := batchBases(t, p0.RecordBatches); len(got) != 3 || p0.HighWatermark != 6 || p0.LastStableOffset != 6 {
		t.Errorf("partition 0: batches at %v, high watermark %d", got, p0.HighWatermark)
	}
	if got := batchBases(t, p1.RecordBatches); len(got) != 1 {
		t.Errorf("partition 1: batches at %v", got)
	}

	// An offset inside a batch returns the whole batch.
	req := fetchRequest("l", 0, 3)
	resp = roundTrip[*kmsg.FetchResponse](rc, req)
	if got := batchBases(t, resp.Topics[0].Partitions[0].RecordBatches); len(got) == 0 || got[0] != 2 {
		t.Errorf("fetch at offset 3: batches at %v, want the one at 2 first", got)
	}

	// Errors.
	for _, c := range []struct {
		name      string
		topic     string
		partition int32
		offset    int64
		want      int16
	}{
		{"past the end", "l", 0, 7, kerr.OffsetOutOfRange.Code},
		{"negative", "l", 0, -1, kerr.OffsetOutOfRange.Code},
		{"unknown topic", "nope", 0, 0, kerr.UnknownTopicOrPartition.Code},
		{"unknown partition", "l", 9, 0, kerr.UnknownTopicOrPartition.Code},
	} {
		req := fetchRequest(c.topic, c.partition, c.offset)
		req.MaxWaitMillis = 5000 // an error answers at once
		start := time.Now()
		resp := roundTrip[*kmsg.FetchResponse](rc, req)
		if got := resp.Topics[0].Partitions[0].ErrorCode; got != c.want {
			t.Errorf("%s: error %d, want %d", c.name, got, c.want)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("%s: took %v", c.name, d)
		}
	}

	// Fetch sessions are not kept.
	req = fetchRequest("l", 0, 0)
	req.SessionID, req.SessionEpoch = 7, 1
	if resp := roundTrip[*kmsg.FetchResponse](rc, req); resp.ErrorCode != kerr.FetchSessionIDNotFound.Code {
		t.Errorf("unknown session: error %d", resp.ErrorCode)
	}
	req = fetchRequest("l", 0, 0)
	req.SessionEpoch = 0 // asks for a session: a sessionless answer
	if resp := roundTrip[*kmsg.FetchResponse](rc, req); resp.ErrorCode != 0 || resp.SessionID != 0 {
		t.Errorf("session request: error %d, session %d", resp.ErrorCode, resp.SessionID)
	}
}

// TestFetchWaitDuplicatePartitions checks that a fetch naming one caught-up
// partition many times waits on it once: a waiter per entry would let a
// request of a few hundred kilobytes hold a goroutine per entry for the
// whole MaxWait. Data arriving still ends the wait, for every entry.
func TestFetchWaitDuplicatePartitions(t *testing.T) {
	e := newTestEnv(t, Options{})
	e.createTopic("d", 1, nil)
	rc := e.dial()
	const entries = 20000
	req := fetchRequest("d", 0, 0)
	req.MaxWaitMillis, req.MinBytes = 10000, 1
	for len(req.Topics[0].Partitions) < entries {
		req.Topics[0].Partitions = append(req.Topics[0].Partitions, req.Topics[0].Partitions[0])
	}
	before := runtime.NumGoroutine()
	corr := rc.send(req)
	peak := 0
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		peak = max(peak, runtime.NumGoroutine()-before)
	}
	e.appendBatch("d", 0, "wake")
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	resp.SetVersion(req.Version)
	rc.recv(resp, corr)
	if peak > 100 {
		t.Errorf("fetch waiting on %d entries of one partition: %d more goroutines, want a handful", entries, peak)
	}
	if ps := resp.Topics[0].Partitions; len(ps) != entries || len(ps[0].RecordBatches) == 0 || len(ps[entries-1].RecordBatches) == 0 {
		t.Errorf("after the wait: %d partitions, first and last with %d and %d bytes; want %d, both with records",
			len(ps), len(ps[0].RecordBatches), len(ps[len(ps)-1].RecordBatches), entries)
	}
}

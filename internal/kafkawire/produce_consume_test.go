package kafkawire

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/record"
	"github.com/sluice-dev/sluice/internal/stream"
)

// produceKeyed produces n keyed records to topic and waits for all of them.
func produceKeyed(t *testing.T, cl *kgo.Client, topic string, n int) {
	t.Helper()
	ctx := testContext(t)
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		r := &kgo.Record{Topic: topic, Key: []byte(fmt.Sprintf("key-%d", i%37)),
			Value:   []byte(fmt.Sprintf("value-%d-%s", i, bytes.Repeat([]byte("x"), i%50))),
			Headers: []kgo.RecordHeader{{Key: "i", Value: []byte(fmt.Sprint(i))}}}
		cl.Produce(ctx, r, func(_ *kgo.Record, err error) { errs <- err })
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
}

// consumeAll reads n records of topic from the start with a direct
// (groupless) consumer and checks their content and per-key order.
func consumeAll(t *testing.T, cl *kgo.Client, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	seen := make(map[int]bool, n)
	lastByKey := map[string]int{}
	for len(seen) < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d records: %v", len(seen), n, err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			var i int
			if _, err := fmt.Sscan(string(r.Headers[0].Value), &i); err != nil {
				t.Fatalf("record header %q: %v", r.Headers[0].Value, err)
			}
			wantKey := fmt.Sprintf("key-%d", i%37)
			wantValue := fmt.Sprintf("value-%d-%s", i, bytes.Repeat([]byte("x"), i%50))
			if string(r.Key) != wantKey || string(r.Value) != wantValue {
				t.Fatalf("record %d: got key %q value %q, want %q %q", i, r.Key, r.Value, wantKey, wantValue)
			}
			if seen[i] {
				t.Fatalf("record %d seen twice", i)
			}
			seen[i] = true
			if last, ok := lastByKey[wantKey]; ok && last > i {
				t.Fatalf("key %s: record %d after %d", wantKey, i, last)
			}
			lastByKey[wantKey] = i
		})
	}
}

func TestProduceConsumeCodecs(t *testing.T) {
	e := newTestEnv(t, Options{})
	const n = 10000
	codecs := []struct {
		name  string
		codec kgo.CompressionCodec
		want  record.Compression
	}{
		{"none", kgo.NoCompression(), record.CompressionNone},
		{"gzip", kgo.GzipCompression(), record.CompressionGzip},
		{"snappy", kgo.SnappyCompression(), record.CompressionSnappy},
		{"lz4", kgo.Lz4Compression(), record.CompressionLZ4},
		{"zstd", kgo.ZstdCompression(), record.CompressionZstd},
	}
	for _, c := range codecs {
		t.Run(c.name, func(t *testing.T) {
			topic := "codec-" + c.name
			e.createTopic(topic, 3, nil)
			produceKeyed(t, e.client(kgo.ProducerBatchCompression(c.codec), kgo.DisableIdempotentWrite(),
				kgo.ProducerLinger(2*time.Millisecond)), topic, n)
			// Batches are stored as sent. franz-go sends a batch that its
			// codec would not shrink (a lone record) uncompressed.
			compressed := 0
			for _, h := range storedBatches(t, e, topic) {
				switch {
				case h.ProducerID != -1:
					t.Fatalf("stored batch of producer %d, want -1", h.ProducerID)
				case h.Compression() == c.want:
					compressed++
				case h.Compression() != record.CompressionNone:
					t.Fatalf("stored batch: codec %v, want %v", h.Compression(), c.want)
				}
			}
			if compressed == 0 {
				t.Errorf("no stored batch is compressed with %v", c.want)
			}
			consumeAll(t, e.client(kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())), n)
		})
	}
}

func TestIdempotentProducer(t *testing.T) {
	e := newTestEnv(t, Options{})
	e.createTopic("idem", 2, nil)
	produceKeyed(t, e.client(), "idem", 2000) // franz-go is idempotent by default
	if h := storedBatches(t, e, "idem")[0]; h.ProducerID < 0 || h.ProducerEpoch != 0 || h.BaseSequence != 0 {
		t.Errorf("stored batch: producer %d epoch %d sequence %d; want an ID from InitProducerId, 0, 0",
			h.ProducerID, h.ProducerEpoch, h.BaseSequence)
	}
	consumeAll(t, e.client(kgo.ConsumeTopics("idem"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())), 2000)
}

// storedBatches returns the headers of partition 0's stored batches.
func storedBatches(t *testing.T, e *testEnv, topic string) []record.Header {
	t.Helper()
	res, err := e.log.Fetch(context.Background(), stream.FetchRequest{Topic: topic, Partition: 0, Offset: 0, MaxBytes: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	var out []record.Header
	for b := res.Batches; len(b) > 0; {
		h, err := record.ParseHeader(b)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, h)
		b = b[h.Size():]
	}
	return out
}

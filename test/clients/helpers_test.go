package clients

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// kgoClient returns a franz-go client of the server, closed at cleanup.
func kgoClient(t *testing.T, s *sluice, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	opts = append([]kgo.Opt{kgo.SeedBrokers(s.kafkaAddr), kgo.RetryTimeout(20 * time.Second),
		kgo.MetadataMinAge(100 * time.Millisecond)}, opts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func kadmClient(t *testing.T, s *sluice) *kadm.Client {
	return kadm.NewClient(kgoClient(t, s))
}

// createTopics creates topics (name -> partitions) over the Kafka protocol.
func createTopics(t *testing.T, ctx context.Context, s *sluice, topics map[string]int32) {
	t.Helper()
	adm := kadmClient(t, s)
	for name, partitions := range topics {
		resp, err := adm.CreateTopic(ctx, partitions, 1, nil, name)
		if err == nil {
			err = resp.Err
		}
		if err != nil {
			t.Fatalf("create topic %s: %v", name, err)
		}
	}
}

// endOffsets returns the log end offset of each partition of topic.
func endOffsets(t *testing.T, ctx context.Context, s *sluice, topic string) map[int32]int64 {
	t.Helper()
	offs, err := kadmClient(t, s).ListEndOffsets(ctx, topic)
	if err == nil {
		err = offs.Error()
	}
	if err != nil {
		t.Fatalf("list end offsets of %s: %v", topic, err)
	}
	m := map[int32]int64{}
	offs.Each(func(o kadm.ListedOffset) { m[o.Partition] = o.Offset })
	return m
}

// codecIDs are the RecordBatch attribute values of the compression codecs.
var codecIDs = map[string]uint8{"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}

// checkStored reads topic back with franz-go and checks that every record
// came in a batch compressed with codec (unless codec is ""): Sluice keeps
// producers' batches as sent; and, for an idempotent producer, that every
// batch carries a producer ID.
func checkStored(t *testing.T, ctx context.Context, s *sluice, topic, codec string, idempotent bool) {
	t.Helper()
	ends := endOffsets(t, ctx, s, topic)
	var total int64
	for _, e := range ends {
		total += e
	}
	cl := kgoClient(t, s, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	want, ok := codecIDs[codec]
	if !ok && codec != "" {
		t.Fatalf("unknown codec %q", codec)
	}
	var n int64
	for n < total {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %s back: got %d of %d records: %v", topic, n, total, err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		for _, r := range fs.Records() {
			if got := r.Attrs.CompressionType(); codec != "" && got != want {
				t.Fatalf("%s/%d offset %d: got compression %d, want %d (%s)", r.Topic, r.Partition, r.Offset, got, want, codec)
			}
			if idempotent && r.ProducerID < 0 {
				t.Fatalf("%s/%d offset %d: got producer ID %d, want one from InitProducerId (the producer is idempotent)",
					r.Topic, r.Partition, r.Offset, r.ProducerID)
			}
			n++
		}
	}
}

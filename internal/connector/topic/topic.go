// Package topic is the sink that writes a pipeline's output to another
// topic of the same log: a stream that processors derived from the source
// (cleaned, enriched, re-keyed). Keys, headers and timestamps are kept;
// keyed records go to Kafka's default partition for their key.
package topic

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/record"
	"github.com/sluice-dev/sluice/internal/stream"
)

// Log is what the sink needs of the log: the partition count and Produce.
type Log interface {
	DescribeTopic(ctx context.Context, name string) (stream.TopicInfo, error)
	Produce(ctx context.Context, topic string, partition int32, batch []byte) (stream.ProduceResult, error)
}

// Options configures a Sink.
type Options struct {
	Log   Log
	Topic string
	// MaxBatchBytes bounds one produced batch (default 1 MiB); a larger
	// write is split.
	MaxBatchBytes int
}

// Sink produces records to a topic.
type Sink struct {
	opts   Options
	codecs record.Codecs
	rr     stream.RoundRobin

	// Per-write scratch, reused: a Sink is used from one goroutine.
	parts [][]record.Record
	buf   []byte
}

// New returns a sink for opts.Topic. The topic must exist when Write is
// called (a missing one is a transient error: it may be created by the
// same apply).
func New(opts Options) (*Sink, error) {
	if opts.Log == nil || opts.Topic == "" {
		return nil, errors.New("topic sink: a log and a topic name are required")
	}
	if opts.MaxBatchBytes <= 0 {
		opts.MaxBatchBytes = 1 << 20
	}
	return &Sink{opts: opts}, nil
}

// Write produces every record of b and returns once the log acknowledged
// all of them. A record whose value cannot be encoded (a processor made a
// number JSON cannot hold) is rejected before anything is produced: it
// would fail every retry. A retried Write produces the records again: the
// topic sink delivers at least once.
func (s *Sink) Write(ctx context.Context, b *connector.Batch) error {
	if len(b.Records) == 0 {
		return nil
	}
	info, err := s.opts.Log.DescribeTopic(ctx, s.opts.Topic)
	if err != nil {
		return fmt.Errorf("topic sink %s: %w", s.opts.Topic, err)
	}
	n := int32(len(info.Partitions))
	if n == 0 {
		return fmt.Errorf("topic sink %s: topic has no partitions", s.opts.Topic)
	}
	s.parts = slices.Grow(s.parts[:0], int(n))[:n]
	for i := range s.parts {
		s.parts[i] = s.parts[i][:0]
	}
	// Unkeyed records of one write go to one partition, as Kafka's sticky
	// partitioner does, so that each write makes few large batches.
	sticky := s.rr.Next(n)
	var rejected []connector.Rejection
	for _, r := range b.Records {
		v, err := r.Value()
		if err != nil {
			rejected = append(rejected, connector.Rejection{Record: r, Err: fmt.Errorf("topic sink %s: %w", s.opts.Topic, err)})
			continue
		}
		p := sticky
		if r.Key != nil {
			p = stream.KeyPartition(r.Key, n)
		}
		s.parts[p] = append(s.parts[p], record.Record{Key: r.Key, Value: v, Headers: r.Headers, Timestamp: r.Timestamp.UnixMilli()})
	}
	if len(rejected) > 0 {
		if b.Reject == nil {
			return connector.Permanent(fmt.Errorf("topic sink %s: %d records rejected but the batch has no Reject: first: %w", s.opts.Topic, len(rejected), rejected[0].Err))
		}
		if err := b.Reject(ctx, rejected); err != nil {
			return fmt.Errorf("topic sink %s: reject %d records: %w", s.opts.Topic, len(rejected), err)
		}
	}
	for p, recs := range s.parts {
		if err := s.produce(ctx, int32(p), recs); err != nil {
			return err
		}
	}
	return nil
}

// produce writes recs to partition p in batches of at most MaxBatchBytes.
func (s *Sink) produce(ctx context.Context, p int32, recs []record.Record) error {
	for len(recs) > 0 {
		n, size := 0, 0
		for n < len(recs) && (n == 0 || size+recordSize(&recs[n]) <= s.opts.MaxBatchBytes) {
			size += recordSize(&recs[n])
			n++
		}
		var err error
		if s.buf, err = s.codecs.AppendBatch(s.buf[:0], recs[:n], record.BatchOptions{}); err != nil {
			return fmt.Errorf("topic sink %s/%d: encode: %w", s.opts.Topic, p, err)
		}
		if _, err := s.opts.Log.Produce(ctx, s.opts.Topic, p, s.buf); err != nil {
			if errors.Is(err, stream.ErrTooLarge) || errors.Is(err, stream.ErrInvalid) {
				err = connector.Permanent(err)
			}
			return fmt.Errorf("topic sink %s/%d: %w", s.opts.Topic, p, err)
		}
		recs = recs[n:]
	}
	return nil
}

// recordSize approximates a record's encoded size, for splitting.
func recordSize(r *record.Record) int {
	n := len(r.Key) + len(r.Value) + 24
	for _, h := range r.Headers {
		n += len(h.Key) + len(h.Value) + 4
	}
	return n
}

// Close does nothing: the sink holds no resources of its own.
func (s *Sink) Close(context.Context) error { return nil }

var _ connector.Sink = (*Sink)(nil)

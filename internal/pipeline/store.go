package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/internal/record"
	"github.com/sluice-dev/sluice/internal/stream"
)

// SpecTopic is the topic that holds applied resources: one record per
// change, keyed by kind and name ("Pipeline/orders-to-pg"), the value the
// pipeline spec as stored (JSON, ${VAR} references unexpanded; for a topic,
// just a mark that it was applied) or null for a deleted one. Kafka Connect
// keeps connector configs the same way; it puts the specs wherever the
// log is, in --data-dir in embedded mode and in the Kafka cluster in
// cluster mode, with no second store to back up.
const SpecTopic = "_sluice_pipelines"

// maxSpecBytes bounds one stored spec.
const maxSpecBytes = 1 << 20

// specStore reads and writes SpecTopic.
type specStore struct {
	log    stream.Log
	codecs record.Codecs
}

// ensure creates the topic when it does not exist. It asks for
// compaction, which keeps the topic small on Kafka.
func (s *specStore) ensure(ctx context.Context) error {
	// A log that refuses compaction keeps the records all the same.
	if err := ensureTopic(ctx, s.log, SpecTopic, map[string]string{"cleanup.policy": "compact"}, nil); err != nil {
		return fmt.Errorf("pipeline specs: %w", err)
	}
	return nil
}

// ensureTopic creates a one-partition topic of Sluice's own when it does
// not exist, with the first of configs the log accepts (a later one is
// tried when an earlier is refused as invalid).
func ensureTopic(ctx context.Context, log stream.Log, topic string, configs ...map[string]string) error {
	_, err := log.DescribeTopic(ctx, topic)
	if err == nil {
		return nil
	}
	if !errors.Is(err, stream.ErrUnknownTopic) {
		return err
	}
	for i, cfg := range configs {
		_, err = log.CreateTopic(ctx, topic, 1, cfg)
		if !errors.Is(err, stream.ErrInvalid) || i == len(configs)-1 {
			break
		}
	}
	if err != nil && !errors.Is(err, stream.ErrTopicExists) {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	return nil
}

// load reads the topic whole and returns each resource's last record.
// A log without the topic has none: the topic is created by the first
// put, so that a server that never runs a pipeline lists no topic of its
// own.
func (s *specStore) load(ctx context.Context) (map[string][]byte, error) {
	specs := make(map[string][]byte)
	err := scanTopic(ctx, s.log, &s.codecs, SpecTopic, func(r record.Record) error {
		if r.Value == nil {
			delete(specs, string(r.Key))
		} else {
			specs[string(r.Key)] = append([]byte(nil), r.Value...)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pipeline specs: %w", err)
	}
	return specs, nil
}

// scanTopic calls fn with every record of partition 0 of topic, in order,
// up to its end when the scan starts; a topic that does not exist has
// none. fn must not retain the record's slices.
func scanTopic(ctx context.Context, log stream.Log, codecs *record.Codecs, topic string, fn func(record.Record) error) error {
	end, err := log.ListOffset(ctx, topic, 0, stream.Latest)
	if errors.Is(err, stream.ErrUnknownTopic) || errors.Is(err, stream.ErrUnknownPartition) {
		return nil
	}
	if err != nil {
		return err
	}
	off, err := log.ListOffset(ctx, topic, 0, stream.Earliest)
	if err != nil {
		return err
	}
	for off < end {
		fr, err := log.Fetch(ctx, stream.FetchRequest{Topic: topic, Offset: off, MaxBytes: 4 << 20, MaxWait: time.Second})
		if err != nil {
			return fmt.Errorf("read at offset %d: %w", off, err)
		}
		if len(fr.Batches) == 0 {
			break
		}
		next := off
		for b := fr.Batches; len(b) > 0; {
			h, err := record.ParseHeader(b)
			if err == nil && h.Size() > len(b) {
				err = record.ErrMalformed
			}
			if err != nil {
				return fmt.Errorf("read at offset %d: %w", off, err)
			}
			_, err = codecs.DecodeBatch(b[:h.Size()], record.DecodeLimits{}, func(r record.Record) error {
				if r.Control || r.Offset < off || r.Offset >= end {
					return nil
				}
				return fn(r)
			})
			if err != nil {
				return fmt.Errorf("read at offset %d: %w", h.BaseOffset, err)
			}
			next = max(next, h.NextOffset())
			b = b[h.Size():]
		}
		if next <= off {
			break
		}
		off = next
	}
	return nil
}

// put stores a spec, or deletes the pipeline when spec is nil. It returns
// once the log acknowledged the record.
func (s *specStore) put(ctx context.Context, name string, spec []byte) error {
	if len(spec) > maxSpecBytes {
		return fmt.Errorf("%w: pipeline spec of %d bytes, at most %d", stream.ErrTooLarge, len(spec), maxSpecBytes)
	}
	if err := s.ensure(ctx); err != nil {
		return err
	}
	batch, err := s.codecs.AppendBatch(nil, []record.Record{{Key: []byte(name), Value: spec, Timestamp: time.Now().UnixMilli()}}, record.BatchOptions{})
	if err != nil {
		return fmt.Errorf("store pipeline %s: %w", name, err)
	}
	if _, err := s.log.Produce(ctx, SpecTopic, 0, batch); err != nil {
		return fmt.Errorf("store pipeline %s: %w", name, err)
	}
	return nil
}

// pipelineKey and topicKey are the keys of SpecTopic's records.
func pipelineKey(name string) string { return "Pipeline/" + name }
func topicKey(name string) string    { return "Topic/" + name }

// cutKind returns the name in a key of the given kind.
func cutKind(key, kind string) (string, bool) {
	return strings.CutPrefix(key, kind+"/")
}

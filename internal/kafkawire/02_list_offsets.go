package kafkawire

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-dev/sluice/internal/record"
	"github.com/sluice-dev/sluice/internal/stream"
)

// ListOffsets (key 2): versions 1-7 (v1 semantics: one offset per
// partition; v0's offset lists are not served).
//
// Behaviour:
//   - Timestamp -1 (latest) gives the high watermark, -2 (earliest) the log
//     start offset; both with Timestamp -1 in the answer.
//   - A timestamp in Unix milliseconds gives the first offset whose record
//     timestamp is at or after it, through the log's time index, and that
//     record's timestamp. When there is none the answer is offset -1 and
//     timestamp -1, as in Kafka (kadm and others then use the end offset).
//   - -3 (max timestamp, v7, KIP-734) and other negative values get
//     INVALID_REQUEST: the log keeps no index of the largest timestamp yet.
//   - IsolationLevel makes no difference (no transactions: the last stable
//     offset is the high watermark). LeaderEpoch (v4+) is -1: stored batches
//     carry no leader epoch.
//   - Unknown topics and partitions get UNKNOWN_TOPIC_OR_PARTITION.

func (s *Server) handleListOffsets(rc *request, req *kmsg.ListOffsetsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	resp.Topics = make([]kmsg.ListOffsetsResponseTopic, len(req.Topics))
	for i := range req.Topics {
		rt := &req.Topics[i]
		t := &resp.Topics[i]
		*t = kmsg.NewListOffsetsResponseTopic()
		t.Topic = rt.Topic
		t.Partitions = make([]kmsg.ListOffsetsResponseTopicPartition, len(rt.Partitions))
		allowed := s.authorize(rc, opDescribe, resTopic, rt.Topic)
		for j := range rt.Partitions {
			p := &t.Partitions[j]
			*p = kmsg.NewListOffsetsResponseTopicPartition()
			p.Partition = rt.Partitions[j].Partition
			if !allowed {
				p.ErrorCode = rc.note(kerr.TopicAuthorizationFailed.Code)
				continue
			}
			off, ts, err := s.listOffset(rc.ctx, rt.Topic, p.Partition, rt.Partitions[j].Timestamp)
			if err != nil {
				p.ErrorCode = rc.note(errorCode(err, kerr.InvalidRequest.Code))
				s.errorMessage(rc, "list offsets", p.ErrorCode, err) // logs server errors
				continue
			}
			p.Offset, p.Timestamp = off, ts
		}
	}
	return resp, nil
}

// listOffset resolves one ListOffsets position to an offset and, for
// timestamp lookups, the timestamp of the record found.
func (s *Server) listOffset(ctx context.Context, topic string, partition int32, at int64) (int64, int64, error) {
	switch {
	case at == stream.Latest || at == stream.Earliest:
		off, err := s.log.ListOffset(ctx, topic, partition, at)
		return off, -1, err
	case at < 0:
		return 0, 0, stream.ErrInvalid
	}
	off, err := s.log.ListOffset(ctx, topic, partition, at)
	if err != nil {
		return 0, 0, err
	}
	// stream.Log answers "none" with the high watermark; Kafka with -1.
	// The high watermark read after the lookup is at least the one the
	// lookup saw, so off >= hw means no record was found.
	hw, err := s.log.ListOffset(ctx, topic, partition, stream.Latest)
	if err != nil {
		return 0, 0, err
	}
	if off >= hw {
		return -1, -1, nil
	}
	ts, err := s.recordTimestamp(ctx, topic, partition, off)
	if err != nil {
		return 0, 0, err
	}
	return off, ts, nil
}

// errFound stops DecodeBatch once the record looked for is found.
var errFound = errors.New("found")

// recordTimestamp returns the timestamp of the record at offset: Kafka
// reports it with the offset, and clients such as the Java consumer require
// it. It decodes the batch holding the offset; if that batch is gone (the
// log start moved past it) it returns an error for the client to retry.
func (s *Server) recordTimestamp(ctx context.Context, topic string, partition int32, offset int64) (int64, error) {
	res, err := s.log.Fetch(ctx, stream.FetchRequest{Topic: topic, Partition: partition, Offset: offset, MaxBytes: 1})
	if err != nil {
		return 0, err
	}
	h, err := record.ParseHeader(res.Batches)
	if err != nil {
		return 0, errors.Join(stream.ErrCorrupt, err)
	}
	batch := res.Batches[:min(h.Size(), len(res.Batches))]
	ts := h.MaxTimestamp
	_, err = s.codecs.DecodeBatch(batch, record.DecodeLimits{}, func(r record.Record) error {
		if r.Offset >= offset {
			ts = r.Timestamp
			return errFound
		}
		return nil
	})
	if err != nil && !errors.Is(err, errFound) {
		return 0, errors.Join(stream.ErrCorrupt, err)
	}
	return ts, nil
}

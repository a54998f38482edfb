package kafkawire

import (
	"fmt"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-dev/sluice/internal/record"
	"github.com/sluice-dev/sluice/internal/stream"
)

// Produce (key 0): versions 0-12 advertised, 3-12 served.
//
// Behaviour:
//   - v0-2 (message sets v0/v1, which the log does not store) get
//     UNSUPPORTED_VERSION on every partition. They are advertised anyway
//     because librdkafka enables compression only when a broker's minimum
//     Produce version is 0.
//   - acks 1 and -1 are the same here: the log acknowledges under its
//     durability policy (fsync by default) and there are no replicas to
//     wait for. acks 0 gets no response; if any partition failed the
//     connection is closed instead, as Kafka does. Other acks values get
//     INVALID_REQUIRED_ACKS. TimeoutMillis is not applied: the append is
//     bounded by the log's own fsync.
//   - Each partition's records are one or more RecordBatch v2 batches
//     (clients send one; more are accepted). They are split with
//     record.ParseHeader, and when there is more than one every batch's CRC
//     is checked before any is appended, so a bad batch stores nothing.
//     Batches are appended in order, each with one stream.Log.Produce;
//     partitions of one request are appended concurrently.
//   - Errors: bad framing or CRC is CORRUPT_MESSAGE; magic 0/1, control
//     batches and transactional batches are INVALID_RECORD; other stream
//     errors map as in errors.go. BaseOffset is the first batch's,
//     LogAppendTime the last batch's (-1 for CreateTime topics) and
//     LogStartOffset (v5+) the partition's; all three are -1 on error.
//   - Transactions are not supported: a non-null TransactionalID gets
//     INVALID_REQUEST on every partition.
//   - Idempotent batches (producer ID >= 0, from InitProducerId) are
//     checked by the log against the producer's state in the partition
//     (see stream.Log.Produce and logstore's producers.go): a retry of one
//     of the producer's last five batches is not stored again and is
//     answered with the original BaseOffset (and LogAppendTime), as Kafka
//     answers it; a sequence that does not follow the last batch gets
//     OUT_OF_ORDER_SEQUENCE_NUMBER, a stale epoch INVALID_PRODUCER_EPOCH.
//     A producer ID the partition does not know may start at any sequence,
//     except on a partition that never held a record (sequence 0 only).
//     The state survives restarts and crashes.

func (s *Server) handleProduce(rc *request, req *kmsg.ProduceRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	var code int16 // for every partition
	var msg string
	switch {
	case req.Version < 3:
		code, msg = kerr.UnsupportedVersion.Code, "Produce v0-2 (message format v0/v1) is not supported; use v3 or later"
	case req.TransactionID != nil:
		code, msg = kerr.InvalidRequest.Code, "transactions are not supported"
	case req.Acks != 0 && req.Acks != 1 && req.Acks != -1:
		code, msg = kerr.InvalidRequiredAcks.Code, fmt.Sprintf("acks %d: want -1, 0 or 1", req.Acks)
	}

	type job struct {
		topic     string
		partition int32
		records   []byte
		out       *kmsg.ProduceResponseTopicPartition
	}
	var jobs []job
	resp.Topics = make([]kmsg.ProduceResponseTopic, len(req.Topics))
	for i := range req.Topics {
		rt := &req.Topics[i]
		t := &resp.Topics[i]
		*t = kmsg.NewProduceResponseTopic()
		t.Topic = rt.Topic
		t.Partitions = make([]kmsg.ProduceResponseTopicPartition, len(rt.Partitions))
		allowed := code == 0 && s.authorize(rc, opWrite, resTopic, rt.Topic)
		for j := range rt.Partitions {
			p := &t.Partitions[j]
			*p = kmsg.NewProduceResponseTopicPartition()
			p.Partition, p.BaseOffset = rt.Partitions[j].Partition, -1
			switch {
			case code != 0:
				p.ErrorCode, p.ErrorMessage = code, strPtr(msg)
			case !allowed:
				p.ErrorCode = kerr.TopicAuthorizationFailed.Code
			default:
				jobs = append(jobs, job{rt.Topic, p.Partition, rt.Partitions[j].Records, p})
			}
		}
	}

	if len(jobs) == 1 {
		s.producePartition(rc, jobs[0].topic, jobs[0].partition, jobs[0].records, jobs[0].out)
	} else if len(jobs) > 1 {
		// Partitions are independent: append them concurrently, so that
		// their fsyncs overlap rather than queue.
		var wg sync.WaitGroup
		for _, j := range jobs {
			wg.Go(func() {
				defer func() {
					if p := recover(); p != nil {
						s.logger.Error("kafka produce panicked", "topic", j.topic, "partition", j.partition, "panic", p)
						j.out.ErrorCode = kerr.UnknownServerError.Code
					}
				}()
				s.producePartition(rc, j.topic, j.partition, j.records, j.out)
			})
		}
		wg.Wait()
	}

	failed := false
	for i := range resp.Topics {
		for j := range resp.Topics[i].Partitions {
			p := &resp.Topics[i].Partitions[j]
			if p.ErrorCode != 0 {
				rc.note(p.ErrorCode)
				failed = true
			}
			if req.Version < 8 {
				p.ErrorMessage = nil
			}
		}
	}
	if req.Acks == 0 && code != kerr.InvalidRequiredAcks.Code {
		if failed {
			return nil, errCloseAcks0
		}
		return nil, nil
	}
	return resp, nil
}

// producePartition appends one partition's record batches and fills out.
func (s *Server) producePartition(rc *request, topicName string, partition int32, records []byte, out *kmsg.ProduceResponseTopicPartition) {
	var one [1][]byte
	batches, code, err := splitBatches(records, one[:0])
	if err != nil {
		out.ErrorCode, out.ErrorMessage = code, s.errorMessage(rc, "produce", code, err)
		return
	}
	var first, last stream.ProduceResult
	for i, b := range batches {
		res, err := s.log.Produce(rc.ctx, topicName, partition, b)
		if err != nil {
			// Batches before this one are stored; the client learns of
			// the error and, being idempotent or not, decides to retry.
			code := produceErrorCode(err)
			out.ErrorCode, out.ErrorMessage = code, s.errorMessage(rc, "produce", code, err)
			return
		}
		if i == 0 {
			first = res
		}
		last = res
	}
	out.BaseOffset, out.LogAppendTime = first.BaseOffset, last.LogAppendTime
	if rc.version >= 5 {
		if start, err := s.log.ListOffset(rc.ctx, topicName, partition, stream.Earliest); err == nil {
			out.LogStartOffset = start
		}
	}
}

// splitBatches splits a partition's records into whole batches, appending
// them to dst. With more than one batch, every batch's CRC is checked, so
// that no batch is stored unless all are sound; a single batch is checked
// by the log as it appends it.
func splitBatches(records []byte, dst [][]byte) ([][]byte, int16, error) {
	if len(records) == 0 {
		return nil, kerr.InvalidRecord.Code, fmt.Errorf("%w: no record batch", stream.ErrInvalid)
	}
	for rest := records; len(rest) > 0; {
		if len(rest) > 16 && rest[16] != 2 {
			return nil, kerr.InvalidRecord.Code, fmt.Errorf("%w: record batch magic %d; only magic 2 (RecordBatch v2) is supported", stream.ErrInvalid, rest[16])
		}
		h, err := record.ParseHeader(rest)
		if err != nil {
			return nil, kerr.CorruptMessage.Code, err
		}
		if h.Size() > len(rest) {
			return nil, kerr.CorruptMessage.Code, fmt.Errorf("%w: batch of %d bytes, %d remain", record.ErrMalformed, h.Size(), len(rest))
		}
		switch {
		case h.Control():
			return nil, kerr.InvalidRecord.Code, fmt.Errorf("%w: producers may not write control batches", stream.ErrInvalid)
		case h.Transactional():
			return nil, kerr.InvalidRecord.Code, fmt.Errorf("%w: transactional batches are not supported", stream.ErrInvalid)
		}
		dst = append(dst, rest[:h.Size()])
		rest = rest[h.Size():]
	}
	if len(dst) > 1 {
		for _, b := range dst {
			if _, err := record.Check(b); err != nil {
				return nil, kerr.CorruptMessage.Code, err
			}
		}
	}
	return dst, 0, nil
}

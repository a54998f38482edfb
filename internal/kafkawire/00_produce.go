package kafkawire

import (
	"context"
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
//     partitions of one request are appended concurrently. On a log that
//     implements stream.StagedProducer (the embedded log), requests with
//     acks 1 or -1 are pipelined: their batches are appended when the
//     request is read, and the connection reads its next request while
//     they wait for their fsync (pipeline.go); responses still leave in
//     request order.
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
	pr := s.prepareProduce(rc, req)
	pr.run(s, rc)
	return pr.finish(rc, req.Acks)
}

// stageProduce serves a produce request (acks 1 or -1) in two steps, on a
// log that can split its appends (stream.StagedProducer): it appends every
// batch now, in request order, and returns a function that waits for their
// acknowledgements and builds the response. The connection reads its next
// request in between (pipeline.go), so that a producer's requests in flight
// share fsyncs; the records in req may be reused once stageProduce returns.
// The function keeps nothing of req: its records are in the connection's
// request buffer, and holding them while the response waits would keep a
// buffer of up to MaxRequestBytes alive per pipelined request once the
// connection has moved on to a new one.
func (s *Server) stageProduce(rc *request, req *kmsg.ProduceRequest, sp stream.StagedProducer) func() (kmsg.Response, error) {
	pr := s.prepareProduce(rc, req)
	for i := range pr.jobs {
		pr.jobs[i].stage(s, rc, sp)
	}
	acks := req.Acks
	return func() (kmsg.Response, error) {
		pr.forEach(s, func(j *produceJob) { j.wait(s, rc) })
		return pr.finish(rc, acks)
	}
}

// stagedRequest is a produce request being served: its response, and the
// partitions to append to.
type stagedRequest struct {
	resp *kmsg.ProduceResponse
	jobs []produceJob
	// code is the error of every partition, when the request as a whole
	// is refused.
	code int16
}

// produceJob is one partition of a produce request.
type produceJob struct {
	topic     string
	partition int32
	records   []byte
	out       *kmsg.ProduceResponseTopicPartition
	// waits are the acknowledgements of the staged batches, in order.
	waits []func(context.Context) (stream.ProduceResult, error)
}

// prepareProduce checks the request as a whole and each partition's
// authorization, and lays out the response.
func (s *Server) prepareProduce(rc *request, req *kmsg.ProduceRequest) *stagedRequest {
	pr := &stagedRequest{resp: req.ResponseKind().(*kmsg.ProduceResponse)}
	var msg string
	switch {
	case req.Version < 3:
		pr.code, msg = kerr.UnsupportedVersion.Code, "Produce v0-2 (message format v0/v1) is not supported; use v3 or later"
	case req.TransactionID != nil:
		pr.code, msg = kerr.InvalidRequest.Code, "transactions are not supported"
	case req.Acks != 0 && req.Acks != 1 && req.Acks != -1:
		pr.code, msg = kerr.InvalidRequiredAcks.Code, fmt.Sprintf("acks %d: want -1, 0 or 1", req.Acks)
	}
	resp := pr.resp
	resp.Topics = make([]kmsg.ProduceResponseTopic, len(req.Topics))
	for i := range req.Topics {
		rt := &req.Topics[i]
		t := &resp.Topics[i]
		*t = kmsg.NewProduceResponseTopic()
		t.Topic = rt.Topic
		t.Partitions = make([]kmsg.ProduceResponseTopicPartition, len(rt.Partitions))
		allowed := pr.code == 0 && s.authorize(rc, opWrite, resTopic, rt.Topic)
		for j := range rt.Partitions {
			p := &t.Partitions[j]
			*p = kmsg.NewProduceResponseTopicPartition()
			p.Partition, p.BaseOffset = rt.Partitions[j].Partition, -1
			switch {
			case pr.code != 0:
				p.ErrorCode, p.ErrorMessage = pr.code, strPtr(msg)
			case !allowed:
				p.ErrorCode = kerr.TopicAuthorizationFailed.Code
			default:
				pr.jobs = append(pr.jobs, produceJob{topic: rt.Topic, partition: p.Partition, records: rt.Partitions[j].Records, out: p})
			}
		}
	}
	return pr
}

// run appends every partition's batches and waits for them, each with one
// stream.Log.Produce.
func (pr *stagedRequest) run(s *Server, rc *request) {
	pr.forEach(s, func(j *produceJob) { j.produce(s, rc) })
}

// forEach runs fn for every partition: concurrently when there are several,
// because each may wait for its own fsync and those should overlap rather
// than queue.
func (pr *stagedRequest) forEach(s *Server, fn func(*produceJob)) {
	if len(pr.jobs) == 1 {
		fn(&pr.jobs[0])
		return
	}
	var wg sync.WaitGroup
	for i := range pr.jobs {
		j := &pr.jobs[i]
		wg.Go(func() {
			defer func() {
				if p := recover(); p != nil {
					s.logger.Error("kafka produce panicked", "topic", j.topic, "partition", j.partition, "panic", p)
					j.out.ErrorCode = kerr.UnknownServerError.Code
				}
			}()
			fn(j)
		})
	}
	wg.Wait()
}

// finish notes the errors for metrics and returns the response: none for
// acks 0, or an error that closes the connection when acks 0 failed.
func (pr *stagedRequest) finish(rc *request, acks int16) (kmsg.Response, error) {
	failed := false
	for i := range pr.resp.Topics {
		for j := range pr.resp.Topics[i].Partitions {
			p := &pr.resp.Topics[i].Partitions[j]
			if p.ErrorCode != 0 {
				rc.note(p.ErrorCode)
				failed = true
			}
			if rc.version < 8 {
				p.ErrorMessage = nil
			}
		}
	}
	if acks == 0 && pr.code != kerr.InvalidRequiredAcks.Code {
		if failed {
			return nil, errCloseAcks0
		}
		return nil, nil
	}
	return pr.resp, nil
}

// produce appends the partition's batches in order and fills out.
func (j *produceJob) produce(s *Server, rc *request) {
	var one [1][]byte
	batches, code, err := splitBatches(j.records, one[:0])
	if err != nil {
		j.fail(s, rc, code, err)
		return
	}
	var first, last stream.ProduceResult
	for i, b := range batches {
		res, err := s.log.Produce(rc.ctx, j.topic, j.partition, b)
		if err != nil {
			// Batches before this one are stored; the client learns of
			// the error and, being idempotent or not, decides to retry.
			j.fail(s, rc, produceErrorCode(err), err)
			return
		}
		if i == 0 {
			first = res
		}
		last = res
	}
	j.succeed(s, rc, first, last)
}

// stage appends the partition's batches in order without waiting for them;
// wait collects the results.
func (j *produceJob) stage(s *Server, rc *request, sp stream.StagedProducer) {
	records := j.records
	j.records = nil // part of the connection's request buffer, reused next
	var one [1][]byte
	batches, code, err := splitBatches(records, one[:0])
	if err != nil {
		j.fail(s, rc, code, err)
		return
	}
	for _, b := range batches {
		wait, err := sp.ProduceStaged(rc.ctx, j.topic, j.partition, b)
		if err != nil {
			// As in produce: the batches staged before this one are
			// stored (wait still collects them), and the partition
			// answers with this error.
			j.fail(s, rc, produceErrorCode(err), err)
			return
		}
		j.waits = append(j.waits, wait)
	}
}

func (j *produceJob) wait(s *Server, rc *request) {
	var first, last stream.ProduceResult
	failed := j.out.ErrorCode != 0
	for i, wait := range j.waits {
		res, err := wait(rc.ctx)
		switch {
		case failed:
		case err != nil:
			j.fail(s, rc, produceErrorCode(err), err)
			failed = true
		case i == 0:
			first = res
		}
		last = res
	}
	if !failed {
		j.succeed(s, rc, first, last)
	}
}

func (j *produceJob) fail(s *Server, rc *request, code int16, err error) {
	j.out.ErrorCode, j.out.ErrorMessage = code, s.errorMessage(rc, "produce", code, err)
}

// succeed fills the partition's response: BaseOffset from the first batch,
// LogAppendTime from the last, and from v5 the log start offset.
func (j *produceJob) succeed(s *Server, rc *request, first, last stream.ProduceResult) {
	j.out.BaseOffset, j.out.LogAppendTime = first.BaseOffset, last.LogAppendTime
	if rc.version >= 5 {
		if start, err := s.log.ListOffset(rc.ctx, j.topic, j.partition, stream.Earliest); err == nil {
			j.out.LogStartOffset = start
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

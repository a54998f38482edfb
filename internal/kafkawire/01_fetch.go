package kafkawire

import (
	"context"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-dev/sluice/internal/stream"
)

// Fetch (key 1): versions 4-12.
//
// Behaviour:
//   - Each partition gets whole RecordBatch v2 batches from stream.Log.Fetch,
//     starting with the batch that holds FetchOffset (it may start before
//     it; clients skip the records below; an empty record set, never a null
//     one, when there is nothing), with HighWatermark,
//     LastStableOffset (= HighWatermark: there are no transactions) and
//     LogStartOffset (v5+). No aborted transactions; no preferred read
//     replica (-1, v11+).
//   - Limits: each partition gets at most PartitionMaxBytes and the response
//     at most MaxBytes, itself capped by Options.FetchMaxBytes. As in Kafka
//     (KIP-74), the first batch of the first partition with data is
//     returned whole even when it is larger, so that a consumer always
//     makes progress; a later partition whose batches do not fit in what is
//     left gets none this time (its offsets are still reported).
//   - MinBytes and MaxWaitMillis: a first pass reads without waiting. If it
//     found fewer than MinBytes, no partition failed and MaxWaitMillis
//     allows, the server waits for data on all the request's partitions at
//     once (one stream.Log.Fetch with MaxWait for each distinct partition,
//     however often the request names it, cancelled when the first one
//     sees data) and reads again, until MinBytes are there or MaxWait
//     has passed. A partition error ends the wait at once. Shutdown ends
//     waits early.
//   - Fetch sessions (KIP-227) are not kept: SessionID 0 is always returned,
//     so clients fall back to full fetches; a request naming a session gets
//     FETCH_SESSION_ID_NOT_FOUND, and a sessionless request with an epoch
//     other than 0 or -1 gets INVALID_FETCH_SESSION_EPOCH.
//   - IsolationLevel, ReplicaID, leader epochs and forgotten topics are
//     ignored: this node leads every partition at epoch 0 and every read is
//     committed.
//   - Unknown topics and partitions get UNKNOWN_TOPIC_OR_PARTITION; offsets
//     outside [log start, high watermark] get OFFSET_OUT_OF_RANGE.

// fetchPart is one partition of a fetch being served.
type fetchPart struct {
	topic     string
	partition int32
	offset    int64
	maxBytes  int
	// waitAt is where to wait for new data: after what the last pass
	// returned. wait says whether waiting can add anything: the partition
	// is caught up (a partition held back by its byte limit is not).
	waitAt int64
	wait   bool
	denied bool
	out    *kmsg.FetchResponseTopicPartition
}

func (s *Server) handleFetch(rc *request, req *kmsg.FetchRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	switch {
	case req.SessionID != 0:
		resp.ErrorCode = rc.note(kerr.FetchSessionIDNotFound.Code)
		return resp, nil
	case req.SessionEpoch != 0 && req.SessionEpoch != -1:
		resp.ErrorCode = rc.note(kerr.InvalidFetchSessionEpoch.Code)
		return resp, nil
	}

	var parts []fetchPart
	resp.Topics = make([]kmsg.FetchResponseTopic, len(req.Topics))
	for i := range req.Topics {
		rt := &req.Topics[i]
		t := &resp.Topics[i]
		*t = kmsg.NewFetchResponseTopic()
		t.Topic, t.TopicID = rt.Topic, rt.TopicID
		t.Partitions = make([]kmsg.FetchResponseTopicPartition, len(rt.Partitions))
		denied := !s.authorize(rc, opRead, resTopic, rt.Topic)
		for j := range rt.Partitions {
			rp := &rt.Partitions[j]
			p := &t.Partitions[j]
			*p = kmsg.NewFetchResponseTopicPartition()
			p.Partition = rp.Partition
			parts = append(parts, fetchPart{topic: rt.Topic, partition: rp.Partition, offset: rp.FetchOffset,
				maxBytes: int(rp.PartitionMaxBytes), waitAt: rp.FetchOffset, denied: denied, out: p})
		}
	}

	maxBytes := int(req.MaxBytes)
	if maxBytes <= 0 || maxBytes > s.opts.FetchMaxBytes {
		maxBytes = s.opts.FetchMaxBytes
	}
	deadline := time.Now().Add(time.Duration(req.MaxWaitMillis) * time.Millisecond)
	n, full, failed := s.fetchPass(rc, parts, maxBytes, req.IsolationLevel == 1)
	for !failed && !full && n < int(req.MinBytes) && req.MaxWaitMillis > 0 {
		if !s.waitForData(rc, parts, deadline) {
			break
		}
		n, full, failed = s.fetchPass(rc, parts, maxBytes, req.IsolationLevel == 1)
	}
	for i := range parts {
		rc.note(parts[i].out.ErrorCode)
	}
	return resp, nil
}

// fetchPass reads every partition once, without waiting, into the
// connection's fetch arena. It returns the bytes read, whether the response
// is full (some partition had data that did not fit) and whether any
// partition failed.
func (s *Server) fetchPass(rc *request, parts []fetchPart, maxBytes int, readCommitted bool) (total int, full, failed bool) {
	arena := rc.c.fetchBuf[:0]
	used := 0
	for i := range parts {
		p := &parts[i]
		out := p.out
		partition := out.Partition
		*out = kmsg.NewFetchResponseTopicPartition()
		// Records are never null (librdkafka refuses a null record set,
		// and Kafka sends an empty one); aborted transactions are an empty
		// list for read_committed consumers and null otherwise, as in Kafka.
		out.Partition, out.HighWatermark, out.RecordBatches = partition, -1, []byte{}
		if readCommitted {
			out.AbortedTransactions = []kmsg.FetchResponseTopicPartitionAbortedTransaction{}
		}
		p.waitAt, p.wait = p.offset, false
		if p.denied {
			out.ErrorCode, failed = kerr.TopicAuthorizationFailed.Code, true
			continue
		}
		limit := min(p.maxBytes, maxBytes-total)
		if limit <= 0 && total > 0 {
			// No room left: report the offsets only.
			full = true
			s.fetchOffsets(rc, p)
			failed = failed || out.ErrorCode != 0
			continue
		}
		res, err := s.log.Fetch(rc.ctx, stream.FetchRequest{Topic: p.topic, Partition: p.partition,
			Offset: p.offset, MaxBytes: max(limit, 1), Buf: arena[used:used]})
		if err != nil {
			out.ErrorCode = errorCode(err, kerr.InvalidRequest.Code)
			s.errorMessage(rc, "fetch", out.ErrorCode, err) // logs server errors
			failed = true
			continue
		}
		out.HighWatermark, out.LastStableOffset, out.LogStartOffset = res.HighWatermark, res.HighWatermark, res.LogStartOffset
		n := len(res.Batches)
		if n == 0 {
			p.wait = true
			continue
		}
		if total > 0 && n > maxBytes-total {
			full = true
			continue
		}
		out.RecordBatches = res.Batches
		total += n
		p.waitAt = res.NextOffset
		p.wait = res.NextOffset >= res.HighWatermark
		if cap(arena)-used >= n && &res.Batches[0] == &arena[used : used+1][0] {
			used += n
		}
	}
	if total > cap(arena) {
		// Next time, read in place.
		rc.c.fetchBuf = make([]byte, 0, min(total+total/4, retainFetchBytes))
	}
	return total, full, failed
}

// fetchOffsets fills a partition's offsets without reading records.
func (s *Server) fetchOffsets(rc *request, p *fetchPart) {
	hw, err := s.log.ListOffset(rc.ctx, p.topic, p.partition, stream.Latest)
	if err == nil {
		var start int64
		if start, err = s.log.ListOffset(rc.ctx, p.topic, p.partition, stream.Earliest); err == nil {
			p.out.HighWatermark, p.out.LastStableOffset, p.out.LogStartOffset = hw, hw, start
			return
		}
	}
	p.out.ErrorCode = errorCode(err, kerr.InvalidRequest.Code)
	s.errorMessage(rc, "fetch", p.out.ErrorCode, err)
}

// waitForData waits, until deadline, for any of the caught-up partitions to
// have data after what the last pass returned. It reports whether one has
// (or failed, which the next pass reports); false means the deadline passed,
// the request or server is ending, or no partition is worth waiting on.
func (s *Server) waitForData(rc *request, parts []fetchPart, deadline time.Time) bool {
	d := time.Until(deadline)
	if d <= 0 {
		return false
	}
	// One waiter per partition, however often the request names it: the
	// waiters live until data or the deadline, so one per entry would let
	// a request of a few megabytes hold hundreds of thousands of
	// goroutines. Every entry of a partition that waits is caught up, at
	// the same high watermark, so the lowest waitAt serves them all.
	type tp struct {
		topic     string
		partition int32
	}
	var waits []*fetchPart
	first := map[tp]int{}
	for i := range parts {
		p := &parts[i]
		if !p.wait {
			continue
		}
		k := tp{p.topic, p.partition}
		if j, ok := first[k]; ok {
			if p.waitAt < waits[j].waitAt {
				waits[j] = p
			}
			continue
		}
		first[k] = len(waits)
		waits = append(waits, p)
	}
	if len(waits) == 0 && len(parts) > 0 {
		return false
	}
	ctx, cancel := context.WithCancel(rc.ctx)
	defer cancel()
	stop := context.AfterFunc(s.drain, cancel)
	defer stop()
	if len(parts) == 0 {
		// Nothing to wait on; Kafka still waits MaxWait.
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		return false
	}

	got := make(chan bool, len(waits))
	var wg sync.WaitGroup
	for _, p := range waits {
		wg.Go(func() {
			ok := false
			defer func() {
				if r := recover(); r != nil {
					s.logger.Error("kafka fetch wait panicked", "topic", p.topic, "partition", p.partition, "panic", r)
				}
				got <- ok
			}()
			res, err := s.log.Fetch(ctx, stream.FetchRequest{Topic: p.topic, Partition: p.partition,
				Offset: p.waitAt, MaxBytes: 1, MaxWait: d})
			ok = (err == nil && len(res.Batches) > 0) || (err != nil && ctx.Err() == nil)
		})
	}
	found := false
	for range waits {
		if <-got {
			found = true
			break
		}
	}
	cancel()
	wg.Wait()
	return found
}

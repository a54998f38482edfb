package kafka

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-dev/sluice/internal/record"
	"github.com/sluice-dev/sluice/internal/stream"
)

// Produce implements stream.Log: the batch goes to the partition leader in
// a ProduceRequest with acks=all, byte for byte as given except for its
// baseOffset field, which is set to zero because brokers refuse a batch
// from a client whose baseOffset is anything else (INVALID_RECORD). The
// field lies outside the CRC. Produce sends a copy and never writes to the
// caller's slice: franz-go may still be writing a request that a cancelled
// context abandoned, so the caller is free to reuse batch as soon as
// Produce returns.
//
// The batch's framing and CRC are checked before it is sent; its size
// against the topic's max.message.bytes is the broker's to check
// (MESSAGE_TOO_LARGE maps to stream.ErrTooLarge).
//
// A produce the leader refused without appending (it is not the leader,
// it does not know the partition yet, it has too few in-sync replicas) is
// retried on fresh metadata with backoff. One whose outcome is unknown (the
// connection failed after the request was sent, the replicas timed out)
// is not: it fails with stream.ErrUnavailable, and the batch may or may not
// have been appended.
func (l *Log) Produce(ctx context.Context, topicName string, partition int32, batch []byte) (stream.ProduceResult, error) {
	h, err := record.CheckProduced(batch, 0)
	if err != nil {
		return stream.ProduceResult{}, mapErr(fmt.Errorf("produce to %s/%d: %w", topicName, partition, err))
	}
	batch = append([]byte(nil), batch...)
	record.SetBaseOffset(batch, 0)

	cl, err := l.producers.get(ctx)
	if err != nil {
		return stream.ProduceResult{}, err
	}
	defer l.producers.put(cl)

	var last error
	for attempt := range maxAttempts {
		if attempt > 0 {
			if err := backoff(ctx, attempt); err != nil {
				return stream.ProduceResult{}, fmt.Errorf("produce to %s/%d: %w (after %v)", topicName, partition, err, last)
			}
		}
		leader, id, err := l.leader(ctx, topicName, partition, attempt > 0)
		if err != nil {
			return stream.ProduceResult{}, fmt.Errorf("produce to %s/%d: %w", topicName, partition, err)
		}
		if leader < 0 {
			last = kerr.LeaderNotAvailable
			continue
		}

		req := kmsg.NewPtrProduceRequest()
		req.Acks = -1
		req.TimeoutMillis = millisUntil(ctx, l.opts.ProduceTimeout)
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic, rt.TopicID = topicName, id // the name up to v12, the ID from v13
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition = partition
		rp.Records = batch
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)

		kresp, err := cl.Broker(int(leader)).Request(ctx, req)
		if err != nil {
			if ctx.Err() == nil && notSent(err) {
				last = err
				continue
			}
			return stream.ProduceResult{}, mapErr(fmt.Errorf("produce to %s/%d: %w (the batch may or may not have been appended)", topicName, partition, err))
		}
		resp := kresp.(*kmsg.ProduceResponse)
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			return stream.ProduceResult{}, fmt.Errorf("produce to %s/%d: %w: the broker answered for %d topics", topicName, partition, stream.ErrUnavailable, len(resp.Topics))
		}
		p := resp.Topics[0].Partitions[0]
		if p.ErrorCode != 0 {
			kerrE := kerr.ErrorForCode(p.ErrorCode)
			if notAppended(kerrE) {
				last = kerrE
				continue
			}
			return stream.ProduceResult{}, mapErr(fmt.Errorf("produce to %s/%d: %w%s", topicName, partition, kerrE, brokerSays(p.ErrorMessage)))
		}
		return stream.ProduceResult{BaseOffset: p.BaseOffset, LastOffset: p.BaseOffset + int64(h.LastOffsetDelta),
			LogAppendTime: p.LogAppendTime}, nil
	}
	return stream.ProduceResult{}, mapErr(fmt.Errorf("produce to %s/%d: %d attempts failed, the last with %w", topicName, partition, maxAttempts, last))
}

// notSent reports a transport error that happened before a request was
// written: the broker cannot have acted on it.
func notSent(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// notAppended reports a produce error after which the broker has not
// appended the batch and may accept it if asked again, once metadata is
// fresh.
func notAppended(err error) bool {
	switch err {
	case kerr.NotLeaderForPartition, kerr.LeaderNotAvailable, kerr.UnknownTopicOrPartition, kerr.UnknownTopicID,
		kerr.NotEnoughReplicas, kerr.FencedLeaderEpoch, kerr.UnknownLeaderEpoch, kerr.BrokerNotAvailable,
		kerr.ReplicaNotAvailable, kerr.KafkaStorageError:
		return true
	}
	return false
}

// leaderMoved reports a fetch or list error after which the request may
// succeed on fresh metadata.
func leaderMoved(err error) bool {
	switch err {
	case kerr.NotLeaderForPartition, kerr.LeaderNotAvailable, kerr.UnknownTopicOrPartition, kerr.UnknownTopicID,
		kerr.FencedLeaderEpoch, kerr.UnknownLeaderEpoch, kerr.BrokerNotAvailable, kerr.ReplicaNotAvailable,
		kerr.KafkaStorageError, kerr.OffsetNotAvailable, kerr.InconsistentTopicID:
		return true
	}
	return false
}

// Fetch implements stream.Log with a FetchRequest to the partition leader:
// MinBytes 1, MaxWaitMillis from MaxWait (cut to what the context leaves),
// and MaxBytes both for the response and for the partition. Kafka returns
// the first batch whole even past MaxBytes, as the contract asks, but may
// cut the last batch short at the limit; Fetch drops such a partial batch.
// Batches are read uncommitted, with transaction markers, as the embedded
// log serves them. FetchRequest.Buf is not used: the batches are the
// response's own bytes, copied nowhere.
func (l *Log) Fetch(ctx context.Context, req stream.FetchRequest) (stream.FetchResult, error) {
	if req.Offset < 0 {
		return stream.FetchResult{}, fmt.Errorf("fetch %s/%d: %w: offset %d", req.Topic, req.Partition, stream.ErrOffsetOutOfRange, req.Offset)
	}
	maxBytes := int32(min(max(req.MaxBytes, 1), math.MaxInt32))

	cl, err := l.fetchers.get(ctx)
	if err != nil {
		return stream.FetchResult{}, err
	}
	defer l.fetchers.put(cl)

	var last error
	for attempt := range maxAttempts {
		if attempt > 0 {
			if err := backoff(ctx, attempt); err != nil {
				return stream.FetchResult{}, fmt.Errorf("fetch %s/%d: %w (after %v)", req.Topic, req.Partition, err, last)
			}
		}
		leader, id, err := l.leader(ctx, req.Topic, req.Partition, attempt > 0)
		if err != nil {
			return stream.FetchResult{}, fmt.Errorf("fetch %s/%d: %w", req.Topic, req.Partition, err)
		}
		if leader < 0 {
			last = kerr.LeaderNotAvailable
			continue
		}

		fr := kmsg.NewPtrFetchRequest()
		fr.MaxWaitMillis = millisUntil(ctx, req.MaxWait)
		fr.MinBytes = 1
		fr.MaxBytes = maxBytes
		fr.IsolationLevel = 0 // read uncommitted
		ft := kmsg.NewFetchRequestTopic()
		ft.Topic, ft.TopicID = req.Topic, id // the name up to v12, the ID from v13
		fp := kmsg.NewFetchRequestTopicPartition()
		fp.Partition = req.Partition
		fp.FetchOffset = req.Offset
		fp.PartitionMaxBytes = maxBytes
		ft.Partitions = append(ft.Partitions, fp)
		fr.Topics = append(fr.Topics, ft)

		kresp, err := cl.Broker(int(leader)).Request(ctx, fr)
		if err != nil {
			if ctx.Err() != nil {
				return stream.FetchResult{}, fmt.Errorf("fetch %s/%d: %w", req.Topic, req.Partition, ctx.Err())
			}
			last = err // a fetch changes nothing: try again, wherever the leader is now
			continue
		}
		resp := kresp.(*kmsg.FetchResponse)
		if resp.ErrorCode != 0 {
			last = kerr.ErrorForCode(resp.ErrorCode)
			if kerr.IsRetriable(last) {
				continue
			}
			return stream.FetchResult{}, mapErr(fmt.Errorf("fetch %s/%d: %w", req.Topic, req.Partition, last))
		}
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			// A topic created while the fetch waited can be left out
			// of the answer; ask again.
			last = fmt.Errorf("%w: the broker answered for %d topics", stream.ErrUnavailable, len(resp.Topics))
			continue
		}
		p := resp.Topics[0].Partitions[0]
		if p.ErrorCode != 0 {
			kerrE := kerr.ErrorForCode(p.ErrorCode)
			if kerrE == kerr.OffsetOutOfRange {
				return stream.FetchResult{}, mapErr(fmt.Errorf("fetch %s/%d: %w: offset %d", req.Topic, req.Partition, kerrE, req.Offset))
			}
			if leaderMoved(kerrE) {
				last = kerrE
				continue
			}
			return stream.FetchResult{}, mapErr(fmt.Errorf("fetch %s/%d: %w", req.Topic, req.Partition, kerrE))
		}
		batches, next, err := wholeBatches(p.RecordBatches, req.Offset)
		if err != nil {
			return stream.FetchResult{}, fmt.Errorf("fetch %s/%d at %d: %w", req.Topic, req.Partition, req.Offset, err)
		}
		return stream.FetchResult{Batches: batches, HighWatermark: p.HighWatermark, LogStartOffset: p.LogStartOffset, NextOffset: next}, nil
	}
	return stream.FetchResult{}, mapErr(fmt.Errorf("fetch %s/%d: %d attempts failed, the last with %w", req.Topic, req.Partition, maxAttempts, last))
}

// wholeBatches returns the whole RecordBatch v2 batches at the start of b,
// leaving out a batch cut short at the end, and the offset after the last
// one (offset itself when there is none). A first batch that is not a v2
// batch (a message set of the old formats, or garbage) is stream.ErrCorrupt;
// a later one ends the result, so the next fetch starts at it.
func wholeBatches(b []byte, offset int64) ([]byte, int64, error) {
	next, n := offset, 0
	for len(b)-n >= record.HeaderSize {
		h, err := record.ParseHeader(b[n:])
		if err != nil {
			if n == 0 {
				return nil, offset, fmt.Errorf("%w: %w", stream.ErrCorrupt, err)
			}
			break
		}
		if h.Size() > len(b)-n {
			break // cut short at the byte limit
		}
		n += h.Size()
		next = max(next, h.NextOffset())
	}
	return b[:n], next, nil
}

// ListOffset implements stream.Log with kadm's ListOffsets: Earliest is the
// log start offset, Latest the high watermark, and a timestamp the first
// offset whose record is at or after it. Kafka answers -1 for a timestamp
// after every record; kadm then lists the end offset instead, which is the
// high watermark the contract asks for.
func (l *Log) ListOffset(ctx context.Context, topicName string, partition int32, at int64) (int64, error) {
	return l.listOffset(ctx, topicName, partition, at, true)
}

func (l *Log) listOffset(ctx context.Context, topicName string, partition int32, at int64, again bool) (int64, error) {
	var (
		lo  kadm.ListedOffsets
		err error
	)
	switch {
	case at == stream.Earliest:
		lo, err = l.adm.ListStartOffsets(ctx, topicName)
	case at == stream.Latest:
		lo, err = l.adm.ListEndOffsets(ctx, topicName)
	case at < 0:
		return 0, fmt.Errorf("list offset of %s/%d: %w: position %d", topicName, partition, stream.ErrInvalid, at)
	default:
		lo, err = l.adm.ListOffsetsAfterMilli(ctx, at, topicName)
	}
	if err != nil {
		return 0, mapErr(fmt.Errorf("list offset of %s/%d: %w", topicName, partition, err))
	}
	if o, ok := lo.Lookup(topicName, -1); ok && o.Err != nil {
		return 0, mapErr(fmt.Errorf("list offset of %s/%d: %w", topicName, partition, o.Err))
	}
	o, ok := lo.Lookup(topicName, partition)
	switch {
	case !ok && again && partition >= 0:
		// kadm works from franz-go's metadata cache, which is a few
		// seconds stale at worst: a partition another client added
		// may be missing from it. Fresh metadata refreshes the cache.
		if _, err := l.metadata(ctx, []string{topicName}); err != nil {
			return 0, fmt.Errorf("list offset of %s/%d: %w", topicName, partition, err)
		}
		return l.listOffset(ctx, topicName, partition, at, false)
	case !ok:
		return 0, fmt.Errorf("list offset of %s/%d: %w", topicName, partition, stream.ErrUnknownPartition)
	case o.Err != nil:
		return 0, mapErr(fmt.Errorf("list offset of %s/%d: %w", topicName, partition, o.Err))
	case o.Offset < 0 && at != stream.Latest:
		// No record at or after the time, and a broker whose answer
		// kadm did not replace with the end offset.
		return l.listOffset(ctx, topicName, partition, stream.Latest, again)
	case o.Offset < 0:
		return 0, fmt.Errorf("list offset of %s/%d: %w: the leader lists no end offset", topicName, partition, stream.ErrUnavailable)
	}
	return o.Offset, nil
}

// DeleteRecords implements stream.Log with kadm's DeleteRecords to the
// partition leader, which answers with the new low watermark (log start
// offset). Kafka moves the log start only forward, answering an offset at
// or below it with the current one; a broker that refuses such an offset
// with OFFSET_OUT_OF_RANGE instead (kfake does) gets the same answer here,
// from a ListOffsets.
func (l *Log) DeleteRecords(ctx context.Context, topicName string, partition int32, before int64) (int64, error) {
	if before < 0 && before != stream.HighWatermark {
		return 0, fmt.Errorf("delete records of %s/%d: %w: offset %d", topicName, partition, stream.ErrOffsetOutOfRange, before)
	}
	os := make(kadm.Offsets)
	os.Add(kadm.Offset{Topic: topicName, Partition: partition, At: before, LeaderEpoch: -1})
	rs, err := l.adm.DeleteRecords(ctx, os)
	if err != nil {
		return 0, mapErr(fmt.Errorf("delete records of %s/%d: %w", topicName, partition, err))
	}
	r, err := rs.On(topicName, partition, nil)
	if err == nil {
		err = r.Err
	}
	if errors.Is(err, kerr.OffsetOutOfRange) && before >= 0 {
		if start, lerr := l.ListOffset(ctx, topicName, partition, stream.Earliest); lerr == nil && before <= start {
			return start, nil
		}
	}
	if err != nil {
		return 0, mapErr(fmt.Errorf("delete records of %s/%d: %w", topicName, partition, err))
	}
	return r.LowWatermark, nil
}

package logstore

import (
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/sluice-dev/sluice/internal/record"
)

// Idempotent producers. Each partition remembers, per producer ID, the
// producer's epoch and the sequence and offset ranges of its last
// maxProducerBatches batches, so that a batch a producer retries after a
// lost acknowledgement is answered with the offsets it got the first time
// instead of being stored twice, and a gap in a producer's sequence is
// refused. The check runs under the partition lock, so checking and
// appending are one step.
//
// The rules, which follow Kafka's (ProducerAppendInfo and UnifiedLog in
// Kafka 3.x, with KIP-360), for a batch with producerId >= 0:
//
//  1. producerEpoch and baseSequence must not be negative, else the batch is
//     invalid (ErrInvalidRecord; Kafka's INVALID_RECORD).
//  2. An unknown producer ID (never seen, or its state expired or was
//     removed with the records it wrote) is accepted at any sequence. Kafka
//     does the same since 2.5 rather than answer UNKNOWN_PRODUCER_ID, so
//     that a producer whose state expired carries on. Except, as in Kafka
//     4.5 (KAFKA-15591), on a partition that has never held a record: there
//     only sequence 0 is accepted, else ErrOutOfOrderSequence, so that of
//     two requests in flight to a new partition the later one cannot be
//     stored first and the earlier one then be refused for ever.
//  3. Same epoch as the known one: a batch whose (baseSequence,
//     lastSequence) equals one of the last five is a duplicate: it is not
//     stored again and the append returns the original offsets. Otherwise
//     baseSequence must follow the last batch's lastSequence (MaxInt32 is
//     followed by 0), else ErrOutOfOrderSequence.
//  4. An older epoch is fenced: ErrInvalidProducerEpoch (Kafka answers
//     INVALID_PRODUCER_EPOCH to produce since 2.7).
//  5. A newer epoch must start at sequence 0, else ErrOutOfOrderSequence;
//     the batches of the old epoch are forgotten.
//
// A batch's lastSequence is baseSequence + lastOffsetDelta, wrapping past
// MaxInt32 to 0 as producers number them. Sequences older than the last
// five batches are not duplicates any more: such a retry is out of order.
//
// Producers idle for longer than Options.ProducerIDExpiration (Kafka's
// producer.id.expiration.ms) are forgotten, as are producers whose last
// batch is below the log start offset after retention or DeleteRecords.

// maxProducerBatches is how many batches per producer are kept for
// duplicate detection: Kafka's limit on in-flight requests for idempotence.
const maxProducerBatches = 5

// producerBatch is what is kept of one appended idempotent batch.
type producerBatch struct {
	firstSeq, lastSeq       int32
	firstOffset, lastOffset int64
	// appendTime is the LogAppendTime the batch was given, or -1.
	appendTime int64
}

// producerEntry is one producer's state in one partition.
type producerEntry struct {
	epoch int16
	// lastSeen is when the producer last appended, by the log's clock
	// (Unix ms); expiration counts from it.
	lastSeen int64
	n        int // batches held, at most maxProducerBatches
	head     int // index of the newest batch in batches
	batches  [maxProducerBatches]producerBatch
}

// last returns the newest batch; n must be above 0.
func (e *producerEntry) last() *producerBatch { return &e.batches[e.head] }

// batch returns the i-th oldest batch held.
func (e *producerEntry) batch(i int) *producerBatch {
	return &e.batches[(e.head-e.n+1+i+maxProducerBatches)%maxProducerBatches]
}

// add records an appended batch; a new epoch forgets the old one's batches.
func (e *producerEntry) add(epoch int16, b producerBatch, now int64) {
	if epoch != e.epoch {
		e.epoch, e.n = epoch, 0
	}
	e.head = (e.head + 1) % maxProducerBatches
	e.batches[e.head] = b
	e.n = min(e.n+1, maxProducerBatches)
	e.lastSeen = now
}

// lastSequence is the sequence number of a batch's last record.
func lastSequence(baseSeq, lastOffsetDelta int32) int32 {
	if baseSeq > math.MaxInt32-lastOffsetDelta {
		return lastOffsetDelta - (math.MaxInt32 - baseSeq) - 1
	}
	return baseSeq + lastOffsetDelta
}

// inSequence reports whether next may follow last.
func inSequence(last, next int32) bool {
	return int64(next) == int64(last)+1 || next == 0 && last == math.MaxInt32
}

// checkSequence applies the rules above to a batch of producer epoch epoch
// with sequences firstSeq..lastSeq, given the producer's entry (nil when
// the producer is unknown). It returns the original batch for a duplicate,
// nil for a batch to append, or an error. It does not allocate unless it
// returns an error.
//
// neverWritten says that the partition has never held a record (its end
// offset is 0).
func checkSequence(e *producerEntry, epoch int16, firstSeq, lastSeq int32, neverWritten bool) (*producerBatch, error) {
	switch {
	case e == nil && neverWritten && firstSeq != 0:
		return nil, fmt.Errorf("%w: the first batch to a partition that has never held a record starts at sequence %d, want 0",
			ErrOutOfOrderSequence, firstSeq)
	case e == nil:
		return nil, nil
	case epoch < e.epoch:
		return nil, fmt.Errorf("%w: epoch %d is older than the producer's current epoch %d", ErrInvalidProducerEpoch, epoch, e.epoch)
	case epoch > e.epoch:
		if firstSeq != 0 {
			return nil, fmt.Errorf("%w: the first batch of new epoch %d starts at sequence %d, want 0 (current epoch %d)",
				ErrOutOfOrderSequence, epoch, firstSeq, e.epoch)
		}
		return nil, nil
	}
	for i := 0; i < e.n; i++ {
		if b := e.batch(i); b.firstSeq == firstSeq && b.lastSeq == lastSeq {
			return b, nil
		}
	}
	if e.n == 0 {
		return nil, nil
	}
	if last := e.last().lastSeq; !inSequence(last, firstSeq) {
		return nil, fmt.Errorf("%w: batch starts at sequence %d, the previous one ended at %d", ErrOutOfOrderSequence, firstSeq, last)
	}
	return nil, nil
}

// checkProducerFields refuses idempotent batches with fields no producer
// sends (rule 1).
func checkProducerFields(h *record.Header) error {
	if h.ProducerEpoch < 0 || h.BaseSequence < 0 {
		return fmt.Errorf("%w: producer %d sent epoch %d, sequence %d; neither may be negative",
			ErrInvalidRecord, h.ProducerID, h.ProducerEpoch, h.BaseSequence)
	}
	return nil
}

// applyProducerLocked records an appended (or replayed) idempotent batch.
func (p *Partition) applyProducerLocked(h *record.Header, base int64, appendTime, now int64) {
	e := p.producers[h.ProducerID]
	if e == nil {
		if p.producers == nil {
			p.producers = make(map[int64]*producerEntry)
		}
		e = &producerEntry{epoch: h.ProducerEpoch}
		p.producers[h.ProducerID] = e
	}
	e.add(h.ProducerEpoch, producerBatch{
		firstSeq:    h.BaseSequence,
		lastSeq:     lastSequence(h.BaseSequence, h.LastOffsetDelta),
		firstOffset: base,
		lastOffset:  base + int64(h.LastOffsetDelta),
		appendTime:  appendTime,
	}, now)
}

// dropProducersBelowLocked forgets producers whose last batch lies wholly
// below the log start offset, as Kafka does when the log start moves: their
// records are gone, so a retry of them is a new batch.
func (p *Partition) dropProducersBelowLocked(logStart int64) {
	for id, e := range p.producers {
		if e.n == 0 || e.last().lastOffset < logStart {
			delete(p.producers, id)
		}
	}
}

// expireProducers forgets producers idle for longer than the expiration.
func (p *Partition) expireProducers(now int64) {
	ttl := p.l.opts.ProducerIDExpiration.Milliseconds()
	p.mu.Lock()
	defer p.mu.Unlock()
	for id, e := range p.producers {
		if now-e.lastSeen >= ttl {
			delete(p.producers, id)
		}
	}
}

// producerSnapshotLocked copies the producer state, with the offset below
// which it covers every batch.
func (p *Partition) producerSnapshotLocked() partProducers {
	ps := partProducers{next: p.next}
	if len(p.producers) > 0 {
		ps.entries = make(map[int64]producerEntry, len(p.producers))
		for id, e := range p.producers {
			ps.entries[id] = *e
		}
	}
	return ps
}

// restoreProducers rebuilds the producer state after recovery from the
// snapshot (nil when there is none) and the batches that follow it:
//
//   - a snapshot that covers offsets below N is loaded and the batch headers
//     from N (or the log start, if later) to the end are replayed;
//   - when recovery kept less than the snapshot saw (a crash cut batches
//     that were not yet durable), batches at or past the new end are dropped
//     from it, and producers left with none are forgotten: a retry of a
//     batch that is gone must be stored, never answered as a duplicate;
//   - with no snapshot, the headers of the active segment are replayed;
//     producers known only from older segments are unknown, which rule 2
//     accepts at any sequence.
//
// Replayed batches count as seen at now: the log's clock is not in the
// batch, and forgetting a producer late is safe where forgetting it early
// is not.
func (p *Partition) restoreProducers(snap *partProducers, now int64) {
	from := max(p.logStart, p.segs[len(p.segs)-1].base)
	if snap != nil {
		p.producers = make(map[int64]*producerEntry, len(snap.entries))
		for id, e := range snap.entries {
			e := e
			if snap.next > p.next {
				e = prune(e, p.next)
				if e.n == 0 {
					continue
				}
			}
			p.producers[id] = &e
		}
		if snap.next > p.next {
			p.l.opts.Logger.Warn("producer state snapshot is ahead of the recovered log; dropped the batches that are gone",
				"topic", p.topic, "partition", p.id, "snapshot_next", snap.next, "log_end", p.next)
		}
		from = max(p.logStart, min(snap.next, p.next))
	}
	if err := p.replayProducers(from, now); err != nil {
		// Recovery has checked these bytes, so this is an I/O error. The
		// state then lacks the newest batches, which makes retries of them
		// out of order, never duplicates.
		p.l.opts.Logger.Error("replaying producer state", "topic", p.topic, "partition", p.id, "err", err)
	}
	p.dropProducersBelowLocked(p.logStart)
}

// prune drops the batches at or past end from a copy of e.
func prune(e producerEntry, end int64) producerEntry {
	var out producerEntry
	out.epoch, out.lastSeen = e.epoch, e.lastSeen
	out.head = maxProducerBatches - 1
	for i := 0; i < e.n; i++ {
		if b := e.batch(i); b.lastOffset < end {
			out.add(e.epoch, *b, e.lastSeen)
		}
	}
	return out
}

// replayProducers applies the headers of the idempotent batches from offset
// from to the end of the log.
func (p *Partition) replayProducers(from, now int64) error {
	if from >= p.next {
		return nil
	}
	for _, s := range p.segs {
		if s.next <= from || s.size.Load() == 0 {
			continue
		}
		pos := int64(0)
		if from > s.base {
			pos = s.idx.lookup(uint32(from - s.base))
		}
		r := newBatchReader(s.f, pos, s.size.Load(), scanBufSize)
		for {
			h, b, err := r.next(false)
			if err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				return fmt.Errorf("segment %s at byte %d: %w", s.path, r.pos, err)
			}
			if h.BaseOffset >= from && h.ProducerID >= 0 {
				at := int64(-1)
				if h.LogAppendTime() {
					at = h.MaxTimestamp
				}
				p.applyProducerLocked(&h, h.BaseOffset, at, now)
			}
			r.advance(len(b))
		}
	}
	return nil
}

package logstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-dev/sluice/internal/record"
	"github.com/sluice-dev/sluice/internal/topic"
)

// Partition is one ordered, append-only sequence of batches. Its methods are
// safe for concurrent use. A Partition stays valid after its topic is
// deleted or the log closed; its methods then return ErrClosed.
type Partition struct {
	topic string
	id    int32
	dir   string
	l     *Log
	cfg   atomic.Pointer[topic.Config]
	stats *topicStats

	mu       sync.RWMutex
	segs     []*segment // ascending base offsets; the last is active
	next     int64      // offset the next batch gets
	logStart int64
	failed   error // sticky: set by the first write or fsync error
	closed   bool
	unsynced []*segment // segments written since their last fsync
	dirDirty bool       // a segment was created since the directory was last fsynced
	// producers is the idempotent producers' state (producers.go); nil
	// until the first idempotent batch.
	producers map[int64]*producerEntry

	// Group commit: one appender at a time fsyncs on behalf of all.
	syncMu   sync.Mutex
	syncing  bool
	syncDone chan struct{}
	durable  int64 // offset below which everything is fsynced

	// The high watermark is the end of what readers may see: the durable
	// end under SyncAlways, the written end otherwise. hwCh is closed and
	// replaced whenever it advances, to wake long polls.
	hwMu   sync.Mutex
	hw     atomic.Int64
	hwCh   chan struct{}
	doneCh chan struct{} // closed when the partition closes

	lastCorrupt atomic.Int64 // position+1 of the last corruption logged on read
}

// AppendResult describes an appended batch.
type AppendResult struct {
	BaseOffset int64
	LastOffset int64
	// LogAppendTime is the timestamp the log gave the batch when the topic
	// uses LogAppendTime, or -1.
	LogAppendTime int64
}

// Topic returns the partition's topic name.
func (p *Partition) Topic() string { return p.topic }

// ID returns the partition number.
func (p *Partition) ID() int32 { return p.id }

// Append appends one RecordBatch v2 and returns the offsets it was given. The
// batch must be exactly one batch; its header and CRC32C are checked and it
// is refused, unchanged on disk, if it is malformed or larger than the
// topic's max.message.bytes.
//
// A batch with a producer ID (an idempotent producer's) is checked against
// the producer's state as producers.go describes: a retried duplicate of one
// of its last five batches is not stored again and gets the original
// result, once that is durable; a gap in its sequence is refused with
// ErrOutOfOrderSequence, an older epoch with ErrInvalidProducerEpoch.
//
// Append rewrites the batch's baseOffset field in place (and, for
// LogAppendTime topics, its timestamp and CRC), so the caller must not share
// the slice with another goroutine during the call. It returns once the batch
// is durable under the log's sync policy; when ctx ends first the batch may
// or may not become durable, and an error is returned.
//
// Append is Write followed by Durable.
func (p *Partition) Append(ctx context.Context, batch []byte) (AppendResult, error) {
	res, err := p.Write(batch)
	if err != nil {
		return res, err
	}
	return res, p.Durable(ctx, res)
}

// Write does the first half of Append: it checks and writes the batch and
// gives it its offsets (a duplicate gets the original's), and returns
// without waiting for it to become durable. Batches are ordered by their
// Write calls: a batch written after Write returns follows this one. Readers
// see the batch once it is durable (under SyncAlways) or at once (otherwise);
// the writer learns that it is acknowledged from Durable. The batch slice may
// be reused once Write returns.
func (p *Partition) Write(batch []byte) (AppendResult, error) {
	cfg := p.cfg.Load()
	h, err := record.CheckProduced(batch, int(cfg.MaxMessageBytes))
	if err != nil {
		return AppendResult{}, fmt.Errorf("append to %s/%d: %w", p.topic, p.id, err)
	}
	idempotent := h.ProducerID >= 0
	if idempotent {
		if err := checkProducerFields(&h); err != nil {
			return AppendResult{}, fmt.Errorf("append to %s/%d: %w", p.topic, p.id, err)
		}
	}
	res := AppendResult{LogAppendTime: -1}
	now := p.l.opts.Now().UnixMilli()
	if cfg.TimestampType == topic.LogAppendTime {
		record.SetMaxTimestampLogAppend(batch, now)
		res.LogAppendTime = now
		h.MaxTimestamp = now
	}

	p.mu.Lock()
	if err := p.writableLocked(); err != nil {
		p.mu.Unlock()
		return res, err
	}
	if idempotent {
		dup, err := checkSequence(p.producers[h.ProducerID], h.ProducerEpoch, h.BaseSequence,
			lastSequence(h.BaseSequence, h.LastOffsetDelta), p.next == 0)
		if err != nil || dup != nil {
			p.mu.Unlock()
			if err != nil {
				return res, fmt.Errorf("append to %s/%d: producer %d: %w", p.topic, p.id, h.ProducerID, err)
			}
			p.stats.duplicates.Inc()
			return AppendResult{BaseOffset: dup.firstOffset, LastOffset: dup.lastOffset, LogAppendTime: dup.appendTime}, nil
		}
	}
	seg := p.segs[len(p.segs)-1]
	if p.shouldRollLocked(seg, cfg, len(batch), h, now) {
		if seg, err = p.rollLocked(now); err != nil {
			p.mu.Unlock()
			return res, err
		}
	}
	base := p.next
	record.SetBaseOffset(batch, base)
	pos := seg.size.Load()
	if _, err := seg.f.WriteAt(batch, pos); err != nil {
		err = p.failLocked(fmt.Errorf("write %s at byte %d: %w", seg.path, pos, err))
		p.mu.Unlock()
		return res, err
	}
	if seg.size.Load() == 0 {
		seg.firstAppend = now
	}
	seg.idx.add(uint32(base-seg.base), uint32(base-seg.base)+uint32(h.LastOffsetDelta), pos, len(batch), h.MaxTimestamp, cfg.IndexIntervalBytes)
	seg.size.Add(int64(len(batch)))
	p.next = base + int64(h.LastOffsetDelta) + 1
	seg.next = p.next
	end := p.next
	if !seg.dirty {
		seg.dirty = true
		p.unsynced = append(p.unsynced, seg)
	}
	if idempotent {
		p.applyProducerLocked(&h, base, res.LogAppendTime, now)
	}
	if p.l.opts.Sync.Mode != SyncAlways {
		p.advanceHW(end)
	}
	p.mu.Unlock()

	p.stats.appendedRecords.Add(float64(h.RecordCount))
	p.stats.appendedBytes.Add(float64(len(batch)))
	res.BaseOffset, res.LastOffset = base, end-1
	return res, nil
}

// Durable returns once the batch that Write described with res is durable
// under the log's sync policy: at once unless the policy is SyncAlways.
// Concurrent callers share fsyncs (group commit). For a duplicate, it waits
// for the original, which may still be waiting for its fsync and must not be
// acknowledged before it is durable. When ctx ends first the batch may or
// may not become durable, and an error is returned.
func (p *Partition) Durable(ctx context.Context, res AppendResult) error {
	if p.l.opts.Sync.Mode != SyncAlways {
		return nil
	}
	return p.syncTo(ctx, res.LastOffset+1)
}

func (p *Partition) writableLocked() error {
	if p.closed {
		return ErrClosed
	}
	if p.failed != nil {
		return p.failed
	}
	return nil
}

// failLocked makes the partition refuse writes from now on.
func (p *Partition) failLocked(err error) error {
	if p.failed == nil {
		p.failed = &FailedError{Topic: p.topic, Partition: p.id, Err: err}
		p.l.opts.Logger.Error("partition refuses writes until restart", "topic", p.topic, "partition", p.id, "err", err)
	}
	return p.failed
}

func (p *Partition) shouldRollLocked(seg *segment, cfg *topic.Config, n int, h record.Header, now int64) bool {
	size := seg.size.Load()
	if size == 0 {
		return false
	}
	switch {
	case size+int64(n) > cfg.SegmentBytes:
		return true
	case now-seg.firstAppend >= cfg.SegmentMs:
		return true
	case p.next+int64(h.LastOffsetDelta)-seg.base > math.MaxUint32:
		return true // relative offsets in the index are 32 bits
	case size+int64(n) > math.MaxUint32:
		return true // so are positions
	}
	return false
}

// rollLocked seals the active segment and starts a new one at p.next. The
// sealed segment's index files are written and flushed by the background
// flusher, not here, so a roll costs one file creation.
func (p *Partition) rollLocked(now int64) (*segment, error) {
	old := p.segs[len(p.segs)-1]
	seg, err := p.createSegmentLocked(p.next)
	if err != nil {
		return nil, p.failLocked(err)
	}
	old.sealed = true
	old.idx.seal()
	// An active segment whose index a clean reopen loaded from its files
	// took appends since, which neither those files nor an fsync cover yet:
	// the flusher must write and flush it before the checkpoint trusts it.
	old.indexDurable = false
	seg.firstAppend = now
	return seg, nil
}

func (p *Partition) createSegmentLocked(base int64) (*segment, error) {
	path := p.dir + "/" + segmentName(base) + logSuffix
	f, err := p.l.fs.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create segment: %w", err)
	}
	seg := newSegment(p.l.fs, p.dir, base, f)
	seg.durableNext = base
	p.segs = append(p.segs, seg)
	p.dirDirty = true
	return seg, nil
}

// syncTo returns once everything below offset end is durable. Appenders that
// arrive while an fsync runs wait for it and then elect one of themselves to
// run the next, which covers all of their writes at once.
func (p *Partition) syncTo(ctx context.Context, end int64) error {
	for {
		p.syncMu.Lock()
		if p.durable >= end {
			p.syncMu.Unlock()
			return nil
		}
		if p.syncing {
			done := p.syncDone
			p.syncMu.Unlock()
			select {
			case <-done:
				continue
			case <-ctx.Done():
				return fmt.Errorf("append to %s/%d: waiting for fsync: %w", p.topic, p.id, ctx.Err())
			}
		}
		p.syncMu.Unlock()
		if err := p.syncNow(); err != nil {
			return err
		}
	}
}

// syncNow fsyncs every segment written since the last sync and advances the
// durable offset. Only one runs at a time per partition; a caller that finds
// one running waits for it and returns.
func (p *Partition) syncNow() error {
	p.syncMu.Lock()
	if p.syncing {
		done := p.syncDone
		p.syncMu.Unlock()
		<-done
		return nil
	}
	p.syncing = true
	p.syncDone = make(chan struct{})
	p.syncMu.Unlock()

	p.mu.Lock()
	if err := p.writableLocked(); err != nil {
		// A closed partition's files are closed (a clean close flushed
		// them): an fsync now would fail and wrongly fail the partition.
		p.mu.Unlock()
		p.finishSync(-1)
		return err
	}
	target := p.next
	segs := p.unsynced
	p.unsynced = nil
	sizes := make([]int64, len(segs))
	nexts := make([]int64, len(segs))
	for i, s := range segs {
		s.dirty = false
		s.acquire()
		sizes[i], nexts[i] = s.size.Load(), s.next
	}
	dirDirty := p.dirDirty
	p.dirDirty = false
	p.mu.Unlock()

	var err error
	start := time.Now()
	if dirDirty {
		if err = p.l.fs.SyncDir(p.dir); err != nil {
			err = fmt.Errorf("fsync directory %s: %w", p.dir, err)
		}
	}
	for _, s := range segs {
		if err == nil {
			if serr := s.f.Sync(); serr != nil {
				err = fmt.Errorf("fsync %s: %w", s.path, serr)
			}
		}
	}
	if len(segs) > 0 || dirDirty {
		p.l.metrics.fsyncDuration.Observe(time.Since(start).Seconds())
	}

	p.mu.Lock()
	for i, s := range segs {
		if err == nil && sizes[i] > s.durableSize {
			s.durableSize, s.durableNext = sizes[i], nexts[i]
		}
		s.release()
	}
	if err != nil {
		err = p.failLocked(err)
		p.mu.Unlock()
		p.finishSync(-1)
		return err
	}
	p.advanceHW(target)
	evs := p.evictionsLocked()
	p.mu.Unlock()
	p.finishSync(target)
	evict(evs)
	return nil
}

func (p *Partition) finishSync(durable int64) {
	p.syncMu.Lock()
	if durable > p.durable {
		p.durable = durable
	}
	p.syncing = false
	close(p.syncDone)
	p.syncMu.Unlock()
}

// advanceHW publishes a new high watermark and wakes long polls.
func (p *Partition) advanceHW(hw int64) {
	p.hwMu.Lock()
	if hw > p.hw.Load() {
		p.hw.Store(hw)
		close(p.hwCh)
		p.hwCh = make(chan struct{})
	}
	p.hwMu.Unlock()
}

// HighWatermark is the offset after the last batch readers may see.
func (p *Partition) HighWatermark() int64 { return p.hw.Load() }

// Wait blocks until the high watermark is above offset, ctx ends, or the
// partition closes. It returns nil in the first case, ctx.Err() in the
// second and ErrClosed in the third. It never spins: appends wake it.
func (p *Partition) Wait(ctx context.Context, offset int64) error {
	for {
		p.hwMu.Lock()
		hw, ch := p.hw.Load(), p.hwCh
		p.hwMu.Unlock()
		if hw > offset {
			return nil
		}
		select {
		case <-ch:
		case <-p.doneCh:
			return ErrClosed
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// PartitionInfo is a snapshot of a partition's state.
type PartitionInfo struct {
	Topic          string
	Partition      int32
	LogStartOffset int64
	HighWatermark  int64
	SizeBytes      int64
	Segments       int
	// Err is why the partition refuses writes, or nil.
	Err error
}

// Info returns a snapshot of the partition's offsets and size.
func (p *Partition) Info() PartitionInfo {
	p.mu.RLock()
	defer p.mu.RUnlock()
	info := PartitionInfo{Topic: p.topic, Partition: p.id, LogStartOffset: p.logStart,
		HighWatermark: p.hw.Load(), Segments: len(p.segs), Err: p.failed}
	for _, s := range p.segs {
		info.SizeBytes += s.size.Load()
	}
	return info
}

// ReadResult holds whole batches read from a partition.
type ReadResult struct {
	// Batches is zero or more whole RecordBatch v2 batches, concatenated,
	// every one of which passed its CRC32C check on the way out. The first
	// holds the offset asked for (it may start before it); none reaches the
	// high watermark.
	Batches        []byte
	HighWatermark  int64
	LogStartOffset int64
	// NextOffset is where the following read should start.
	NextOffset int64
}

// Read returns whole batches starting with the one that holds offset, up to
// maxBytes in all, except that the first batch is returned whole even when it
// is larger, so a reader always makes progress. It reads into buf's backing
// array when it is large enough, so buf may be reused across calls once the
// caller is done with the previous result.
//
// It returns ErrOffsetOutOfRange when offset is below the log start offset
// or above the high watermark, and an empty result at the high watermark. A
// batch that fails its CRC is never returned: Read stops before it, or
// returns a *CorruptionError when it is the first.
func (p *Partition) Read(ctx context.Context, offset int64, maxBytes int, buf []byte) (ReadResult, error) {
	out := buf[:0]
	res := ReadResult{NextOffset: offset}
	for {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		p.mu.RLock()
		if p.closed {
			p.mu.RUnlock()
			return res, ErrClosed
		}
		hw := p.hw.Load()
		res.HighWatermark, res.LogStartOffset = hw, p.logStart
		if len(out) == 0 && (offset < p.logStart || offset > hw) {
			p.mu.RUnlock()
			return res, fmt.Errorf("%w: offset %d of %s/%d, which holds [%d, %d)", ErrOffsetOutOfRange, offset, p.topic, p.id, p.logStart, hw)
		}
		if offset >= hw {
			p.mu.RUnlock()
			res.Batches = out
			return res, nil
		}
		i := sort.Search(len(p.segs), func(i int) bool { return p.segs[i].base > offset }) - 1
		if i < 0 {
			i = 0 // offset in a gap before the first segment
		}
		seg := p.segs[i]
		pos := seg.idx.lookup(uint32(max(offset-seg.base, 0)))
		seg.acquire()
		p.mu.RUnlock()

		var err error
		var next int64
		out, next, err = p.readSegment(seg, pos, offset, hw, maxBytes, out)
		seg.release()
		if err != nil {
			if len(out) > 0 && errors.Is(err, ErrCorrupt) {
				res.NextOffset = next
				break // return what is good; the next read reports the damage
			}
			return res, err
		}
		if next == offset {
			break // at the high watermark or the end of the active segment
		}
		offset, res.NextOffset = next, next
		if len(out) >= maxBytes || offset >= hw {
			break
		}
	}
	res.Batches = out
	return res, nil
}

// readSegment appends to out the whole batches of seg from the one holding
// offset, up to maxBytes of out in all (at least one batch when out is
// empty), stopping at hw. It returns the offset after the last batch
// appended; when the segment holds nothing at or after offset it returns the
// segment's end offset so the caller moves on to the next segment.
func (p *Partition) readSegment(seg *segment, pos, offset, hw int64, maxBytes int, out []byte) ([]byte, int64, error) {
	size := seg.size.Load()
	var hb [record.HeaderSize]byte
	var first record.Header
	// Walk headers from the index position to the batch holding offset.
	for {
		if pos >= size {
			// Nothing here at or after offset: it lies in a gap left by
			// quarantined data, so move on to the next segment if any.
			if s := p.segAfter(seg); s != nil {
				return out, max(s.base, offset), nil
			}
			return out, offset, nil
		}
		if size-pos < record.HeaderSize {
			return out, offset, p.corrupt(seg, pos, offset, errTorn)
		}
		if _, err := seg.f.ReadAt(hb[:], pos); err != nil {
			return out, offset, fmt.Errorf("read %s at byte %d: %w", seg.path, pos, err)
		}
		h, err := record.ParseHeader(hb[:])
		if err != nil {
			return out, offset, p.corrupt(seg, pos, offset, err)
		}
		// Every batch below size was written whole before size grew past
		// it, so one that runs past size is damage; left alone, it would
		// read as the end of the log and stall the reader at offset.
		if int64(h.Size()) > size-pos || h.Size() > maxBatchSize+record.HeaderSize {
			return out, offset, p.corrupt(seg, pos, offset,
				fmt.Errorf("%w: batch of %d bytes at byte %d runs past the segment's end at %d", record.ErrMalformed, h.Size(), pos, size))
		}
		if h.NextOffset() > offset {
			if h.BaseOffset >= hw {
				return out, offset, nil
			}
			first = h
			break
		}
		pos += int64(h.Size())
	}
	// Read a chunk from pos: what fits in maxBytes, or at least the first batch.
	want := int64(maxBytes - len(out))
	if len(out) == 0 {
		want = max(want, int64(first.Size()))
	}
	want = min(want, size-pos)
	if want <= 0 {
		return out, offset, nil
	}
	start := len(out)
	out = grow(out, int(want))
	n, err := seg.f.ReadAt(out[start:start+int(want)], pos)
	if int64(n) < want {
		return out[:start], offset, fmt.Errorf("read %s at byte %d: %w", seg.path, pos, err)
	}
	// Keep only whole batches below hw that pass their CRC.
	chunk := out[start : start+int(want)]
	kept, next := 0, offset
	for kept+record.HeaderSize <= len(chunk) {
		h, err := record.ParseHeader(chunk[kept:])
		if err != nil {
			out = out[:start+kept]
			return out, next, p.corrupt(seg, pos+int64(kept), next, err)
		}
		if h.BaseOffset >= hw || kept+h.Size() > len(chunk) {
			break
		}
		if _, err := record.Check(chunk[kept : kept+h.Size()]); err != nil {
			out = out[:start+kept]
			return out, next, p.corrupt(seg, pos+int64(kept), next, err)
		}
		kept += h.Size()
		next = h.NextOffset()
	}
	return out[:start+kept], next, nil
}

func (p *Partition) segAfter(seg *segment) *segment {
	p.mu.RLock()
	defer p.mu.RUnlock()
	for i, s := range p.segs {
		if s == seg && i+1 < len(p.segs) {
			return p.segs[i+1]
		}
	}
	return nil
}

// corrupt reports damage found while reading, logging and counting each
// place once.
func (p *Partition) corrupt(seg *segment, pos, offset int64, cause error) error {
	err := &CorruptionError{Topic: p.topic, Partition: p.id, Segment: seg.path, Position: pos, Offset: offset, Err: cause}
	if p.lastCorrupt.Swap(pos+1) != pos+1 {
		p.l.metrics.corruptions.Inc()
		p.l.opts.Logger.Error("corrupt batch not served", "err", err)
	}
	return err
}

func grow(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b[:len(b)+n]
	}
	nb := make([]byte, len(b)+n, max(2*cap(b), len(b)+n))
	copy(nb, b)
	return nb
}

// OffsetForTime returns the first offset whose record timestamp is at or
// after ts, with that record's timestamp, as Kafka's ListOffsets does. found
// is false when every record is older.
func (p *Partition) OffsetForTime(ctx context.Context, ts int64) (offset, timestamp int64, found bool, err error) {
	// The first segment whose max timestamp reaches ts may hold no such
	// record at or above the log start (timestamps need not grow with
	// offsets), so the search goes on to the next candidate segment.
	var after *segment
	for {
		p.mu.RLock()
		if p.closed {
			p.mu.RUnlock()
			return 0, 0, false, ErrClosed
		}
		hw := p.hw.Load()
		var seg *segment
		var from int64
		for _, s := range p.segs {
			if after != nil && s.base <= after.base {
				continue
			}
			if s.idx.hasTs && s.idx.maxTs >= ts {
				seg = s
				from = s.base
				if rel, ok := s.idx.timeLookup(ts); ok {
					from = s.base + int64(rel)
				}
				from = max(from, p.logStart)
				break
			}
		}
		if seg == nil {
			p.mu.RUnlock()
			return 0, 0, false, nil
		}
		pos := seg.idx.lookup(uint32(from - seg.base))
		seg.acquire()
		p.mu.RUnlock()

		offset, timestamp, found, end, err := p.offsetForTimeIn(ctx, seg, pos, from, hw, ts)
		seg.release()
		if err != nil || found || end {
			return offset, timestamp, found, err
		}
		after = seg
	}
}

// offsetForTimeIn scans seg from byte pos for the first record at or after
// offset from with a timestamp of at least ts. end reports that the scan
// reached the high watermark hw, past which there is nothing to search.
func (p *Partition) offsetForTimeIn(ctx context.Context, seg *segment, pos, from, hw, ts int64) (offset, timestamp int64, found, end bool, err error) {
	r := newBatchReader(seg.f, pos, seg.size.Load(), 64<<10)
	for {
		if err := ctx.Err(); err != nil {
			return 0, 0, false, false, err
		}
		h, b, err := r.next(true)
		if errors.Is(err, io.EOF) {
			return 0, 0, false, false, nil
		}
		if err != nil {
			return 0, 0, false, false, p.corrupt(seg, r.pos, from, err)
		}
		if h.BaseOffset >= hw {
			return 0, 0, false, true, nil
		}
		if h.NextOffset() > from && h.MaxTimestamp >= ts {
			off, t, ok, err := p.firstAtOrAfter(b, h, ts, from)
			if err != nil {
				return 0, 0, false, false, p.corrupt(seg, r.pos, h.BaseOffset, err)
			}
			if ok {
				return off, t, true, false, nil
			}
		}
		r.advance(len(b))
	}
}

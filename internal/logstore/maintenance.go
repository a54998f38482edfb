package logstore

import (
	"context"
	"errors"
	"fmt"
	"os"
)

// flushSealed writes the index files of rolled segments and flushes their
// data and indexes, after which the recovery checkpoint may move past them.
func (p *Partition) flushSealed() {
	p.mu.Lock()
	if p.closed || p.failed != nil {
		p.mu.Unlock()
		return
	}
	var todo []*segment
	for _, s := range p.segs[:len(p.segs)-1] {
		if !s.indexDurable {
			s.acquire()
			todo = append(todo, s)
		}
	}
	p.mu.Unlock()
	for _, s := range todo {
		err := p.writeIndex(s, true)
		p.mu.Lock()
		if err != nil {
			p.failLocked(err)
		} else {
			s.indexDurable = true
			s.durableSize, s.durableNext = s.size.Load(), s.next
			// A sealed segment no longer changes, and its data was just
			// fsynced: it leaves the list of segments to fsync. Under
			// SyncNever this is what keeps that list from growing by
			// one segment per roll.
			if s.dirty {
				p.forgetUnsyncedLocked([]*segment{s})
			}
		}
		p.mu.Unlock()
		s.release()
		if err != nil {
			return
		}
	}
	if len(todo) > 0 {
		// Under SyncNever this is the only time data becomes known to be
		// durable, and so the only time it can leave the page cache.
		p.mu.Lock()
		evs := p.evictionsLocked()
		p.mu.Unlock()
		evict(evs)
	}
}

// writeIndex writes a segment's index files; with syncData it also flushes
// the segment's data first. The index of a sealed segment no longer changes,
// so it is read without the partition lock; the active segment's is written
// only on close, under the lock.
func (p *Partition) writeIndex(s *segment, syncData bool) error {
	if syncData {
		if err := s.f.Sync(); err != nil {
			return fmt.Errorf("fsync %s: %w", s.path, err)
		}
	}
	ip, tp := s.indexPaths()
	for _, w := range []struct {
		path string
		data []byte
	}{{ip, s.idx.encodeOffsets()}, {tp, s.idx.encodeTimes()}} {
		f, err := p.l.fs.OpenFile(w.path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			return fmt.Errorf("write index: %w", err)
		}
		_, err = f.WriteAt(w.data, 0)
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("write index %s: %w", w.path, err)
		}
	}
	return p.l.fs.SyncDir(p.dir)
}

// checkpointAndProducers returns the recovery point and a copy of the
// producer state.
func (p *Partition) checkpointAndProducers() (checkpointEntry, partProducers) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.checkpointLocked(), p.producerSnapshotLocked()
}

// checkpointLocked returns the partition's recovery point: the start of the
// first segment that is not sealed with flushed data and index, at the part
// of it known to be durable.
func (p *Partition) checkpointLocked() checkpointEntry {
	for _, s := range p.segs {
		if !s.sealed || !s.indexDurable {
			return checkpointEntry{segBase: s.base, pos: s.durableSize, next: s.durableNext, logStart: p.logStart}
		}
	}
	s := p.segs[len(p.segs)-1]
	return checkpointEntry{segBase: s.base, pos: s.durableSize, next: s.durableNext, logStart: p.logStart}
}

// close stops the partition. A clean close flushes all data, writes every
// index file and marks the whole log durable, so the next open scans nothing.
func (p *Partition) close(clean bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	close(p.doneCh)
	var err error
	if clean && p.failed == nil {
		for _, s := range p.segs {
			if s.dirty || !s.indexDurable || !s.sealed {
				if werr := p.writeIndex(s, true); werr != nil {
					err = errors.Join(err, werr)
					continue
				}
				s.indexDurable = true
				s.durableSize, s.durableNext = s.size.Load(), s.next
			}
		}
		if err == nil {
			err = p.l.fs.SyncDir(p.dir)
		}
		if err == nil {
			// Report the active segment as sealed so the checkpoint records
			// its end; the next open unseals it.
			p.segs[len(p.segs)-1].sealed = true
		}
	}
	for _, s := range p.segs {
		s.release()
	}
	if err != nil {
		return fmt.Errorf("close %s/%d: %w", p.topic, p.id, err)
	}
	return nil
}

// enforceRetention deletes the oldest segments that the topic's retention
// no longer keeps. Only sealed, flushed segments go, and never the active
// one; an active segment that has wholly expired is rolled so the next pass
// can delete it. The lock is held only to unlink segments from the list.
func (p *Partition) enforceRetention(now int64) {
	cfg := p.cfg.Load()
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	var total int64
	for _, s := range p.segs {
		total += s.size.Load()
	}
	var victims []*segment
	for len(p.segs) > 1 {
		s := p.segs[0]
		if !s.sealed || !s.indexDurable {
			break
		}
		// An empty sealed segment (the sound prefix of a quarantined one
		// can be empty) holds nothing to keep and must not block the rest.
		empty := s.size.Load() == 0
		expired := empty || cfg.RetentionMs >= 0 && s.idx.hasTs && now-s.idx.maxTs > cfg.RetentionMs
		over := cfg.RetentionBytes >= 0 && total-s.size.Load() >= cfg.RetentionBytes
		if !expired && !over {
			break
		}
		total -= s.size.Load()
		victims = append(victims, s)
		p.segs = p.segs[1:]
	}
	if len(victims) > 0 {
		p.logStart = max(p.logStart, p.segs[0].base)
		p.dropProducersBelowLocked(p.logStart)
		p.forgetUnsyncedLocked(victims)
	}
	act := p.segs[len(p.segs)-1]
	if len(p.segs) == 1 && p.failed == nil && act.size.Load() > 0 && cfg.RetentionMs >= 0 &&
		act.idx.hasTs && now-act.idx.maxTs > cfg.RetentionMs {
		_, _ = p.rollLocked(now) // a failure marks the partition failed
	}
	p.mu.Unlock()
	for _, s := range victims {
		s.deleted.Store(true)
		s.release()
		p.stats.deleted.Inc()
		p.l.opts.Logger.Debug("retention deleted segment", "topic", p.topic, "partition", p.id, "segment", s.path)
	}
	p.expireProducers(now)
}

// forgetUnsyncedLocked takes segments off the list of segments to fsync:
// deleted ones, whose files their release closes, and sealed ones already
// fsynced whole.
func (p *Partition) forgetUnsyncedLocked(gone []*segment) {
	kept := p.unsynced[:0]
	for _, s := range p.unsynced {
		deleted := false
		for _, g := range gone {
			deleted = deleted || s == g
		}
		if deleted {
			s.dirty = false
		} else {
			kept = append(kept, s)
		}
	}
	clear(p.unsynced[len(kept):])
	p.unsynced = kept
}

// DeleteRecords moves the log start offset up to before (-1: the high
// watermark), as Kafka's DeleteRecords does, and returns the new log start
// offset. Reads below it get ErrOffsetOutOfRange from then on; segments
// that hold only offsets below it are deleted (the active one is rolled
// first if it is among them). The new log start offset is durable in the
// recovery checkpoint when DeleteRecords returns.
//
// before above the high watermark, or negative other than -1, is
// ErrOffsetOutOfRange. A before at or below the current log start changes
// nothing and returns the current log start.
func (p *Partition) DeleteRecords(ctx context.Context, before int64) (int64, error) {
	now := p.l.opts.Now().UnixMilli()
	p.mu.Lock()
	if err := p.writableLocked(); err != nil {
		p.mu.Unlock()
		return 0, err
	}
	hw := p.hw.Load()
	if before == -1 {
		before = hw
	}
	if before < 0 || before > hw {
		p.mu.Unlock()
		return 0, fmt.Errorf("delete records of %s/%d: %w: offset %d, the partition holds [%d, %d)",
			p.topic, p.id, ErrOffsetOutOfRange, before, p.logStart, hw)
	}
	if before <= p.logStart {
		start := p.logStart
		p.mu.Unlock()
		return start, nil
	}
	p.logStart = before
	p.dropProducersBelowLocked(before)
	if act := p.segs[len(p.segs)-1]; act.size.Load() > 0 && act.next <= before {
		if _, err := p.rollLocked(now); err != nil {
			p.mu.Unlock()
			return 0, err
		}
	}
	var victims []*segment
	for len(p.segs) > 1 && p.segs[0].next <= before {
		victims = append(victims, p.segs[0])
		p.segs = p.segs[1:]
	}
	p.forgetUnsyncedLocked(victims)
	p.mu.Unlock()
	for _, s := range victims {
		s.deleted.Store(true)
		s.release()
	}
	if err := p.l.writeCheckpoint(false); err != nil {
		return 0, fmt.Errorf("delete records of %s/%d: %w", p.topic, p.id, err)
	}
	return before, nil
}

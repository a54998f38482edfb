package logstore

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/sluice-dev/sluice/internal/record"
)

// scanBufSize is the read size of recovery scans.
const scanBufSize = 1 << 20

// openPartition opens or creates a partition directory and recovers it:
// segments wholly before the checkpoint are trusted (their index files are
// loaded, or rebuilt when missing or inconsistent); from the checkpoint on,
// every batch is read and its CRC checked, torn tails are truncated and
// damage followed by valid data is quarantined.
//
// The idempotent producers' state is then restored from snap (nil when
// there is none) and the batches after it.
func (l *Log) openPartition(t *topicState, id int32, cp *checkpointEntry, clean bool, snap *partProducers) (*Partition, error) {
	dir := filepath.Join(l.dir, topicsDir, t.spec.Name, strconv.Itoa(int(id)))
	p := &Partition{topic: t.spec.Name, id: id, dir: dir, l: l, stats: t.stats,
		hwCh: make(chan struct{}), doneCh: make(chan struct{}), syncDone: make(chan struct{})}
	p.cfg.Store(t.cfg)
	if err := l.fs.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("open partition %s/%d: %w", p.topic, id, err)
	}
	if err := p.recover(cp, clean); err != nil {
		for _, s := range p.segs {
			s.release()
		}
		return nil, fmt.Errorf("open partition %s/%d: %w", p.topic, id, err)
	}
	p.restoreProducers(snap, l.opts.Now().UnixMilli())
	p.durable = p.next
	p.hw.Store(p.next)
	return p, nil
}

func (p *Partition) recover(cp *checkpointEntry, clean bool) error {
	entries, err := p.l.fs.ReadDir(p.dir)
	if err != nil {
		return err
	}
	var bases []int64
	for _, e := range entries {
		name := e.Name()
		if strings.HasSuffix(name, tmpSuffix) {
			_ = p.l.fs.Remove(filepath.Join(p.dir, name)) // an interrupted atomic write
			continue
		}
		if base, ok := parseSegmentName(name); ok {
			bases = append(bases, base)
		}
	}
	sort.Slice(bases, func(i, j int) bool { return bases[i] < bases[j] })
	for _, base := range bases {
		path := filepath.Join(p.dir, segmentName(base)+logSuffix)
		f, err := p.l.fs.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			return fmt.Errorf("open segment: %w", err)
		}
		st, err := f.Stat()
		if err != nil {
			_ = f.Close()
			return fmt.Errorf("stat segment: %w", err)
		}
		s := newSegment(p.l.fs, p.dir, base, f)
		s.size.Store(st.Size())
		s.sealed = true
		p.segs = append(p.segs, s)
	}
	if len(p.segs) == 0 {
		// A new partition, or one whose files are gone: never hand out an
		// offset the checkpoint says was used.
		base := int64(0)
		if cp != nil {
			base = cp.next
		}
		if _, err := p.createSegmentLocked(base); err != nil {
			return err
		}
		p.next, p.logStart = base, base
		p.segs[0].firstAppend = p.l.opts.Now().UnixMilli()
		return nil
	}

	// Where the scan starts.
	startIdx, startPos, startNext := 0, int64(0), p.segs[0].base
	if cp != nil {
		i := sort.Search(len(p.segs), func(i int) bool { return p.segs[i].base > cp.segBase }) - 1
		switch {
		case i < 0:
		case p.segs[i].base == cp.segBase && cp.pos <= p.segs[i].size.Load():
			startIdx, startPos, startNext = i, cp.pos, cp.next
		case p.segs[i].base == cp.segBase:
			p.l.metrics.corruptions.Inc()
			p.l.opts.Logger.Error("segment is shorter than its recovery checkpoint; rescanning it",
				"topic", p.topic, "partition", p.id, "segment", p.segs[i].path,
				"size", p.segs[i].size.Load(), "checkpoint", cp.pos)
			startIdx, startNext = i, p.segs[i].base
		default:
			startIdx, startNext = i, p.segs[i].base
		}
	}
	last := len(p.segs) - 1
	if clean && startIdx == last && startPos == p.segs[last].size.Load() {
		startIdx = len(p.segs) // nothing to scan: every index loads from its files
	}

	for i := 0; i < min(startIdx, len(p.segs)); i++ {
		if err := p.loadSegment(p.segs[i]); err != nil {
			p.l.opts.Logger.Warn("rebuilding segment index", "topic", p.topic, "partition", p.id,
				"segment", p.segs[i].path, "reason", err)
			if err := p.rescan(i, 0, p.segs[i].base); err != nil {
				return err
			}
		}
	}
	if startIdx < len(p.segs) {
		// The prefix before the checkpoint was checked when appended and is
		// durable: walk its headers to rebuild the index, then check every
		// batch that follows.
		s := p.segs[startIdx]
		s.idx = segIndex{}
		end, next, err := p.scan(s, 0, s.base, startPos, false)
		if err != nil || end != startPos || next != startNext {
			startPos, startNext = 0, s.base
			s.idx = segIndex{}
		}
		for i := startIdx; i < len(p.segs); i++ {
			pos, next := int64(0), p.segs[i].base
			if i == startIdx {
				pos, next = startPos, startNext
			}
			if err := p.rescan(i, pos, next); err != nil {
				return err
			}
		}
	}

	if cp != nil && p.segs[len(p.segs)-1].next < cp.next {
		// The checkpoint says offsets up to cp.next were durable, so they
		// may have been acknowledged: the file system lost them. What is
		// left stays readable; the offset sequence resumes after the
		// checkpoint, as after quarantined data, so no consumer that read
		// them is handed other records under the same offsets.
		last := p.segs[len(p.segs)-1]
		p.l.metrics.corruptions.Inc()
		p.l.opts.Logger.Error("partition lost acknowledged records; resuming after the recovery checkpoint",
			"topic", p.topic, "partition", p.id, "segment", last.path,
			"next_offset", last.next, "checkpoint_next_offset", cp.next)
		if _, err := p.createSegmentLocked(cp.next); err != nil {
			return err
		}
		p.segs[len(p.segs)-1].next = cp.next
	}

	p.segs[len(p.segs)-1].sealed = false
	for i, s := range p.segs {
		s.durableSize, s.durableNext = s.size.Load(), s.next
		// What was there before the restart is left to the kernel: it may
		// still be cached for the consumers catching up now. The cache
		// window applies to what is written from here on.
		s.evicted = s.durableSize
		if s.sealed && i < len(p.segs)-1 {
			s.idx.seal()
		}
	}
	act := p.segs[len(p.segs)-1]
	p.next = act.next
	p.logStart = p.segs[0].base
	if cp != nil && cp.logStart > p.logStart && cp.logStart <= p.next {
		p.logStart = cp.logStart
	}
	act.firstAppend = p.l.opts.Now().UnixMilli()
	if act.size.Load() > 0 {
		var hb [record.HeaderSize]byte
		if _, err := act.f.ReadAt(hb[:], 0); err == nil {
			if h, err := record.ParseHeader(hb[:]); err == nil {
				act.firstAppend = h.MaxTimestamp
			}
		}
	}
	return nil
}

// loadSegment reads a sealed segment's index files and walks the batch
// headers after the last index entry to find the segment's end offset.
func (p *Partition) loadSegment(s *segment) error {
	ip, tp := s.indexPaths()
	offs, err := readFile(p.l.fs, ip)
	if err != nil {
		return err
	}
	times, err := readFile(p.l.fs, tp)
	if err != nil {
		return err
	}
	size := s.size.Load()
	x, err := decodeIndexes(offs, times, size)
	if err != nil {
		return err
	}
	s.idx = x
	from, next := int64(0), s.base
	if n := len(x.offsets); n > 0 {
		from, next = int64(x.offsets[n-1].pos), s.base+int64(x.offsets[n-1].rel)
	}
	end, last, err := p.scan(s, from, next, size, false)
	if err != nil {
		return err
	}
	if end != size {
		return fmt.Errorf("segment ends at byte %d, index walk at %d", size, end)
	}
	s.next = last
	s.indexDurable = true
	return nil
}

// scan walks the batches of s from pos (expecting offset next there) up to
// byte limit, adding them to the segment's index. With verify it checks
// every CRC; without, only headers. It stops at the first bad batch and
// returns its position and offset with the reason, or limit and the next
// offset when everything up to limit is sound.
func (p *Partition) scan(s *segment, pos, next, limit int64, verify bool) (int64, int64, error) {
	interval := p.cfg.Load().IndexIntervalBytes
	r := newBatchReader(s.f, pos, limit, scanBufSize)
	for {
		h, b, err := r.next(verify)
		if errors.Is(err, io.EOF) {
			return r.pos, next, nil
		}
		if err != nil {
			return r.pos, next, err
		}
		if h.BaseOffset != next {
			return r.pos, next, fmt.Errorf("batch has base offset %d, want %d", h.BaseOffset, next)
		}
		s.idx.add(uint32(h.BaseOffset-s.base), uint32(h.LastOffset()-s.base), r.pos, len(b), h.MaxTimestamp, interval)
		next = h.NextOffset()
		s.next = next
		r.advance(len(b))
	}
}

// rescan checks segment i from pos to its end, then deals with damage: a
// torn tail is truncated; damage followed by valid data is quarantined.
func (p *Partition) rescan(i int, pos, next int64) error {
	s := p.segs[i]
	if pos == 0 {
		s.idx = segIndex{}
	}
	s.next = next
	size := s.size.Load()
	bad, next, cause := p.scan(s, pos, next, size, true)
	s.indexDurable = false // the flusher writes the rebuilt index
	if cause == nil {
		return nil
	}
	validAfter, maxNext, err := findValidAfter(s.f, bad, size, next)
	if err != nil {
		return err
	}
	laterData := false
	for _, t := range p.segs[i+1:] {
		laterData = laterData || t.size.Load() > 0
	}
	if !validAfter && !laterData {
		// A torn final write: it was never acknowledged (acks follow the
		// write), so cut it off, along with any empty segments rolled after it.
		if err := s.f.Truncate(bad); err != nil {
			return fmt.Errorf("truncate torn tail of %s: %w", s.path, err)
		}
		if err := s.f.Sync(); err != nil {
			return fmt.Errorf("truncate torn tail of %s: %w", s.path, err)
		}
		s.size.Store(bad)
		p.l.metrics.truncatedBytes.Add(float64(size - bad))
		p.l.opts.Logger.Warn("truncated torn tail", "topic", p.topic, "partition", p.id,
			"segment", s.path, "position", bad, "bytes", size-bad, "reason", cause)
		for _, t := range p.segs[i+1:] {
			t.deleted.Store(true)
			t.release()
		}
		p.segs = p.segs[:i+1]
		return nil
	}
	return p.quarantine(i, bad, next, maxNext, cause)
}

// quarantine keeps a damaged segment for inspection under another name and
// puts its sound prefix in its place. When it is the last segment, a new
// segment starts after the highest offset found past the damage, so no
// offset that may have been handed out is reused.
func (p *Partition) quarantine(i int, bad, next, maxNext int64, cause error) error {
	s := p.segs[i]
	p.l.metrics.corruptions.Inc()
	// The damaged file gets its second name by a hard link, not a rename:
	// the one rename below then swaps the sound prefix in, so a crash at
	// any step leaves the segment file whole or cut to its prefix, never
	// missing (its temporary replacement would be removed as an interrupted
	// write), and nothing is copied. A name already taken (an earlier
	// quarantine in the same millisecond, or one interrupted before its
	// rename) is kept and the next free millisecond used.
	var qpath string
	for ms, tries := p.l.opts.Now().UnixMilli(), 0; ; ms, tries = ms+1, tries+1 {
		qpath = fmt.Sprintf("%s%s%d", s.path, quarantineSuffix, ms)
		err := p.l.fs.Link(s.path, qpath)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrExist) || tries == 1000 {
			return fmt.Errorf("quarantine %s: %w", s.path, err)
		}
	}
	p.l.opts.Logger.Error("quarantined damaged segment; the partition is readable up to the damage",
		"topic", p.topic, "partition", p.id, "segment", s.path, "quarantined_as", qpath,
		"position", bad, "offset", next, "reason", cause)

	tmp := s.path + tmpSuffix
	nf, err := p.l.fs.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("quarantine %s: %w", s.path, err)
	}
	if err = copyPrefix(nf, s.f, bad); err == nil {
		err = nf.Sync()
	}
	if err == nil {
		err = p.l.fs.Rename(tmp, s.path)
	}
	if err == nil {
		err = p.l.fs.SyncDir(p.dir)
	}
	if err != nil {
		_ = nf.Close()
		return fmt.Errorf("quarantine %s: %w", s.path, err)
	}
	_ = s.f.Close()
	s.f = nf
	s.size.Store(bad)
	s.next = next
	ip, tp := s.indexPaths()
	_ = p.l.fs.Remove(ip)
	_ = p.l.fs.Remove(tp)

	if i == len(p.segs)-1 && maxNext > next {
		if _, err := p.createSegmentLocked(maxNext); err != nil {
			return err
		}
		p.segs[len(p.segs)-1].next = maxNext
	}
	return nil
}

// findValidAfter looks for any sound batch after byte from, to tell a torn
// tail (nothing sound follows) from damage in the middle of data. It also
// returns the highest next offset among the sound batches it finds.
func findValidAfter(f File, from, size, minOffset int64) (bool, int64, error) {
	found, maxNext := false, int64(0)
	buf := make([]byte, scanBufSize+record.HeaderSize)
	for start := from + 1; start+record.HeaderSize <= size; start += scanBufSize {
		n, err := f.ReadAt(buf[:min(int64(len(buf)), size-start)], start)
		if n < record.HeaderSize {
			if err != nil && !errors.Is(err, io.EOF) {
				return false, 0, fmt.Errorf("scan for sound batches: %w", err)
			}
			break
		}
		for q := 0; q+record.HeaderSize <= n && q < scanBufSize; q++ {
			c := buf[q:n]
			if c[16] != 2 {
				continue // magic
			}
			h, err := record.ParseHeader(c)
			if err != nil || h.BaseOffset < minOffset || h.Size() > maxBatchSize+record.HeaderSize || start+int64(q)+int64(h.Size()) > size {
				continue
			}
			b := make([]byte, h.Size())
			if _, err := f.ReadAt(b, start+int64(q)); err != nil {
				continue
			}
			if _, err := record.Check(b); err != nil {
				continue
			}
			found = true
			maxNext = max(maxNext, h.NextOffset())
		}
	}
	return found, maxNext, nil
}

// copyPrefix copies the first n bytes of src to dst, a scan buffer at a
// time: the prefix can be as large as a segment.
func copyPrefix(dst, src File, n int64) error {
	buf := make([]byte, min(n, scanBufSize))
	for off := int64(0); off < n; {
		b := buf[:min(int64(len(buf)), n-off)]
		if _, err := src.ReadAt(b, off); err != nil {
			return err
		}
		if _, err := dst.WriteAt(b, off); err != nil {
			return err
		}
		off += int64(len(b))
	}
	return nil
}

func readFile(fsys FS, path string) ([]byte, error) {
	f, err := fsys.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readAll(f)
}

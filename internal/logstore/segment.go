package logstore

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/sluice-dev/sluice/internal/record"
	"github.com/sluice-dev/sluice/internal/topic"
)

// File name suffixes within a partition directory. A segment is named after
// its base offset, zero-padded to 20 digits so names sort in offset order.
const (
	logSuffix        = ".log"
	indexSuffix      = ".index"
	timeIndexSuffix  = ".timeindex"
	quarantineSuffix = ".quarantined-"
	tmpSuffix        = ".tmp"
)

func segmentName(base int64) string { return fmt.Sprintf("%020d", base) }

// parseSegmentName returns the base offset of a "<20 digits>.log" name.
func parseSegmentName(name string) (int64, bool) {
	stem, ok := strings.CutSuffix(name, logSuffix)
	if !ok || len(stem) != 20 {
		return 0, false
	}
	n, err := strconv.ParseInt(stem, 10, 64)
	return n, err == nil && n >= 0
}

// maxBatchSize bounds a batch read back from disk. Batches are appended only
// below a topic's max.message.bytes, which is itself bounded, so a header
// claiming more is damage; the bound also keeps a damaged length from
// driving a huge allocation.
const maxBatchSize = topic.MaxMaxMessageBytes

// segment is one file of a partition's log. Its fields other than refs,
// size and the immutable ones are guarded by the partition's mutex.
type segment struct {
	base int64  // immutable
	path string // immutable
	f    File   // immutable

	// size is the number of bytes written. Readers load it without the
	// partition lock; it only grows, and only after the bytes are written.
	size atomic.Int64
	next int64 // offset after the segment's last batch
	idx  segIndex

	// firstAppend is the wall-clock time (ms) of the segment's first
	// batch, or its first batch's max timestamp after a restart; segment.ms
	// counts from it.
	firstAppend int64

	// durableSize and durableNext describe the prefix known to be fsynced.
	durableSize int64
	durableNext int64
	// evicted is how much of the segment's start was handed back to the
	// page cache (cache.go).
	evicted int64
	// sealed segments take no more appends; indexDurable is set once a
	// sealed segment's data and index files are flushed, which lets the
	// recovery checkpoint move past it.
	sealed       bool
	indexDurable bool
	dirty        bool // in the partition's unsynced list

	// refs counts the partition's own reference plus readers and syncers
	// in flight; the file is closed (and, if deleted, removed) when it
	// drops to zero.
	refs    atomic.Int32
	deleted atomic.Bool
	fs      FS
}

func newSegment(fsys FS, dir string, base int64, f File) *segment {
	s := &segment{base: base, path: filepath.Join(dir, segmentName(base)+logSuffix), f: f, next: base, fs: fsys}
	s.refs.Store(1)
	return s
}

func (s *segment) acquire() { s.refs.Add(1) }

// release drops a reference; the last one closes the file and, for a segment
// deleted by retention, removes its files.
func (s *segment) release() {
	if s.refs.Add(-1) != 0 {
		return
	}
	_ = s.f.Close()
	if s.deleted.Load() {
		stem := strings.TrimSuffix(s.path, logSuffix)
		for _, p := range []string{s.path, stem + indexSuffix, stem + timeIndexSuffix} {
			if err := s.fs.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				continue // best effort; a leftover file is reported by the next open
			}
		}
	}
}

func (s *segment) indexPaths() (string, string) {
	stem := strings.TrimSuffix(s.path, logSuffix)
	return stem + indexSuffix, stem + timeIndexSuffix
}

// batchReader reads batches sequentially from a segment file through a
// buffer, for recovery scans.
type batchReader struct {
	f    File
	end  int64 // file size
	pos  int64 // position of the next batch
	buf  []byte
	bpos int64 // file position of buf[0]
	blen int
}

func newBatchReader(f File, start, end int64, bufSize int) *batchReader {
	// Most scans cover a short tail; size the buffer to what there is.
	n := max(min(int64(bufSize), end-start), record.HeaderSize)
	return &batchReader{f: f, end: end, pos: start, bpos: start, buf: make([]byte, n)}
}

// errTorn reports bytes at the end of a file that are too few to hold the
// batch their header announces.
var errTorn = errors.New("incomplete batch at end of segment")

// next returns the batch at r.pos. verify selects a full CRC check; without
// it only the header is checked. The returned slice is valid until the next
// call. At the end of the file it returns io.EOF.
func (r *batchReader) next(verify bool) (record.Header, []byte, error) {
	if r.pos >= r.end {
		return record.Header{}, nil, io.EOF
	}
	if r.end-r.pos < record.HeaderSize {
		return record.Header{}, nil, errTorn
	}
	hb, err := r.window(record.HeaderSize)
	if err != nil {
		return record.Header{}, nil, err
	}
	h, err := record.ParseHeader(hb)
	if err != nil {
		return h, nil, err
	}
	size := int64(h.Size())
	if size > maxBatchSize+record.HeaderSize {
		return h, nil, fmt.Errorf("%w: batch length %d exceeds %d", record.ErrMalformed, size, maxBatchSize)
	}
	if r.pos+size > r.end {
		return h, nil, errTorn
	}
	b, err := r.window(int(size))
	if err != nil {
		return h, nil, err
	}
	if verify {
		if _, err := record.Check(b); err != nil {
			return h, nil, err
		}
	}
	return h, b, nil
}

// advance moves past the batch last returned by next.
func (r *batchReader) advance(size int) { r.pos += int64(size) }

// window returns n bytes at r.pos, refilling the buffer as needed.
func (r *batchReader) window(n int) ([]byte, error) {
	off := r.pos - r.bpos
	if off >= 0 && off+int64(n) <= int64(r.blen) {
		return r.buf[off : off+int64(n)], nil
	}
	if n > len(r.buf) {
		r.buf = make([]byte, n)
	}
	want := int64(len(r.buf))
	if r.end-r.pos < want {
		want = r.end - r.pos
	}
	m, err := r.f.ReadAt(r.buf[:want], r.pos)
	if int64(m) < want {
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("read segment at byte %d: %w", r.pos, err)
	}
	r.bpos, r.blen = r.pos, m
	return r.buf[:n], nil
}

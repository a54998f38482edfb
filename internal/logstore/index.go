package logstore

import (
	"encoding/binary"
	"fmt"
	"sort"
)

// offsetEntry maps a batch's offset, relative to the segment's base, to the
// byte position of the batch in the segment file. Index files hold these as
// 8 big-endian bytes: relOffset uint32, position uint32.
type offsetEntry struct {
	rel uint32
	pos uint32
}

// timeEntry records that every batch up to and including the one whose last
// offset is base+rel has a max timestamp of at most ts. Entries are added only
// when the running maximum grows, so ts increases strictly. Time index files
// hold 12 big-endian bytes: ts int64, relOffset uint32.
type timeEntry struct {
	ts  int64
	rel uint32
}

const (
	offsetEntrySize = 8
	timeEntrySize   = 12
)

// segIndex is a segment's sparse offset and time indexes, kept in memory.
// The active segment's is built as batches are appended; a sealed segment's
// is written to its index files in the background and loaded from them on
// open.
type segIndex struct {
	offsets []offsetEntry
	times   []timeEntry
	// bytesSince counts bytes appended since the last offset entry.
	bytesSince int64
	// maxTs is the largest batch max timestamp seen in the segment, and
	// maxTsRel the relative last offset of the batch that carried it.
	maxTs    int64
	maxTsRel uint32
	hasTs    bool
}

// add records the batch at pos with offsets [rel, lastRel] and max timestamp
// ts, adding index entries when interval bytes have passed since the last.
// The first batch of a segment is implicitly at position 0 and needs no entry.
func (x *segIndex) add(rel, lastRel uint32, pos int64, size int, ts int64, interval int64) {
	if pos > 0 && x.bytesSince >= interval {
		x.offsets = append(x.offsets, offsetEntry{rel: rel, pos: uint32(pos)})
		x.bytesSince = 0
		if x.hasTs && (len(x.times) == 0 || x.maxTs > x.times[len(x.times)-1].ts) {
			x.times = append(x.times, timeEntry{ts: x.maxTs, rel: x.maxTsRel})
		}
	}
	x.bytesSince += int64(size)
	if !x.hasTs || ts > x.maxTs {
		x.maxTs, x.maxTsRel, x.hasTs = ts, lastRel, true
	}
}

// seal adds a final time entry so the time index carries the segment's
// max timestamp.
func (x *segIndex) seal() {
	if x.hasTs && (len(x.times) == 0 || x.maxTs > x.times[len(x.times)-1].ts) {
		x.times = append(x.times, timeEntry{ts: x.maxTs, rel: x.maxTsRel})
	}
}

// lookup returns the byte position of a batch at or before the one holding
// relative offset rel: scanning forward from there finds it.
func (x *segIndex) lookup(rel uint32) int64 {
	i := sort.Search(len(x.offsets), func(i int) bool { return x.offsets[i].rel > rel })
	if i == 0 {
		return 0
	}
	return int64(x.offsets[i-1].pos)
}

// timeLookup returns the relative offset from which to scan for the first
// batch whose max timestamp is at or after ts: every batch before it is
// known to be older.
func (x *segIndex) timeLookup(ts int64) (rel uint32, ok bool) {
	i := sort.Search(len(x.times), func(i int) bool { return x.times[i].ts >= ts })
	if i == 0 {
		return 0, false
	}
	return x.times[i-1].rel + 1, true
}

func (x *segIndex) encodeOffsets() []byte {
	b := make([]byte, len(x.offsets)*offsetEntrySize)
	for i, e := range x.offsets {
		binary.BigEndian.PutUint32(b[i*8:], e.rel)
		binary.BigEndian.PutUint32(b[i*8+4:], e.pos)
	}
	return b
}

func (x *segIndex) encodeTimes() []byte {
	b := make([]byte, len(x.times)*timeEntrySize)
	for i, e := range x.times {
		binary.BigEndian.PutUint64(b[i*12:], uint64(e.ts))
		binary.BigEndian.PutUint32(b[i*12+8:], e.rel)
	}
	return b
}

// decodeIndexes parses index file contents and checks what can be checked
// without reading the segment: whole entries, strictly increasing offsets,
// positions and timestamps, and positions inside a segment of segSize bytes.
func decodeIndexes(offs, times []byte, segSize int64) (segIndex, error) {
	var x segIndex
	if len(offs)%offsetEntrySize != 0 {
		return x, fmt.Errorf("offset index of %d bytes is not a whole number of %d-byte entries", len(offs), offsetEntrySize)
	}
	if len(times)%timeEntrySize != 0 {
		return x, fmt.Errorf("time index of %d bytes is not a whole number of %d-byte entries", len(times), timeEntrySize)
	}
	x.offsets = make([]offsetEntry, len(offs)/offsetEntrySize)
	for i := range x.offsets {
		e := offsetEntry{rel: binary.BigEndian.Uint32(offs[i*8:]), pos: binary.BigEndian.Uint32(offs[i*8+4:])}
		if e.pos == 0 || int64(e.pos) >= segSize {
			return x, fmt.Errorf("offset index entry %d points at byte %d of a %d-byte segment", i, e.pos, segSize)
		}
		if i > 0 && (e.rel <= x.offsets[i-1].rel || e.pos <= x.offsets[i-1].pos) {
			return x, fmt.Errorf("offset index entry %d is not after entry %d", i, i-1)
		}
		x.offsets[i] = e
	}
	x.times = make([]timeEntry, len(times)/timeEntrySize)
	for i := range x.times {
		e := timeEntry{ts: int64(binary.BigEndian.Uint64(times[i*12:])), rel: binary.BigEndian.Uint32(times[i*12+8:])}
		if i > 0 && (e.ts <= x.times[i-1].ts || e.rel <= x.times[i-1].rel) {
			return x, fmt.Errorf("time index entry %d is not after entry %d", i, i-1)
		}
		x.times[i] = e
	}
	if n := len(x.times); n > 0 {
		x.maxTs, x.maxTsRel, x.hasTs = x.times[n-1].ts, x.times[n-1].rel, true
	}
	return x, nil
}

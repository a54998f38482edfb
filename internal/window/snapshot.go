package window

import (
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"strings"

	"github.com/sluice-dev/sluice/internal/aggregate"
)

// snapshotMagic starts a snapshot; the digit is the format's version.
const snapshotMagic = "SWN1"

// ErrIncompatible is returned by Restore for a snapshot of windows defined
// otherwise (another type, size or list of aggregates): its state cannot
// be carried over.
var ErrIncompatible = errors.New("the snapshot is of other windows")

// fingerprint identifies what a snapshot's state means: everything of the
// config but the lateness, idle timeout and bound, which may change
// without changing the state.
func (c *Config) fingerprint() uint64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s/%d/%d/%d", c.Kind, c.Size, c.Advance, c.Gap)
	for _, a := range c.Aggregates {
		fmt.Fprintf(h, "/%s:%v:%d", a.Func, a.Q, a.MaxExact)
	}
	return h.Sum64()
}

// AppendSnapshot appends the state (watermark, partitions' event times,
// every open window) to dst, in a canonical order: the same state gives
// the same bytes. What partitions are idle is not part of it: that is
// rediscovered.
func (o *Operator) AppendSnapshot(dst []byte) []byte {
	dst = append(dst, snapshotMagic...)
	dst = binary.AppendUvarint(dst, o.cfg.fingerprint())
	dst = binary.AppendVarint(dst, o.watermark)
	parts := make([]int32, 0, len(o.parts))
	for p := range o.parts {
		parts = append(parts, p)
	}
	slices.Sort(parts)
	dst = binary.AppendUvarint(dst, uint64(len(parts)))
	for _, p := range parts {
		dst = binary.AppendVarint(dst, int64(p))
		dst = binary.AppendVarint(dst, o.parts[p].maxTime)
	}
	keys := make([]string, 0, len(o.groups))
	for k := range o.groups {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, strings.Compare)
	dst = binary.AppendUvarint(dst, uint64(len(keys)))
	for _, k := range keys {
		g := o.groups[k]
		dst = binary.AppendUvarint(dst, uint64(len(k)))
		dst = append(dst, k...)
		dst = binary.AppendUvarint(dst, uint64(len(g.wins)))
		for _, w := range g.wins {
			dst = binary.AppendVarint(dst, w.start)
			dst = binary.AppendVarint(dst, w.end)
			for _, s := range w.states {
				dst = s.AppendBinary(dst)
			}
		}
	}
	return dst
}

// Restore replaces the state with a snapshot's. The bytes are checked as
// untrusted input: a malformed snapshot is an error, never a panic, and
// nothing is allocated beyond what its length and MaxBytes allow. The
// partitions of the snapshot are added to those known; on error the
// operator is left empty.
func (o *Operator) Restore(b []byte) error {
	fresh := New(o.cfg)
	if err := fresh.restore(b); err != nil {
		*o = *New(o.cfg)
		return fmt.Errorf("restore window state: %w", err)
	}
	for p := range o.parts {
		fresh.AddPartition(p)
	}
	*o = *fresh
	return nil
}

func (o *Operator) restore(b []byte) error {
	r := reader{b: b}
	if !strings.HasPrefix(string(b), snapshotMagic) {
		return errors.New("not a window snapshot")
	}
	r.b = r.b[len(snapshotMagic):]
	if fp := r.uvarint(); r.err == nil && fp != o.cfg.fingerprint() {
		return ErrIncompatible
	}
	o.watermark = r.varint()
	nparts := r.count(2)
	for range nparts {
		p := r.varint()
		t := r.varint()
		if r.err != nil {
			break
		}
		if p < math.MinInt32 || p > math.MaxInt32 {
			return fmt.Errorf("partition %d out of range", p)
		}
		if o.parts[int32(p)] != nil {
			return fmt.Errorf("partition %d appears twice", p)
		}
		ps := &partition{maxTime: t}
		o.parts[int32(p)] = ps
		o.partList = append(o.partList, ps)
	}
	ngroups := r.count(2)
	for range ngroups {
		key := string(r.bytes(r.count(1)))
		if r.err != nil {
			break
		}
		if o.groups[key] != nil {
			return fmt.Errorf("key %q appears twice", key)
		}
		g := &group{key: key}
		o.groups[key] = g
		o.bytes += groupOverhead + int64(len(key))
		nwins := r.count(2)
		if r.err == nil && nwins == 0 {
			return fmt.Errorf("key %q has no window", key)
		}
		for range nwins {
			start, end := r.varint(), r.varint()
			if r.err != nil {
				break
			}
			if end <= start {
				return fmt.Errorf("key %q: window [%d, %d) is empty", key, start, end)
			}
			if end <= o.watermark {
				return fmt.Errorf("key %q: window [%s, %s) should have closed at the watermark %s", key, fmtTime(start), fmtTime(end), fmtTime(o.watermark))
			}
			if n := len(g.wins); n > 0 && g.wins[n-1].start >= start {
				return fmt.Errorf("key %q: windows out of order", key)
			}
			w := &win{g: g, start: start, end: end, states: make([]aggregate.State, len(o.cfg.Aggregates))}
			for i, a := range o.cfg.Aggregates {
				s, rest, err := aggregate.Decode(a, r.b)
				if err != nil {
					return fmt.Errorf("key %q, window at %s, aggregate %d: %w", key, fmtTime(start), i, err)
				}
				w.states[i], r.b = s, rest
			}
			w.size = winOverhead
			for _, s := range w.states {
				w.size += int64(s.Size())
			}
			o.bytes += w.size
			if o.bytes > o.cfg.MaxBytes {
				return fmt.Errorf("%w: the snapshot holds more than %d bytes", ErrStateFull, o.cfg.MaxBytes)
			}
			g.wins = append(g.wins, w)
			o.closing = append(o.closing, closeEntry{end: end, w: w})
		}
	}
	if r.err != nil {
		return r.err
	}
	if len(r.b) > 0 {
		return fmt.Errorf("%d bytes after the snapshot", len(r.b))
	}
	heap.Init(&o.closing)
	return nil
}

// reader reads varints, keeping the first error.
type reader struct {
	b   []byte
	err error
}

var errTruncated = errors.New("snapshot is truncated")

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errTruncated
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = errTruncated
		return 0
	}
	r.b = r.b[n:]
	return v
}

// count reads a count of items that take at least minBytes each, so that
// a count larger than the rest of the input is refused before anything is
// allocated for it.
func (r *reader) count(minBytes int) int {
	n := r.uvarint()
	if r.err == nil && n > uint64(len(r.b)/minBytes) {
		r.err = fmt.Errorf("count %d is more than the %d bytes left can hold", n, len(r.b))
		return 0
	}
	return int(n)
}

func (r *reader) bytes(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n > len(r.b) {
		r.err = errTruncated
		return nil
	}
	b := r.b[:n]
	r.b = r.b[n:]
	return b
}

package aggregate

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/axiomhq/hyperloglog"
	"github.com/cespare/xxhash/v2"
)

// distinctState counts distinct keys: exactly, as a set of their 64-bit
// xxhashes (exact but for hash collisions, about n²/2^65 of them), up to
// maxExact of them; then with a HyperLogLog sketch of precision 14 (16384
// registers, a standard error of 0.81%) that the hashes are inserted in.
//
// The sketch is dense from the start. The library's sparse representation
// turns dense when a buffer of new keys, flushed every so many insertions,
// outgrows the registers: when that happens depends on the order of the
// keys, and a sparse sketch estimates otherwise than a dense one, so with
// it a count would depend on the order of the keys. A dense sketch's
// registers are the maxima over its hashes, whatever their order; its
// memory is that of the exact set it replaces.
type distinctState struct {
	maxExact int
	exact    map[uint64]struct{} // nil once hll is not
	hll      *hyperloglog.Sketch
}

const (
	hllPrecision = 14
	hllRegisters = 1 << hllPrecision
	// hllMaxRegister is the largest register value: 64 - precision + 1.
	hllMaxRegister = 64 - hllPrecision + 1
	// hllSparseMax is the most non-zero registers that encode as a list:
	// at most 3 bytes each, against 16384 bytes for all of them.
	hllSparseMax = 4095
	// hllHeaderLen is the length of the library's version 2 dense encoding's header: the
	// version, the precision, a zero byte, 0 for dense, and the big endian
	// register count.
	hllHeaderLen = 8
	// Heap estimates: a map entry with its share of empty slots and
	// control bytes; the registers with the sketch.
	exactKeySize = 16
	distinctSize = 64
	hllSize      = hllRegisters + 96
)

func newDistinct(maxExact int) *distinctState {
	return &distinctState{maxExact: maxExact, exact: make(map[uint64]struct{})}
}

func (s *distinctState) AddNumber(float64) error { return notNumber(CountDistinct) }
func (s *distinctState) Inc()                    {}
func (s *distinctState) AddKey(k []byte)         { s.addHash(xxhash.Sum64(k)) }

func (s *distinctState) addHash(h uint64) {
	if s.hll != nil {
		s.hll.InsertHash(h)
		return
	}
	if _, ok := s.exact[h]; ok {
		return
	}
	if len(s.exact) < s.maxExact {
		s.exact[h] = struct{}{}
		return
	}
	s.toHLL()
	s.hll.InsertHash(h)
}

// toHLL moves the exact set to a sketch.
func (s *distinctState) toHLL() {
	sk, err := hyperloglog.NewSketch(hllPrecision, false)
	if err != nil {
		panic(fmt.Sprintf("aggregate: hyperloglog precision %d: %v", hllPrecision, err))
	}
	for h := range s.exact {
		sk.InsertHash(h)
	}
	s.hll, s.exact = sk, nil
}

func (s *distinctState) Merge(other State) error {
	o, ok := other.(*distinctState)
	if !ok || o.maxExact != s.maxExact {
		return mismatch(s, other)
	}
	if o.hll == nil {
		for h := range o.exact {
			s.addHash(h)
		}
		return nil
	}
	if s.hll == nil {
		s.toHLL()
	}
	if err := s.hll.Merge(o.hll); err != nil {
		// Both are dense sketches of one precision.
		panic(fmt.Sprintf("aggregate: merge hyperloglog sketches: %v", err))
	}
	return nil
}

// Result is the exact count, or the estimate; an estimate is at least
// maxExact+1, which the count is known to exceed, so that the count does
// not seem to fall when the set turns into a sketch.
func (s *distinctState) Result() any {
	if s.hll == nil {
		return int64(len(s.exact))
	}
	return max(int64(s.hll.Estimate()), int64(s.maxExact)+1)
}

func (s *distinctState) Size() int {
	if s.hll != nil {
		return distinctSize + hllSize
	}
	return distinctSize + exactKeySize*len(s.exact)
}

func (s *distinctState) AppendBinary(b []byte) []byte {
	b = appendTag(b, CountDistinct)
	if s.hll == nil {
		hashes := make([]uint64, 0, len(s.exact))
		for h := range s.exact {
			hashes = append(hashes, h)
		}
		slices.Sort(hashes)
		b = append(b, 0)
		b = binary.AppendUvarint(b, uint64(len(hashes)))
		for _, h := range hashes {
			b = binary.BigEndian.AppendUint64(b, h)
		}
		return b
	}
	regs := s.registers()
	nonzero := 0
	for _, r := range regs {
		if r != 0 {
			nonzero++
		}
	}
	if nonzero > hllSparseMax {
		b = append(b, 1, 1)
		return append(b, regs...)
	}
	b = append(b, 1, 0)
	b = binary.AppendUvarint(b, uint64(nonzero))
	next := 0
	for i, r := range regs {
		if r != 0 {
			b = binary.AppendUvarint(b, uint64(i-next))
			b = append(b, r)
			next = i + 1
		}
	}
	return b
}

// registers returns the sketch's registers, read from its encoding: the
// library documents that of a dense sketch as a header and the registers.
func (s *distinctState) registers() []byte {
	enc, err := s.hll.AppendBinary(nil)
	if err != nil || len(enc) != hllHeaderLen+hllRegisters || enc[3] != 0 {
		panic(fmt.Sprintf("aggregate: unexpected hyperloglog encoding (%d bytes): %v", len(enc), err))
	}
	return enc[hllHeaderLen:]
}

func decodeDistinct(r *reader, maxExact int) State {
	s := &distinctState{maxExact: maxExact}
	switch mode := r.byte("mode"); {
	case r.err != nil:
	case mode == 0:
		n := r.count("hashes", maxExact, 8)
		s.exact = make(map[uint64]struct{}, n)
		var prev uint64
		for i := range n {
			p := r.bytes(8, "hash")
			if r.err != nil {
				break
			}
			h := binary.BigEndian.Uint64(p)
			if i > 0 && h <= prev {
				r.failf("hash %d is out of order", i)
				break
			}
			s.exact[h], prev = struct{}{}, h
		}
	case mode == 1:
		s.decodeHLL(r)
	default:
		r.failf("mode %d, want 0 (exact) or 1 (hyperloglog)", mode)
	}
	return s
}

func (s *distinctState) decodeHLL(r *reader) {
	enc := make([]byte, hllHeaderLen+hllRegisters)
	copy(enc, []byte{2, hllPrecision, 0, 0})
	binary.BigEndian.PutUint32(enc[4:], hllRegisters)
	regs := enc[hllHeaderLen:]
	switch form := r.byte("hyperloglog form"); {
	case r.err != nil:
		return
	case form == 0:
		k := r.count("registers", hllSparseMax, 2)
		if r.err == nil && k == 0 {
			r.failf("no register is set: a sketch of none encodes densely")
		}
		next := uint64(0)
		for i := range k {
			gap := r.uvarint("register index")
			v := r.byte("register")
			if r.err != nil {
				return
			}
			if gap >= hllRegisters-next {
				r.failf("register %d: index %d+%d is beyond %d", i, next, gap, hllRegisters-1)
				return
			}
			if v == 0 {
				r.failf("register %d is listed as zero", i)
				return
			}
			regs[next+gap] = v
			next += gap + 1
		}
	case form == 1:
		copy(regs, r.bytes(hllRegisters, "registers"))
		nonzero := 0
		for _, v := range regs {
			if v != 0 {
				nonzero++
			}
		}
		if r.err == nil && nonzero <= hllSparseMax {
			r.failf("%d registers are set: so few encode as a list", nonzero)
		}
	default:
		r.failf("hyperloglog form %d, want 0 (list) or 1 (registers)", form)
	}
	if r.err != nil {
		return
	}
	for i, v := range regs {
		if v > hllMaxRegister {
			r.failf("register %d is %d, at most %d", i, v, hllMaxRegister)
			return
		}
	}
	s.hll = new(hyperloglog.Sketch)
	if err := s.hll.UnmarshalBinary(enc); err != nil {
		r.failf("registers: %v", err)
	}
}

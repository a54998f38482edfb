package aggregate

import (
	"encoding/binary"
	"math"
)

// countState counts events. The count saturates at math.MaxInt64, as
// Merge could otherwise overflow it with decoded counts.
type countState struct{ n int64 }

func (s *countState) AddNumber(float64) error { return notNumber(Count) }
func (s *countState) AddKey([]byte)           {}
func (s *countState) Result() any             { return s.n }
func (s *countState) Size() int               { return 16 }

func (s *countState) Merge(other State) error {
	o, ok := other.(*countState)
	if !ok {
		return mismatch(s, other)
	}
	s.n = satAdd(s.n, o.n)
	return nil
}

func (s *countState) Inc() { s.n = satAdd(s.n, 1) }

// satAdd adds counts, saturating at math.MaxInt64. Saturating addition of
// non-negative numbers is associative, so the count stays independent of
// the order.
func satAdd(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

func (s *countState) AppendBinary(b []byte) []byte {
	return binary.AppendUvarint(appendTag(b, Count), uint64(s.n))
}

func decodeCount(r *reader) State {
	n := r.uvarint("count")
	if n > math.MaxInt64 {
		r.failf("count %d overflows int64", n)
	}
	return &countState{n: int64(n)}
}

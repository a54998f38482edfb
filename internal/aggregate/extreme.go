package aggregate

import (
	"encoding/binary"
	"math"
)

// extremeState is min or max. A negative zero is taken as zero, as its
// decimal is: min(0, -0) would otherwise depend on which came first.
type extremeState struct {
	max bool
	set bool
	v   float64
}

func (s *extremeState) fn() Func {
	if s.max {
		return Max
	}
	return Min
}

func (s *extremeState) AddNumber(v float64) error {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return notFinite(s.fn(), v)
	}
	s.add(v + 0) // + 0 turns -0 into +0
	return nil
}

func (s *extremeState) add(v float64) {
	if !s.set || (s.max && v > s.v) || (!s.max && v < s.v) {
		s.v, s.set = v, true
	}
}

func (s *extremeState) AddKey([]byte) {}
func (s *extremeState) Inc()          {}
func (s *extremeState) Size() int     { return 24 }

func (s *extremeState) Merge(other State) error {
	o, ok := other.(*extremeState)
	if !ok || o.max != s.max {
		return mismatch(s, other)
	}
	if o.set {
		s.add(o.v)
	}
	return nil
}

func (s *extremeState) Result() any {
	if !s.set {
		return nil
	}
	return s.v
}

func (s *extremeState) AppendBinary(b []byte) []byte {
	b = appendTag(b, s.fn())
	if !s.set {
		return append(b, 0)
	}
	return binary.BigEndian.AppendUint64(append(b, 1), math.Float64bits(s.v))
}

func decodeExtreme(r *reader, max bool) State {
	s := &extremeState{max: max}
	switch set := r.byte("flag"); {
	case r.err != nil:
	case set == 0:
	case set == 1:
		p := r.bytes(8, "value")
		if r.err != nil {
			break
		}
		bits := binary.BigEndian.Uint64(p)
		v := math.Float64frombits(bits)
		if math.IsNaN(v) || math.IsInf(v, 0) || bits == 1<<63 {
			r.failf("value %v is not a finite number other than -0", v)
		}
		s.v, s.set = v, true
	default:
		r.failf("flag %d, want 0 or 1", set)
	}
	return s
}

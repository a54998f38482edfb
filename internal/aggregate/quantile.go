package aggregate

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/DataDog/sketches-go/ddsketch"
	"github.com/DataDog/sketches-go/ddsketch/store"
)

// quantileState estimates a quantile with a DDSketch: values fall in bins
// whose bounds grow by a factor of about 1.02, so that the value returned
// for a quantile is within 1% (relative) of the value of its rank among
// those added: with n values sorted, the one at index q·(n-1), rounded
// down (rounded up when that value is negative).
//
// Memory is bounded by keeping at most 2048 bins for each sign: when the
// values of a sign span more than 1.02^2048 ≈ 6e17, the bins of the
// smallest magnitudes are collapsed into one, and quantiles that fall
// there lose the guarantee. Magnitudes below 2.3e-308 count as zero, and
// above 1.26e308, the largest the sketch maps, as 1.26e308.
//
// The sketch's bins are counts of values, so its content does not depend on
// the order of the values; the library's encoding is not used, as it is not
// canonical: the bins are written sorted, and decoding adds them to a new
// sketch.
type quantileState struct {
	q  float64
	sk *ddsketch.DDSketch
}

const (
	relativeAccuracy = 0.01
	maxBins          = 2048
	// Heap estimates: the sketch with its mapping and stores; a float64
	// count per bin, with the slack the stores grow by.
	sketchSize = 256
	binSlack   = 64
	// maxSketchCount bounds the count of values, which the sketch keeps
	// in float64s, where integers are exact up to 2^53: beyond, counts
	// would round, and depend on the order of the values.
	maxSketchCount = 1 << 53
)

var errSketchFull = fmt.Errorf("quantile: 2^53 values, as many as the sketch counts exactly: %w", ErrOverflow)

func newQuantile(q float64) *quantileState {
	sk, err := ddsketch.LogCollapsingLowestDenseDDSketch(relativeAccuracy, maxBins)
	if err != nil {
		panic(fmt.Sprintf("aggregate: new ddsketch: %v", err))
	}
	return &quantileState{q: q, sk: sk}
}

func (s *quantileState) AddNumber(v float64) error {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return notFinite(Quantile, v)
	}
	if s.sk.GetCount() >= maxSketchCount {
		return errSketchFull
	}
	limit := s.sk.MaxIndexableValue()
	v = max(-limit, min(v, limit))
	if err := s.sk.Add(v); err != nil {
		return fmt.Errorf("quantile: add %v: %w", v, err)
	}
	return nil
}

func (s *quantileState) AddKey([]byte) {}
func (s *quantileState) Inc()          {}

func (s *quantileState) Merge(other State) error {
	o, ok := other.(*quantileState)
	if !ok || o.q != s.q {
		return mismatch(s, other)
	}
	if uint64(s.sk.GetCount())+uint64(o.sk.GetCount()) > maxSketchCount {
		return errSketchFull
	}
	if err := s.sk.MergeWith(o.sk); err != nil {
		return fmt.Errorf("merge quantile sketches: %w", err)
	}
	return nil
}

func (s *quantileState) Result() any {
	if s.sk.IsEmpty() {
		return nil
	}
	v, err := s.sk.GetValueAtQuantile(s.q)
	if err != nil {
		return nil
	}
	return v
}

func (s *quantileState) Size() int {
	return sketchSize + storeSize(s.sk.GetPositiveValueStore()) + storeSize(s.sk.GetNegativeValueStore())
}

func storeSize(st store.Store) int {
	lo, err := st.MinIndex()
	if err != nil {
		return 0
	}
	hi, _ := st.MaxIndex()
	return 8 * min(hi-lo+1+binSlack, maxBins)
}

func (s *quantileState) AppendBinary(b []byte) []byte {
	b = appendTag(b, Quantile)
	b = binary.AppendUvarint(b, uint64(s.sk.GetZeroCount()))
	b = appendStore(b, s.sk.GetPositiveValueStore())
	return appendStore(b, s.sk.GetNegativeValueStore())
}

func appendStore(b []byte, st store.Store) []byte {
	n := 0
	st.ForEach(func(int, float64) bool { n++; return false })
	b = binary.AppendUvarint(b, uint64(n))
	first, prev := true, 0
	st.ForEach(func(index int, count float64) bool { // by index
		if first {
			b = binary.AppendVarint(b, int64(index))
		} else {
			b = binary.AppendUvarint(b, uint64(index-prev-1))
		}
		b = binary.AppendUvarint(b, uint64(count))
		first, prev = false, index
		return false
	})
	return b
}

func decodeQuantile(r *reader, q float64) State {
	s := newQuantile(q)
	zero := r.uvarint("zero count")
	if zero > maxSketchCount {
		r.failf("zero count %d, at most %d", zero, uint64(maxSketchCount))
		return s
	}
	m := s.sk.IndexMapping
	lo, hi := m.Index(m.MinIndexableValue()), m.Index(m.MaxIndexableValue())
	total := zero
	total = decodeStore(r, "positive", s.sk.GetPositiveValueStore(), lo, hi, total)
	decodeStore(r, "negative", s.sk.GetNegativeValueStore(), lo, hi, total)
	if r.err == nil && zero > 0 {
		// The zero bin has no index: a value of zero adds it.
		if err := s.sk.AddWithCount(0, float64(zero)); err != nil {
			r.failf("zero count: %v", err)
		}
	}
	return s
}

// decodeStore adds the bins of one sign to st and returns total plus their
// count. Indices are bounded by what the mapping gives indexable values,
// lo to hi.
func decodeStore(r *reader, sign string, st store.Store, lo, hi int, total uint64) uint64 {
	// A bin takes at least two bytes: its index and its count.
	n := r.count(sign+" bins", maxBins, 2)
	var first, index int64
	for i := range n {
		if i == 0 {
			index = r.varint(sign + " bin index")
			first = index
		} else {
			gap := r.uvarint(sign + " bin index")
			if r.err == nil && gap >= maxBins {
				r.failf("%s bin %d: %d past the one before, more than %d bins", sign, i, gap+1, maxBins)
			}
			index += int64(gap) + 1
		}
		count := r.uvarint(sign + " bin count")
		if r.err != nil {
			return total
		}
		switch {
		case index < int64(lo) || index > int64(hi):
			r.failf("%s bin %d: index %d is not between %d and %d", sign, i, index, lo, hi)
		case index-first >= maxBins:
			r.failf("%s bin %d: index %d is %d past the first, more than %d bins", sign, i, index, index-first, maxBins)
		case count == 0:
			r.failf("%s bin %d is empty", sign, i)
		case count > maxSketchCount-total:
			r.failf("%s bin %d: the count of values exceeds %d", sign, i, uint64(maxSketchCount))
		}
		if r.err != nil {
			return total
		}
		total += count
		st.AddWithCount(int(index), float64(count))
	}
	return total
}

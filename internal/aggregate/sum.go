package aggregate

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"math/bits"
	"slices"
	"strconv"
)

// sumState is an exact sum. Float addition rounds, so a float sum depends
// on the order of its terms; integer addition does not, so the sum is kept
// in integers and rounded to a float64 once, by Result.
//
// Each value is taken as its shortest decimal m·10^e, the one
// strconv.FormatFloat(v, 'g', -1, 64) prints and a JSON number read into a
// float64 prints back as: 0.1 + 0.2 is 0.3, not 0.30000000000000004. A
// value of at most nine decimals and below 9.6e15 or so, as most are, is
// added to units, a count of 1e-9 (2^44 of the largest fit before 128 bits
// overflow). Any other value's mantissa (at most 17 digits) is added to the
// term of its exponent (2^70 fit). Which of them a value goes to depends on
// the value only, and a term that sums to zero is dropped, so the state is
// a function of the multiset of values, whatever their order.
type sumState struct {
	units i128
	terms []term // by e, none zero
}

type term struct {
	e int16
	m i128
}

const (
	// unitBits bounds a value's units: more goes to a term.
	unitBits = 83
	// Shortest decimals of finite float64s have exponents in
	// [minExp, maxExp]: 5e-324 and 2.2250738585072014e-308 have -324,
	// 1.7976931348623157e308 has 292 and 1e308 has 308.
	minExp   = -324
	maxExp   = 308
	maxTerms = maxExp - minExp + 1
	// termSize and sumSize are estimates of heap bytes.
	termSize = 32
	sumSize  = 48
)

var errOverflow = fmt.Errorf("the sum overflows 128 bits: %w", ErrOverflow)

func (s *sumState) AddNumber(v float64) error {
	if u, ok := fastUnits(v); ok {
		if t, ok := s.units.add(u); ok {
			s.units = t
			return nil
		}
	}
	return s.addSlow(Sum, v)
}

// fastUnits returns v in units of 1e-9 if it has at most nine decimals,
// without formatting it, when that is cheap to tell: for integers below
// 2^53 and for values below 2^23, where float64s are closer together than
// 1e-9 and so at most one multiple of 1e-9 reads as v. When it reports
// true, addSlow would have added the same units.
func fastUnits(v float64) (i128, bool) {
	a := math.Abs(v)
	if !(a < 1<<53) { // also NaN and infinities
		return i128{}, false
	}
	if n := int64(v); float64(n) == v {
		if a < 1<<33 {
			return i128From(n * 1e9), true
		}
		m := uint64(n)
		if n < 0 {
			m = uint64(-n)
		}
		hi, lo := bits.Mul64(m, 1e9)
		return fromMagnitude(hi, lo, n < 0), true
	}
	if a < 1<<23 {
		// x is exact, and so is the division's rounding: x/1e9 == v says
		// that the decimal x·1e-9 reads as v.
		x := math.Round(v * 1e9)
		if x/1e9 == v {
			return i128From(int64(x)), true
		}
	}
	return i128{}, false
}

func (s *sumState) addSlow(f Func, v float64) error {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return notFinite(f, v)
	}
	neg, m, e := shortest(v)
	if u, ok := decimalUnits(neg, m, e); ok {
		t, ok := s.units.add(u)
		if !ok {
			return fmt.Errorf("%s: add %v: %w", f, v, errOverflow)
		}
		s.units = t
		return nil
	}
	if err := s.addTerm(e, fromMagnitude(0, m, neg)); err != nil {
		return fmt.Errorf("%s: add %v: %w", f, v, err)
	}
	return nil
}

// shortest returns the shortest decimal of v, ±m·10^e, with m not a
// multiple of 10 (or m and e zero).
func shortest(v float64) (neg bool, m uint64, e int) {
	var buf [32]byte
	s := strconv.AppendFloat(buf[:0], v, 'e', -1, 64) // -d.ddde±dd
	if s[0] == '-' {
		neg, s = true, s[1:]
	}
	digits, i := 0, 0
	for ; s[i] != 'e'; i++ {
		if s[i] != '.' {
			m = m*10 + uint64(s[i]-'0')
			digits++
		}
	}
	exp, sign := 0, 1
	for _, c := range s[i+1:] {
		switch c {
		case '-':
			sign = -1
		case '+':
		default:
			exp = exp*10 + int(c-'0')
		}
	}
	if m == 0 {
		return neg, 0, 0
	}
	e = sign*exp - (digits - 1)
	for m%10 == 0 {
		m /= 10
		e++
	}
	return neg, m, e
}

// decimalUnits returns ±m·10^e in units of 1e-9, if it is a whole number
// of them of at most unitBits bits.
func decimalUnits(neg bool, m uint64, e int) (i128, bool) {
	if m == 0 {
		return i128{}, true
	}
	if e < -9 {
		return i128{}, false
	}
	hi, lo, ok := mulPow10(m, e+9)
	if !ok || bitLen(hi, lo) > unitBits {
		return i128{}, false
	}
	return fromMagnitude(hi, lo, neg), true
}

func (s *sumState) addTerm(e int, m i128) error {
	i, found := slices.BinarySearchFunc(s.terms, e, func(t term, e int) int { return int(t.e) - e })
	if !found {
		s.terms = slices.Insert(s.terms, i, term{e: int16(e), m: m})
		return nil
	}
	t, ok := s.terms[i].m.add(m)
	if !ok {
		return errOverflow
	}
	if t.isZero() {
		s.terms = slices.Delete(s.terms, i, i+1)
	} else {
		s.terms[i].m = t
	}
	return nil
}

func (s *sumState) AddKey([]byte) {}
func (s *sumState) Inc()          {}
func (s *sumState) Size() int     { return sumSize + termSize*len(s.terms) }

func (s *sumState) Merge(other State) error {
	o, ok := other.(*sumState)
	if !ok {
		return mismatch(s, other)
	}
	return s.merge(o)
}

// merge adds o to s, or changes nothing and returns an error.
func (s *sumState) merge(o *sumState) error {
	units, ok := s.units.add(o.units)
	if !ok {
		return fmt.Errorf("merge sums: %w", errOverflow)
	}
	terms := s.terms
	if len(o.terms) > 0 {
		terms = make([]term, 0, len(s.terms)+len(o.terms))
		a, b := s.terms, o.terms
		for len(a) > 0 || len(b) > 0 {
			switch {
			case len(b) == 0 || len(a) > 0 && a[0].e < b[0].e:
				terms, a = append(terms, a[0]), a[1:]
			case len(a) == 0 || b[0].e < a[0].e:
				terms, b = append(terms, b[0]), b[1:]
			default:
				m, ok := a[0].m.add(b[0].m)
				if !ok {
					return fmt.Errorf("merge sums: %w", errOverflow)
				}
				if !m.isZero() {
					terms = append(terms, term{e: a[0].e, m: m})
				}
				a, b = a[1:], b[1:]
			}
		}
	}
	s.units, s.terms = units, terms
	return nil
}

func (s *sumState) Result() any {
	if len(s.terms) == 0 {
		hi, lo, neg := s.units.abs()
		qhi, r := hi/1e9, hi%1e9
		qlo, rem := bits.Div64(r, lo, 1e9)
		if rem == 0 && qhi == 0 && (qlo < 1<<63 || neg && qlo == 1<<63) {
			if neg {
				return -int64(qlo)
			}
			return int64(qlo)
		}
		if f, ok := s.units.quoFloat(1e9); ok {
			return f
		}
	}
	r := s.rat(1)
	if r.IsInt() && r.Num().IsInt64() {
		return r.Num().Int64()
	}
	f, _ := r.Float64()
	if math.IsInf(f, 0) {
		return nil
	}
	return f
}

// quoFloat returns a/d rounded to a float64 when a single float division
// rounds it correctly: when a and d are exact in a float64.
func (a i128) quoFloat(d float64) (float64, bool) {
	if !a.isInt64() || d > 1<<53 {
		return 0, false
	}
	n := int64(a.lo)
	if n > 1<<53 || n < -1<<53 {
		return 0, false
	}
	return float64(n) / d, true
}

// rat returns the sum divided by n, exactly.
func (s *sumState) rat(n int64) *big.Rat {
	// The sum is num/10^scale, scale making every exponent a whole one.
	scale := 9
	if len(s.terms) > 0 && int(s.terms[0].e) < -scale {
		scale = -int(s.terms[0].e)
	}
	ten := big.NewInt(10)
	pow := func(k int) *big.Int { return new(big.Int).Exp(ten, big.NewInt(int64(k)), nil) }
	num := s.units.big()
	num.Mul(num, pow(scale-9))
	var t big.Int
	for _, tm := range s.terms {
		t.Mul(tm.m.big(), pow(int(tm.e)+scale))
		num.Add(num, &t)
	}
	den := pow(scale)
	den.Mul(den, big.NewInt(n))
	return new(big.Rat).SetFrac(num, den)
}

func (a i128) big() *big.Int {
	hi, lo, neg := a.abs()
	z := new(big.Int).SetUint64(hi)
	z.Lsh(z, 64)
	z.Or(z, new(big.Int).SetUint64(lo))
	if neg {
		z.Neg(z)
	}
	return z
}

func (s *sumState) AppendBinary(b []byte) []byte {
	return s.appendBody(appendTag(b, Sum))
}

func (s *sumState) appendBody(b []byte) []byte {
	b = appendI128(b, s.units)
	b = binary.AppendUvarint(b, uint64(len(s.terms)))
	for _, t := range s.terms {
		b = binary.AppendVarint(b, int64(t.e))
		b = appendI128(b, t.m)
	}
	return b
}

func decodeSum(r *reader) State {
	s := new(sumState)
	s.decodeBody(r)
	return s
}

func (s *sumState) decodeBody(r *reader) {
	s.units = r.i128("units")
	// A term takes at least two bytes: its exponent and its sum.
	k := r.count("terms", maxTerms, 2)
	if k > 0 {
		s.terms = make([]term, 0, k)
	}
	for i := range k {
		e := r.varint("exponent")
		m := r.i128("term")
		if r.err != nil {
			return
		}
		switch {
		case e < minExp || e > maxExp:
			r.failf("term %d: exponent %d is not between %d and %d", i, e, minExp, maxExp)
			return
		case i > 0 && e <= int64(s.terms[i-1].e):
			r.failf("term %d: exponent %d after %d", i, e, s.terms[i-1].e)
			return
		case m.isZero():
			r.failf("term %d: zero", i)
			return
		}
		s.terms = append(s.terms, term{e: int16(e), m: m})
	}
}

// avgState is an exact sum and a count of values.
type avgState struct {
	sum sumState
	n   int64
}

var errAvgFull = fmt.Errorf("avg: the count of values overflows int64: %w", ErrOverflow)

func (s *avgState) AddNumber(v float64) error {
	if s.n == math.MaxInt64 {
		return errAvgFull
	}
	if u, ok := fastUnits(v); ok {
		if t, ok := s.sum.units.add(u); ok {
			s.sum.units = t
			s.n++
			return nil
		}
	}
	if err := s.sum.addSlow(Avg, v); err != nil {
		return err
	}
	s.n++
	return nil
}

func (s *avgState) AddKey([]byte) {}
func (s *avgState) Inc()          {}
func (s *avgState) Size() int     { return s.sum.Size() + 8 }

func (s *avgState) Merge(other State) error {
	o, ok := other.(*avgState)
	if !ok {
		return mismatch(s, other)
	}
	if s.n > math.MaxInt64-o.n {
		return errAvgFull
	}
	if err := s.sum.merge(&o.sum); err != nil {
		return err
	}
	s.n += o.n
	return nil
}

func (s *avgState) Result() any {
	if s.n == 0 {
		return nil
	}
	if len(s.sum.terms) == 0 {
		if f, ok := s.sum.units.quoFloat(1e9 * float64(s.n)); ok {
			return f
		}
	}
	f, _ := s.sum.rat(s.n).Float64()
	return f
}

func (s *avgState) AppendBinary(b []byte) []byte {
	b = binary.AppendUvarint(appendTag(b, Avg), uint64(s.n))
	return s.sum.appendBody(b)
}

func decodeAvg(r *reader) State {
	s := new(avgState)
	n := r.uvarint("count")
	s.sum.decodeBody(r)
	switch {
	case r.err != nil:
	case n > math.MaxInt64:
		r.failf("count %d overflows int64", n)
	case n == 0 && (!s.sum.units.isZero() || len(s.sum.terms) > 0):
		r.failf("a sum of no values is not zero")
	}
	s.n = int64(n)
	return s
}

// Package aggregate holds the state of one aggregate (count, sum, avg, min,
// max, count_distinct, quantile) of one window. Every state is mergeable,
// gives the same result whatever the order of its inputs, and encodes
// canonically, so that a pipeline that crashes, restores a snapshot and
// replays its input produces the same output byte for byte.
//
// Sums and averages are exact: of the values' shortest decimals, rounded
// once at the end. count_distinct is exact up to Spec.MaxExact keys, then
// a HyperLogLog estimate; quantile is a DDSketch estimate within 1%.
//
// # Encoding
//
// A state encodes as a tag byte, version<<4 | Func (version 1), followed
// by a body of its kind. Varints are encoding/binary's, and must be
// minimal; i128 is a 128-bit integer, zigzagged and written as a LEB128
// varint of up to 19 bytes. Decode refuses any encoding that AppendBinary
// would not have written, so a decoded state encodes back to the same bytes.
//
//	count           uvarint n
//	sum             sum body (below)
//	avg             uvarint n, sum body; n = 0 only with an empty sum body
//	min, max        byte 0 (empty) | byte 1, float64 bits, big endian
//	                (finite, never -0)
//	count_distinct  byte 0, uvarint n (<= MaxExact), n xxhash64s, 8 bytes
//	                big endian each, strictly increasing
//	              | byte 1, HyperLogLog registers (below)
//	quantile        uvarint zero count, store of positive values,
//	                store of negative values (below)
//
//	sum body        i128 units of 1e-9, uvarint k (<= 633),
//	                k × (varint e, i128 m ≠ 0), e strictly increasing
//	                in [-324, 308]; the sum is units·1e-9 + Σ m·10^e
//	HLL registers   byte 0, uvarint k (0 < k < 4096 non-zero registers),
//	                k × (uvarint zero registers skipped, byte value ≠ 0)
//	              | byte 1, 16384 register bytes (4096 or more non-zero);
//	                register values are at most 51
//	store           uvarint k (<= 2048 bins), and when k > 0: varint index,
//	                uvarint count, (k-1) × (uvarint empty bins skipped,
//	                uvarint count); counts non-zero, the last index less
//	                than 2048 past the first
package aggregate

import (
	"errors"
	"fmt"
	"strings"
)

// Func is an aggregate function.
type Func uint8

// Aggregate functions.
const (
	Count Func = iota + 1
	Sum
	Avg
	Min
	Max
	CountDistinct
	Quantile
)

func (f Func) String() string {
	switch f {
	case Count:
		return "count"
	case Sum:
		return "sum"
	case Avg:
		return "avg"
	case Min:
		return "min"
	case Max:
		return "max"
	case CountDistinct:
		return "count_distinct"
	case Quantile:
		return "quantile"
	}
	return fmt.Sprintf("func(%d)", uint8(f))
}

// ParseFunc reads a function as String writes it.
func ParseFunc(s string) (Func, error) {
	names := make([]string, 0, Quantile)
	for f := Count; f <= Quantile; f++ {
		if s == f.String() {
			return f, nil
		}
		names = append(names, f.String())
	}
	return 0, fmt.Errorf("unknown aggregate %q: want %s or %s",
		s, strings.Join(names[:len(names)-1], ", "), names[len(names)-1])
}

// Args returns how many arguments the function takes in a spec
// expression: none for count, the value for the others, and the value and
// q for quantile. The arguments of an event are one number or, for
// count_distinct, one key; quantile's q is Spec.Q, fixed per aggregate.
func (f Func) Args() int {
	switch f {
	case Count:
		return 0
	case Quantile:
		return 2
	}
	return 1
}

func (f Func) valid() bool { return f >= Count && f <= Quantile }

// DefaultMaxExact is Spec.MaxExact when it is zero.
const DefaultMaxExact = 1000

// MaxMaxExact bounds Spec.MaxExact: an exact set holds 16 bytes or so per
// key, in every window of every group key.
const MaxMaxExact = 1 << 20

// Spec defines an aggregate.
type Spec struct {
	Func Func
	// Q is quantile's quantile, in [0, 1]: 0.5 is the median. The other
	// functions take none.
	Q float64
	// MaxExact is how many distinct keys count_distinct counts exactly
	// before it estimates them with a HyperLogLog sketch. Zero means
	// DefaultMaxExact. The other functions take none.
	MaxExact int
}

// Validate checks the function and its parameters.
func (s Spec) Validate() error {
	if !s.Func.valid() {
		return fmt.Errorf("unknown aggregate function %d", uint8(s.Func))
	}
	if s.Func == Quantile {
		if !(s.Q >= 0 && s.Q <= 1) {
			return fmt.Errorf("quantile: q %v is not between 0 and 1", s.Q)
		}
	} else if s.Q != 0 {
		return fmt.Errorf("%s takes no quantile, got q %v", s.Func, s.Q)
	}
	if s.Func == CountDistinct {
		if s.MaxExact < 0 || s.MaxExact > MaxMaxExact {
			return fmt.Errorf("count_distinct: max exact %d is not between 0 and %d", s.MaxExact, MaxMaxExact)
		}
	} else if s.MaxExact != 0 {
		return fmt.Errorf("%s takes no max exact, got %d", s.Func, s.MaxExact)
	}
	return nil
}

func (s Spec) maxExact() int {
	if s.MaxExact == 0 {
		return DefaultMaxExact
	}
	return s.MaxExact
}

// ErrNotFinite is returned, wrapped, by AddNumber for a NaN or an infinity.
var ErrNotFinite = errors.New("not a finite number")

// ErrMismatch is returned, wrapped, by Merge for a state of another Spec.
var ErrMismatch = errors.New("aggregates differ")

// ErrOverflow is returned, wrapped, by AddNumber and Merge when the state
// cannot hold more: a sum beyond 128 bits, more than math.MaxInt64 values
// in an avg or 2^53 in a quantile. Nothing is changed. No stream reaches
// these bounds; states decoded from crafted bytes can.
var ErrOverflow = errors.New("aggregate overflows")

// ErrCorrupt is returned, wrapped with what is wrong, by Decode.
var ErrCorrupt = errors.New("corrupt aggregate state")

// State is one aggregate of one window. Its result depends only on the
// multiset of inputs it was given, directly or through Merge, never on
// their order. It is not safe for concurrent use.
type State interface {
	// AddNumber adds a value to sum, avg, min, max or quantile. A NaN or
	// infinity is refused with an error wrapping ErrNotFinite, as is any
	// number by count and count_distinct, and a value the state cannot
	// hold with ErrOverflow; a refused value changes nothing.
	AddNumber(v float64) error
	// AddKey adds a key to count_distinct; other states ignore it. The
	// state keeps a hash of k, never k.
	AddKey(k []byte)
	// Inc counts an event for count; other states ignore it (avg counts
	// its values in AddNumber).
	Inc()
	// Merge adds other's inputs to the state, as when two session windows
	// become one. other must come from New or Decode with the same Spec,
	// else Merge returns an error wrapping ErrMismatch; it returns one
	// wrapping ErrOverflow when the state cannot hold both. Either way it
	// changes nothing. other is neither changed nor retained.
	Merge(other State) error
	// Result returns the aggregate as a JSON-ready value: int64 for count
	// and count_distinct; for sum an int64 when the sum is a whole number
	// within int64, a float64 otherwise; float64 for avg, min, max and
	// quantile. An empty avg, min, max or quantile is nil, as is a sum too
	// large for a float64 (as JavaScript's JSON.stringify writes an
	// infinity); an empty count, sum or count_distinct is 0.
	Result() any
	// AppendBinary appends the state's encoding to b and returns the
	// extended slice. Two states of the same Spec given the same inputs,
	// in any order and through any merges, encode identically.
	AppendBinary(b []byte) []byte
	// Size estimates the heap bytes the state holds, for state limits. It
	// is a function of the state's content, so a decoded state has the
	// size of the state it was encoded from.
	Size() int
}

// New returns an empty state of s, which must be valid.
func New(s Spec) State {
	switch s.Func {
	case Count:
		return new(countState)
	case Sum:
		return new(sumState)
	case Avg:
		return new(avgState)
	case Min:
		return &extremeState{max: false}
	case Max:
		return &extremeState{max: true}
	case CountDistinct:
		return newDistinct(s.maxExact())
	case Quantile:
		return newQuantile(s.Q)
	}
	panic(fmt.Sprintf("aggregate: New of invalid function %d", uint8(s.Func)))
}

// version is the encoding's version, the tag byte's high nibble.
const version = 1

// Decode reads a state of s that AppendBinary encoded at the start of b and
// returns it and the bytes after it. b is untrusted: anything AppendBinary
// would not have written is an error wrapping ErrCorrupt that says what is
// wrong, never a panic, and no count is allocated for before it is bounded
// by the Spec, the format and the bytes left. The state does not retain b.
func Decode(s Spec, b []byte) (State, []byte, error) {
	if err := s.Validate(); err != nil {
		return nil, b, fmt.Errorf("decode aggregate: %w", err)
	}
	r := &reader{f: s.Func, b: b}
	tag := r.byte("tag")
	if r.err != nil {
		return nil, b, r.err
	}
	if v := tag >> 4; v != version {
		return nil, b, r.failf("encoding version %d, want %d", v, version)
	}
	if f := Func(tag & 0x0f); f != s.Func {
		return nil, b, r.failf("the state is of %s", f)
	}
	var st State
	switch s.Func {
	case Count:
		st = decodeCount(r)
	case Sum:
		st = decodeSum(r)
	case Avg:
		st = decodeAvg(r)
	case Min, Max:
		st = decodeExtreme(r, s.Func == Max)
	case CountDistinct:
		st = decodeDistinct(r, s.maxExact())
	case Quantile:
		st = decodeQuantile(r, s.Q)
	}
	if r.err != nil {
		return nil, b, r.err
	}
	return st, r.b, nil
}

func appendTag(b []byte, f Func) []byte { return append(b, version<<4|byte(f)) }

func mismatch(s State, other State) error {
	return fmt.Errorf("merge %s into %s: %w", describe(other), describe(s), ErrMismatch)
}

func describe(s State) string {
	switch s := s.(type) {
	case *countState:
		return "count"
	case *sumState:
		return "sum"
	case *avgState:
		return "avg"
	case *extremeState:
		if s.max {
			return "max"
		}
		return "min"
	case *distinctState:
		return fmt.Sprintf("count_distinct (max exact %d)", s.maxExact)
	case *quantileState:
		return fmt.Sprintf("quantile %v", s.q)
	}
	return fmt.Sprintf("%T", s)
}

func notNumber(f Func) error { return fmt.Errorf("%s takes no number", f) }

func notFinite(f Func, v float64) error {
	return fmt.Errorf("%s: value %v: %w", f, v, ErrNotFinite)
}

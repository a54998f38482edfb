package aggregate

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/DataDog/sketches-go/ddsketch/store"
)

// event is one aggregate's input: a number, or a key for count_distinct;
// count takes neither.
type event struct {
	num float64
	key string
}

func nums(vs ...float64) []event {
	ev := make([]event, len(vs))
	for i, v := range vs {
		ev[i] = event{num: v}
	}
	return ev
}

func keys(ks ...string) []event {
	ev := make([]event, len(ks))
	for i, k := range ks {
		ev[i] = event{key: k}
	}
	return ev
}

func add(t testing.TB, s Spec, st State, ev []event) {
	t.Helper()
	for _, e := range ev {
		switch s.Func {
		case Count:
			st.Inc()
		case CountDistinct:
			st.AddKey([]byte(e.key))
		default:
			if err := st.AddNumber(e.num); err != nil {
				t.Fatalf("%s: AddNumber(%v): %v", s.Func, e.num, err)
			}
		}
	}
}

func build(t testing.TB, s Spec, ev []event) State {
	t.Helper()
	st := New(s)
	add(t, s, st, ev)
	return st
}

func TestFuncNames(t *testing.T) {
	for f := Count; f <= Quantile; f++ {
		got, err := ParseFunc(f.String())
		if err != nil || got != f {
			t.Errorf("ParseFunc(%q) = %v, %v; want %v", f.String(), got, err, f)
		}
	}
	_, err := ParseFunc("median")
	want := `unknown aggregate "median": want count, sum, avg, min, max, count_distinct or quantile`
	if err == nil || err.Error() != want {
		t.Errorf("ParseFunc(median) error = %v, want %s", err, want)
	}
	if got := Func(42).String(); got != "func(42)" {
		t.Errorf("Func(42).String() = %q", got)
	}
	for f, want := range map[Func]int{Count: 0, Sum: 1, Avg: 1, Min: 1, Max: 1, CountDistinct: 1, Quantile: 2} {
		if got := f.Args(); got != want {
			t.Errorf("%s.Args() = %d, want %d", f, got, want)
		}
	}
}

func TestSpecValidate(t *testing.T) {
	tests := []struct {
		spec Spec
		err  string // substring; "" for valid
	}{
		{Spec{Func: Count}, ""},
		{Spec{Func: Quantile, Q: 0}, ""},
		{Spec{Func: Quantile, Q: 1}, ""},
		{Spec{Func: Quantile, Q: 0.99}, ""},
		{Spec{Func: CountDistinct}, ""},
		{Spec{Func: CountDistinct, MaxExact: MaxMaxExact}, ""},
		{Spec{}, "unknown aggregate function 0"},
		{Spec{Func: 8}, "unknown aggregate function 8"},
		{Spec{Func: Quantile, Q: 1.5}, "q 1.5 is not between 0 and 1"},
		{Spec{Func: Quantile, Q: -0.1}, "q -0.1 is not between 0 and 1"},
		{Spec{Func: Quantile, Q: math.NaN()}, "q NaN is not between 0 and 1"},
		{Spec{Func: Sum, Q: 0.5}, "sum takes no quantile"},
		{Spec{Func: CountDistinct, MaxExact: -1}, "max exact -1 is not between 0 and"},
		{Spec{Func: CountDistinct, MaxExact: MaxMaxExact + 1}, "is not between 0 and"},
		{Spec{Func: Avg, MaxExact: 10}, "avg takes no max exact"},
	}
	for _, tt := range tests {
		err := tt.spec.Validate()
		switch {
		case tt.err == "" && err != nil:
			t.Errorf("%+v: got %v, want no error", tt.spec, err)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("%+v: got %v, want an error with %q", tt.spec, err, tt.err)
		}
	}
}

func seq(n int, f func(i int) float64) []float64 {
	vs := make([]float64, n)
	for i := range vs {
		vs[i] = f(i)
	}
	return vs
}

func TestResult(t *testing.T) {
	var (
		count    = Spec{Func: Count}
		sum      = Spec{Func: Sum}
		avg      = Spec{Func: Avg}
		minimum  = Spec{Func: Min}
		maximum  = Spec{Func: Max}
		distinct = Spec{Func: CountDistinct}
		median   = Spec{Func: Quantile, Q: 0.5}
	)
	tests := []struct {
		name string
		spec Spec
		in   []event
		want any
	}{
		{"count empty", count, nil, int64(0)},
		{"count", count, nums(0, 0, 0), int64(3)},
		{"sum empty", sum, nil, int64(0)},
		{"sum integers", sum, nums(1, 2, 3), int64(6)},
		{"sum decimals", sum, nums(0.1, 0.2), 0.3},
		{"sum decimals to a whole number", sum, nums(0.1, 0.2, 0.7), int64(1)},
		{"sum ten tenths", sum, nums(seq(10, func(int) float64 { return 0.1 })...), int64(1)},
		{"sum cancelling", sum, nums(123.456789, 1e15, -123.456789, -1e15), int64(0)},
		{"sum half", sum, nums(1.5), 1.5},
		{"sum negative", sum, nums(-2.25, -0.5), -2.75},
		{"sum beyond 2^53", sum, nums(1<<53, 1<<53, 1), int64(1<<54 + 1)},
		{"sum beyond int64", sum, nums(1e20, 1), 1e20},
		{"sum big and small", sum, nums(1e300, 0.5, -1e300), 0.5},
		{"sum subnormals", sum, nums(5e-324, 5e-324), 1e-323},
		{"sum many digits", sum, nums(0.1234567891234, 0.8765432108766), int64(1)},
		{"sum beyond float64", sum, nums(1e308, 1e308), nil},
		{"sum below -float64", sum, nums(-1e308, -1e308), nil},
		{"sum of 1e18s", sum, nums(1e18, 1e18, -1), int64(2e18 - 1)},
		{"sum of a large integer, as its decimal", sum, nums(-(1 << 63)), -9.223372036854776e18},
		{"avg empty", avg, nil, nil},
		{"avg", avg, nums(1, 2), 1.5},
		{"avg decimals", avg, nums(0.1, 0.2), 0.15},
		{"avg thirds", avg, nums(1, 0, 0), 1.0 / 3},
		{"avg big", avg, nums(1e300, 3e300), 2e300},
		{"avg tiny", avg, nums(5e-324, 1.5e-323), 1e-323},
		{"min empty", minimum, nil, nil},
		{"min", minimum, nums(3, -1.5, 2), -1.5},
		{"min zeros", minimum, nums(0, math.Copysign(0, -1)), 0.0},
		{"max empty", maximum, nil, nil},
		{"max", maximum, nums(3, -1.5, 2), 3.0},
		{"max zeros", maximum, nums(math.Copysign(0, -1), 0), 0.0},
		{"max negative zero", maximum, nums(math.Copysign(0, -1), -1), 0.0},
		{"count_distinct empty", distinct, nil, int64(0)},
		{"count_distinct", distinct, keys("a", "b", "a", "", ""), int64(3)},
		{"quantile empty", median, nil, nil},
		{"quantile zeros", median, nums(0, 0, 0), 0.0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := build(t, tt.spec, tt.in).Result()
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %#v (%T), want %#v (%T)", got, got, tt.want, tt.want)
			}
			if f, ok := got.(float64); ok && math.Signbit(f) && f == 0 {
				t.Fatalf("got -0, want 0")
			}
		})
	}
}

func TestQuantileResult(t *testing.T) {
	tests := []struct {
		q    float64
		in   []float64
		want float64
	}{
		{0.5, seq(100, func(i int) float64 { return float64(i + 1) }), 50},
		{0, seq(100, func(i int) float64 { return float64(i + 1) }), 1},
		{1, seq(100, func(i int) float64 { return float64(i + 1) }), 100},
		{0.99, seq(100, func(i int) float64 { return float64(i + 1) }), 99},
		{0.5, []float64{-5, -3, -1}, -3},
		{0.5, []float64{-2, 0, 0, 0, 7}, 0},
		{1, []float64{math.MaxFloat64}, 1.2585752536124683e308}, // clamped
	}
	for _, tt := range tests {
		s := Spec{Func: Quantile, Q: tt.q}
		got, ok := build(t, s, nums(tt.in...)).Result().(float64)
		if !ok || !within(got, tt.want, relativeAccuracy) {
			t.Errorf("q %v of %v: got %v, want %v within 1%%", tt.q, tt.in[:min(len(tt.in), 5)], got, tt.want)
		}
	}
}

func within(got, want, rel float64) bool {
	if want == 0 {
		return got == 0
	}
	return math.Abs(got-want) <= rel*math.Abs(want)*(1+1e-9)
}

func TestAddNumberRefused(t *testing.T) {
	for _, s := range []Spec{{Func: Sum}, {Func: Avg}, {Func: Min}, {Func: Max}, {Func: Quantile, Q: 0.5}} {
		st := build(t, s, nums(1, 2.5))
		before := st.AppendBinary(nil)
		for _, v := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
			err := st.AddNumber(v)
			if !errors.Is(err, ErrNotFinite) {
				t.Errorf("%s: AddNumber(%v) error = %v, want ErrNotFinite", s.Func, v, err)
			}
		}
		if after := st.AppendBinary(nil); !bytes.Equal(before, after) {
			t.Errorf("%s: a refused value changed the state", s.Func)
		}
	}
	for _, s := range []Spec{{Func: Count}, {Func: CountDistinct}} {
		if err := New(s).AddNumber(1); err == nil || !strings.Contains(err.Error(), "takes no number") {
			t.Errorf("%s: AddNumber error = %v, want one saying it takes no number", s.Func, err)
		}
	}
}

// TestSumFastPath checks that the fast path gives every value it takes the
// units of the value's shortest decimal, as the slow path does.
func TestSumFastPath(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var vs []float64
	for range 200000 {
		var v float64
		switch r.IntN(6) {
		case 0: // a decimal of up to 12 digits, as JSON gives
			d := r.IntN(13)
			v, _ = strconv.ParseFloat(fmt.Sprintf("%d.%0*d", r.Int64N(1e7), d, r.Int64N(int64(math.Pow10(d)))), 64)
		case 1: // an integer
			v = float64(r.Int64N(1 << 55))
		case 2: // any bits
			v = math.Float64frombits(r.Uint64())
		case 3: // near the fast path's bounds
			v = math.Ldexp(1+r.Float64(), 22+r.IntN(2)) + float64(r.IntN(1000))/1000
		case 4:
			v = r.NormFloat64() * 1e6
		case 5: // nine decimals near 2^23
			v, _ = strconv.ParseFloat(fmt.Sprintf("%d.%09d", 8388608-r.IntN(1000), r.IntN(1e9)), 64)
		}
		if r.IntN(2) == 0 {
			v = -v
		}
		vs = append(vs, v)
	}
	fast := 0
	for _, v := range vs {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		got, ok := fastUnits(v)
		if !ok {
			continue
		}
		fast++
		want, ok := decimalUnits(shortest(v))
		if !ok || got != want {
			t.Fatalf("%v (%s): fast path %v, slow path %v, %v", v, strconv.FormatFloat(v, 'g', -1, 64), got, want, ok)
		}
	}
	if fast < len(vs)/3 {
		t.Errorf("only %d of %d values took the fast path", fast, len(vs))
	}
}

func TestShortest(t *testing.T) {
	tests := []struct {
		v   float64
		neg bool
		m   uint64
		e   int
	}{
		{0, false, 0, 0},
		{1, false, 1, 0},
		{1200, false, 12, 2},
		{-0.25, true, 25, -2},
		{5e-324, false, 5, -324},
		{2.2250738585072014e-308, false, 22250738585072014, -324},
		{math.MaxFloat64, false, 17976931348623157, 292},
		{1e308, false, 1, 308},
		{0.1, false, 1, -1},
		{123.456789, false, 123456789, -6},
	}
	for _, tt := range tests {
		neg, m, e := shortest(tt.v)
		if neg != tt.neg || m != tt.m || e != tt.e {
			t.Errorf("shortest(%v) = %v, %d, %d; want %v, %d, %d", tt.v, neg, m, e, tt.neg, tt.m, tt.e)
		}
	}
}

// exactSum is the sum of the values' shortest decimals, rounded once.
func exactSum(vs []float64) float64 {
	var s big.Rat
	for _, v := range vs {
		var r big.Rat
		r.SetString(strconv.FormatFloat(v, 'g', -1, 64))
		s.Add(&s, &r)
	}
	f, _ := s.Float64()
	return f
}

func asFloat(v any) float64 {
	switch v := v.(type) {
	case int64:
		return float64(v)
	case float64:
		return v
	}
	return math.NaN()
}

func TestSumExact(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 200 {
		var vs []float64
		for range 1 + r.IntN(50) {
			var v float64
			switch r.IntN(5) {
			case 0:
				v = float64(r.IntN(2000)-1000) / 100
			case 1:
				v = r.NormFloat64()
			case 2:
				v = math.Ldexp(r.Float64(), r.IntN(2000)-1000)
			case 3:
				v = float64(r.Int64())
			case 4:
				v = 1 / float64(1+r.IntN(100))
			}
			vs = append(vs, v)
		}
		sum := build(t, Spec{Func: Sum}, nums(vs...)).Result()
		if got, want := asFloat(sum), exactSum(vs); got != want {
			t.Fatalf("case %d: sum of %v = %v, want %v", i, vs, got, want)
		}
		avg := build(t, Spec{Func: Avg}, nums(vs...)).Result()
		var want big.Rat
		for _, v := range vs {
			var x big.Rat
			x.SetString(strconv.FormatFloat(v, 'g', -1, 64))
			want.Add(&want, &x)
		}
		want.Quo(&want, new(big.Rat).SetInt64(int64(len(vs))))
		if w, _ := want.Float64(); avg != w {
			t.Fatalf("case %d: avg of %v = %v, want %v", i, vs, avg, w)
		}
	}
}

// inputs are, per Spec, inputs that exercise every representation.
func inputs() []struct {
	name string
	spec Spec
	in   []event
} {
	r := rand.New(rand.NewPCG(5, 6))
	sums := []float64{0.1, 0.2, 0.3, 1e15, -1e15, 123.456789, -7, 0, math.Copysign(0, -1),
		1e300, -1e300, 5e-324, 0.1234567891234, 1e20, 1 << 60, -2.5e-10, math.MaxFloat64}
	for range 200 {
		sums = append(sums, math.Round(r.NormFloat64()*1e6)/1e3, r.NormFloat64())
	}
	wide := []float64{0, 0, math.MaxFloat64, -math.MaxFloat64, 5e-324, -5e-324}
	for k := -300; k <= 300; k += 3 {
		wide = append(wide, math.Pow(10, float64(k)), -2*math.Pow(10, float64(k)))
	}
	for range 500 {
		wide = append(wide, r.NormFloat64()*100, r.ExpFloat64())
	}
	distinct := func(n, repeat int) []event {
		var ev []event
		for i := range n {
			for range repeat {
				ev = append(ev, event{key: "key-" + strconv.Itoa(i)})
			}
		}
		return ev
	}
	return []struct {
		name string
		spec Spec
		in   []event
	}{
		{"count", Spec{Func: Count}, nums(seq(100, func(int) float64 { return 0 })...)},
		{"sum fast", Spec{Func: Sum}, nums(seq(300, func(i int) float64 { return float64(i%17) / 4 })...)},
		{"sum", Spec{Func: Sum}, nums(sums...)},
		{"avg", Spec{Func: Avg}, nums(sums...)},
		{"min", Spec{Func: Min}, nums(sums...)},
		{"max", Spec{Func: Max}, nums(sums...)},
		{"min zeros", Spec{Func: Min}, nums(0, math.Copysign(0, -1), 0, math.Copysign(0, -1))},
		{"max zeros", Spec{Func: Max}, nums(0, math.Copysign(0, -1), 0, math.Copysign(0, -1))},
		{"count_distinct exact", Spec{Func: CountDistinct}, distinct(300, 3)},
		{"count_distinct at bound", Spec{Func: CountDistinct, MaxExact: 100}, distinct(100, 2)},
		{"count_distinct sparse hll", Spec{Func: CountDistinct, MaxExact: 100}, distinct(500, 2)},
		{"count_distinct dense hll", Spec{Func: CountDistinct, MaxExact: 100}, distinct(20000, 1)},
		{"quantile", Spec{Func: Quantile, Q: 0.9}, nums(sums...)},
		{"quantile collapsed", Spec{Func: Quantile, Q: 0.25}, nums(wide...)},
	}
}

func shuffled[T any](r *rand.Rand, s []T) []T {
	s = slices.Clone(s)
	r.Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] })
	return s
}

// TestOrderIndependence adds the same inputs in many orders, directly and
// through merges of random parts, and wants the same result and bytes.
func TestOrderIndependence(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, tt := range inputs() {
		t.Run(tt.name, func(t *testing.T) {
			ref := build(t, tt.spec, tt.in)
			wantBytes, want := ref.AppendBinary(nil), ref.Result()
			rounds := 30
			if len(tt.in) > 5000 {
				rounds = 3
			}
			for i := range rounds {
				var st State
				if i%2 == 0 {
					st = build(t, tt.spec, shuffled(r, tt.in))
				} else {
					st = mergedParts(t, r, tt.spec, shuffled(r, tt.in))
				}
				if got := st.Result(); !reflect.DeepEqual(got, want) {
					t.Fatalf("round %d: result %#v, want %#v", i, got, want)
				}
				if got := st.AppendBinary(nil); !bytes.Equal(got, wantBytes) {
					t.Fatalf("round %d: encoding differs:\n got %x\nwant %x", i, head(got), head(wantBytes))
				}
				if got, want := st.Size(), ref.Size(); got != want {
					t.Fatalf("round %d: size %d, want %d", i, got, want)
				}
			}
		})
	}
}

func head(b []byte) []byte { return b[:min(len(b), 64)] }

// mergedParts splits in into random parts and merges their states in a
// random tree.
func mergedParts(t testing.TB, r *rand.Rand, s Spec, in []event) State {
	t.Helper()
	var parts []State
	for len(in) > 0 {
		n := 1 + r.IntN(len(in))
		if r.IntN(4) > 0 {
			n = 1 + r.IntN(1+len(in)/4)
		}
		parts = append(parts, build(t, s, in[:n]))
		in = in[n:]
	}
	parts = append(parts, New(s)) // an empty one too
	for len(parts) > 1 {
		i, j := r.IntN(len(parts)), r.IntN(len(parts))
		if i == j {
			continue
		}
		if err := parts[i].Merge(parts[j]); err != nil {
			t.Fatalf("merge: %v", err)
		}
		parts = slices.Delete(parts, j, j+1)
	}
	return parts[0]
}

func TestMergeEqualsAdd(t *testing.T) {
	for _, tt := range inputs() {
		t.Run(tt.name, func(t *testing.T) {
			all := build(t, tt.spec, tt.in)
			for _, cut := range []int{0, 1, len(tt.in) / 3, len(tt.in) - 1, len(tt.in)} {
				a, b := build(t, tt.spec, tt.in[:cut]), build(t, tt.spec, tt.in[cut:])
				bBefore := b.AppendBinary(nil)
				if err := a.Merge(b); err != nil {
					t.Fatal(err)
				}
				if got, want := a.AppendBinary(nil), all.AppendBinary(nil); !bytes.Equal(got, want) {
					t.Fatalf("cut %d: merged encoding differs:\n got %x\nwant %x", cut, head(got), head(want))
				}
				if !bytes.Equal(b.AppendBinary(nil), bBefore) {
					t.Fatalf("cut %d: Merge changed its argument", cut)
				}
			}
		})
	}
}

func TestMergeMismatch(t *testing.T) {
	tests := []struct{ into, other Spec }{
		{Spec{Func: Count}, Spec{Func: Sum}},
		{Spec{Func: Sum}, Spec{Func: Avg}},
		{Spec{Func: Min}, Spec{Func: Max}},
		{Spec{Func: Quantile, Q: 0.5}, Spec{Func: Quantile, Q: 0.9}},
		{Spec{Func: CountDistinct}, Spec{Func: CountDistinct, MaxExact: 10}},
	}
	for _, tt := range tests {
		into := build(t, tt.into, nums(1))
		before := into.AppendBinary(nil)
		err := into.Merge(build(t, tt.other, nums(2)))
		if !errors.Is(err, ErrMismatch) {
			t.Errorf("merge %+v into %+v: error %v, want ErrMismatch", tt.other, tt.into, err)
		}
		if !bytes.Equal(into.AppendBinary(nil), before) {
			t.Errorf("merge %+v into %+v: a refused merge changed the state", tt.other, tt.into)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	for _, tt := range inputs() {
		for _, n := range []int{0, 1, len(tt.in)} {
			t.Run(fmt.Sprintf("%s/%d", tt.name, n), func(t *testing.T) {
				st := build(t, tt.spec, tt.in[:n])
				trailer := []byte{0xde, 0xad}
				enc := append(st.AppendBinary(nil), trailer...)
				got, rest, err := Decode(tt.spec, enc)
				if err != nil {
					t.Fatalf("decode: %v", err)
				}
				if !bytes.Equal(rest, trailer) {
					t.Fatalf("rest %x, want %x", rest, trailer)
				}
				if re := got.AppendBinary(nil); !bytes.Equal(re, enc[:len(enc)-2]) {
					t.Fatalf("re-encoding differs:\n got %x\nwant %x", head(re), head(enc))
				}
				if g, w := got.Result(), st.Result(); !reflect.DeepEqual(g, w) {
					t.Fatalf("result %#v, want %#v", g, w)
				}
				if g, w := got.Size(), st.Size(); g != w {
					t.Fatalf("size %d, want %d", g, w)
				}
				// The decoded state goes on as the original would.
				more := tt.in[:min(len(tt.in), 50)]
				add(t, tt.spec, got, more)
				add(t, tt.spec, st, more)
				if g, w := got.AppendBinary(nil), st.AppendBinary(nil); !bytes.Equal(g, w) {
					t.Fatalf("after more inputs the encodings differ:\n got %x\nwant %x", head(g), head(w))
				}
			})
		}
	}
}

// TestRepresentations checks that the inputs reach the representations
// they are meant to, so that the other tests cover them.
func TestRepresentations(t *testing.T) {
	byName := map[string]State{}
	for _, tt := range inputs() {
		byName[tt.name] = build(t, tt.spec, tt.in)
	}
	if s := byName["sum"].(*sumState); len(s.terms) < 3 {
		t.Errorf("sum has %d terms, want several", len(s.terms))
	}
	if s := byName["sum fast"].(*sumState); len(s.terms) != 0 {
		t.Errorf("sum fast has %d terms, want none", len(s.terms))
	}
	for name, mode := range map[string]byte{"count_distinct exact": 0, "count_distinct at bound": 0, "count_distinct sparse hll": 1, "count_distinct dense hll": 1} {
		if enc := byName[name].AppendBinary(nil); enc[1] != mode {
			t.Errorf("%s: mode %d, want %d", name, enc[1], mode)
		}
	}
	if enc := byName["count_distinct sparse hll"].AppendBinary(nil); enc[2] != 0 {
		t.Errorf("sparse hll: form %d, want 0", enc[2])
	}
	if enc := byName["count_distinct dense hll"].AppendBinary(nil); enc[2] != 1 {
		t.Errorf("dense hll: form %d, want 1", enc[2])
	}
	sk := byName["quantile collapsed"].(*quantileState).sk
	for _, st := range []store.Store{sk.GetPositiveValueStore(), sk.GetNegativeValueStore()} {
		lo, _ := st.MinIndex()
		hi, _ := st.MaxIndex()
		if hi-lo+1 != maxBins {
			t.Errorf("quantile collapsed: a store spans %d bins, want %d", hi-lo+1, maxBins)
		}
	}
}

func TestCountDistinct(t *testing.T) {
	for _, n := range []int{1, 999, 1000} {
		st := New(Spec{Func: CountDistinct})
		for i := range n {
			st.AddKey([]byte("user-" + strconv.Itoa(i)))
			st.AddKey([]byte("user-" + strconv.Itoa(i/2)))
		}
		if got := st.Result(); got != int64(n) {
			t.Errorf("%d distinct: got %v, want exactly %d", n, got, n)
		}
	}
	for _, n := range []int{1001, 5000, 100000} {
		st := New(Spec{Func: CountDistinct})
		for i := range n {
			st.AddKey([]byte("user-" + strconv.Itoa(i)))
		}
		got := st.Result().(int64)
		if err := math.Abs(float64(got)-float64(n)) / float64(n); err > 0.02 || got <= DefaultMaxExact {
			t.Errorf("%d distinct: got %d, %.2f%% off, want within 2%% and above %d", n, got, 100*err, DefaultMaxExact)
		}
	}
}

func TestQuantileAccuracy(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	vs := make([]float64, 100000)
	for i := range vs {
		v := math.Exp(r.NormFloat64() * 3)
		if r.IntN(3) == 0 {
			v = -v
		}
		vs[i] = v
	}
	sorted := slices.Clone(vs)
	slices.Sort(sorted)
	for _, q := range []float64{0, 0.001, 0.1, 0.25, 0.3, 0.5, 0.75, 0.9, 0.99, 0.999, 1} {
		s := Spec{Func: Quantile, Q: q}
		got := build(t, s, nums(vs...)).Result().(float64)
		// The sketch ranks negative values from the most negative down,
		// so for them its rank rounds the other way.
		rank := q * float64(len(sorted)-1)
		lo, hi := sorted[int(math.Floor(rank))], sorted[int(math.Ceil(rank))]
		if !within(got, lo, relativeAccuracy) && !within(got, hi, relativeAccuracy) {
			t.Errorf("q %v: got %v, want %v or %v within 1%% (%.3f%% off)", q, got, lo, hi, 100*math.Abs(got-lo)/math.Abs(lo))
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	tag := func(f Func) byte { return version<<4 | byte(f) }
	dense := append([]byte{tag(CountDistinct), 1, 1}, make([]byte, hllRegisters)...)
	for i := range 5000 {
		dense[3+i] = 1
	}
	dense[3+7] = 52
	tests := []struct {
		name string
		spec Spec
		in   []byte
		err  string
	}{
		{"empty", Spec{Func: Count}, nil, "count: truncated before the tag"},
		{"version", Spec{Func: Count}, []byte{0x21, 0}, "encoding version 2, want 1"},
		{"other func", Spec{Func: Sum}, []byte{tag(Count), 0}, "sum: the state is of count"},
		{"invalid spec", Spec{Func: 9}, []byte{0x19}, "unknown aggregate function 9"},
		{"count truncated", Spec{Func: Count}, []byte{tag(Count), 0x80}, "truncated in the count"},
		{"count not minimal", Spec{Func: Count}, []byte{tag(Count), 0x81, 0}, "not minimally encoded"},
		{"count overflow", Spec{Func: Count}, append(append([]byte{tag(Count)}, bytes.Repeat([]byte{0xff}, 9)...), 2), "overflows 64 bits"},
		{"count beyond int64", Spec{Func: Count}, []byte{tag(Count), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1}, "overflows int64"},
		{"sum units overflow", Spec{Func: Sum}, append(append([]byte{tag(Sum)}, bytes.Repeat([]byte{0xff}, 18)...), 4, 0), "units overflows 128 bits"},
		{"sum too many terms", Spec{Func: Sum}, []byte{tag(Sum), 0, 0x80, 0x05}, "640 terms, at most 633"},
		{"sum terms beyond input", Spec{Func: Sum}, []byte{tag(Sum), 0, 3, 1, 1}, "3 terms do not fit in the 2 bytes left"},
		{"sum exponent", Spec{Func: Sum}, []byte{tag(Sum), 0, 1, 0xea, 0x04, 2}, "exponent 309 is not between -324 and 308"},
		{"sum order", Spec{Func: Sum}, []byte{tag(Sum), 0, 2, 2, 2, 2, 2}, "term 1: exponent 1 after 1"},
		{"sum zero term", Spec{Func: Sum}, []byte{tag(Sum), 0, 1, 2, 0}, "term 0: zero"},
		{"avg of nothing", Spec{Func: Avg}, []byte{tag(Avg), 0, 2, 0}, "a sum of no values is not zero"},
		{"min flag", Spec{Func: Min}, []byte{tag(Min), 2}, "flag 2, want 0 or 1"},
		{"min truncated", Spec{Func: Min}, []byte{tag(Min), 1, 0}, "value needs 8 bytes, 1 are left"},
		{"max nan", Spec{Func: Max}, []byte{tag(Max), 1, 0x7f, 0xf8, 0, 0, 0, 0, 0, 1}, "is not a finite number"},
		{"max -0", Spec{Func: Max}, []byte{tag(Max), 1, 0x80, 0, 0, 0, 0, 0, 0, 0}, "other than -0"},
		{"distinct mode", Spec{Func: CountDistinct}, []byte{tag(CountDistinct), 2}, "mode 2, want 0 (exact) or 1 (hyperloglog)"},
		{"distinct too many", Spec{Func: CountDistinct, MaxExact: 2}, append([]byte{tag(CountDistinct), 0, 3}, make([]byte, 24)...), "3 hashes, at most 2"},
		{"distinct beyond input", Spec{Func: CountDistinct}, append([]byte{tag(CountDistinct), 0, 3}, make([]byte, 23)...), "3 hashes do not fit in the 23 bytes left"},
		{"distinct order", Spec{Func: CountDistinct}, append([]byte{tag(CountDistinct), 0, 2}, make([]byte, 16)...), "hash 1 is out of order"},
		{"hll form", Spec{Func: CountDistinct}, []byte{tag(CountDistinct), 1, 2}, "hyperloglog form 2"},
		{"hll empty list", Spec{Func: CountDistinct}, []byte{tag(CountDistinct), 1, 0, 0}, "no register is set"},
		{"hll zero register", Spec{Func: CountDistinct}, []byte{tag(CountDistinct), 1, 0, 1, 5, 0}, "register 0 is listed as zero"},
		{"hll index", Spec{Func: CountDistinct}, []byte{tag(CountDistinct), 1, 0, 1, 0x80, 0x80, 1, 1}, "index 0+16384 is beyond 16383"},
		{"hll register value", Spec{Func: CountDistinct}, []byte{tag(CountDistinct), 1, 0, 1, 5, 52}, "register 5 is 52, at most 51"},
		{"hll dense value", Spec{Func: CountDistinct}, dense, "register 7 is 52, at most 51"},
		{"hll dense few", Spec{Func: CountDistinct}, append([]byte{tag(CountDistinct), 1, 1}, make([]byte, hllRegisters)...), "0 registers are set: so few encode as a list"},
		{"hll truncated", Spec{Func: CountDistinct}, []byte{tag(CountDistinct), 1, 1, 1}, "registers needs 16384 bytes, 1 are left"},
		{"quantile zero count", Spec{Func: Quantile, Q: 0.5}, append([]byte{tag(Quantile)}, binary.AppendUvarint(nil, 1<<53+1)...), "zero count 9007199254740993, at most 9007199254740992"},
		{"quantile bins", Spec{Func: Quantile, Q: 0.5}, []byte{tag(Quantile), 0, 0x81, 0x10}, "2049 positive bins, at most 2048"},
		{"quantile index", Spec{Func: Quantile, Q: 0.5}, []byte{tag(Quantile), 0, 1, 0xff, 0xff, 0xff, 0xff, 0x0f, 1, 0}, "positive bin 0: index -2147483648 is not between"},
		{"quantile empty bin", Spec{Func: Quantile, Q: 0.5}, []byte{tag(Quantile), 0, 1, 2, 0, 0}, "positive bin 0 is empty"},
		{"quantile span", Spec{Func: Quantile, Q: 0.5}, []byte{tag(Quantile), 0, 0, 3, 2, 1, 0xfe, 0x0f, 1, 0, 1}, "negative bin 2: index 2049 is 2048 past the first"},
		{"quantile gap", Spec{Func: Quantile, Q: 0.5}, []byte{tag(Quantile), 0, 2, 2, 1, 0x80, 0x10, 1, 0}, "positive bin 1: 2049 past the one before"},
		{"quantile truncated", Spec{Func: Quantile, Q: 0.5}, []byte{tag(Quantile), 0, 1, 2, 0x80}, "truncated in the positive bin count"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, rest, err := Decode(tt.spec, tt.in)
			if err == nil {
				t.Fatalf("decoded %#v (rest %x), want an error with %q", st.Result(), rest, tt.err)
			}
			if !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("error %q, want one with %q", err, tt.err)
			}
			if tt.name != "invalid spec" && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %q does not wrap ErrCorrupt", err)
			}
		})
	}
}

func TestI128Varint(t *testing.T) {
	values := []i128{{}, i128From(1), i128From(-1), i128From(63), i128From(-64), i128From(64),
		i128From(math.MaxInt64), i128From(math.MinInt64), {hi: 1}, {hi: -1, lo: 0},
		{hi: math.MaxInt64, lo: math.MaxUint64}, {hi: math.MinInt64}}
	for _, v := range values {
		enc := appendI128(nil, v)
		r := &reader{f: Sum, b: enc}
		if got := r.i128("v"); r.err != nil || got != v || len(r.b) != 0 {
			t.Errorf("%+v: decoded %+v, %v (%d bytes left) from %x", v, got, r.err, len(r.b), enc)
		}
		if v.isInt64() {
			if want := binary.AppendVarint(nil, int64(v.lo)); !bytes.Equal(enc, want) {
				t.Errorf("%+v: encoding %x, want that of a varint, %x", v, enc, want)
			}
		}
	}
}

func TestOverflow(t *testing.T) {
	decode := func(s Spec, b []byte) State {
		t.Helper()
		st, _, err := Decode(s, b)
		if err != nil {
			t.Fatalf("decode %x: %v", b, err)
		}
		return st
	}
	tag := func(f Func) byte { return version<<4 | byte(f) }

	full := binary.AppendUvarint([]byte{tag(Count)}, math.MaxInt64)
	c := decode(Spec{Func: Count}, full)
	c.Inc()
	if err := c.Merge(decode(Spec{Func: Count}, full)); err != nil {
		t.Fatal(err)
	}
	if got := c.Result(); got != int64(math.MaxInt64) {
		t.Errorf("count: got %v, want it saturated at %d", got, int64(math.MaxInt64))
	}

	huge := appendI128([]byte{tag(Sum)}, i128{hi: math.MaxInt64, lo: math.MaxUint64 - 5})
	huge = append(huge, 0)
	s := decode(Spec{Func: Sum}, huge)
	before := s.AppendBinary(nil)
	if err := s.AddNumber(1); !errors.Is(err, ErrOverflow) {
		t.Errorf("sum: AddNumber error %v, want ErrOverflow", err)
	}
	if err := s.Merge(decode(Spec{Func: Sum}, huge)); !errors.Is(err, ErrOverflow) {
		t.Errorf("sum: Merge error %v, want ErrOverflow", err)
	}
	if !bytes.Equal(s.AppendBinary(nil), before) {
		t.Errorf("sum: a refused value changed the state")
	}

	avgFull := append(binary.AppendUvarint([]byte{tag(Avg)}, math.MaxInt64), 2, 0)
	a := decode(Spec{Func: Avg}, avgFull)
	if err := a.AddNumber(1); !errors.Is(err, ErrOverflow) {
		t.Errorf("avg: AddNumber error %v, want ErrOverflow", err)
	}
	if err := a.Merge(decode(Spec{Func: Avg}, avgFull)); !errors.Is(err, ErrOverflow) {
		t.Errorf("avg: Merge error %v, want ErrOverflow", err)
	}

	q := Spec{Func: Quantile, Q: 0.5}
	qFull := append(binary.AppendUvarint([]byte{tag(Quantile)}, maxSketchCount), 0, 0)
	st := decode(q, qFull)
	if err := st.AddNumber(1); !errors.Is(err, ErrOverflow) {
		t.Errorf("quantile: AddNumber error %v, want ErrOverflow", err)
	}
	if err := st.Merge(build(t, q, nums(1))); !errors.Is(err, ErrOverflow) {
		t.Errorf("quantile: Merge error %v, want ErrOverflow", err)
	}
}

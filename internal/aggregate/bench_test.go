package aggregate

import (
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
)

func TestSumAddAllocs(t *testing.T) {
	for _, tt := range []struct {
		name string
		v    float64
	}{
		{"integer", 1234}, {"decimal", 12.34}, {"large integer", 1e12}, {"beyond 2^53", 1e17},
		{"many digits", 0.1234567890123}, {"huge", 1e300},
	} {
		for _, s := range []Spec{{Func: Sum}, {Func: Avg}} {
			st := New(s)
			_ = st.AddNumber(tt.v) // a term is allocated once
			if n := testing.AllocsPerRun(100, func() { _ = st.AddNumber(tt.v) }); n != 0 {
				t.Errorf("%s of %s (%v): %v allocations per AddNumber, want 0", s.Func, tt.name, tt.v, n)
			}
		}
	}
}

func BenchmarkSumAdd(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	cases := []struct {
		name string
		gen  func() float64
	}{
		{"integers", func() float64 { return float64(r.IntN(1e6)) }},
		{"cents", func() float64 { return float64(r.IntN(1e6)) / 100 }},
		{"many-digits", func() float64 { return r.Float64() * 100 }},
	}
	for _, c := range cases {
		vs := make([]float64, 1024)
		for i := range vs {
			vs[i] = c.gen()
		}
		b.Run(c.name, func(b *testing.B) {
			st := New(Spec{Func: Sum})
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if err := st.AddNumber(vs[i&1023]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkCountInc(b *testing.B) {
	st := New(Spec{Func: Count})
	b.ReportAllocs()
	for b.Loop() {
		st.Inc()
	}
}

func BenchmarkCountDistinct(b *testing.B) {
	for _, c := range []struct {
		name string
		keys int
	}{{"exact", 1000}, {"hyperloglog", 1 << 16}} {
		keys := make([][]byte, c.keys)
		for i := range keys {
			keys[i] = []byte("user-" + strconv.Itoa(i))
		}
		b.Run(c.name, func(b *testing.B) {
			st := New(Spec{Func: CountDistinct})
			for _, k := range keys {
				st.AddKey(k)
			}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				st.AddKey(keys[i%len(keys)])
			}
		})
	}
}

func BenchmarkQuantile(b *testing.B) {
	r := rand.New(rand.NewPCG(2, 2))
	vs := make([]float64, 1024)
	for i := range vs {
		vs[i] = math.Exp(r.NormFloat64()*2) * float64(1-2*r.IntN(2))
	}
	st := New(Spec{Func: Quantile, Q: 0.99})
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if err := st.AddNumber(vs[i&1023]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendBinary(b *testing.B) {
	for _, tt := range inputs() {
		st := build(b, tt.spec, tt.in)
		b.Run(tt.name, func(b *testing.B) {
			b.ReportAllocs()
			var buf []byte
			for b.Loop() {
				buf = st.AppendBinary(buf[:0])
			}
		})
	}
}

func BenchmarkResult(b *testing.B) {
	for _, tt := range inputs() {
		st := build(b, tt.spec, tt.in)
		b.Run(tt.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = st.Result()
			}
		})
	}
}

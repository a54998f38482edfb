package aggregate

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

// fuzzSpecs are the Specs FuzzDecode decodes with, picked by its first
// argument.
var fuzzSpecs = []Spec{
	{Func: Count}, {Func: Sum}, {Func: Avg}, {Func: Min}, {Func: Max},
	{Func: CountDistinct}, {Func: CountDistinct, MaxExact: 100}, {Func: Quantile, Q: 0.5},
}

func fuzzSpecIndex(s Spec) int {
	for i, fs := range fuzzSpecs {
		if fs.Func == s.Func && fs.MaxExact == s.MaxExact {
			return i
		}
	}
	return -1
}

// FuzzDecode decodes untrusted bytes: Decode must not panic, must refuse
// with ErrCorrupt, and what it accepts must encode back to the bytes it
// read, decode again to the same state, and go on working.
func FuzzDecode(f *testing.F) {
	for _, tt := range inputs() {
		i := fuzzSpecIndex(tt.spec)
		if i < 0 {
			continue
		}
		for _, n := range []int{0, 1, len(tt.in) / 2, len(tt.in)} {
			st := New(fuzzSpecs[i])
			add(f, fuzzSpecs[i], st, tt.in[:n])
			f.Add(uint8(i), st.AppendBinary(nil))
		}
	}
	f.Fuzz(func(t *testing.T, i uint8, b []byte) {
		spec := fuzzSpecs[int(i)%len(fuzzSpecs)]
		st, rest, err := Decode(spec, b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			if st != nil || !bytes.Equal(rest, b) {
				t.Fatalf("a failed Decode returned a state or consumed bytes")
			}
			return
		}
		read := b[:len(b)-len(rest)]
		enc := st.AppendBinary(nil)
		if !bytes.Equal(enc, read) {
			t.Fatalf("%s: re-encoding differs from the bytes read:\n got %x\nwant %x", spec.Func, head(enc), head(read))
		}
		again, rest2, err := Decode(spec, enc)
		if err != nil || len(rest2) != 0 {
			t.Fatalf("%s: decoding the re-encoding: %v, %d bytes left", spec.Func, err, len(rest2))
		}
		if g, w := again.Result(), st.Result(); !reflect.DeepEqual(g, w) {
			t.Fatalf("%s: result %#v, then %#v", spec.Func, w, g)
		}
		if g, w := again.Size(), st.Size(); g != w {
			t.Fatalf("%s: size %d, then %d", spec.Func, w, g)
		}
		// The state goes on working.
		if err := st.Merge(again); err != nil && !errors.Is(err, ErrOverflow) {
			t.Fatalf("%s: merge: %v", spec.Func, err)
		}
		fresh := New(spec)
		if err := fresh.Merge(st); err != nil {
			t.Fatalf("%s: merge: %v", spec.Func, err)
		}
		st.Inc()
		st.AddKey(b)
		_ = st.AddNumber(float64(len(b)) - 0.5)
		_ = st.Result()
		_ = st.Size()
		if _, _, err := Decode(spec, st.AppendBinary(nil)); err != nil {
			t.Fatalf("%s: decoding after more inputs: %v", spec.Func, err)
		}
	})
}

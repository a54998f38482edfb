package connector

import (
	"math"
	"reflect"
	"strings"
	"testing"
)

func TestDecodeJSON(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want any
		err  string
	}{
		{in: `null`, want: nil},
		{in: ` true `, want: true},
		{in: `12`, want: int64(12)},
		{in: `-9223372036854775808`, want: int64(math.MinInt64)},
		{in: `9223372036854775808`, want: 9223372036854775808.0},
		{in: `12.5`, want: 12.5},
		{in: `1e3`, want: 1000.0},
		{in: `"a\u00e9"`, want: "aé"},
		{in: `{"id":1,"tags":["x",2.5,null],"o":{}}`, want: map[string]any{"id": int64(1), "tags": []any{"x", 2.5, nil}, "o": map[string]any{}}},
		{in: `[]`, want: []any{}},
		{in: `1e400`, err: "out of range"},
		{in: `{"a":1,"a":2}`, err: "duplicate"},
		{in: `{"a":1} x`, err: "invalid"},
		{in: `{"a":`, err: "EOF"},
		{in: "\"\xff\"", err: "UTF-8"},
		{in: ``, err: "EOF"},
	} {
		got, err := DecodeJSON([]byte(tc.in))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("DecodeJSON(%q): got %v, %v; want an error containing %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("DecodeJSON(%q): got %#v, %v; want %#v", tc.in, got, err, tc.want)
		}
	}
}

// asFloats makes every number a float64: 1.0 encodes as 1, which decodes
// as int64 1, and JSON does not tell them apart.
func asFloats(v any) any {
	switch t := v.(type) {
	case int64:
		return float64(t)
	case map[string]any:
		for k, e := range t {
			t[k] = asFloats(e)
		}
	case []any:
		for i, e := range t {
			t[i] = asFloats(e)
		}
	}
	return v
}

// FuzzDecodeJSON: any bytes either fail or decode to a document that
// encodes and decodes back to the same (numbers compared by value).
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{`{"id":1,"a":[1,2.5,"x",null,true]}`, `"x"`, `1e308`, `[[[]]]`, `{"a":{"b":{}}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := DecodeJSON(b)
		var jd JSONDecoder
		_, _ = jd.Decode([]byte(`{"a":1}`))
		v2, err2 := jd.Decode(b)
		if (err == nil) != (err2 == nil) || (err == nil && !reflect.DeepEqual(v, v2)) {
			t.Fatalf("a reused decoder disagrees on %q: %v, %v against %v, %v", b, v2, err2, v, err)
		}
		if err != nil {
			return
		}
		enc, err := EncodeJSON(CloneJSON(v))
		if err != nil {
			t.Fatalf("encode %#v from %q: %v", v, b, err)
		}
		v3, err := DecodeJSON(enc)
		if err != nil || !reflect.DeepEqual(asFloats(v), asFloats(v3)) {
			t.Fatalf("round trip of %q: got %#v, %v; want %#v", b, v3, err, v)
		}
	})
}

func BenchmarkDecodeJSON(b *testing.B) {
	doc := []byte(`{"id":123456,"name":"customer-4711","amount":1234.56,"note":"nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn"}`)
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		if _, err := DecodeJSON(doc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkJSONDecoder(b *testing.B) {
	doc := []byte(`{"id":123456,"name":"customer-4711","amount":1234.56,"note":"nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn"}`)
	b.SetBytes(int64(len(doc)))
	var d JSONDecoder
	for b.Loop() {
		if _, err := d.Decode(doc); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzDecodeJSONReference holds the scanner to jsontext's verdict: for any
// input both refuse it, or both decode the same document.
func FuzzDecodeJSONReference(f *testing.F) {
	for _, s := range []string{`{"id":1,"a":[1,2.5,"x",null,true]}`, `"a\u00e9\ud83d\ude00"`, `-0`, `1e308`, `-9223372036854775809`,
		`"\ud800"`, `"\udc00x"`, `[1,]`, `{"a" : 1 , "b":[ ]}`, `0.5e-3`, `01`, `1.`, `"\/\b\f\n\r\t"`, "\"\x7f\"", `tru`, `nul`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var ref refDecoder
		want, werr := ref.Decode(b)
		got, err := DecodeJSON(b)
		if (err == nil) != (werr == nil) {
			t.Fatalf("%q: scanner %v, %v; jsontext %v, %v", b, got, err, want, werr)
		}
		if err == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: scanner %#v; jsontext %#v", b, got, want)
		}
	})
}

func BenchmarkJSONDecoderReference(b *testing.B) {
	doc := []byte(`{"id":123456,"name":"customer-4711","amount":1234.56,"note":"nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn"}`)
	b.SetBytes(int64(len(doc)))
	var d refDecoder
	for b.Loop() {
		if _, err := d.Decode(doc); err != nil {
			b.Fatal(err)
		}
	}
}

// checkFields holds DecodeFields to Decode's verdict on b: the same error
// (or none), and, for an object, exactly its members named in fields.
func checkFields(t *testing.T, jd *JSONDecoder, b []byte, names []string) {
	t.Helper()
	want, werr := DecodeJSON(b)
	fields := make(map[string]int, len(names))
	for i, n := range names {
		fields[n] = i
	}
	vals, found := make([]any, len(names)), make([]bool, len(names))
	ok, err := jd.DecodeFields(b, fields, vals, found)
	obj, isObj := want.(map[string]any)
	if !ok {
		if err != nil || (werr == nil && isObj) {
			t.Fatalf("%q: DecodeFields says not an object (%v); Decode gives %#v, %v", b, err, want, werr)
		}
		return
	}
	if (err == nil) != (werr == nil) || (err != nil && err.Error() != werr.Error()) {
		t.Fatalf("%q: DecodeFields %v; Decode %v", b, err, werr)
	}
	// RawFields: the same verdict, and each member's bytes decode to it.
	raws, rfound := make([][]byte, len(names)), make([]bool, len(names))
	rok, rerr := jd.RawFields(b, fields, raws, rfound)
	if !rok || (rerr == nil) != (err == nil) || (err != nil && rerr.Error() != err.Error()) {
		t.Fatalf("%q: RawFields %v, %v; DecodeFields %v", b, rok, rerr, err)
	}
	if err != nil {
		return
	}
	if !isObj {
		t.Fatalf("%q: DecodeFields read an object; Decode gives %#v", b, want)
	}
	for i, n := range names {
		w, present := obj[n]
		if found[i] != present || !reflect.DeepEqual(vals[i], w) {
			t.Fatalf("%q: member %q: DecodeFields %#v (found %v); Decode %#v (found %v)", b, n, vals[i], found[i], w, present)
		}
	}
	for i, n := range names {
		if rfound[i] != found[i] {
			t.Fatalf("%q: member %q: RawFields found %v, DecodeFields %v", b, n, rfound[i], found[i])
		}
		if !found[i] {
			continue
		}
		v, err := DecodeJSON(raws[i])
		if err != nil || !reflect.DeepEqual(v, vals[i]) {
			t.Fatalf("%q: member %q: RawFields gave %q, which decodes to %#v, %v; want %#v", b, n, raws[i], v, err, vals[i])
		}
	}
}

func TestDecodeFields(t *testing.T) {
	var jd JSONDecoder
	many := `{`
	for i := range 40 {
		many += `"m` + strings.Repeat("i", i) + `":1,`
	}
	for _, in := range []string{
		`{"id":1,"name":"a","amount":2.5,"note":"n"}`,
		`{"id":1,"other":{"a":[1,"x"]},"name":"a\u00e9"}`,
		` { } `,
		`{"id":1,"id":2}`,
		`{"other":1,"other":2}`,
		many + `"mii":2}`,
		many + `"last":2}`,
		`{"id":1} x`,
		`{"id":`,
		`{"id":1e400}`,
		`[1,2]`,
		`"str"`,
		`null`,
		``,
		"{\"name\":\"\xff\"}",
	} {
		checkFields(t, &jd, []byte(in), []string{"id", "name", "amount", "note"})
	}
}

// FuzzDecodeFields: DecodeFields agrees with Decode on any bytes.
func FuzzDecodeFields(f *testing.F) {
	for _, s := range []string{`{"id":1,"a":[1,2.5,"x",null,true]}`, `{"b":"x","b":1}`, `{"a":{"a":1}}`, `[{"a":1}]`, `{"a":"\u00e9"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var jd JSONDecoder
		checkFields(t, &jd, b, []string{"a", "b", "id"})
		// Reused, with names interned, it must agree as well.
		checkFields(t, &jd, b, []string{"a"})
	})
}

// benchFields runs read, RawFields or DecodeFields, over the pipeline
// benchmark's kind of record, keeping its four members.
func benchFields(b *testing.B, read func(jd *JSONDecoder, doc []byte, fields map[string]int, found []bool) error) {
	doc := []byte(`{"id":123456,"name":"customer-4711","amount":1234.56,"note":"` + strings.Repeat("n", 130) + `"}`)
	b.SetBytes(int64(len(doc)))
	fields := map[string]int{"id": 0, "name": 1, "amount": 2, "note": 3}
	found := make([]bool, 4)
	var jd JSONDecoder
	for b.Loop() {
		clear(found)
		if err := read(&jd, doc, fields, found); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRawFields(b *testing.B) {
	raws := make([][]byte, 4)
	benchFields(b, func(jd *JSONDecoder, doc []byte, fields map[string]int, found []bool) error {
		_, err := jd.RawFields(doc, fields, raws, found)
		return err
	})
}

func BenchmarkDecodeFields(b *testing.B) {
	vals := make([]any, 4)
	benchFields(b, func(jd *JSONDecoder, doc []byte, fields map[string]int, found []bool) error {
		_, err := jd.DecodeFields(doc, fields, vals, found)
		return err
	})
}

// TestPlainRun checks the eight-bytes-at-a-time scan against the table,
// for every byte at every position of a word and across words.
func TestPlainRun(t *testing.T) {
	ref := func(b []byte, i int) int {
		for i < len(b) && plainASCII[b[i]] {
			i++
		}
		return i
	}
	for c := range 256 {
		for pos := range 20 {
			b := []byte(strings.Repeat("a", 20))
			b[pos] = byte(c)
			for start := range 3 {
				if got, want := plainRun(b, start), ref(b, start); got != want {
					t.Fatalf("byte %#x at %d, from %d: plainRun %d, want %d", c, pos, start, got, want)
				}
			}
		}
	}
}

package process

import (
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"

	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/units"
)

var fuzzSeeds = []string{
	`{"id": 1, "amount": 12.5, "items": [1, 2.5, {"a": null}], "customer": {"ssn": "x"}}`,
	`{"id": 9007199254740993, "amount": -1e300, "s": "\u00e9\ud83d\ude00"}`,
	`{"amount": "12"}`, `[1, 2]`, `"text"`, `12`, `null`, `true`, ``, `{`, "\xff\xfe",
	`{"a": {"b": {"c": [[[]]]}}, "amount": 1e-7}`,
	`{"amount": 1, "amount": 2}`,
}

// FuzzChain runs a chain of every processor on arbitrary value bytes: it
// must never panic, and a record it keeps must encode as JSON.
func FuzzChain(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s), []byte("k"))
	}
	cfgs := []Config{
		{Filter: `!has(record.value.skip)`},
		{Set: map[string]string{"copy": "record.value", "n": "record.value.?amount.orValue(0) * 2"}},
		{Drop: []string{"customer.ssn", "internal"}},
		{Rename: map[string]string{"amount": "amount_eur", "copy.items": "items2"}},
		{Map: &MapConfig{Value: `{"v": record.value, "k": record.key, "s": string(record.value.n), "l": record.value.?items2.orValue([]).map(x, x)}`, Key: `string(record.value.n)`}},
		{Validate: &ValidateConfig{JSONSchema: map[string]any{"type": "object", "required": []any{"v"}}}},
		{Dedupe: &DedupeConfig{Key: "record.value.s", Window: units.Duration(time.Minute)}},
	}
	c := mustChain(f, cfgs, Options{})
	f.Fuzz(func(t *testing.T, value, key []byte) {
		r := connector.NewRecord(value)
		r.Key = key
		r.Timestamp = testTime
		ok, err := c.Process(context.Background(), r)
		if err != nil || !ok {
			return
		}
		v, err := r.Value()
		if err != nil {
			t.Fatalf("kept a record whose value does not encode: %v", err)
		}
		if !json.Valid(v) {
			t.Fatalf("kept a record whose value is not JSON: %q", v)
		}
	})
}

// FuzzDocToCEL converts arbitrary JSON documents to CEL values and back:
// the round trip through an expression that rebuilds every map and list
// keeps the document, numbers as doubles; a document taken whole keeps
// its numbers exactly.
func FuzzDocToCEL(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	c := mustChain(f, []Config{{Map: &MapConfig{Value: `[record.value, record.value == record.value]`}}}, Options{})
	f.Fuzz(func(t *testing.T, value []byte) {
		doc, err := connector.DecodeJSON(value)
		if err != nil {
			return
		}
		// A map or list taken whole keeps its numbers; a number alone is
		// a double.
		whole := doc
		switch doc.(type) {
		case map[string]any, []any:
		default:
			whole = asDoubles(doc)
		}
		enc, err := connector.EncodeJSON(whole)
		if err != nil {
			return // 1e400 decodes as an infinity, which no result may hold
		}
		// Through CEL element by element, as an expression reads it.
		got, err := toDoc(rebuild(docAdapter{}.NativeToValue(doc)))
		if err != nil {
			t.Fatalf("toDoc: %v", err)
		}
		if want := asDoubles(doc); !reflect.DeepEqual(got, want) {
			t.Fatalf("got %#v, want %#v", got, want)
		}
		// Through a chain, which copies a document taken whole.
		r := connector.NewRecord(value)
		if _, err := c.Process(context.Background(), r); err != nil {
			t.Fatalf("Process: %v", err)
		}
		out, err := r.Value()
		if err != nil {
			t.Fatal(err)
		}
		if want := "[" + string(enc) + ",true]"; !bytes.Equal(out, []byte(want)) {
			t.Fatalf("got %s, want %s", out, want)
		}
	})
}

// rebuild copies a lazily converted document into CEL's own maps and
// lists, element by element.
func rebuild(v ref.Val) ref.Val {
	switch t := v.(type) {
	case traits.Mapper:
		m := map[ref.Val]ref.Val{}
		for it := t.Iterator(); it.HasNext() == types.True; {
			k := it.Next()
			m[k] = rebuild(t.Get(k))
		}
		return types.NewRefValMap(types.DefaultTypeAdapter, m)
	case traits.Lister:
		n := int(t.Size().(types.Int))
		l := make([]ref.Val, n)
		for i := range n {
			l[i] = rebuild(t.Get(types.Int(i)))
		}
		return types.NewRefValList(types.DefaultTypeAdapter, l)
	}
	return v
}

// asDoubles is doc with every number a float64, as CEL sees it.
func asDoubles(doc any) any {
	switch t := doc.(type) {
	case int64:
		return float64(t)
	case map[string]any:
		m := make(map[string]any, len(t))
		for k, e := range t {
			m[k] = asDoubles(e)
		}
		return m
	case []any:
		l := make([]any, len(t))
		for i, e := range t {
			l[i] = asDoubles(e)
		}
		return l
	}
	return doc
}

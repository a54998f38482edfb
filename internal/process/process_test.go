package process

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/record"
	"github.com/sluice-dev/sluice/internal/units"
)

var testTime = time.Date(2024, 1, 2, 3, 4, 5, 600, time.UTC)

// nullValue stands for a record whose value is null.
const nullValue = "<null>"

func newRec(value string) *connector.Record {
	var r *connector.Record
	if value == nullValue {
		r = connector.NewRecord(nil)
	} else {
		r = connector.NewRecord([]byte(value))
	}
	r.Topic, r.Partition, r.Offset, r.Timestamp = "orders", 3, 42, testTime
	r.Key = []byte("k1")
	r.Headers = []record.RecordHeader{{Key: "h", Value: []byte("v0")}, {Key: "h", Value: []byte("v")}, {Key: "bad", Value: []byte{0xff}}}
	return r
}

func mustChain(t testing.TB, cfgs []Config, opts Options) *Chain {
	t.Helper()
	c, err := NewChain(cfgs, opts)
	if err != nil {
		t.Fatalf("NewChain: %v", err)
	}
	return c
}

func valueOf(t testing.TB, r *connector.Record) string {
	t.Helper()
	v, err := r.Value()
	if err != nil {
		t.Fatalf("Value: %v", err)
	}
	if v == nil {
		return nullValue
	}
	return string(v)
}

// checkErr fails unless err matches want: "" for no error, else a
// substring of the message.
func checkErr(t *testing.T, err error, want string) bool {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Errorf("got error %v, want none", err)
		return false
	case want != "" && err == nil:
		t.Errorf("got no error, want one containing %q", want)
		return false
	case want != "" && !strings.Contains(err.Error(), want):
		t.Errorf("got error %q, want one containing %q", err, want)
		return false
	}
	return want == ""
}

func TestFilter(t *testing.T) {
	tests := []struct {
		expr, value string
		key         []byte // nil: the default "k1"
		nullKey     bool
		want        bool
		err         string
	}{
		{expr: "record.value.amount > 0", value: `{"amount": 12}`, want: true},
		{expr: "record.value.amount > 0", value: `{"amount": 12.5}`, want: true},
		{expr: "record.value.amount > 0", value: `{"amount": 0}`, want: false},
		{expr: "record.value.amount > 0", value: `{"amount": -0.5}`, want: false},
		{expr: "record.value.amount > 0.5", value: `{"amount": 1}`, want: true},
		{expr: "record.value.amount == 12", value: `{"amount": 12.0}`, want: true},
		{expr: "record.value.amount == 12", value: `{"amount": 12}`, want: true},
		{expr: "record.value.amount in [1, 12]", value: `{"amount": 12}`, want: true},
		// Arithmetic mixes int literals with the doubles of the document.
		{expr: "record.value.amount * 100 == 1250", value: `{"amount": 12.5}`, want: true},
		{expr: "record.value.amount * 100.0 == 1200.0", value: `{"amount": 12}`, want: true},
		{expr: "100 * record.value.amount == 1250", value: `{"amount": 12.5}`, want: true},
		{expr: "record.value.a + 1 == 3", value: `{"a": 2}`, want: true},
		{expr: "record.value.a - 1u == 1", value: `{"a": 2}`, want: true},
		{expr: "record.value.a / 2 == 1.5", value: `{"a": 3}`, want: true},
		{expr: "int(record.value.a) / 2 == 1", value: `{"a": 3}`, want: true},
		{expr: "int(record.value.a) * 1.5 == 4.5", value: `{"a": 3}`, want: true},
		{expr: "int(record.value.a) > 2.5", value: `{"a": 3}`, want: true},
		{expr: "record.value.n % 2 == 0", value: `{"n": 10}`, want: true},
		{expr: "record.value.n % 2 == 0", value: `{"n": 3}`, want: false},
		{expr: "record.value.n % 2.0 == 0.5", value: `{"n": 2.5}`, want: true},
		{expr: "7 % 3 == 1", value: `{}`, want: true},
		{expr: "record.value.n % 0 == 0", value: `{"n": 3}`, err: "modulus by zero"},
		{expr: "size(record.value.items) == 2", value: `{"items": [1, 2]}`, want: true},
		{expr: "record.value.items[1] == 2", value: `{"items": [1, 2]}`, want: true},
		{expr: "record.value.items.all(x, x > 0)", value: `{"items": [1, 2.5]}`, want: true},
		{expr: "has(record.value.a)", value: `{"b": 1}`, want: false},
		{expr: "record.value.?discount.orValue(0) == 0", value: `{}`, want: true},
		{expr: "record.value.name.lowerAscii() == 'ab'", value: `{"name": "AB"}`, want: true},
		{expr: "string(record.value.id) == '1234567'", value: `{"id": 1234567}`, want: true},
		{expr: "string(record.value.f) == '0.5'", value: `{"f": 0.5}`, want: true},
		{expr: "string(1e21) == '1e+21'", value: `{}`, want: true},
		{expr: "record.value == null", value: nullValue, want: true},
		{expr: "!has(record.value)", value: nullValue, want: true},
		{expr: "record.value == 'text'", value: `"text"`, want: true},
		// The record's other fields.
		{expr: "record.key == 'k1'", value: `{}`, want: true},
		{expr: "record.key == b'\\xff\\x00'", value: `{}`, key: []byte{0xff, 0}, want: true},
		{expr: "record.key == null && !has(record.key)", value: `{}`, nullKey: true, want: true},
		{expr: "record.headers.h == 'v' && record.headers.bad == '\uFFFD'", value: `{}`, want: true},
		{expr: "record.topic == 'orders' && record.partition == 3 && record.offset == 42", value: `{}`, want: true},
		{expr: "record.timestamp > timestamp('2024-01-01T00:00:00Z')", value: `{}`, want: true},
		{expr: "date(record.timestamp) == '2024-01-02' && hour(record.timestamp) == '03'", value: `{}`, want: true},
		{expr: "record.timestamp.getHours() == 3", value: `{}`, want: true},
		{expr: "type(record) == sluice.Record && record == record", value: `{}`, want: true},
		// The record's faults.
		{expr: "record.value.amount > 0", value: `{"n": 1}`, err: "no such key: amount"},
		{expr: "record.value.amount > 0", value: `not json`, err: "value is not JSON"},
		{expr: "record.value.amount > 0", value: nullValue, err: "amount"},
		{expr: "record.value.amount > 0", value: `{"amount": "12"}`, err: "no such overload for > applied to (string, int) at 1:21"},
		{expr: "record.value.name", value: `{"name": "x"}`, err: "filter result is string, want bool"},
		// An expression that does not read the value does not parse it.
		{expr: "record.topic == 'orders'", value: `not json`, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			c := mustChain(t, []Config{{Filter: tt.expr}}, Options{})
			r := newRec(tt.value)
			if tt.key != nil {
				r.Key = tt.key
			}
			if tt.nullKey {
				r.Key = nil
			}
			got, err := c.Process(context.Background(), r)
			if tt.err != "" {
				var re *RecordError
				if !errors.As(err, &re) || re.Stage != "processors[0].filter" {
					t.Errorf("got error %v, want a *RecordError of stage processors[0].filter", err)
				}
			}
			if checkErr(t, err, tt.err) && got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestMap(t *testing.T) {
	tests := []struct {
		name       string
		value, key string // expressions
		in         string
		want       string // the value after the map
		wantKey    string // "<nil>" for no key; "" to leave unchecked
		err        string
	}{
		{
			name:  "the spec's example",
			value: `{"id": record.value.id, "cents": int(record.value.amount * 100.0), "ts": record.timestamp}`,
			key:   `string(record.value.id)`,
			in:    `{"id": 7, "amount": 12.34, "other": true}`,
			want:  `{"cents":1234,"id":7,"ts":"2024-01-02T03:04:05.0000006Z"}`, wantKey: "7",
		},
		{name: "whole value keeps exact integers", value: `record.value`, in: `{"id": 9007199254740993, "f": 1.5}`, want: `{"f":1.5,"id":9007199254740993}`},
		{name: "sub-document", value: `record.value.items`, in: `{"items": [{"a": 1}, [2], null]}`, want: `[{"a":1},[2],null]`},
		{name: "comprehension", value: `record.value.items.map(x, x * 2)`, in: `{"items": [1, 2.5]}`, want: `[2,5]`},
		{name: "string is a JSON string", value: `record.value.name + "!"`, in: `{"name": "a\"b"}`, want: `"a\"b!"`},
		{name: "bytes are the raw value", value: `b"raw \xff"`, in: `{}`, want: "raw \xff"},
		{name: "null is a null value", value: `null`, in: `{}`, want: nullValue},
		{name: "scalars", value: `[1u, -2, 0.25, true, null]`, in: `{}`, want: `[1,-2,0.25,true,null]`},
		{name: "nested bytes are base64", value: `{"b": b"\x00\x01"}`, in: `{}`, want: `{"b":"AAE="}`},
		{name: "durations", value: `[duration("1.5s"), duration("2h")]`, in: `{}`, want: `["1.5s","7200s"]`},
		{name: "timestamps in UTC", value: `timestamp("2024-05-06T07:08:09+02:00")`, in: `{}`, want: `"2024-05-06T05:08:09Z"`},
		{name: "map keys as text", value: `{1: "a", true: "b", 2u: "c"}`, in: `{}`, want: `{"1":"a","2":"c","true":"b"}`},
		{name: "optional", value: `{"d": record.value.?d.orValue(5), "e": optional.none()}`, in: `{}`, want: `{"d":5,"e":null}`},
		{
			name: "the whole record", value: `record`, in: `{"a": 1}`,
			want: `{"headers":{"bad":"\ufffd","h":"v"},"key":"k1","offset":42,"partition":3,"timestamp":"2024-01-02T03:04:05.0000006Z","topic":"orders","value":{"a":1}}`,
		},
		{name: "key only keeps the value", key: `record.value.k`, in: `{"k": "x"}`, want: `{"k": "x"}`, wantKey: "x"},
		{name: "key from a double", key: `record.value.id`, in: `{"id": 12}`, want: `{"id": 12}`, wantKey: "12"},
		{name: "key bytes", key: `b"\xff"`, in: `{}`, want: `{}`, wantKey: "\xff"},
		{name: "null key", key: `null`, in: `{}`, want: `{}`, wantKey: "<nil>"},
		{name: "key sees the value before the map", value: `{"x": 1}`, key: `record.value.k`, in: `{"k": "old"}`, want: `{"x":1}`, wantKey: "old"},
		{name: "infinity", value: `{"x": record.value.a / 0}`, in: `{"a": 1}`, err: "JSON cannot"},
		{name: "NaN", value: `[0.0 / 0.0]`, in: `{}`, err: "JSON cannot"},
		{name: "a type", value: `type(1)`, in: `{}`, err: "cannot be a JSON value"},
		{name: "no such key", value: `record.value.nope`, in: `{}`, err: "value: no such key: nope"},
		{name: "list key", key: `record.value.k`, in: `{"k": [1]}`, err: "key: got list, want a string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustChain(t, []Config{{Map: &MapConfig{Value: tt.value, Key: tt.key}}}, Options{})
			r := newRec(tt.in)
			ok, err := c.Process(context.Background(), r)
			if !checkErr(t, err, tt.err) {
				if err != nil && !strings.HasPrefix(err.Error(), "processors[0].map: ") {
					t.Errorf("got error %q, want it to start with the stage", err)
				}
				return
			}
			if !ok {
				t.Fatal("got dropped, want kept")
			}
			if got := valueOf(t, r); got != tt.want {
				t.Errorf("got value %s, want %s", got, tt.want)
			}
			switch tt.wantKey {
			case "":
			case "<nil>":
				if r.Key != nil {
					t.Errorf("got key %q, want none", r.Key)
				}
			default:
				if string(r.Key) != tt.wantKey {
					t.Errorf("got key %q, want %q", r.Key, tt.wantKey)
				}
			}
		})
	}
}

// TestMapTypes pins the Go types of a map's document: sinks pick column
// types from them.
func TestMapTypes(t *testing.T) {
	c := mustChain(t, []Config{{Map: &MapConfig{Value: `{"i": int(record.value.a * 100.0), "d": record.value.a * 100.0, "n": record.value.a, "u": 3u, "s": "x", "b": true, "z": null, "l": [1], "whole": record.value}`}}}, Options{})
	r := newRec(`{"a": 2, "f": 0.5}`)
	if _, err := c.Process(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	got, _ := r.Doc()
	want := map[string]any{
		"i": int64(200), "d": float64(200), "n": float64(2), "u": uint64(3), "s": "x", "b": true, "z": nil,
		"l":     []any{int64(1)},
		"whole": map[string]any{"a": int64(2), "f": 0.5},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %#v, want %#v", got, want)
	}
	// The copy of the whole value is the output's own.
	got.(map[string]any)["whole"].(map[string]any)["a"] = "changed"
	if d, _ := newRec(`{"a": 2}`).Doc(); d.(map[string]any)["a"] != int64(2) {
		t.Error("changing the output changed an input")
	}
}

func TestFields(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		in   string
		want string
		err  string
	}{
		{name: "drop", cfg: Config{Drop: []string{"internal", "customer.ssn", "missing", "customer.ssn.deeper", "n.x"}}, in: `{"internal": 1, "customer": {"ssn": "x", "name": "a"}, "n": 3}`, want: `{"customer":{"name":"a"},"n":3}`},
		{name: "drop nothing there", cfg: Config{Drop: []string{"a"}}, in: `{"b": 1}`, want: `{"b": 1}`},
		{name: "drop on an array", cfg: Config{Drop: []string{"a"}}, in: `[1]`, err: "value is an array, not an object"},
		{name: "drop on null", cfg: Config{Drop: []string{"a"}}, in: nullValue, err: "value is null, not an object"},
		{name: "drop on not JSON", cfg: Config{Drop: []string{"a"}}, in: `{`, err: "value is not JSON"},
		{name: "rename", cfg: Config{Rename: map[string]string{"amount": "amount_eur", "c.d": "e.f.g"}}, in: `{"amount": 1, "c": {"d": 2, "k": 3}}`, want: `{"amount_eur":1,"c":{"k":3},"e":{"f":{"g":2}}}`},
		{name: "rename swaps", cfg: Config{Rename: map[string]string{"a": "b", "b": "a"}}, in: `{"a": 1, "b": 2}`, want: `{"a":2,"b":1}`},
		{name: "rename of a missing field", cfg: Config{Rename: map[string]string{"x": "y"}}, in: `{"a": 1}`, want: `{"a": 1}`},
		{name: "rename onto a scalar", cfg: Config{Rename: map[string]string{"a": "b.c"}}, in: `{"a": 1, "b": 2}`, err: "cannot set b.c: b is a number, not an object"},
		{name: "rename on a string", cfg: Config{Rename: map[string]string{"a": "b"}}, in: `"s"`, err: "value is a string, not an object"},
		{name: "set", cfg: Config{Set: map[string]string{"source": `"web"`, "total": "record.value.price * record.value.qty", "meta.ts": "record.timestamp"}}, in: `{"price": 2.5, "qty": 4, "meta": null}`, want: `{"meta":{"ts":"2024-01-02T03:04:05.0000006Z"},"price":2.5,"qty":4,"source":"web","total":10}`},
		{name: "set sees the value before it", cfg: Config{Set: map[string]string{"a": "record.value.b", "b": "record.value.a"}}, in: `{"a": 1, "b": 2}`, want: `{"a":2,"b":1}`},
		{name: "set a copy of itself", cfg: Config{Set: map[string]string{"copy": "record.value"}}, in: `{"a": 1}`, want: `{"a":1,"copy":{"a":1}}`},
		{name: "set through a scalar", cfg: Config{Set: map[string]string{"a.b": "1"}}, in: `{"a": "s"}`, err: "cannot set a.b: a is a string, not an object"},
		{name: "set with a missing key", cfg: Config{Set: map[string]string{"t": "record.value.price * 2"}}, in: `{}`, err: "processors[0].set: t: no such key: price"},
		{name: "set on a number", cfg: Config{Set: map[string]string{"t": "1"}}, in: `12`, err: "value is a number, not an object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustChain(t, []Config{tt.cfg}, Options{})
			r := newRec(tt.in)
			ok, err := c.Process(context.Background(), r)
			if !checkErr(t, err, tt.err) {
				return
			}
			if !ok {
				t.Fatal("got dropped, want kept")
			}
			if got := valueOf(t, r); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "schemas"), 0o755); err != nil {
		t.Fatal(err)
	}
	file := `{"type": "object", "required": ["id"], "properties": {"id": {"type": "integer"}, "amount": {"type": "number"}}, "$defs": {"x": {"type": "string"}}}`
	if err := os.WriteFile(filepath.Join(dir, "schemas", "order.json"), []byte(file), 0o644); err != nil {
		t.Fatal(err)
	}
	inline := map[string]any{
		"type":       "object",
		"required":   []any{"id"},
		"properties": map[string]any{"id": map[string]any{"type": "integer"}, "amount": map[string]any{"type": "number"}},
	}
	tests := []struct {
		in, err string
	}{
		{in: `{"id": 7, "amount": 1.5}`},
		{in: `{"id": 7.0}`}, // an integral number is an integer in JSON Schema
		{in: `{"id": 9007199254740993}`},
		{in: `{"id": 7, "amount": "x"}`, err: "schema violation: /amount: got string, want number"},
		{in: `{"amount": 1}`, err: "schema violation: (root): missing property 'id'"},
		{in: `{"id": 7.5}`, err: "/id: got number, want integer"},
		{in: `[]`, err: "(root): got array, want object"},
		{in: `not json`, err: "value is not JSON"},
	}
	for _, cfg := range []*ValidateConfig{{JSONSchema: inline}, {SchemaFile: "schemas/order.json"}} {
		c := mustChain(t, []Config{{Validate: cfg}}, Options{BaseDir: dir})
		for _, tt := range tests {
			ok, err := c.Process(context.Background(), newRec(tt.in))
			if checkErr(t, err, tt.err) && !ok {
				t.Errorf("%s: got dropped, want kept", tt.in)
			}
			if tt.err != "" && err != nil && !strings.HasPrefix(err.Error(), "processors[0].validate: ") {
				t.Errorf("got %q, want it to start with the stage", err)
			}
		}
		if got := c.Schema(); got["type"] != "object" {
			t.Errorf("got schema %v, want the compiled one", got)
		}
	}

	// Many violations: the first few, sorted, then a count.
	many := map[string]any{"type": "object", "properties": map[string]any{
		"a": map[string]any{"type": "string"}, "b": map[string]any{"type": "string"},
		"c": map[string]any{"type": "string"}, "d": map[string]any{"type": "string"},
		"e~/": map[string]any{"type": "string"},
	}}
	c := mustChain(t, []Config{{Validate: &ValidateConfig{JSONSchema: many}}}, Options{})
	_, err := c.Process(context.Background(), newRec(`{"a": 1, "b": 2, "c": 3, "d": 4, "e~/": 5}`))
	want := "processors[0].validate: schema violation: /a: got number, want string; /b: got number, want string; /c: got number, want string; and 2 more"
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
	var se *SchemaError
	if !errors.As(err, &se) || se.Violations != 5 {
		t.Errorf("got %#v, want a *SchemaError of 5 violations", se)
	}
	_, err = c.Process(context.Background(), newRec(`{"e~/": 5}`))
	if err == nil || !strings.Contains(err.Error(), "/e~0~1: got number") {
		t.Errorf("got %v, want the escaped JSON pointer /e~0~1", err)
	}
}

// TestSchema: the last validate processor's schema, as a document the
// caller may change.
func TestSchema(t *testing.T) {
	if s := mustChain(t, []Config{{Filter: "true"}}, Options{}).Schema(); s != nil {
		t.Errorf("got %v, want nil without validate", s)
	}
	c := mustChain(t, []Config{
		{Validate: &ValidateConfig{JSONSchema: map[string]any{"type": "object"}}},
		{Validate: &ValidateConfig{JSONSchema: map[string]any{"type": "object", "maxProperties": uint64(3), "properties": map[string]any{"n": map[string]any{"maximum": 2.5}}}}},
	}, Options{})
	s := c.Schema()
	want := map[string]any{"type": "object", "maxProperties": int64(3), "properties": map[string]any{"n": map[string]any{"maximum": 2.5}}}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("got %#v, want %#v", s, want)
	}
	s["type"] = "changed"
	if c.Schema()["type"] != "object" {
		t.Error("changing Schema's result changed the chain's")
	}
}

// TestYAMLSpec decodes the processors as a spec file writes them.
func TestYAMLSpec(t *testing.T) {
	const spec = `
- filter: 'record.value.amount > 0'
- map: {value: '{"id": record.value.id, "cents": int(record.value.amount * 100.0), "ts": record.timestamp}', key: 'string(record.value.id)'}
- validate: {jsonSchema: {type: object, required: [id], properties: {id: {type: integer}, cents: {type: integer, minimum: 0}}}}
- drop: [ts]
- rename: {cents: amount_cents}
- set: {source: '"web"', total: 'record.value.amount_cents / 100'}
- dedupe: {key: 'record.value.id', window: 10m}
`
	var cfgs []Config
	if err := yaml.Unmarshal([]byte(spec), &cfgs); err != nil {
		t.Fatal(err)
	}
	c := mustChain(t, cfgs, Options{})
	in := []string{`{"id": 1, "amount": 12.5}`, `{"id": 2, "amount": 0}`, `{"id": 1, "amount": 3}`, `{"id": 3, "amount": 1}`}
	var got []string
	for _, v := range in {
		r := newRec(v)
		ok, err := c.Process(context.Background(), r)
		if err != nil {
			t.Fatalf("%s: %v", v, err)
		}
		if ok {
			got = append(got, string(r.Key)+" "+valueOf(t, r))
		}
	}
	want := []string{`1 {"amount_cents":1250,"id":1,"source":"web","total":12.5}`, `3 {"amount_cents":100,"id":3,"source":"web","total":1}`}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "ref.json"), []byte(`{"$ref": "other.json"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bad.json"), []byte(`{"type": 12}`), 0o644); err != nil {
		t.Fatal(err)
	}
	ok := Config{Filter: "true"}
	tests := []struct {
		name  string
		cfg   Config
		field string
		err   string
	}{
		{name: "no kind", cfg: Config{}, err: "no processor"},
		{name: "two kinds", cfg: Config{Filter: "true", Map: &MapConfig{Value: "1"}}, err: "found filter and map"},
		{name: "filter undeclared", cfg: Config{Filter: "foo > 1"}, field: "filter", err: "undeclared reference to 'foo' at 1:1\n | foo > 1\n | ^"},
		{name: "filter field", cfg: Config{Filter: "record.vaule.x > 1"}, field: "filter", err: "undefined field 'vaule' at 1:7"},
		{name: "filter syntax", cfg: Config{Filter: "record.value.a >"}, field: "filter", err: "Syntax error"},
		{name: "filter type", cfg: Config{Filter: "record.topic"}, field: "filter", err: "expression is of type string, want bool"},
		{name: "filter empty space", cfg: Config{Filter: " "}, field: "filter", err: "empty expression"},
		{name: "filter too long", cfg: Config{Filter: "true" + strings.Repeat(" ", maxExprLen)}, field: "filter", err: "more than the limit of 10000"},
		{name: "map empty", cfg: Config{Map: &MapConfig{}}, field: "map", err: "want value, key or both"},
		{name: "map value", cfg: Config{Map: &MapConfig{Value: "record.value +"}}, field: "map.value", err: "Syntax error"},
		{name: "map key type", cfg: Config{Map: &MapConfig{Value: "1", Key: "1"}}, field: "map.key", err: "expression is of type int, want string or bytes or null_type"},
		{name: "set expr", cfg: Config{Set: map[string]string{"total": "nope"}}, field: "set.total", err: "undeclared reference to 'nope'"},
		{name: "set path", cfg: Config{Set: map[string]string{"a..b": "1"}}, field: "set.a..b", err: `path "a..b" has an empty segment`},
		{name: "set overlap", cfg: Config{Set: map[string]string{"a": "1", "a.b": "2"}}, field: "set.a.b", err: "a.b overlaps a, also set"},
		{name: "validate neither", cfg: Config{Validate: &ValidateConfig{}}, field: "validate", err: "want jsonSchema or schemaFile"},
		{name: "validate both", cfg: Config{Validate: &ValidateConfig{JSONSchema: map[string]any{}, SchemaFile: "x.json"}}, field: "validate", err: "not both"},
		{name: "validate inline", cfg: Config{Validate: &ValidateConfig{JSONSchema: map[string]any{"type": "nope"}}}, field: "validate.jsonSchema", err: "is not valid against metaschema"},
		{name: "validate inline not object", cfg: Config{Validate: &ValidateConfig{JSONSchema: true}}, field: "validate.jsonSchema", err: "schema is a boolean, want an object"},
		{name: "validate remote ref", cfg: Config{Validate: &ValidateConfig{JSONSchema: map[string]any{"$ref": "https://example.com/s.json"}}}, field: "validate.jsonSchema", err: "load no other documents"},
		{name: "validate file missing", cfg: Config{Validate: &ValidateConfig{SchemaFile: "missing.json"}}, field: "validate.schemaFile", err: "no such file"},
		{name: "validate file ref", cfg: Config{Validate: &ValidateConfig{SchemaFile: "ref.json"}}, field: "validate.schemaFile", err: "load no other documents"},
		{name: "validate file bad", cfg: Config{Validate: &ValidateConfig{SchemaFile: "bad.json"}}, field: "validate.schemaFile", err: "bad.json"},
		{name: "dedupe key missing", cfg: Config{Dedupe: &DedupeConfig{Window: units.Duration(time.Minute)}}, field: "dedupe.key", err: "want a key expression"},
		{name: "dedupe key", cfg: Config{Dedupe: &DedupeConfig{Key: "record.", Window: units.Duration(time.Minute)}}, field: "dedupe.key", err: "Syntax error"},
		{name: "dedupe window", cfg: Config{Dedupe: &DedupeConfig{Key: "record.key"}}, field: "dedupe.window", err: "greater than zero"},
		{name: "dedupe maxKeys", cfg: Config{Dedupe: &DedupeConfig{Key: "record.key", Window: units.Duration(time.Minute), MaxKeys: -1}}, field: "dedupe.maxKeys", err: "got -1"},
		{name: "rename empty target", cfg: Config{Rename: map[string]string{"a": ""}}, field: "rename.a", err: "empty path"},
		{name: "rename same target", cfg: Config{Rename: map[string]string{"a": "c", "b": "c"}}, field: "rename.b", err: "target c overlaps c, the target of a"},
		{name: "rename overlapping sources", cfg: Config{Rename: map[string]string{"a": "x", "a.b": "y"}}, field: "rename.a.b", err: "a.b overlaps a"},
		{name: "drop", cfg: Config{Drop: []string{"ok", ".bad"}}, field: "drop[1]", err: `path ".bad" has an empty segment`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewChain([]Config{ok, tt.cfg}, Options{BaseDir: dir})
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("got %v, want a *ConfigError", err)
			}
			if ce.Index != 1 || ce.Field != tt.field {
				t.Errorf("got index %d field %q, want 1 %q", ce.Index, ce.Field, tt.field)
			}
			checkErr(t, err, tt.err)
			prefix := "processors[1]." + tt.field + ": "
			if tt.field == "" {
				prefix = "processors[1]: "
			}
			if !strings.HasPrefix(err.Error(), prefix) {
				t.Errorf("got %q, want it to start with %q", err, prefix)
			}
		})
	}
}

func TestCostLimit(t *testing.T) {
	items := `{"items": [` + strings.TrimSuffix(strings.Repeat("1,", 1000), ",") + `]}`
	// Six nested comprehensions over ten elements build a million.
	const ten = "[0,1,2,3,4,5,6,7,8,9]"
	huge := ten + ".map(a, " + ten + ".map(b, " + ten + ".map(c, " + ten + ".map(d, " + ten + ".map(e, " + ten + ".map(f, f))))))"
	tests := []struct {
		name string
		expr string
		opts Options
		in   string
		err  string
	}{
		{name: "under the limit", expr: "record.value.items.all(x, x > 0)", in: items},
		{name: "small limit", expr: "record.value.items.all(x, x > 0)", opts: Options{MaxCost: 100}, in: items, err: "evaluation cost exceeds the limit of 100"},
		{name: "default limit", expr: "size(" + huge + ") > 0", in: `{}`, err: "evaluation cost exceeds the limit of 1000000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustChain(t, []Config{{Filter: tt.expr}}, tt.opts)
			_, err := c.Process(context.Background(), newRec(tt.in))
			checkErr(t, err, tt.err)
			if tt.err != "" && !errors.As(err, new(*RecordError)) {
				t.Errorf("got %T, want a *RecordError", err)
			}
		})
	}
}

// TestCancel: an evaluation cut short by the context is not the record's
// fault.
func TestCancel(t *testing.T) {
	items := `{"items": [` + strings.TrimSuffix(strings.Repeat("1,", 5000), ",") + `]}`
	c := mustChain(t, []Config{{Filter: "record.value.items.all(x, x > 0)"}}, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.Process(ctx, newRec(items))
	if !errors.Is(err, context.Canceled) || errors.As(err, new(*RecordError)) {
		t.Fatalf("got %v, want context.Canceled and no *RecordError", err)
	}
}

func TestStages(t *testing.T) {
	c := mustChain(t, []Config{
		{Filter: "true"},
		{Drop: []string{"x"}},
		{Map: &MapConfig{Value: "record.value.a.b"}},
	}, Options{})
	_, err := c.Process(context.Background(), newRec(`{"a": 1}`))
	var re *RecordError
	if !errors.As(err, &re) || re.Stage != "processors[2].map" {
		t.Fatalf("got %v, want a *RecordError of stage processors[2].map", err)
	}
	// An empty chain keeps everything.
	ok, err := mustChain(t, nil, Options{}).Process(context.Background(), newRec(`x`))
	if !ok || err != nil {
		t.Errorf("got %v, %v from an empty chain, want true, nil", ok, err)
	}
	// A dropped record stops the chain.
	c = mustChain(t, []Config{{Filter: "false"}, {Map: &MapConfig{Value: "record.value.nope"}}}, Options{})
	if ok, err := c.Process(context.Background(), newRec(`{}`)); ok || err != nil {
		t.Errorf("got %v, %v, want false, nil", ok, err)
	}
}

func TestExpr(t *testing.T) {
	tests := []struct {
		expr, in, want, err string
	}{
		{expr: "'dt=' + date(record.timestamp) + '/hr=' + hour(record.timestamp)", in: `{}`, want: "dt=2024-01-02/hr=03"},
		{expr: "record.value.region", in: `{"region": "eu"}`, want: "eu"},
		{expr: "record.value.n", in: `{"n": 12}`, want: "12"},
		{expr: "record.value.n", in: `{"n": 0.000001}`, want: "0.000001"},
		{expr: "record.value.n", in: `{"n": 1e-7}`, want: "1e-7"},
		{expr: "record.value.ok", in: `{"ok": true}`, want: "true"},
		{expr: "record.key", in: `{}`, want: "k1"},
		{expr: "record.value.l", in: `{"l": [1]}`, err: "got list, want a string"},
		{expr: "record.value.n", in: `{}`, err: "no such key: n"},
	}
	for _, tt := range tests {
		e, err := CompileExpr(tt.expr, Options{})
		if err != nil {
			t.Fatalf("%s: %v", tt.expr, err)
		}
		got, err := e.EvalString(newRec(tt.in))
		if checkErr(t, err, tt.err) && got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.expr, got, tt.want)
		}
	}
	for _, bad := range []string{"1 + 1", "record.value +", ""} {
		if _, err := CompileExpr(bad, Options{}); err == nil {
			t.Errorf("%q: got no error, want one", bad)
		}
	}
}

// TestExprConcurrent: one Expr evaluated from many goroutines, as sinks
// may; run with -race.
func TestExprConcurrent(t *testing.T) {
	e, err := CompileExpr(`record.value.items.map(x, string(x)).join(",") + record.value.bad`, Options{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	for g := range 8 {
		go func() {
			for i := range 100 {
				var err error
				if (g+i)%2 == 0 {
					var got string
					got, err = e.EvalString(newRec(`{"items": [1, 2], "bad": "!"}`))
					if err == nil && got != "1,2!" {
						err = errors.New("got " + got + ", want 1,2!")
					}
				} else {
					_, err = e.EvalString(newRec(`{"items": [1, 2], "bad": 3}`))
					if err == nil || !strings.Contains(err.Error(), "no such overload for + applied to (string, double)") {
						err = fmt.Errorf("got %v, want a no such overload error", err)
					} else {
						err = nil
					}
				}
				if err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

package parquet

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/sluice-dev/sluice/internal/connector"
)

// kind is what a column holds and how a JSON value is stored in it.
type kind uint8

const (
	kindInt       kind = iota + 1 // INT64
	kindDouble                    // DOUBLE
	kindBool                      // BOOLEAN
	kindString                    // BYTE_ARRAY (STRING)
	kindTimestamp                 // INT64 (TIMESTAMP(MILLIS, UTC)) from an RFC 3339 string
	kindJSON                      // BYTE_ARRAY (STRING) holding the value as JSON text
)

func (k kind) String() string {
	switch k {
	case kindInt:
		return "integer"
	case kindDouble:
		return "number"
	case kindBool:
		return "boolean"
	case kindString:
		return "string"
	case kindTimestamp:
		return "date-time string"
	case kindJSON:
		return "JSON"
	}
	return "unknown"
}

// The metadata columns: where each row came from.
const (
	colTopic     = "_topic"
	colPartition = "_partition"
	colOffset    = "_offset"
	colTimestamp = "_timestamp"
)

func isMetadata(name string) bool {
	switch name {
	case colTopic, colPartition, colOffset, colTimestamp:
		return true
	}
	return false
}

// maxColumns bounds the columns of an inferred schema: documents whose keys
// are data (IDs as keys) would otherwise make a column of every key.
const maxColumns = 1000

// field is a top-level field of the records and its column.
type field struct {
	kind     kind
	required bool
	// want restricts a JSON column to "object" or "array" values, as a
	// JSON Schema type says; empty takes any value.
	want string
}

// fileSchema is the schema of one file: the metadata columns and a column
// per field.
type fileSchema struct {
	schema *parquet.Schema
	fields map[string]field
	names  []string // of fields, sorted
	index  []int    // parquet column index of names[i]
	// Column indexes of the metadata columns.
	topic, partition, offset, timestamp int
}

func newFileSchema(fields map[string]field) *fileSchema {
	g := parquet.Group{
		// One topic per file, mostly: a dictionary stores it once.
		colTopic:     parquet.Encoded(parquet.String(), &parquet.RLEDictionary),
		colPartition: parquet.Leaf(parquet.Int32Type),
		colOffset:    parquet.Leaf(parquet.Int64Type),
		colTimestamp: parquet.Timestamp(parquet.Millisecond),
	}
	for name, f := range fields {
		var n parquet.Node
		switch f.kind {
		case kindInt:
			n = parquet.Leaf(parquet.Int64Type)
		case kindDouble:
			n = parquet.Leaf(parquet.DoubleType)
		case kindBool:
			n = parquet.Leaf(parquet.BooleanType)
		case kindTimestamp:
			n = parquet.Timestamp(parquet.Millisecond)
		default:
			n = parquet.String()
		}
		if !f.required {
			n = parquet.Optional(n)
		}
		g[name] = n
	}
	s := &fileSchema{schema: parquet.NewSchema("record", g), fields: fields}
	s.names = slices.Sorted(maps.Keys(fields))
	s.index = make([]int, len(s.names))
	for i, name := range s.names {
		s.index[i] = s.column(name)
	}
	s.topic, s.partition = s.column(colTopic), s.column(colPartition)
	s.offset, s.timestamp = s.column(colOffset), s.column(colTimestamp)
	return s
}

func (s *fileSchema) column(name string) int {
	c, ok := s.schema.Lookup(name)
	if !ok {
		panic("parquet sink: no column " + name)
	}
	return c.ColumnIndex
}

// row appends to row (which it resets) the parquet row of rec, whose value
// is doc, or returns why the record does not fit the schema.
func (s *fileSchema) row(row parquet.Row, rec *connector.Record, doc map[string]any) (parquet.Row, error) {
	row = slices.Grow(row[:0], len(s.names)+4)[:len(s.names)+4]
	row[s.topic] = parquet.ByteArrayValue([]byte(rec.Topic)).Level(0, 0, s.topic)
	row[s.partition] = parquet.Int32Value(rec.Partition).Level(0, 0, s.partition)
	row[s.offset] = parquet.Int64Value(rec.Offset).Level(0, 0, s.offset)
	row[s.timestamp] = parquet.Int64Value(rec.Timestamp.UnixMilli()).Level(0, 0, s.timestamp)
	for i, name := range s.names {
		f, col := s.fields[name], s.index[i]
		v, ok := doc[name]
		if !ok || v == nil {
			if f.required {
				if !ok {
					return row, fmt.Errorf("field %q is required and missing", name)
				}
				return row, fmt.Errorf("field %q is required and null", name)
			}
			row[col] = parquet.NullValue().Level(0, 0, col)
			continue
		}
		pv, err := f.value(v)
		if err != nil {
			return row, fmt.Errorf("field %q: %w", name, err)
		}
		def := 1
		if f.required {
			def = 0
		}
		row[col] = pv.Level(0, def, col)
	}
	return row, nil
}

// value converts a non-null JSON value to the column's type.
func (f field) value(v any) (parquet.Value, error) {
	switch f.kind {
	case kindInt:
		switch t := v.(type) {
		case int64:
			return parquet.Int64Value(t), nil
		case float64:
			// JSON Schema's integer includes 1.0 and 1e3.
			if t == math.Trunc(t) && t >= -(1<<63) && t < 1<<63 {
				return parquet.Int64Value(int64(t)), nil
			}
		default:
			if i, ok := asInt(v); ok {
				return parquet.Int64Value(i), nil
			}
		}
	case kindDouble:
		switch t := v.(type) {
		case float64:
			return parquet.DoubleValue(t), nil
		case int64:
			return parquet.DoubleValue(float64(t)), nil
		case float32:
			return parquet.DoubleValue(float64(t)), nil
		default:
			if i, ok := asInt(v); ok {
				return parquet.DoubleValue(float64(i)), nil
			}
			if u, ok := v.(uint64); ok {
				return parquet.DoubleValue(float64(u)), nil
			}
		}
	case kindBool:
		if b, ok := v.(bool); ok {
			return parquet.BooleanValue(b), nil
		}
	case kindString:
		if s, ok := v.(string); ok {
			return parquet.ByteArrayValue([]byte(s)), nil
		}
	case kindTimestamp:
		if s, ok := v.(string); ok {
			t, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				return parquet.Value{}, fmt.Errorf("want an RFC 3339 date-time, got %q", s)
			}
			return parquet.Int64Value(t.UnixMilli()), nil
		}
	case kindJSON:
		switch {
		case f.want == "object" && !isObject(v):
		case f.want == "array" && !isArray(v):
		default:
			b, err := connector.EncodeJSON(v)
			if err != nil {
				return parquet.Value{}, err
			}
			return parquet.ByteArrayValue(b), nil
		}
		return parquet.Value{}, fmt.Errorf("want %s %s, got %s", article(f.want), f.want, describe(v))
	}
	return parquet.Value{}, fmt.Errorf("want %s %s, got %s", article(f.kind.String()), f.kind, describe(v))
}

func isObject(v any) bool { _, ok := v.(map[string]any); return ok }

func isArray(v any) bool { _, ok := v.([]any); return ok }

// asInt takes the integer types processors may produce besides int64.
func asInt(v any) (int64, bool) {
	switch t := v.(type) {
	case int:
		return int64(t), true
	case int32:
		return int64(t), true
	case uint32:
		return int64(t), true
	case uint64:
		if t <= math.MaxInt64 {
			return int64(t), true
		}
	}
	return 0, false
}

func article(s string) string {
	if strings.IndexByte("aeiou", s[0]) >= 0 {
		return "an"
	}
	return "a"
}

// describe names a JSON value's type for an error, with short values.
func describe(v any) string {
	switch t := v.(type) {
	case bool:
		return fmt.Sprintf("boolean %v", t)
	case int64, float64, int, int32, uint32, uint64, float32:
		return fmt.Sprintf("number %v", t)
	case string:
		if len(t) > 40 {
			return fmt.Sprintf("string %q...", t[:40])
		}
		return fmt.Sprintf("string %q", t)
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", v)
}

// kindOf is the column kind a value infers: integers and floats their
// numeric kinds, objects and arrays JSON. Null infers nothing: a field seen
// only as null gets its column once it holds a value.
func kindOf(v any) (kind, bool) {
	switch t := v.(type) {
	case nil:
		return 0, false
	case bool:
		return kindBool, true
	case int64, int, int32, uint32:
		return kindInt, true
	case uint64:
		if t <= math.MaxInt64 {
			return kindInt, true
		}
		return kindDouble, true
	case float64, float32:
		return kindDouble, true
	case string:
		return kindString, true
	}
	return kindJSON, true
}

// widen is the kind that holds values of both kinds: integers and floats
// are numbers; anything else mixed is JSON.
func widen(a, b kind) kind {
	switch {
	case a == b:
		return a
	case a == kindInt && b == kindDouble, a == kindDouble && b == kindInt:
		return kindDouble
	}
	return kindJSON
}

// inference accumulates the fields of an inferred schema: the union of the
// top-level fields of the records, all optional (a later record may lack
// any of them).
type inference struct {
	fields  map[string]field
	changed bool // fields differs from the schema it started from
}

func newInference(from *fileSchema) *inference {
	in := &inference{fields: map[string]field{}}
	if from != nil {
		maps.Copy(in.fields, from.fields)
	}
	return in
}

// add widens the fields to hold doc, or leaves them and says why it cannot:
// a field named like a metadata column, or one column too many.
func (in *inference) add(doc map[string]any) error {
	added := 0
	for name, v := range doc {
		if err := checkFieldName(name); err != nil {
			return err
		}
		if _, ok := kindOf(v); ok {
			if _, had := in.fields[name]; !had {
				added++
			}
		}
	}
	if len(in.fields)+added > maxColumns {
		return fmt.Errorf("a file holds at most %d fields (columns); this record would make it %d", maxColumns, len(in.fields)+added)
	}
	for name, v := range doc {
		k, ok := kindOf(v)
		if !ok {
			continue
		}
		f, had := in.fields[name]
		switch {
		case !had:
			in.fields[name] = field{kind: k}
		case widen(f.kind, k) != f.kind:
			in.fields[name] = field{kind: widen(f.kind, k)}
		default:
			continue
		}
		in.changed = true
	}
	return nil
}

func checkFieldName(name string) error {
	if isMetadata(name) {
		return fmt.Errorf("field %q has the name of a metadata column", name)
	}
	if name == "" {
		return errors.New("a field has an empty name")
	}
	return nil
}

// fieldsFromJSONSchema reads the columns of a JSON Schema: the top-level
// properties with their type (and format date-time for timestamps), required
// when the schema requires them and does not allow null. A property whose
// type is absent, several types other than integer and number, or a
// combinator ($ref, anyOf, ...) becomes a JSON column. It returns nil for a
// schema without properties, whose files then infer their schema.
func fieldsFromJSONSchema(schema map[string]any) (map[string]field, error) {
	props, _ := schema["properties"].(map[string]any)
	if len(props) == 0 {
		return nil, nil
	}
	required := map[string]bool{}
	switch r := schema["required"].(type) {
	case []any:
		for _, n := range r {
			if s, ok := n.(string); ok {
				required[s] = true
			}
		}
	case []string:
		for _, s := range r {
			required[s] = true
		}
	}
	fields := map[string]field{}
	for name, p := range props {
		if err := checkFieldName(name); err != nil {
			return nil, fmt.Errorf("schema property %q: %w", name, err)
		}
		prop, ok := p.(map[string]any)
		if !ok {
			if p == false {
				continue // a property that may never be present
			}
			fields[name] = field{kind: kindJSON}
			continue
		}
		var types []string
		nullable := false
		switch t := prop["type"].(type) {
		case string:
			types = []string{t}
		case []any:
			for _, e := range t {
				if s, ok := e.(string); ok {
					types = append(types, s)
				}
			}
		case []string:
			types = t
		}
		types = slices.DeleteFunc(slices.Clone(types), func(s string) bool {
			if s == "null" {
				nullable = true
				return true
			}
			return false
		})
		f := field{kind: kindJSON, required: required[name] && !nullable}
		switch {
		case len(types) == 1:
			switch types[0] {
			case "integer":
				f.kind = kindInt
			case "number":
				f.kind = kindDouble
			case "boolean":
				f.kind = kindBool
			case "string":
				f.kind = kindString
				if prop["format"] == "date-time" {
					f.kind = kindTimestamp
				}
			case "object", "array":
				f.want = types[0]
			default:
				return nil, fmt.Errorf("schema property %q: unknown type %q", name, types[0])
			}
		case len(types) == 2 && slices.Contains(types, "integer") && slices.Contains(types, "number"):
			f.kind = kindDouble
		}
		fields[name] = f
	}
	if len(fields) > maxColumns {
		return nil, fmt.Errorf("schema has %d properties; a parquet file holds at most %d", len(fields), maxColumns)
	}
	return fields, nil
}

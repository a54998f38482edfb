package connector

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/go-json-experiment/json/jsontext"
)

// DecodeJSON parses one JSON value into nil, bool, int64 (numbers written
// without a fraction or exponent that fit), float64 (every other number),
// string, []any and map[string]any. Keeping integers exact matters: IDs and
// cents above 2^53 survive, and CEL sees int where the producer wrote one.
// The input must be exactly one value (whitespace around it aside), valid
// UTF-8, with no duplicate object names and no number beyond float64's
// range: a document that cannot be written back unchanged is refused here,
// as the record's fault, rather than failing later in a sink.
//
// It reads tokens with jsontext rather than decoding with encoding/json's
// reflection: this is the per-record cost of every pipeline that looks
// into values.
func DecodeJSON(b []byte) (any, error) {
	var d JSONDecoder
	return d.Decode(b)
}

// JSONDecoder decodes documents as DecodeJSON does, reusing its state
// from one document to the next and sharing the strings of object names
// that repeat (every record of a topic has the same few), which saves most
// of the allocations of a small document. A JSONDecoder is used by one
// goroutine at a time; the zero value is ready to use.
type JSONDecoder struct {
	r     bytes.Reader
	d     *jsontext.Decoder
	names map[string]string
}

// maxInternedNames bounds the names a JSONDecoder keeps: documents with
// ever-new names (maps keyed by IDs) must not grow it without bound.
const maxInternedNames = 4096

// Decode parses one document; see DecodeJSON.
func (jd *JSONDecoder) Decode(b []byte) (any, error) {
	jd.r.Reset(b)
	if jd.d == nil {
		// Duplicate names are caught below, where the map shows them for
		// free, rather than by jsontext's own bookkeeping of every name.
		jd.d = jsontext.NewDecoder(&jd.r, jsontext.AllowDuplicateNames(true))
	} else {
		// Reused: names are worth sharing from now on.
		jd.d.Reset(&jd.r)
		if jd.names == nil {
			jd.names = make(map[string]string)
		}
	}
	v, err := jd.value()
	if err != nil {
		return nil, err
	}
	if _, err := jd.d.ReadToken(); !errors.Is(err, io.EOF) {
		return nil, errors.New("invalid JSON: data after the top-level value")
	}
	return v, nil
}

// name reads an object name, shared when it was seen before.
func (jd *JSONDecoder) name() (string, error) {
	raw, err := jd.d.ReadValue()
	if err != nil {
		return "", err
	}
	if len(raw) >= 2 && bytes.IndexByte(raw, '\\') < 0 {
		inner := raw[1 : len(raw)-1]
		if s, ok := jd.names[string(inner)]; ok {
			return s, nil
		}
		s := string(inner)
		if jd.names != nil && len(jd.names) < maxInternedNames {
			jd.names[s] = s
		}
		return s, nil
	}
	var s string
	if err := unquote(raw, &s); err != nil {
		return "", err
	}
	return s, nil
}

func (jd *JSONDecoder) value() (any, error) {
	d := jd.d
	switch d.PeekKind() {
	case '{':
		if _, err := d.ReadToken(); err != nil {
			return nil, err
		}
		m := make(map[string]any)
		for d.PeekKind() != '}' {
			name, err := jd.name()
			if err != nil {
				return nil, err
			}
			v, err := jd.value()
			if err != nil {
				return nil, err
			}
			if _, dup := m[name]; dup {
				return nil, fmt.Errorf("invalid JSON: duplicate object name %q", name)
			}
			m[name] = v
		}
		if _, err := d.ReadToken(); err != nil {
			return nil, err
		}
		return m, nil
	case '[':
		if _, err := d.ReadToken(); err != nil {
			return nil, err
		}
		a := make([]any, 0, 4)
		for d.PeekKind() != ']' {
			v, err := jd.value()
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
		if _, err := d.ReadToken(); err != nil {
			return nil, err
		}
		return a, nil
	}
	tok, err := d.ReadToken()
	if err != nil {
		return nil, err
	}
	switch tok.Kind() {
	case 'n':
		return nil, nil
	case 't', 'f':
		return tok.Bool(), nil
	case '"':
		return tok.String(), nil
	case '0':
		if i, err := tok.Int(); err == nil {
			return i, nil
		}
		f, err := tok.Float()
		if err != nil {
			return nil, fmt.Errorf("JSON number %.40s is out of range", tok.String())
		}
		return f, nil
	}
	return nil, fmt.Errorf("invalid JSON token %v", tok.Kind())
}

// unquote decodes a JSON string with escapes.
func unquote(raw []byte, dst *string) error {
	return json.Unmarshal(raw, dst)
}

// EncodeJSON encodes a document of DecodeJSON's types (and the other types
// encoding/json takes: processors produce uint64, int and []byte too)
// compactly, without escaping <, > and &. Non-finite floats, which JSON
// cannot hold, are an error.
func EncodeJSON(v any) ([]byte, error) {
	if err := checkFinite(v); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	e := json.NewEncoder(&buf)
	e.SetEscapeHTML(false)
	if err := e.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func checkFinite(v any) error {
	switch t := v.(type) {
	case float64:
		if math.IsInf(t, 0) || math.IsNaN(t) {
			return fmt.Errorf("JSON cannot hold the number %v", t)
		}
	case map[string]any:
		for _, e := range t {
			if err := checkFinite(e); err != nil {
				return err
			}
		}
	case []any:
		for _, e := range t {
			if err := checkFinite(e); err != nil {
				return err
			}
		}
	}
	return nil
}

// CloneJSON deep-copies the maps and slices of a document.
func CloneJSON(v any) any {
	switch t := v.(type) {
	case map[string]any:
		c := make(map[string]any, len(t))
		for k, e := range t {
			c[k] = CloneJSON(e)
		}
		return c
	case []any:
		c := make([]any, len(t))
		for i, e := range t {
			c[i] = CloneJSON(e)
		}
		return c
	}
	return v
}

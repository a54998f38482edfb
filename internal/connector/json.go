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
	d := jsontext.NewDecoder(bytes.NewReader(b))
	v, err := decodeValue(d)
	if err != nil {
		return nil, err
	}
	if _, err := d.ReadToken(); !errors.Is(err, io.EOF) {
		return nil, errors.New("invalid JSON: data after the top-level value")
	}
	return v, nil
}

func decodeValue(d *jsontext.Decoder) (any, error) {
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
	case '{':
		m := make(map[string]any)
		for d.PeekKind() != '}' {
			k, err := d.ReadToken()
			if err != nil {
				return nil, err
			}
			name := k.String() // before the next read voids k
			v, err := decodeValue(d)
			if err != nil {
				return nil, err
			}
			m[name] = v
		}
		if _, err := d.ReadToken(); err != nil {
			return nil, err
		}
		return m, nil
	case '[':
		a := make([]any, 0, 4)
		for d.PeekKind() != ']' {
			v, err := decodeValue(d)
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
	return nil, fmt.Errorf("invalid JSON token %v", tok.Kind())
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

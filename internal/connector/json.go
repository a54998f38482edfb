package connector

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
)

// DecodeJSON parses one JSON value into nil, bool, int64 (numbers written
// without a fraction or exponent that fit), float64 (every other number),
// string, []any and map[string]any. Keeping integers exact matters: IDs and
// cents above 2^53 survive, and CEL sees int where the producer wrote one.
func DecodeJSON(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := d.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("invalid JSON: data after the top-level value")
	}
	return convertNumbers(v)
}

func convertNumbers(v any) (any, error) {
	switch t := v.(type) {
	case json.Number:
		return ParseNumber(string(t))
	case map[string]any:
		for k, e := range t {
			c, err := convertNumbers(e)
			if err != nil {
				return nil, err
			}
			t[k] = c
		}
	case []any:
		for i, e := range t {
			c, err := convertNumbers(e)
			if err != nil {
				return nil, err
			}
			t[i] = c
		}
	}
	return v, nil
}

// ParseNumber converts a JSON number's text as DecodeJSON does.
func ParseNumber(s string) (any, error) {
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return i, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return nil, fmt.Errorf("invalid JSON number %q", s)
	}
	return f, nil
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

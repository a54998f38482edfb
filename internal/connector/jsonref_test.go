package connector

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/go-json-experiment/json/jsontext"
)

// The decoder DecodeJSON replaced, on jsontext's tokens: the reference
// its tests hold the scanner to.

// refDecoder decodes documents as DecodeJSON does, reusing its state
// from one document to the next and sharing the strings of object names
// that repeat (every record of a topic has the same few), which saves most
// of the allocations of a small document. A refDecoder is used by one
// goroutine at a time; the zero value is ready to use.
type refDecoder struct {
	r     bytes.Reader
	d     *jsontext.Decoder
	names map[string]string
}

// refMaxNames bounds the names a refDecoder keeps: documents with
// ever-new names (maps keyed by IDs) must not grow it without bound.
const refMaxNames = 4096

// Decode parses one document; see DecodeJSON.
func (jd *refDecoder) Decode(b []byte) (any, error) {
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
func (jd *refDecoder) name() (string, error) {
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
		if jd.names != nil && len(jd.names) < refMaxNames {
			jd.names[s] = s
		}
		return s, nil
	}
	var s string
	if err := refUnquote(raw, &s); err != nil {
		return "", err
	}
	return s, nil
}

func (jd *refDecoder) value() (any, error) {
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
func refUnquote(raw []byte, dst *string) error {
	return json.Unmarshal(raw, dst)
}

package resource

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// toYAML writes a JSON document as block-style YAML, keys in the JSON's
// order. It replaces goccy's encoder, which loses tabs, carriage returns
// and blank strings and writes some strings ("? q") that do not parse
// back: every scalar here is written plain or as a literal block only if
// the parser reads that back as the same string, and JSON-quoted (which
// YAML reads as JSON does) otherwise.
func toYAML(doc []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	v, err := readJSON(dec)
	if err != nil {
		return nil, fmt.Errorf("write yaml: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("write yaml: data after the document")
	}
	var b bytes.Buffer
	switch t := v.(type) {
	case *object:
		if len(t.keys) == 0 {
			b.WriteString("{}\n")
		} else {
			writeObject(&b, t, 0)
		}
	case []any:
		if len(t) == 0 {
			b.WriteString("[]\n")
		} else {
			writeArray(&b, t, 0)
		}
	default:
		b.WriteString(scalar(v, 0))
		b.WriteByte('\n')
	}
	return b.Bytes(), nil
}

// object is a JSON object with its keys in order.
type object struct {
	keys []string
	vals []any
}

func readJSON(dec *json.Decoder) (any, error) {
	tk, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tk.(type) {
	case json.Delim:
		switch t {
		case '{':
			o := &object{}
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					return nil, err
				}
				v, err := readJSON(dec)
				if err != nil {
					return nil, err
				}
				o.keys = append(o.keys, k.(string))
				o.vals = append(o.vals, v)
			}
			_, err := dec.Token()
			return o, err
		case '[':
			a := []any{}
			for dec.More() {
				v, err := readJSON(dec)
				if err != nil {
					return nil, err
				}
				a = append(a, v)
			}
			_, err := dec.Token()
			return a, err
		}
		return nil, fmt.Errorf("unexpected %v", t)
	}
	return tk, nil
}

func indent(b *bytes.Buffer, n int) {
	for range n {
		b.WriteByte(' ')
	}
}

// writeObject writes the members of o at column indent; the caller has
// written the indentation of the first line.
func writeObject(b *bytes.Buffer, o *object, ind int) {
	for i, k := range o.keys {
		if i > 0 {
			indent(b, ind)
		}
		b.WriteString(key(k))
		b.WriteByte(':')
		writeValue(b, o.vals[i], ind)
	}
}

func writeArray(b *bytes.Buffer, a []any, ind int) {
	for i, v := range a {
		if i > 0 {
			indent(b, ind)
		}
		b.WriteString("- ")
		switch t := v.(type) {
		case *object:
			if len(t.keys) > 0 {
				writeObject(b, t, ind+2)
				continue
			}
		case []any:
			if len(t) > 0 {
				writeArray(b, t, ind+2)
				continue
			}
		}
		b.WriteString(scalar(v, ind+2))
		b.WriteByte('\n')
	}
}

// writeValue writes what follows "key:" for a member at column ind.
func writeValue(b *bytes.Buffer, v any, ind int) {
	switch t := v.(type) {
	case *object:
		if len(t.keys) > 0 {
			b.WriteByte('\n')
			indent(b, ind+2)
			writeObject(b, t, ind+2)
			return
		}
	case []any:
		if len(t) > 0 {
			b.WriteByte('\n')
			indent(b, ind+2)
			writeArray(b, t, ind+2)
			return
		}
	}
	b.WriteByte(' ')
	b.WriteString(scalar(v, ind+2))
	b.WriteByte('\n')
}

// scalar writes a scalar or an empty collection; a literal block's lines
// are indented to ind.
func scalar(v any, ind int) string {
	switch t := v.(type) {
	case nil:
		return "null"
	case bool:
		if t {
			return "true"
		}
		return "false"
	case json.Number:
		return number(string(t))
	case string:
		if plainOK(t) {
			return t
		}
		if lit, ok := literal(t, ind); ok {
			return lit
		}
		return quote(t)
	case *object:
		return "{}"
	case []any:
		return "[]"
	}
	return quote(fmt.Sprint(v))
}

// number writes a JSON number so that YAML reads a number: the parser
// takes 1e+21 for a string, but 1.0e+21 for a float.
func number(n string) string {
	if i := strings.IndexAny(n, "eE"); i >= 0 && !strings.Contains(n[:i], ".") {
		return n[:i] + ".0" + n[i:]
	}
	return n
}

func quote(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return strings.TrimSuffix(b.String(), "\n")
}

func key(k string) string {
	if plainOK(k) {
		return k
	}
	return quote(k)
}

// plainOK reports whether s can be written unquoted: printable ASCII
// without YAML's indicators where they matter, and read back by the
// parser as this very string (not a number, boolean or null).
func plainOK(s string) bool {
	if s == "" || s[0] == ' ' || s[len(s)-1] == ' ' || s[len(s)-1] == ':' ||
		strings.ContainsAny(s[:1], "-?:,[]{}#&*!|>'\"%@`") ||
		strings.Contains(s, ": ") || strings.Contains(s, " #") {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return readsBack("k: "+s+"\n", s)
}

// literal writes a multi-line string as a literal block (|, or |- without
// a final newline), when the parser reads the block back as s.
func literal(s string, ind int) (string, bool) {
	body, chomp := s, "|-"
	if strings.HasSuffix(s, "\n") {
		body, chomp = s[:len(s)-1], "|"
	}
	if !strings.Contains(body, "\n") || strings.HasSuffix(body, "\n") || strings.HasPrefix(body, " ") || strings.HasPrefix(body, "\n") {
		return "", false
	}
	for _, r := range body {
		if r != '\n' && (r < 0x20 || r == 0x7f || r == 0x85 || r == 0x2028 || r == 0x2029 || r == 0xfeff) {
			return "", false
		}
	}
	lines := strings.Split(body, "\n")
	var b strings.Builder
	b.WriteString(chomp)
	for _, l := range lines {
		b.WriteByte('\n')
		if l != "" {
			b.WriteString(strings.Repeat(" ", ind))
			b.WriteString(l)
		}
	}
	out := b.String()
	// The block is checked at indentation 2, where its lines keep the
	// same relative indentation.
	check := strings.ReplaceAll(out, "\n"+strings.Repeat(" ", ind), "\n  ")
	return out, readsBack("k: "+check+"\n", s)
}

// readsBack reports whether the document "k: <value>" parses to the
// string want under k.
func readsBack(doc, want string) bool {
	f, err := parser.ParseBytes([]byte(doc), 0)
	if err != nil || len(f.Docs) != 1 {
		return false
	}
	m, ok := f.Docs[0].Body.(*ast.MappingNode)
	if !ok || len(m.Values) != 1 {
		return false
	}
	switch v := m.Values[0].Value.(type) {
	case *ast.StringNode:
		return v.Value == want
	case *ast.LiteralNode:
		return v.Value != nil && v.Value.Value == want
	}
	return false
}

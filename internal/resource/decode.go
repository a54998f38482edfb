package resource

import (
	"encoding"
	"math"
	"reflect"
	"strconv"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/token"
)

// value converts a node that check has accepted for type t into the value
// that encoding/json writes for it, so that json.Unmarshal into t (with
// the types' tags and units' unmarshalers) decodes it. The conversion
// follows t rather than the node alone: a string field or a map of
// strings takes a scalar's text as written (retention.ms: 86400000 is the
// string "86400000", not a number that will not unmarshal into one), and a
// free-form value (an inline JSON Schema) takes YAML's plain 1e+21 as the
// number JSON means, where the YAML parser sees a string.
func (p *fileParser) value(node ast.Node, t reflect.Type, path string) any {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	n := unwrap(node)
	if isNull(n) {
		return nil
	}
	if reflect.PointerTo(t).Implements(reflect.TypeFor[encoding.TextUnmarshaler]()) {
		return scalarSource(n)
	}
	switch t.Kind() {
	case reflect.Struct:
		fields := jsonFields(t)
		m := map[string]any{}
		for _, mv := range mappingValues(n) {
			k := keyText(mv)
			if f, ok := fields[k]; ok {
				m[k] = p.value(mv.Value, f.Type, join(path, k))
			}
		}
		return m
	case reflect.Map:
		m := map[string]any{}
		for _, mv := range mappingValues(n) {
			k := keyText(mv)
			m[k] = p.value(mv.Value, t.Elem(), join(path, k))
		}
		return m
	case reflect.Slice:
		seq, _ := n.(*ast.SequenceNode)
		out := []any{}
		if seq != nil {
			for i, e := range seq.Values {
				out = append(out, p.value(e, t.Elem(), path+"["+strconv.Itoa(i)+"]"))
			}
		}
		return out
	case reflect.String:
		return scalarSource(n)
	case reflect.Interface:
		return p.anyValue(node, path)
	}
	if s, ok := n.(ast.ScalarNode); ok {
		return s.GetValue()
	}
	return nil
}

// scalarSource is a scalar's text: a string's value, or a number or
// boolean as written.
func scalarSource(n ast.Node) string {
	switch t := n.(type) {
	case *ast.StringNode:
		return t.Value
	case *ast.LiteralNode:
		if t.Value != nil {
			return t.Value.Value
		}
		return ""
	}
	if tk := n.GetToken(); tk != nil {
		return tk.Value
	}
	return ""
}

// anyValue converts a free-form node to JSON's values: objects with
// string keys, arrays, strings, finite numbers, booleans and null.
func (p *fileParser) anyValue(node ast.Node, path string) any {
	if tag, ok := node.(*ast.TagNode); ok && tag.Start != nil && tag.Start.Value == "!!str" {
		return scalarSource(unwrap(tag.Value))
	}
	n := unwrap(node)
	switch t := n.(type) {
	case nil, *ast.NullNode:
		return nil
	case *ast.MappingNode, *ast.MappingValueNode:
		m := map[string]any{}
		for _, mv := range mappingValues(n) {
			k := keyText(mv)
			m[k] = p.anyValue(mv.Value, join(path, k))
		}
		return m
	case *ast.SequenceNode:
		out := make([]any, 0, len(t.Values))
		for i, e := range t.Values {
			out = append(out, p.anyValue(e, path+"["+strconv.Itoa(i)+"]"))
		}
		return out
	case *ast.StringNode:
		if t.Token != nil && t.Token.Type == token.StringType {
			if f, err := strconv.ParseFloat(t.Value, 64); err == nil && isExponent(t.Value) && !math.IsInf(f, 0) {
				return f
			}
		}
		return t.Value
	case *ast.InfinityNode, *ast.NanNode:
		p.add(n, path, "infinity and NaN are not JSON numbers", "")
		return nil
	case ast.ScalarNode:
		return t.GetValue()
	}
	p.add(n, path, "want a mapping, list or scalar", "")
	return nil
}

// isExponent reports whether s is a decimal number with an exponent
// (1e3, -2.5E-7), which YAML 1.2 reads as a float and goccy as a string.
func isExponent(s string) bool {
	i := 0
	if i < len(s) && (s[i] == '-' || s[i] == '+') {
		i++
	}
	digits := 0
	for ; i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.'); i++ {
		if s[i] != '.' {
			digits++
		}
	}
	if digits == 0 || i == len(s) || (s[i] != 'e' && s[i] != 'E') {
		return false
	}
	i++
	if i < len(s) && (s[i] == '-' || s[i] == '+') {
		i++
	}
	if i == len(s) {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

package process

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"

	"github.com/sluice-dev/sluice/internal/connector"
)

// maxDocDepth bounds the nesting of a document built from a CEL result; CEL
// itself cannot build deeper values than its parser's limits allow, so
// only a pathological expression reaches it.
const maxDocDepth = 1000

// toDoc converts a CEL result into a JSON document of connector.DecodeJSON's
// types: null -> nil, bool, int -> int64, uint -> uint64, double -> float64
// (finite only), string, bytes -> base64 string (standard alphabet, as the
// protobuf JSON mapping writes bytes), timestamp -> RFC 3339 string in
// UTC with nanoseconds, duration -> seconds with an "s" suffix ("1.5s"),
// maps -> map[string]any (int, uint and bool keys written as text), lists
// -> []any. A map or list taken whole from the record's value is deep-copied,
// numbers included, so the result never shares structure with the input.
func toDoc(v ref.Val) (any, error) { return toDocDepth(v, 0) }

func toDocDepth(v ref.Val, depth int) (any, error) {
	if depth > maxDocDepth {
		return nil, fmt.Errorf("result nests deeper than %d levels", maxDocDepth)
	}
	switch t := v.(type) {
	case types.Null:
		return nil, nil
	case types.Bool:
		return bool(t), nil
	case types.Int:
		return int64(t), nil
	case types.Uint:
		return uint64(t), nil
	case types.Double:
		f := float64(t)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("result holds %v, which JSON cannot", f)
		}
		return f, nil
	case types.String:
		return string(t), nil
	case types.Bytes:
		return base64.StdEncoding.EncodeToString(t), nil
	case types.Timestamp:
		return t.UTC().Format(time.RFC3339Nano), nil
	case types.Duration:
		return formatDuration(t.Duration), nil
	case *recordView:
		return envelope(t.r)
	case *types.Err:
		return nil, t
	case *types.Optional:
		if !t.HasValue() {
			return nil, nil
		}
		return toDocDepth(t.GetValue(), depth)
	case traits.Mapper:
		if m, ok := t.Value().(map[string]any); ok {
			return cloneDoc(m, depth)
		}
		out := make(map[string]any, int(t.Size().(types.Int)))
		it := t.Iterator()
		for it.HasNext() == types.True {
			k := it.Next()
			ks, err := mapKey(k)
			if err != nil {
				return nil, err
			}
			e, err := toDocDepth(t.Get(k), depth+1)
			if err != nil {
				return nil, err
			}
			out[ks] = e
		}
		return out, nil
	case traits.Lister:
		if l, ok := t.Value().([]any); ok {
			if isDocSlice(l) {
				return cloneDoc(l, depth)
			}
		}
		n := int(t.Size().(types.Int))
		out := make([]any, n)
		for i := 0; i < n; i++ {
			e, err := toDocDepth(t.Get(types.Int(i)), depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = e
		}
		return out, nil
	}
	return nil, fmt.Errorf("a %s cannot be a JSON value", v.Type().TypeName())
}

// isDocSlice reports whether every element of l is already a document
// value, which holds for slices taken from a record's value. CEL's own
// lists hold ref.Vals and never pass.
func isDocSlice(l []any) bool {
	for _, e := range l {
		switch e.(type) {
		case nil, bool, string, int64, uint64, float64, int, map[string]any, []any:
		default:
			return false
		}
	}
	return true
}

// cloneDoc deep-copies a document taken from a record's value, checking
// that its numbers are finite: DecodeJSON reads a number too large for a
// float64 (1e400) as an infinity, which no JSON can hold.
func cloneDoc(v any, depth int) (any, error) {
	if depth > maxDocDepth {
		return nil, fmt.Errorf("result nests deeper than %d levels", maxDocDepth)
	}
	switch t := v.(type) {
	case float64:
		if math.IsNaN(t) || math.IsInf(t, 0) {
			return nil, fmt.Errorf("result holds %v, which JSON cannot", t)
		}
	case map[string]any:
		c := make(map[string]any, len(t))
		for k, e := range t {
			ce, err := cloneDoc(e, depth+1)
			if err != nil {
				return nil, err
			}
			c[k] = ce
		}
		return c, nil
	case []any:
		c := make([]any, len(t))
		for i, e := range t {
			ce, err := cloneDoc(e, depth+1)
			if err != nil {
				return nil, err
			}
			c[i] = ce
		}
		return c, nil
	}
	return v, nil
}

func mapKey(k ref.Val) (string, error) {
	switch t := k.(type) {
	case types.String:
		return string(t), nil
	case types.Int:
		return strconv.FormatInt(int64(t), 10), nil
	case types.Uint:
		return strconv.FormatUint(uint64(t), 10), nil
	case types.Bool:
		return strconv.FormatBool(bool(t)), nil
	}
	return "", fmt.Errorf("a map key of type %s cannot be a JSON object key", k.Type().TypeName())
}

func formatDuration(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "s"
}

// envelope is the document of a whole record, for map: {value: 'record'}.
func envelope(r *connector.Record) (any, error) {
	doc, err := r.Doc()
	if err != nil {
		return nil, err
	}
	headers := make(map[string]any, len(r.Headers))
	for _, h := range r.Headers {
		headers[h.Key] = string(h.Value)
	}
	var key any
	if r.Key != nil {
		key, _ = toDoc(keyValue(r.Key))
	}
	return map[string]any{
		"key":       key,
		"value":     connector.CloneJSON(doc),
		"headers":   headers,
		"timestamp": r.Timestamp.UTC().Format(time.RFC3339Nano),
		"topic":     r.Topic,
		"partition": int64(r.Partition),
		"offset":    r.Offset,
	}, nil
}

// errNotScalar is returned by stringify for values with no one obvious
// text: maps, lists, null.
var errNotScalar = errors.New("not a string or scalar")

// stringify writes a scalar result as text, for keys and partition paths:
// strings as they are, numbers as JSON writes them, bools, timestamps in
// RFC 3339 UTC, durations as "1.5s". Bytes are written as their raw
// content when it is UTF-8.
func stringify(v ref.Val) (string, error) {
	switch t := v.(type) {
	case types.String:
		return string(t), nil
	case types.Int:
		return strconv.FormatInt(int64(t), 10), nil
	case types.Uint:
		return strconv.FormatUint(uint64(t), 10), nil
	case types.Double:
		return formatDouble(float64(t)), nil
	case types.Bool:
		return strconv.FormatBool(bool(t)), nil
	case types.Timestamp:
		return t.UTC().Format(time.RFC3339Nano), nil
	case types.Duration:
		return formatDuration(t.Duration), nil
	case types.Bytes:
		if utf8.Valid(t) {
			return string(t), nil
		}
		return "", errors.New("got bytes that are not UTF-8, want a string")
	case *types.Err:
		return "", t
	}
	return "", fmt.Errorf("got %s, want a string: %w", v.Type().TypeName(), errNotScalar)
}

package process

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/sluice-dev/sluice/internal/connector"
)

// path is a dotted field path into a JSON object: "customer.ssn". Paths
// name object members only; a member whose name holds a dot, and array
// elements, cannot be addressed.
type path []string

func parsePath(s string) (path, error) {
	if s == "" {
		return nil, errors.New("empty path")
	}
	p := strings.Split(s, ".")
	if slices.Contains(p, "") {
		return nil, fmt.Errorf("path %q has an empty segment", s)
	}
	return p, nil
}

func (p path) String() string { return strings.Join(p, ".") }

// overlaps reports whether one path is a prefix of the other (or they are
// equal): operations on both would depend on their order.
func (p path) overlaps(q path) bool {
	n := min(len(p), len(q))
	return slices.Equal(p[:n], q[:n])
}

// remove deletes the field and returns its value; a path through a
// missing field or a non-object is not there, which is no error.
func (p path) remove(obj map[string]any) (any, bool) {
	for _, k := range p[:len(p)-1] {
		next, ok := obj[k].(map[string]any)
		if !ok {
			return nil, false
		}
		obj = next
	}
	last := p[len(p)-1]
	v, ok := obj[last]
	if ok {
		delete(obj, last)
	}
	return v, ok
}

// set assigns the field, creating missing intermediate objects. An
// intermediate that exists and is not an object is an error: overwriting
// it would lose data.
func (p path) set(obj map[string]any, v any) error {
	for i, k := range p[:len(p)-1] {
		e, ok := obj[k]
		if !ok || e == nil {
			next := map[string]any{}
			obj[k] = next
			obj = next
			continue
		}
		next, ok := e.(map[string]any)
		if !ok {
			return fmt.Errorf("cannot set %s: %s is %s, not an object", p, p[:i+1], kindOf(e))
		}
		obj = next
	}
	obj[p[len(p)-1]] = v
	return nil
}

// kindOf names a document value's JSON type with an article, for messages.
func kindOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case string:
		return "a string"
	case int64, uint64, float64, int:
		return "a number"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("a %T", v)
}

// object returns the record's value as a JSON object, which drop, rename
// and set require.
func object(r *connector.Record) (map[string]any, error) {
	d, err := r.Doc()
	if err != nil {
		return nil, err
	}
	obj, ok := d.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("value is %s, not an object", kindOf(d))
	}
	return obj, nil
}

type dropProc struct {
	paths []path
}

func newDrop(idx int, paths []string) (*dropProc, error) {
	p := &dropProc{}
	for i, s := range paths {
		pp, err := parsePath(s)
		if err != nil {
			return nil, &ConfigError{Index: idx, Field: fmt.Sprintf("drop[%d]", i), Err: err}
		}
		p.paths = append(p.paths, pp)
	}
	return p, nil
}

func (p *dropProc) process(_ context.Context, c *Chain) (bool, error) {
	if len(p.paths) == 0 {
		return true, nil
	}
	obj, err := object(c.act.view.r)
	if err != nil {
		return false, err
	}
	changed := false
	for _, pp := range p.paths {
		if _, ok := pp.remove(obj); ok {
			changed = true
		}
	}
	if changed {
		c.act.view.r.SetDoc(obj)
	}
	return true, nil
}

type renameProc struct {
	from, to []path
}

func newRename(idx int, m map[string]string) (*renameProc, error) {
	p := &renameProc{}
	olds := make([]string, 0, len(m))
	for old := range m {
		olds = append(olds, old)
	}
	slices.Sort(olds)
	for _, old := range olds {
		field := "rename." + old
		from, err := parsePath(old)
		if err != nil {
			return nil, &ConfigError{Index: idx, Field: field, Err: err}
		}
		to, err := parsePath(m[old])
		if err != nil {
			return nil, &ConfigError{Index: idx, Field: field, Err: err}
		}
		for i := range p.from {
			if from.overlaps(p.from[i]) {
				return nil, &ConfigError{Index: idx, Field: field, Err: fmt.Errorf("%s overlaps %s, also renamed", from, p.from[i])}
			}
			if to.overlaps(p.to[i]) {
				return nil, &ConfigError{Index: idx, Field: field, Err: fmt.Errorf("target %s overlaps %s, the target of %s", to, p.to[i], p.from[i])}
			}
		}
		p.from = append(p.from, from)
		p.to = append(p.to, to)
	}
	return p, nil
}

// process moves every field at once: all are taken out before any is put
// back, so {a: b, b: a} swaps a and b.
func (p *renameProc) process(_ context.Context, c *Chain) (bool, error) {
	if len(p.from) == 0 {
		return true, nil
	}
	obj, err := object(c.act.view.r)
	if err != nil {
		return false, err
	}
	vals := c.scratch[:0]
	found := false
	for _, from := range p.from {
		v, ok := from.remove(obj)
		vals = append(vals, renamed{v, ok})
		found = found || ok
	}
	c.scratch = vals[:0]
	if !found {
		return true, nil
	}
	for i, to := range p.to {
		if vals[i].ok {
			if err := to.set(obj, vals[i].v); err != nil {
				return false, err
			}
		}
	}
	clear(vals)
	c.act.view.r.SetDoc(obj)
	return true, nil
}

type renamed struct {
	v  any
	ok bool
}

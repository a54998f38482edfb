// Package process holds the processors of pipelines: CEL filter, map and
// set, JSON Schema validation, field drop and rename, and dedupe. A Chain
// is compiled once from a spec's processor list, so that a bad expression
// or schema fails when the spec is applied, and then runs on every record
// without parsing or checking anything again.
package process

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"

	"github.com/sluice-dev/sluice/internal/connector"
)

const (
	// DefaultMaxCost is Options.MaxCost when it is zero.
	DefaultMaxCost = 1_000_000
	// DefaultMaxKeys is DedupeConfig.MaxKeys when it is zero.
	DefaultMaxKeys = 1_000_000
)

// Options configures compilation.
type Options struct {
	// BaseDir resolves relative schemaFile paths (the spec file's
	// directory); empty means the working directory.
	BaseDir string
	// MaxCost bounds the CEL cost of one evaluation (default 1,000,000).
	// The cost is CEL's: about one unit per operation and per element a
	// comprehension or string function visits. An evaluation that exceeds
	// it fails the record.
	MaxCost uint64
}

// ConfigError is a processor config that does not compile. Field is the
// path of the bad value inside processor Index, as written in the spec:
// "filter", "map.value", "set.total", "validate.jsonSchema"; it is empty
// when the entry itself is wrong (no processor kind, or two).
type ConfigError struct {
	Index int
	Field string
	Err   error
}

func (e *ConfigError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("processors[%d]: %v", e.Index, e.Err)
	}
	return fmt.Sprintf("processors[%d].%s: %v", e.Index, e.Field, e.Err)
}

func (e *ConfigError) Unwrap() error { return e.Err }

// RecordError is a record's own fault in one processor: it goes to the
// dead-letter topic with Stage in its headers.
type RecordError struct {
	// Stage names the processor: "processors[1].map".
	Stage string
	Err   error
}

func (e *RecordError) Error() string { return e.Stage + ": " + e.Err.Error() }

func (e *RecordError) Unwrap() error { return e.Err }

// Chain runs a pipeline's processors in order.
type Chain struct {
	procs  []processor
	stages []string
	schema map[string]any
	// window, when the chain has one, sits between procs[:windowAt] and
	// procs[windowAt:]: the records of the first part become window
	// events, the window's results go through the second.
	window   *Window
	windowAt int

	// act is reused for every record: the CEL variable record is
	// act.view, pointed at the record being processed.
	act     activation
	scratch []renamed
	setVals []any
}

// processor is one compiled entry of the list. process works on
// c.act.view.r; it returns false to drop the record, and an error that
// is the record's fault (Process wraps it in a RecordError).
type processor interface {
	process(ctx context.Context, c *Chain) (bool, error)
}

// NewChain compiles the processors. Errors are *ConfigError.
//
// The processors, and the CEL variables and numbers expressions see:
//
//   - filter: a bool expression; the record is kept when it is true.
//   - map: value and key expressions, both evaluated on the record as it
//     arrived at the map. The value's result becomes the value as a JSON
//     document (see below), except that bytes become the value's raw bytes
//     and null a null value; a map with only a key keeps the value. The
//     key's result must be a string (its UTF-8 bytes), bytes, or null (no
//     key); a number or bool is written as text.
//   - set: path -> expression; every expression is evaluated on the record
//     as it arrived, then the fields are assigned, creating missing
//     intermediate objects.
//   - drop: paths to remove; a missing one is no error.
//   - rename: old path -> new path, all moved at once; a missing old path
//     is no error.
//   - validate: a JSON Schema (draft 2020-12 unless $schema says
//     otherwise), inline or from a file.
//   - dedupe: drops a record whose key expression's result was seen within
//     window before it by the records' timestamps; state is in memory only.
//
// Paths are dotted names of object members ("customer.ssn"). drop, rename
// and set need the value to be a JSON object.
//
// CEL sees one variable, record, of type sluice.Record: key (string when
// UTF-8, bytes when not, null), value (dyn: the parsed JSON, null for a
// null value), headers (map(string, string)), timestamp, topic, partition
// and offset. Every JSON number in value is a double; arithmetic and
// comparisons mix ints and doubles (see the environment's doc in cel.go).
// A result becomes a document as in toDoc: int -> int64, double ->
// float64, timestamp -> RFC 3339 UTC text, duration -> "1.5s", bytes ->
// base64 text, maps and lists recursively.
func NewChain(cfgs []Config, opts Options) (*Chain, error) {
	if opts.MaxCost == 0 {
		opts.MaxCost = DefaultMaxCost
	}
	c := &Chain{}
	var e *cel.Env
	compileAt := func(idx int, field, expr string, want ...*cel.Type) (*program, error) {
		if e == nil {
			var err error
			if e, err = newEnv(); err != nil {
				return nil, fmt.Errorf("create CEL environment: %w", err)
			}
		}
		p, err := compile(e, expr, opts.MaxCost, want...)
		if err != nil {
			return nil, &ConfigError{Index: idx, Field: field, Err: err}
		}
		return p, nil
	}
	for i, cfg := range cfgs {
		kinds := cfg.kinds()
		switch len(kinds) {
		case 0:
			return nil, &ConfigError{Index: i, Err: errors.New("no processor: want one of filter, map, validate, drop, rename, set, dedupe, window")}
		case 1:
		default:
			return nil, &ConfigError{Index: i, Err: fmt.Errorf("found %s: want one processor per entry", strings.Join(kinds, " and "))}
		}
		var (
			p   processor
			err error
		)
		switch kinds[0] {
		case "filter":
			var prg *program
			if prg, err = compileAt(i, "filter", cfg.Filter, cel.BoolType); err == nil {
				p = &filterProc{prg: prg}
			}
		case "map":
			p, err = newMap(i, cfg.Map, compileAt)
		case "set":
			p, err = newSet(i, cfg.Set, compileAt)
		case "drop":
			p, err = newDrop(i, cfg.Drop)
		case "rename":
			p, err = newRename(i, cfg.Rename)
		case "validate":
			var v *validateProc
			if v, err = newValidate(i, cfg.Validate, opts); err == nil {
				p, c.schema = v, v.doc
			}
		case "dedupe":
			p, err = newDedupe(i, cfg.Dedupe, compileAt)
		case "window":
			if c.window != nil {
				return nil, &ConfigError{Index: i, Field: "window", Err: errors.New("a pipeline has at most one window")}
			}
			if c.window, err = newWindow(i, cfg.Window, compileAt); err != nil {
				return nil, err
			}
			c.windowAt = len(c.procs)
			continue
		}
		if err != nil {
			return nil, err
		}
		c.procs = append(c.procs, p)
		c.stages = append(c.stages, fmt.Sprintf("processors[%d].%s", i, kinds[0]))
	}
	return c, nil
}

// kinds lists the processor kinds set in the entry, in the spec's words.
func (cfg *Config) kinds() []string {
	var k []string
	if cfg.Filter != "" {
		k = append(k, "filter")
	}
	if cfg.Map != nil {
		k = append(k, "map")
	}
	if cfg.Validate != nil {
		k = append(k, "validate")
	}
	if cfg.Drop != nil {
		k = append(k, "drop")
	}
	if cfg.Rename != nil {
		k = append(k, "rename")
	}
	if cfg.Set != nil {
		k = append(k, "set")
	}
	if cfg.Dedupe != nil {
		k = append(k, "dedupe")
	}
	if cfg.Window != nil {
		k = append(k, "window")
	}
	return k
}

// Process runs r through every processor (those before the window, when
// the chain has one: see Event), changing it in place. It returns
// false when a processor dropped the record, and a *RecordError when one
// failed on it. When ctx is done during an evaluation, the error is the
// context's cause instead: the record is not at fault. Process is not safe
// for concurrent use (dedupe keeps state, and the evaluation state is
// reused); a pipeline runs one Chain from one goroutine. It does not
// retain r.
func (c *Chain) Process(ctx context.Context, r *connector.Record) (bool, error) {
	if c.window != nil {
		return c.run(ctx, r, 0, c.windowAt)
	}
	return c.run(ctx, r, 0, len(c.procs))
}

// run runs r through procs[from:to].
func (c *Chain) run(ctx context.Context, r *connector.Record, from, to int) (bool, error) {
	for i := from; i < to; i++ {
		p := c.procs[i]
		// The previous processor may have changed the value.
		c.act.view.reset(r)
		keep, err := p.process(ctx, c)
		if err != nil {
			c.act.view.reset(nil)
			if ctx.Err() != nil {
				return false, fmt.Errorf("%s: %w", c.stages[i], context.Cause(ctx))
			}
			return false, &RecordError{Stage: c.stages[i], Err: err}
		}
		if !keep {
			c.act.view.reset(nil)
			return false, nil
		}
	}
	c.act.view.reset(nil)
	return true, nil
}

// Schema returns the JSON Schema of the chain's last validate processor, as
// a parsed document (numbers int64 or float64, as connector.DecodeJSON
// makes them), or nil when there is none. Sinks create tables and Parquet
// schemas from it. The result is the caller's to change.
func (c *Chain) Schema() map[string]any {
	if c.schema == nil {
		return nil
	}
	return connector.CloneJSON(c.schema).(map[string]any)
}

type compileFunc func(idx int, field, expr string, want ...*cel.Type) (*program, error)

type filterProc struct {
	prg *program
}

func (p *filterProc) process(ctx context.Context, c *Chain) (bool, error) {
	out, err := p.prg.eval(ctx, &c.act)
	if err != nil {
		return false, err
	}
	b, ok := out.(types.Bool)
	if !ok {
		return false, fmt.Errorf("filter result is %s, want bool", out.Type().TypeName())
	}
	return bool(b), nil
}

type mapProc struct {
	value, key *program
}

func newMap(idx int, cfg *MapConfig, compile compileFunc) (*mapProc, error) {
	if cfg.Value == "" && cfg.Key == "" {
		return nil, &ConfigError{Index: idx, Field: "map", Err: errors.New("want value, key or both")}
	}
	p := &mapProc{}
	var err error
	if cfg.Value != "" {
		if p.value, err = compile(idx, "map.value", cfg.Value); err != nil {
			return nil, err
		}
	}
	if cfg.Key != "" {
		if p.key, err = compile(idx, "map.key", cfg.Key, cel.StringType, cel.BytesType, cel.NullType); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func (p *mapProc) process(ctx context.Context, c *Chain) (bool, error) {
	r := c.act.view.r
	var (
		doc      any
		raw      []byte
		rawValue bool // raw (bytes, or nil for null) replaces the value, not doc
	)
	if p.value != nil {
		out, err := p.value.eval(ctx, &c.act)
		if err != nil {
			return false, fmt.Errorf("value: %w", err)
		}
		switch t := out.(type) {
		case types.Bytes:
			raw, rawValue = t, true
		case types.Null:
			rawValue = true
		default:
			if doc, err = toDoc(out); err != nil {
				return false, fmt.Errorf("value: %w", err)
			}
		}
	}
	var key []byte
	if p.key != nil {
		out, err := p.key.eval(ctx, &c.act)
		if err != nil {
			return false, fmt.Errorf("key: %w", err)
		}
		switch t := out.(type) {
		case types.Bytes:
			key = t
		case types.String:
			key = []byte(t)
		case types.Null:
		default:
			s, err := stringify(out)
			if err != nil {
				return false, fmt.Errorf("key: %w", err)
			}
			key = []byte(s)
		}
	}
	switch {
	case p.value == nil:
	case rawValue:
		r.SetValue(raw)
	default:
		r.SetDoc(doc)
	}
	if p.key != nil {
		r.Key = key
	}
	return true, nil
}

type setField struct {
	path path
	prg  *program
}

type setProc struct {
	fields []setField
}

func newSet(idx int, m map[string]string, compile compileFunc) (*setProc, error) {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	slices.Sort(names)
	p := &setProc{}
	for _, name := range names {
		field := "set." + name
		pp, err := parsePath(name)
		if err != nil {
			return nil, &ConfigError{Index: idx, Field: field, Err: err}
		}
		for _, f := range p.fields {
			if pp.overlaps(f.path) {
				return nil, &ConfigError{Index: idx, Field: field, Err: fmt.Errorf("%s overlaps %s, also set", pp, f.path)}
			}
		}
		prg, err := compile(idx, field, m[name])
		if err != nil {
			return nil, err
		}
		p.fields = append(p.fields, setField{pp, prg})
	}
	return p, nil
}

func (p *setProc) process(ctx context.Context, c *Chain) (bool, error) {
	if len(p.fields) == 0 {
		return true, nil
	}
	r := c.act.view.r
	obj, err := object(r)
	if err != nil {
		return false, err
	}
	vals := c.setVals[:0]
	defer func() { clear(vals); c.setVals = vals[:0] }()
	for _, f := range p.fields {
		out, err := f.prg.eval(ctx, &c.act)
		if err != nil {
			return false, fmt.Errorf("%s: %w", f.path, err)
		}
		d, err := toDoc(out)
		if err != nil {
			return false, fmt.Errorf("%s: %w", f.path, err)
		}
		vals = append(vals, d)
	}
	for i, f := range p.fields {
		if err := f.path.set(obj, vals[i]); err != nil {
			return false, err
		}
	}
	r.SetDoc(obj)
	return true, nil
}

func newDedupe(idx int, cfg *DedupeConfig, compile compileFunc) (*dedupeProc, error) {
	if cfg.Key == "" {
		return nil, &ConfigError{Index: idx, Field: "dedupe.key", Err: errors.New("want a key expression")}
	}
	prg, err := compile(idx, "dedupe.key", cfg.Key)
	if err != nil {
		return nil, err
	}
	if cfg.Window <= 0 {
		return nil, &ConfigError{Index: idx, Field: "dedupe.window", Err: errors.New("want a window greater than zero, such as 10m")}
	}
	maxKeys := cfg.MaxKeys
	switch {
	case maxKeys < 0:
		return nil, &ConfigError{Index: idx, Field: "dedupe.maxKeys", Err: fmt.Errorf("got %d, want zero (the default, %d) or more", maxKeys, DefaultMaxKeys)}
	case maxKeys == 0:
		maxKeys = DefaultMaxKeys
	}
	return &dedupeProc{
		key:    prg,
		window: int64(cfg.Window.D()),
		max:    maxKeys,
		seen:   make(map[string]int64),
		newest: math.MinInt64,
	}, nil
}

package process

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"

	"github.com/sluice-dev/sluice/internal/aggregate"
	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/units"
	"github.com/sluice-dev/sluice/internal/window"
)

// WindowConfig is the window processor: keyed event-time windows whose
// aggregates leave the processor as one record per window (see Window).
type WindowConfig struct {
	// Type is tumbling, hopping or session.
	Type string `json:"type" yaml:"type"`
	// Size of tumbling and hopping windows; Advance is how far apart
	// hopping windows start; Gap is the inactivity that ends a session.
	Size    units.Duration `json:"size,omitempty" yaml:"size,omitempty"`
	Advance units.Duration `json:"advance,omitempty" yaml:"advance,omitempty"`
	Gap     units.Duration `json:"gap,omitempty" yaml:"gap,omitempty"`
	// Time is a CEL expression for the event time: a timestamp, an RFC
	// 3339 string, or a number of milliseconds since the epoch. Empty:
	// the record's timestamp.
	Time string `json:"time,omitempty" yaml:"time,omitempty"`
	// AllowedLateness is how far behind the latest event time seen an
	// event may be and still count.
	AllowedLateness units.Duration `json:"allowedLateness,omitempty" yaml:"allowedLateness,omitempty"`
	// GroupBy is a CEL expression for the group key (written as text);
	// empty: one group.
	GroupBy string `json:"groupBy,omitempty" yaml:"groupBy,omitempty"`
	// Aggregates maps output field names to aggregate calls:
	// count(), sum(expr), avg(expr), min(expr), max(expr),
	// count_distinct(expr) or count_distinct(expr, exactBound),
	// quantile(expr, q).
	Aggregates map[string]string `json:"aggregates" yaml:"aggregates"`
	// Emit is onClose (the default: one record per window, when the
	// watermark passes its end) or onUpdate (also the windows that
	// changed, every Every).
	Emit  string         `json:"emit,omitempty" yaml:"emit,omitempty"`
	Every units.Duration `json:"every,omitempty" yaml:"every,omitempty"`
	// Late is what happens to an event of a window already closed:
	// deadLetter (the default) or drop (counted).
	Late string `json:"late,omitempty" yaml:"late,omitempty"`
	// IdleTimeout is how long a partition with nothing to read holds the
	// watermark back (default 30s).
	IdleTimeout units.Duration `json:"idleTimeout,omitempty" yaml:"idleTimeout,omitempty"`
	// MaxStateBytes bounds the open windows' state (default 256MiB); a
	// pipeline whose state outgrows it fails.
	MaxStateBytes units.ByteSize `json:"maxStateBytes,omitempty" yaml:"maxStateBytes,omitempty"`
	// CheckpointEvery is how often the state is saved with the source
	// positions (default 5s). A restart replays at most that much.
	CheckpointEvery units.Duration `json:"checkpointEvery,omitempty" yaml:"checkpointEvery,omitempty"`
}

// Values of WindowConfig.Emit and .Late.
const (
	EmitOnClose    = "onClose"
	EmitOnUpdate   = "onUpdate"
	LateDeadLetter = "deadLetter"
	LateDrop       = "drop"
)

// Defaults of WindowConfig.
const (
	DefaultIdleTimeout     = 30 * time.Second
	DefaultCheckpointEvery = 5 * time.Second
	DefaultEmitEvery       = time.Second
)

// Fields of a window's output record besides its aggregates.
const (
	FieldWindowStart = "window_start"
	FieldWindowEnd   = "window_end"
	FieldKey         = "key"
)

// Window is a chain's compiled window processor. The runtime owns the
// window state (a window.Operator made from Config); the Chain turns
// records into the operator's events (Event) and its results into records
// (Output).
type Window struct {
	// Config defines the operator.
	Config window.Config
	// Names are the output fields of Config.Aggregates, in order.
	Names []string
	// OnUpdate windows are emitted every Every while they change, as
	// well as when they close.
	OnUpdate bool
	Every    time.Duration
	// DropLate drops late events instead of dead-lettering them.
	DropLate        bool
	CheckpointEvery time.Duration

	stage   string
	time    *fieldExpr
	groupBy *fieldExpr
	args    []*fieldExpr // nil for count
	in      []window.Input
	bufs    [][]byte // count_distinct keys, one buffer per aggregate
}

// Event is one record as the window operator takes it.
type Event struct {
	Key  string
	Time int64 // Unix milliseconds
	In   []window.Input
}

// Window returns the chain's window processor, or nil.
func (c *Chain) Window() *Window { return c.window }

// Stage names the window processor, for dead-letter headers.
func (w *Window) Stage() string { return w.stage }

// aggregateCall is "name(args)".
var aggregateCall = regexp.MustCompile(`^\s*([a-z_]+)\s*\((.*)\)\s*$`)

// aggregateName is what an output field may be called.
var aggregateName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func newWindow(idx int, cfg *WindowConfig, compile compileFunc) (*Window, error) {
	bad := func(field string, err error) error {
		return &ConfigError{Index: idx, Field: "window." + field, Err: err}
	}
	kind, err := window.ParseKind(cfg.Type)
	if err != nil {
		return nil, bad("type", err)
	}
	w := &Window{
		Config: window.Config{
			Kind:        kind,
			Size:        cfg.Size.D().Milliseconds(),
			Advance:     cfg.Advance.D().Milliseconds(),
			Gap:         cfg.Gap.D().Milliseconds(),
			Lateness:    cfg.AllowedLateness.D().Milliseconds(),
			IdleTimeout: cmp.Or(cfg.IdleTimeout.D(), DefaultIdleTimeout),
			MaxBytes:    int64(cfg.MaxStateBytes),
		},
		Every:           cmp.Or(cfg.Every.D(), DefaultEmitEvery),
		CheckpointEvery: cmp.Or(cfg.CheckpointEvery.D(), DefaultCheckpointEvery),
		stage:           fmt.Sprintf("processors[%d].window", idx),
	}
	// Fields that do not belong to the type are mistakes, not defaults.
	for _, f := range []struct {
		name string
		set  bool
		want bool
	}{
		{"size", cfg.Size != 0, kind != window.Session},
		{"advance", cfg.Advance != 0, kind == window.Hopping},
		{"gap", cfg.Gap != 0, kind == window.Session},
	} {
		switch {
		case f.set && !f.want:
			return nil, bad(f.name, fmt.Errorf("is not a setting of %s windows", kind))
		case !f.set && f.want:
			return nil, bad(f.name, fmt.Errorf("required for %s windows", kind))
		}
	}
	for _, d := range []struct {
		name string
		v    units.Duration
	}{{"size", cfg.Size}, {"advance", cfg.Advance}, {"gap", cfg.Gap}, {"allowedLateness", cfg.AllowedLateness},
		{"idleTimeout", cfg.IdleTimeout}, {"every", cfg.Every}, {"checkpointEvery", cfg.CheckpointEvery}} {
		if d.v < 0 || (d.v > 0 && d.v.D()%time.Millisecond != 0) {
			return nil, bad(d.name, fmt.Errorf("%s: want a positive whole number of milliseconds", d.v))
		}
	}
	if err := w.Config.Validate(); err != nil {
		return nil, bad("size", err)
	}
	if cfg.MaxStateBytes < 0 {
		return nil, bad("maxStateBytes", errors.New("must not be negative"))
	}
	switch cfg.Emit {
	case "", EmitOnClose:
		if cfg.Every != 0 {
			return nil, bad("every", errors.New("is a setting of emit: onUpdate"))
		}
	case EmitOnUpdate:
		w.OnUpdate = true
	default:
		return nil, bad("emit", fmt.Errorf("%q: want onClose or onUpdate", cfg.Emit))
	}
	switch cfg.Late {
	case "", LateDeadLetter:
	case LateDrop:
		w.DropLate = true
	default:
		return nil, bad("late", fmt.Errorf("%q: want deadLetter or drop", cfg.Late))
	}
	if cfg.Time != "" {
		if w.time, err = compileField(idx, "window.time", cfg.Time, compile); err != nil {
			return nil, err
		}
	}
	if cfg.GroupBy != "" {
		if w.groupBy, err = compileField(idx, "window.groupBy", cfg.GroupBy, compile); err != nil {
			return nil, err
		}
	}
	if len(cfg.Aggregates) == 0 {
		return nil, bad("aggregates", errors.New("want at least one, such as count: count()"))
	}
	w.Names = make([]string, 0, len(cfg.Aggregates))
	for name := range cfg.Aggregates {
		w.Names = append(w.Names, name)
	}
	slices.Sort(w.Names)
	for _, name := range w.Names {
		field := "window.aggregates." + name
		if !aggregateName.MatchString(name) {
			return nil, &ConfigError{Index: idx, Field: field, Err: errors.New("an output field name is letters, digits and _")}
		}
		if name == FieldWindowStart || name == FieldWindowEnd || name == FieldKey {
			return nil, &ConfigError{Index: idx, Field: field, Err: fmt.Errorf("%s is a field of every window's output", name)}
		}
		spec, arg, err := parseAggregate(cfg.Aggregates[name])
		if err != nil {
			return nil, &ConfigError{Index: idx, Field: field, Err: err}
		}
		var fe *fieldExpr
		if arg != "" {
			if fe, err = compileField(idx, field, arg, compile); err != nil {
				return nil, err
			}
		}
		w.Config.Aggregates = append(w.Config.Aggregates, spec)
		w.args = append(w.args, fe)
	}
	w.in = make([]window.Input, len(w.args))
	w.bufs = make([][]byte, len(w.args))
	return w, nil
}

// parseAggregate reads "sum(record.value.amount)" into its spec and the
// argument expression ("" for count).
func parseAggregate(call string) (aggregate.Spec, string, error) {
	m := aggregateCall.FindStringSubmatch(call)
	if m == nil {
		return aggregate.Spec{}, "", fmt.Errorf("%q: want a call such as count() or sum(record.value.amount)", call)
	}
	fn, err := aggregate.ParseFunc(m[1])
	if err != nil {
		return aggregate.Spec{}, "", err
	}
	args, err := splitArgs(m[2])
	if err != nil {
		return aggregate.Spec{}, "", fmt.Errorf("%s: %w", fn, err)
	}
	spec := aggregate.Spec{Func: fn}
	want := func(n int, what string) error {
		if len(args) != n {
			return fmt.Errorf("%s takes %s, got %d arguments", fn, what, len(args))
		}
		return nil
	}
	switch fn {
	case aggregate.Count:
		if err := want(0, "no arguments"); err != nil {
			return spec, "", err
		}
		return spec, "", nil
	case aggregate.Quantile:
		if err := want(2, "an expression and a quantile, as in quantile(record.value.ms, 0.99)"); err != nil {
			return spec, "", err
		}
		q, err := strconv.ParseFloat(args[1], 64)
		if err != nil || q < 0 || q > 1 {
			return spec, "", fmt.Errorf("quantile %q: want a number from 0 to 1", args[1])
		}
		spec.Q = q
	case aggregate.CountDistinct:
		if len(args) == 2 {
			n, err := strconv.Atoi(args[1])
			if err != nil || n < 1 || n > 1_000_000 {
				return spec, "", fmt.Errorf("exact bound %q: want a whole number from 1 to 1000000", args[1])
			}
			spec.MaxExact = n
		} else if err := want(1, "an expression and an optional exact bound"); err != nil {
			return spec, "", err
		}
	default:
		if err := want(1, "one expression"); err != nil {
			return spec, "", err
		}
	}
	if err := spec.Validate(); err != nil {
		return spec, "", err
	}
	return spec, args[0], nil
}

// splitArgs splits an argument list at its top-level commas: not inside
// brackets or string literals.
func splitArgs(s string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var (
		args  []string
		depth int
		quote byte
		start int
	)
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case quote != 0:
			if ch == '\\' {
				i++
			} else if ch == quote {
				quote = 0
			}
		case ch == '"' || ch == '\'':
			quote = ch
		case ch == '(' || ch == '[' || ch == '{':
			depth++
		case ch == ')' || ch == ']' || ch == '}':
			depth--
			if depth < 0 {
				return nil, errors.New("unbalanced brackets")
			}
		case ch == ',' && depth == 0:
			args = append(args, strings.TrimSpace(s[start:i]))
			start = i + 1
		}
	}
	if quote != 0 || depth != 0 {
		return nil, errors.New("unterminated string or bracket")
	}
	args = append(args, strings.TrimSpace(s[start:]))
	for _, a := range args {
		if a == "" {
			return nil, errors.New("empty argument")
		}
	}
	return args, nil
}

// Event evaluates the window's expressions on r, which has been through
// the processors before the window. Errors are *RecordError. The event's
// In, and the bytes of its keys, are reused by the next call.
func (c *Chain) Event(ctx context.Context, r *connector.Record) (Event, error) {
	w := c.window
	c.act.view.reset(r)
	defer c.act.view.reset(nil)
	fail := func(what string, err error) (Event, error) {
		if ctx.Err() != nil {
			return Event{}, fmt.Errorf("%s: %w", w.stage, context.Cause(ctx))
		}
		return Event{}, &RecordError{Stage: w.stage, Err: fmt.Errorf("%s: %w", what, err)}
	}
	ev := Event{Time: r.Timestamp.UnixMilli(), In: w.in}
	if w.time != nil {
		v, err := w.time.eval(ctx, c)
		if err != nil {
			return fail("time", err)
		}
		if ev.Time, err = eventTime(v); err != nil {
			return fail("time", err)
		}
	}
	if w.groupBy != nil {
		v, err := w.groupBy.eval(ctx, c)
		if err != nil {
			return fail("groupBy", err)
		}
		if ev.Key, err = stringify(v); err != nil {
			return fail("groupBy", err)
		}
	}
	for i, a := range w.args {
		w.in[i] = window.Input{}
		if a == nil {
			continue
		}
		v, err := a.eval(ctx, c)
		if err != nil {
			return fail(w.Names[i], err)
		}
		if w.Config.Aggregates[i].Func == aggregate.CountDistinct {
			w.bufs[i], err = distinctKey(w.bufs[i][:0], v)
			if err != nil {
				return fail(w.Names[i], err)
			}
			w.in[i].Key = w.bufs[i]
			continue
		}
		f, err := number(v)
		if err != nil {
			return fail(w.Names[i], err)
		}
		w.in[i].Num = f
	}
	return ev, nil
}

// eventTime reads an event time: a timestamp, a number of milliseconds, or
// an RFC 3339 string.
func eventTime(v ref.Val) (int64, error) {
	switch t := v.(type) {
	case types.Timestamp:
		return t.UnixMilli(), nil
	case types.Int:
		return int64(t), nil
	case types.Uint:
		if uint64(t) > math.MaxInt64 {
			return 0, fmt.Errorf("%d milliseconds is out of range", uint64(t))
		}
		return int64(t), nil
	case types.Double:
		f := math.Floor(float64(t))
		if math.IsNaN(f) || f < -1<<62 || f > 1<<62 {
			return 0, fmt.Errorf("%v milliseconds is out of range", float64(t))
		}
		return int64(f), nil
	case types.String:
		ts, err := time.Parse(time.RFC3339Nano, string(t))
		if err != nil {
			return 0, fmt.Errorf("%q is not an RFC 3339 time", string(t))
		}
		return ts.UnixMilli(), nil
	case *types.Err:
		return 0, t
	}
	return 0, fmt.Errorf("got %s, want a timestamp, an RFC 3339 string or milliseconds since the epoch", v.Type().TypeName())
}

// number reads an aggregate's numeric argument.
func number(v ref.Val) (float64, error) {
	var f float64
	switch t := v.(type) {
	case types.Double:
		f = float64(t)
	case types.Int:
		f = float64(t)
	case types.Uint:
		f = float64(t)
	case *types.Err:
		return 0, t
	default:
		return 0, fmt.Errorf("got %s, want a number", v.Type().TypeName())
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("%v is not a finite number", f)
	}
	return f, nil
}

// distinctKey writes the bytes count_distinct counts: a type tag, then the
// value as text, so that the string "1" and the number 1 differ.
func distinctKey(dst []byte, v ref.Val) ([]byte, error) {
	switch v.(type) {
	case types.String:
		dst = append(dst, 's')
	case types.Double, types.Int, types.Uint:
		dst = append(dst, 'n')
	case types.Bool:
		dst = append(dst, 'b')
	case types.Timestamp:
		dst = append(dst, 't')
	case types.Bytes:
		dst = append(dst, 'x')
		return append(dst, v.(types.Bytes)...), nil
	case types.Null:
		return append(dst, '0'), nil
	default:
		d, err := toDoc(v)
		if err != nil {
			return nil, err
		}
		b, err := connector.EncodeJSON(d)
		if err != nil {
			return nil, err
		}
		return append(append(dst, 'j'), b...), nil
	}
	s, err := stringify(v)
	if err != nil {
		return nil, err
	}
	return append(dst, s...), nil
}

// Output makes the record of a window's result: its value an object of
// window_start and window_end (RFC 3339, UTC, milliseconds), key (when
// the window groups) and the aggregates; its key "key|window_start", so
// that an upsert on it converges to the final result; its timestamp the
// window's end.
func (c *Chain) Output(topic string, res window.Result) *connector.Record {
	w := c.window
	start := formatMillis(res.Start)
	doc := make(map[string]any, len(res.Values)+3)
	doc[FieldWindowStart] = start
	doc[FieldWindowEnd] = formatMillis(res.End)
	if w.groupBy != nil {
		doc[FieldKey] = res.Key
	}
	for i, v := range res.Values {
		doc[w.Names[i]] = v
	}
	r := &connector.Record{Topic: topic, Partition: -1, Offset: -1, Timestamp: time.UnixMilli(res.End)}
	r.Key = []byte(res.Key + "|" + start)
	r.SetDoc(doc)
	return r
}

func formatMillis(ms int64) string {
	return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z")
}

// ProcessOutput runs a window's output record through the processors
// after the window, as Process does. Without a window it keeps r.
func (c *Chain) ProcessOutput(ctx context.Context, r *connector.Record) (bool, error) {
	if c.window == nil {
		return true, nil
	}
	return c.run(ctx, r, c.windowAt, len(c.procs))
}

// fieldExpr is an expression the window evaluates on every event. One
// that only reads a path of the value (record.value.a.b) is read from the
// document directly, a few times faster than CEL; whenever that finds
// something CEL would treat otherwise (a missing member, a list), CEL
// evaluates it, so the result and the error are CEL's.
type fieldExpr struct {
	prg  *program
	path []string // record.value.<path>; nil when not such an expression
}

// valuePath matches record.value.a.b.c.
var valuePath = regexp.MustCompile(`^\s*record\.value((?:\.[A-Za-z_][A-Za-z0-9_]*)+)\s*$`)

func compileField(idx int, field, expr string, compile compileFunc) (*fieldExpr, error) {
	prg, err := compile(idx, field, expr)
	if err != nil {
		return nil, err
	}
	fe := &fieldExpr{prg: prg}
	if m := valuePath.FindStringSubmatch(expr); m != nil {
		fe.path = strings.Split(m[1][1:], ".")
	}
	return fe, nil
}

func (f *fieldExpr) eval(ctx context.Context, c *Chain) (ref.Val, error) {
	if f.path != nil {
		if v, ok := f.direct(c.act.view.r); ok {
			return v, nil
		}
	}
	return f.prg.eval(ctx, &c.act)
}

// direct reads the path from r's document, for the scalar types CEL sees
// the same way (every number a double, as docAdapter makes it).
func (f *fieldExpr) direct(r *connector.Record) (ref.Val, bool) {
	d, err := r.Doc()
	if err != nil {
		return nil, false
	}
	for _, name := range f.path {
		m, ok := d.(map[string]any)
		if !ok {
			return nil, false
		}
		if d, ok = m[name]; !ok {
			return nil, false
		}
	}
	switch t := d.(type) {
	case string:
		return types.String(t), true
	case float64:
		return types.Double(t), true
	case int64:
		return types.Double(t), true
	case bool:
		return types.Bool(t), true
	}
	return nil, false
}

package process

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/cel-go/cel"
	celast "github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/decls"
	"github.com/google/cel-go/common/env"
	"github.com/google/cel-go/common/operators"
	"github.com/google/cel-go/common/overloads"
	"github.com/google/cel-go/common/stdlib"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
	"github.com/google/cel-go/ext"
	"github.com/google/cel-go/interpreter"

	"github.com/sluice-dev/sluice/internal/connector"
)

// The CEL environment every expression compiles in.
//
// One variable, record, of the object type sluice.Record, so that a
// misspelt field (record.vaule) fails at NewChain instead of on every
// record. Its fields:
//
//	key        dyn        string when the key is UTF-8, bytes when not, null when absent
//	value      dyn        the value parsed as JSON; null for a null value
//	headers    map(string, string)  the last header of each name; invalid UTF-8 replaced by U+FFFD
//	timestamp  timestamp
//	topic      string
//	partition  int
//	offset     int
//
// Numbers in value are doubles, as in CEL's (and protobuf's) JSON mapping:
// an expression then behaves the same whether a producer wrote 12 or 12.0
// or 12.5. Integers beyond 2^53 lose precision there; a document passed
// through whole (record.value, record.value.items) keeps its numbers
// exactly. Beyond standard CEL, arithmetic (+ - * / %) mixes int, uint and
// double, promoting to double, so that record.value.n * 100 and
// record.value.n % 2 work; ordering comparisons mix them too; % takes
// doubles (math.Mod); and string(double) writes integral doubles without
// an exponent (string(1234567.0) is "1234567", not "1.234567e+06").
//
// Extensions: cel-go's strings, encoders (base64) and math libraries,
// optional types (record.value.?discount.orValue(0.0)), and
// date(timestamp) "2006-01-02" and hour(timestamp) "15" in UTC, for
// partition paths.
const (
	recordVar      = "record"
	recordTypeName = "sluice.Record"

	// maxExprLen bounds an expression's source: CEL parsing and checking
	// grow with it, and a spec with a megabyte expression is a mistake.
	maxExprLen = 10000

	// interruptEvery is how many comprehension iterations run between
	// checks of the context.
	interruptEvery = 100
)

// recordType is never changed after initialization.
var recordType = types.NewObjectType(recordTypeName)

// newEnv returns a fresh environment; each Chain and Expr has its own so
// that nothing is shared between pipelines.
func newEnv() (*cel.Env, error) {
	arith := []string{operators.Add, operators.Subtract, operators.Multiply, operators.Divide, operators.Modulo}
	subset := env.NewLibrarySubset()
	for _, name := range arith {
		subset.AddExcludedFunctions(&env.Function{Name: name})
	}
	opts := []cel.EnvOption{
		cel.StdLib(cel.StdLibSubset(subset)),
		recordTypes(),
		cel.Variable(recordVar, recordType),
		cel.CrossTypeNumericComparisons(true),
		cel.OptionalTypes(),
		ext.Strings(),
		ext.Encoders(),
		ext.Math(),
		cel.Function(overloads.TypeConvertString,
			cel.Overload(overloads.DoubleToString, []*cel.Type{cel.DoubleType}, cel.StringType,
				cel.UnaryBinding(func(v ref.Val) ref.Val {
					return types.String(formatDouble(float64(v.(types.Double))))
				}))),
		cel.Function("date",
			cel.Overload("date_timestamp", []*cel.Type{cel.TimestampType}, cel.StringType,
				cel.UnaryBinding(func(v ref.Val) ref.Val {
					return types.String(v.(types.Timestamp).UTC().Format(time.DateOnly))
				}))),
		cel.Function("hour",
			cel.Overload("hour_timestamp", []*cel.Type{cel.TimestampType}, cel.StringType,
				cel.UnaryBinding(func(v ref.Val) ref.Val {
					return types.String(v.(types.Timestamp).UTC().Format("15"))
				}))),
	}
	std := map[string]*decls.FunctionDecl{}
	for _, fn := range stdlib.Functions() {
		std[fn.Name()] = fn
	}
	for _, name := range arith {
		opts = append(opts, arithmetic(std[name]))
	}
	return cel.NewCustomEnv(opts...)
}

// arithmetic redeclares one of the standard arithmetic operators with
// mixed-number overloads added. The standard library binds each operator
// once for all its overloads, so it cannot be extended in place: this
// copies its overloads, adds (int|uint, double) and (double, int|uint),
// and binds them all to one function that promotes mixed operands to
// double first.
func arithmetic(fn *decls.FunctionDecl) cel.EnvOption {
	name := fn.Name()
	var opts []cel.FunctionOpt
	for _, o := range fn.OverloadDecls() {
		opts = append(opts, cel.Overload(o.ID(), o.ArgTypes(), o.ResultType()))
	}
	id := strings.Trim(name, "_")
	mixed := [][2]*cel.Type{
		{cel.IntType, cel.DoubleType}, {cel.DoubleType, cel.IntType},
		{cel.UintType, cel.DoubleType}, {cel.DoubleType, cel.UintType},
	}
	if name == operators.Modulo {
		mixed = append(mixed, [2]*cel.Type{cel.DoubleType, cel.DoubleType})
	}
	for _, m := range mixed {
		oid := fmt.Sprintf("sluice_%s_%s_%s", id, m[0], m[1])
		opts = append(opts, cel.Overload(oid, []*cel.Type{m[0], m[1]}, cel.DoubleType))
	}
	var op func(lhs, rhs ref.Val) ref.Val
	switch name {
	case operators.Add:
		op = func(l, r ref.Val) ref.Val {
			if a, ok := l.(traits.Adder); ok {
				return a.Add(r)
			}
			return types.MaybeNoSuchOverloadErr(l)
		}
	case operators.Subtract:
		op = func(l, r ref.Val) ref.Val {
			if a, ok := l.(traits.Subtractor); ok {
				return a.Subtract(r)
			}
			return types.MaybeNoSuchOverloadErr(l)
		}
	case operators.Multiply:
		op = func(l, r ref.Val) ref.Val {
			if a, ok := l.(traits.Multiplier); ok {
				return a.Multiply(r)
			}
			return types.MaybeNoSuchOverloadErr(l)
		}
	case operators.Divide:
		op = func(l, r ref.Val) ref.Val {
			if a, ok := l.(traits.Divider); ok {
				return a.Divide(r)
			}
			return types.MaybeNoSuchOverloadErr(l)
		}
	case operators.Modulo:
		op = func(l, r ref.Val) ref.Val {
			if a, ok := l.(types.Double); ok {
				b, ok := r.(types.Double)
				if !ok {
					return types.MaybeNoSuchOverloadErr(r)
				}
				if b == 0 {
					return types.NewErr("modulus by zero")
				}
				return types.Double(math.Mod(float64(a), float64(b)))
			}
			if a, ok := l.(traits.Modder); ok {
				return a.Modulo(r)
			}
			return types.MaybeNoSuchOverloadErr(l)
		}
	}
	opts = append(opts, cel.SingletonBinaryBinding(func(l, r ref.Val) ref.Val {
		l, r = promote(l, r)
		return op(l, r)
	}))
	return cel.Function(name, opts...)
}

// promote turns the int or uint of a mixed pair into a double.
func promote(l, r ref.Val) (ref.Val, ref.Val) {
	ld, lok := l.(types.Double)
	rd, rok := r.(types.Double)
	switch {
	case lok && !rok:
		switch t := r.(type) {
		case types.Int:
			return ld, types.Double(t)
		case types.Uint:
			return ld, types.Double(t)
		}
	case rok && !lok:
		switch t := l.(type) {
		case types.Int:
			return types.Double(t), rd
		case types.Uint:
			return types.Double(t), rd
		}
	}
	return l, r
}

// formatDouble writes a double as JSON and JavaScript do: integral values
// below 1e21 without exponent or fraction.
func formatDouble(f float64) string {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	abs := math.Abs(f)
	fmtc := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		fmtc = 'e'
	}
	b := strconv.AppendFloat(make([]byte, 0, 24), f, fmtc, -1, 64)
	if fmtc == 'e' {
		// 1e-07 -> 1e-7, as encoding/json writes it.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return string(b)
}

// recordTypes adds sluice.Record to the environment's type provider.
func recordTypes() cel.EnvOption {
	return func(e *cel.Env) (*cel.Env, error) {
		p, a, err := types.ComposeTypes(&recordProvider{Provider: e.CELTypeProvider(), fields: recordFields()}, e.CELTypeAdapter())
		if err != nil {
			return nil, err
		}
		if e, err = cel.CustomTypeAdapter(a)(e); err != nil {
			return nil, err
		}
		return cel.CustomTypeProvider(p)(e)
	}
}

// recordProvider declares sluice.Record's fields and reads them straight
// from a *recordView, so that field access costs no map lookup and the
// value is parsed only when an expression reads it.
type recordProvider struct {
	types.Provider
	fields map[string]*types.FieldType
}

func (p *recordProvider) FindStructType(name string) (*types.Type, bool) {
	if name == recordTypeName {
		return types.NewTypeTypeWithParam(recordType), true
	}
	return p.Provider.FindStructType(name)
}

func (p *recordProvider) FindStructFieldNames(name string) ([]string, bool) {
	if name == recordTypeName {
		return []string{"key", "value", "headers", "timestamp", "topic", "partition", "offset"}, true
	}
	return p.Provider.FindStructFieldNames(name)
}

func (p *recordProvider) FindStructFieldType(name, field string) (*types.FieldType, bool) {
	if name != recordTypeName {
		return p.Provider.FindStructFieldType(name, field)
	}
	ft, ok := p.fields[field]
	return ft, ok
}

func (p *recordProvider) FindIdent(name string) (ref.Val, bool) {
	if name == recordTypeName {
		return recordType, true
	}
	return p.Provider.FindIdent(name)
}

func (p *recordProvider) NewValue(name string, fields map[string]ref.Val) ref.Val {
	if name == recordTypeName {
		return types.NewErr("%s values cannot be constructed", recordTypeName)
	}
	return p.Provider.NewValue(name, fields)
}

func viewOf(target any) *recordView {
	v, _ := target.(*recordView)
	return v
}

func alwaysSet(any) bool { return true }

func recordFields() map[string]*types.FieldType {
	return map[string]*types.FieldType{
		"key": {
			Type:    types.DynType,
			IsSet:   func(t any) bool { return viewOf(t).r.Key != nil },
			GetFrom: func(t any) (any, error) { return keyValue(viewOf(t).r.Key), nil },
		},
		"value": {
			Type: types.DynType,
			IsSet: func(t any) bool {
				d, err := viewOf(t).r.Doc()
				return err != nil || d != nil
			},
			GetFrom: func(t any) (any, error) {
				d, err := viewOf(t).r.Doc()
				if err != nil {
					return nil, err
				}
				return docAdapter{}.NativeToValue(d), nil
			},
		},
		"headers": {
			Type:    types.NewMapType(types.StringType, types.StringType),
			IsSet:   func(t any) bool { return len(viewOf(t).r.Headers) > 0 },
			GetFrom: func(t any) (any, error) { return headersValue(viewOf(t).r), nil },
		},
		"timestamp": {
			Type:    types.TimestampType,
			IsSet:   alwaysSet,
			GetFrom: func(t any) (any, error) { return types.Timestamp{Time: viewOf(t).r.Timestamp.UTC()}, nil },
		},
		"topic": {
			Type:    types.StringType,
			IsSet:   alwaysSet,
			GetFrom: func(t any) (any, error) { return types.String(viewOf(t).r.Topic), nil },
		},
		"partition": {
			Type:    types.IntType,
			IsSet:   alwaysSet,
			GetFrom: func(t any) (any, error) { return types.Int(viewOf(t).r.Partition), nil },
		},
		"offset": {
			Type:    types.IntType,
			IsSet:   alwaysSet,
			GetFrom: func(t any) (any, error) { return types.Int(viewOf(t).r.Offset), nil },
		},
	}
}

func keyValue(k []byte) ref.Val {
	switch {
	case k == nil:
		return types.NullValue
	case utf8.Valid(k):
		return types.String(k)
	default:
		return types.Bytes(k)
	}
}

func headersValue(r *connector.Record) ref.Val {
	m := make(map[string]string, len(r.Headers))
	for _, h := range r.Headers {
		// Later headers of the same name win, as in Record.Header.
		m[h.Key] = strings.ToValidUTF8(string(h.Value), "\uFFFD")
	}
	return types.NewStringStringMap(types.DefaultTypeAdapter, m)
}

// recordView is the value of the record variable: the record being
// processed. It is a ref.Val so that an expression can return record
// itself (a map to an envelope document).
type recordView struct {
	r *connector.Record
	// value caches the CEL value of r's document while it does not
	// change: within one processor's evaluations. reset clears it.
	value    ref.Val
	valueErr error
}

func (v *recordView) reset(r *connector.Record) {
	v.r, v.value, v.valueErr = r, nil, nil
}

func (v *recordView) valueVal() (ref.Val, error) {
	if v.value == nil && v.valueErr == nil {
		d, err := v.r.Doc()
		if err != nil {
			v.valueErr = err
		} else {
			v.value = docAdapter{}.NativeToValue(d)
		}
	}
	return v.value, v.valueErr
}

func (v *recordView) ConvertToNative(t reflect.Type) (any, error) {
	return nil, fmt.Errorf("%s cannot be converted to %v", recordTypeName, t)
}

func (v *recordView) ConvertToType(t ref.Type) ref.Val {
	if t == types.TypeType {
		return recordType
	}
	return types.NewErr("type conversion error from %s to %s", recordTypeName, t.TypeName())
}

func (v *recordView) Equal(other ref.Val) ref.Val {
	o, ok := other.(*recordView)
	return types.Bool(ok && o.r == v.r)
}

func (v *recordView) Type() ref.Type { return recordType }
func (v *recordView) Value() any     { return v }

// activation resolves the one variable. A Chain reuses one for every
// record: evaluating costs no allocation for it.
type activation struct {
	view recordView
}

func (a *activation) ResolveName(name string) (any, bool) {
	if name == recordVar {
		return &a.view, true
	}
	return nil, false
}

func (a *activation) Parent() interpreter.Activation { return nil }

// docAdapter presents a JSON document to CEL lazily: a map or list is
// converted element by element as an expression reads it, and every
// number becomes a double.
type docAdapter struct{}

func (a docAdapter) NativeToValue(v any) ref.Val {
	switch t := v.(type) {
	case nil:
		return types.NullValue
	case bool:
		return types.Bool(t)
	case string:
		return types.String(t)
	case float64:
		return types.Double(t)
	case int64:
		return types.Double(t)
	case uint64:
		return types.Double(t)
	case int:
		return types.Double(t)
	case map[string]any:
		return types.NewStringInterfaceMap(a, t)
	case []any:
		return types.NewDynamicList(a, t)
	case ref.Val:
		return t
	}
	return types.DefaultTypeAdapter.NativeToValue(v)
}

// program is one compiled expression.
type program struct {
	prg  cel.Program
	cost uint64
	// loops is whether the expression has a comprehension, the only place
	// CEL checks the context: without one, evaluating with the context
	// would cost its set-up and check nothing.
	loops bool

	// For explaining errors: the checked expression, and a second program
	// that records every intermediate value, made on the first error.
	env       *cel.Env
	ast       *cel.Ast
	trackOnce sync.Once
	tracked   cel.Program
}

// compile parses and checks expr, requires its type to be one of want
// (dyn always passes), and plans it with the cost limit.
func compile(e *cel.Env, expr string, maxCost uint64, want ...*cel.Type) (*program, error) {
	if strings.TrimSpace(expr) == "" {
		return nil, errors.New("empty expression")
	}
	if len(expr) > maxExprLen {
		return nil, fmt.Errorf("expression is %d bytes long, more than the limit of %d", len(expr), maxExprLen)
	}
	ast, iss := e.Compile(expr)
	if iss.Err() != nil {
		return nil, issuesError(expr, iss)
	}
	if len(want) > 0 {
		out := ast.OutputType()
		ok := out.IsExactType(cel.DynType)
		names := make([]string, len(want))
		for i, w := range want {
			ok = ok || out.IsExactType(w)
			names[i] = w.String()
		}
		if !ok {
			return nil, fmt.Errorf("expression is of type %s, want %s", out, strings.Join(names, " or "))
		}
	}
	if maxCost == 0 {
		maxCost = DefaultMaxCost
	}
	prg, err := e.Program(ast,
		cel.EvalOptions(cel.OptOptimize),
		cel.CostLimit(maxCost),
		cel.InterruptCheckFrequency(interruptEvery))
	if err != nil {
		return nil, fmt.Errorf("plan expression: %w", err)
	}
	native := ast.NativeRep()
	loops := len(celast.MatchDescendants(celast.NavigateAST(native), celast.KindMatcher(celast.ComprehensionKind))) > 0
	return &program{prg: prg, cost: maxCost, loops: loops, env: e, ast: ast}, nil
}

// issuesError makes CEL's compile errors read well after "processors[0].filter: ":
// the first line is the first problem and where it is, then the source
// with a caret under it, then any further problems the same way.
func issuesError(expr string, iss *cel.Issues) error {
	lines := strings.Split(expr, "\n")
	var b strings.Builder
	for i, e := range iss.Errors() {
		if i > 0 {
			b.WriteString("\n")
		}
		msg := strings.TrimSuffix(e.Message, " (in container '')")
		line, col := e.Location.Line(), e.Location.Column()
		fmt.Fprintf(&b, "%s at %d:%d", msg, line, col+1)
		if line >= 1 && line <= len(lines) {
			src := lines[line-1]
			if utf8.RuneCountInString(src) > 200 {
				continue // a caret under a huge line helps nobody
			}
			b.WriteString("\n | ")
			b.WriteString(src)
			b.WriteString("\n | ")
			b.WriteString(strings.Repeat(".", max(col, 0)))
			b.WriteString("^")
		}
	}
	return errors.New(b.String())
}

// eval runs p on the record in act.
func (p *program) eval(ctx context.Context, act *activation) (ref.Val, error) {
	var (
		out ref.Val
		err error
	)
	if p.loops {
		out, _, err = p.prg.ContextEval(ctx, act)
	} else {
		out, _, err = p.prg.Eval(act)
	}
	if err != nil {
		if strings.Contains(err.Error(), "cost limit exceeded") {
			return nil, fmt.Errorf("evaluation cost exceeds the limit of %d", p.cost)
		}
		return nil, p.explain(act, err)
	}
	return out, nil
}

// explain adds to an evaluation error where in the expression it happened
// and, for CEL's bare "no such overload", the types the operation got:
// "no such overload for > applied to (string, int) at 1:21". It evaluates
// the expression again, tracking state, which only a failing record pays
// for.
func (p *program) explain(act *activation, err error) error {
	var ce *types.Err
	if !errors.As(err, &ce) || ce.NodeID() == 0 {
		return err
	}
	native := p.ast.NativeRep()
	id := ce.NodeID()
	msg := err.Error()
	if msg == "no such overload" {
		if m := p.overloadMessage(act, native, id); m != "" {
			msg = m
		}
	}
	loc := native.SourceInfo().GetStartLocation(id)
	if loc.Line() < 1 {
		return err
	}
	return fmt.Errorf("%s at %d:%d", msg, loc.Line(), loc.Column()+1)
}

func (p *program) overloadMessage(act *activation, native *celast.AST, id int64) string {
	nodes := celast.MatchDescendants(celast.NavigateAST(native), func(e celast.NavigableExpr) bool { return e.ID() == id })
	if len(nodes) != 1 || nodes[0].Kind() != celast.CallKind {
		return ""
	}
	call := nodes[0].AsCall()
	p.trackOnce.Do(func() {
		// A failure leaves tracked nil and the message as CEL wrote it.
		p.tracked, _ = p.env.Program(p.ast, cel.EvalOptions(cel.OptTrackState), cel.CostLimit(p.cost))
	})
	if p.tracked == nil {
		return ""
	}
	_, det, _ := p.tracked.Eval(act)
	if det == nil || det.State() == nil {
		return ""
	}
	args := call.Args()
	if call.IsMemberFunction() {
		args = append([]celast.Expr{call.Target()}, args...)
	}
	names := make([]string, len(args))
	for i, a := range args {
		v, ok := det.State().Value(a.ID())
		if !ok {
			return ""
		}
		names[i] = v.Type().TypeName()
	}
	fn := call.FunctionName()
	if op, ok := operators.FindReverse(fn); ok {
		fn = op
	}
	return fmt.Sprintf("no such overload for %s applied to (%s)", fn, strings.Join(names, ", "))
}

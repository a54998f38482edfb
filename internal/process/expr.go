package process

import (
	"context"
	"fmt"

	"github.com/google/cel-go/cel"

	"github.com/sluice-dev/sluice/internal/connector"
)

// Expr is a compiled CEL expression over a record, for sinks that take one
// (a Parquet partitionBy). It sees the same record variable as the
// processors (see NewChain). An Expr is safe for concurrent use.
type Expr struct {
	prg *program
}

// CompileExpr compiles an expression that evaluates to a string. Its type
// must be string or dyn: 'dt=' + date(record.timestamp) passes, and so
// does record.value.region, checked on each record.
func CompileExpr(expr string, opts Options) (*Expr, error) {
	e, err := newEnv()
	if err != nil {
		return nil, fmt.Errorf("create CEL environment: %w", err)
	}
	prg, err := compile(e, expr, opts.MaxCost, cel.StringType)
	if err != nil {
		return nil, err
	}
	return &Expr{prg: prg}, nil
}

// EvalString evaluates the expression on r. A result that is not a string
// but a number, bool, timestamp or UTF-8 bytes is written as text the way
// stringify does (12.0 as "12"); any other result, and any evaluation
// error, is an error that is r's fault.
func (e *Expr) EvalString(r *connector.Record) (string, error) {
	act := &activation{view: recordView{r: r}}
	out, err := e.prg.eval(context.Background(), act)
	if err != nil {
		return "", err
	}
	return stringify(out)
}

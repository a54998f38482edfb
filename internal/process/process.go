// Package process holds the processors of pipelines: CEL filter, map and
// set, JSON Schema validation, field drop and rename, and dedupe. A Chain
// is compiled once from a spec's processor list and then run on every
// record.
package process

import (
	"context"
	"fmt"
	"time"

	"github.com/sluice-dev/sluice/internal/connector"
)

// Options configures compilation.
type Options struct {
	// BaseDir resolves relative schemaFile paths (the spec file's
	// directory); empty means the working directory.
	BaseDir string
	// MaxCost bounds the CEL cost of one evaluation (default 1,000,000).
	MaxCost uint64
}

// ConfigError is a processor config that does not compile. Field is the
// path of the bad value inside processor Index, as written in the spec:
// "filter", "map.value", "set.total", "validate.jsonSchema".
type ConfigError struct {
	Index int
	Field string
	Err   error
}

func (e *ConfigError) Error() string {
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
type Chain struct{}

// NewChain compiles the processors. Errors are *ConfigError.
func NewChain(cfgs []Config, opts Options) (*Chain, error) { return &Chain{}, nil }

// Process runs r through every processor, changing it in place. It returns
// false when a processor dropped the record, and a *RecordError when one
// failed on it. Process is not safe for concurrent use (dedupe keeps
// state); a pipeline runs one Chain from one goroutine.
func (c *Chain) Process(ctx context.Context, r *connector.Record) (bool, error) { return true, nil }

// Schema returns the JSON Schema of the chain's last validate processor, as
// a parsed document, or nil when there is none. Sinks create tables and
// Parquet schemas from it.
func (c *Chain) Schema() map[string]any { return nil }

// Expr is a compiled CEL expression over a record, for sinks that take one
// (a Parquet partitionBy).
type Expr struct{}

// CompileExpr compiles an expression that evaluates to a string.
func CompileExpr(expr string, opts Options) (*Expr, error) { return &Expr{}, nil }

// EvalString evaluates the expression on r.
func (e *Expr) EvalString(r *connector.Record) (string, error) { return "", nil }

var _ = time.Second

package pipeline

import (
	"context"
	"errors"

	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/connector/file"
	"github.com/sluice-dev/sluice/internal/connector/parquet"
	"github.com/sluice-dev/sluice/internal/connector/postgres"
	"github.com/sluice-dev/sluice/internal/connector/topic"
	"github.com/sluice-dev/sluice/internal/process"
	"github.com/sluice-dev/sluice/internal/resource"
)

// openSink opens the sink a spec names, with the connectors of this
// repository; for a batch run (RunOutput), parquet files are named for the
// run and published when it completes.
func (m *Manager) openSink(ctx context.Context, p *resource.Pipeline, chain *process.Chain) (connector.Sink, error) {
	name := p.Metadata.Name
	logger := m.opts.Logger.With("pipeline", name)
	s := p.Spec.Sink
	switch {
	case s.Postgres != nil:
		return postgres.New(ctx, postgres.Options{Config: *s.Postgres, Pipeline: name, Schema: chain.Schema(), Logger: logger})
	case s.Parquet != nil:
		opts := parquet.Options{Config: *s.Parquet, Pipeline: name, Run: RunOutput(ctx), Schema: chain.Schema(), Logger: logger}
		if s.Parquet.PartitionBy != "" {
			expr, err := process.CompileExpr(s.Parquet.PartitionBy, process.Options{})
			if err != nil {
				return nil, connector.Permanent(err)
			}
			opts.Partition = expr.EvalString
		}
		return parquet.New(ctx, opts)
	case s.File != nil:
		return file.New(ctx, file.Options{Config: *s.File, Logger: logger})
	case s.Topic != nil:
		return topic.New(topic.Options{Log: m.opts.Log, Topic: s.Topic.Name})
	case s.Stdout != nil:
		return file.NewWriter(m.opts.Stdout, s.Stdout.Format)
	}
	return nil, connector.Permanent(errors.New("the spec names no sink"))
}

package bench

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/pgtest"
)

// The pipeline and window benchmarks run through every phase: each
// phase's pipeline is a valid spec, and each ends.
func TestPipelineAndWindowBenchmarks(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL")
	}
	pg := pgtest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out strings.Builder
	runs, err := Pipeline(ctx, PipelineOptions{DSN: pg.DSN(), Parquet: true, Records: 5000, Runs: 1, Dir: t.TempDir(), Out: &out})
	if err != nil {
		t.Fatalf("pipeline benchmark: %v\n%s", err, out.String())
	}
	if len(runs) != 1 || len(runs[0]) != 4 {
		t.Fatalf("phases %v", runs)
	}
	if err := Window(ctx, WindowOptions{DSN: pg.DSN(), Keys: 100, Events: 20_000, E2EEvents: 5000, Runs: 1, Dir: t.TempDir(), Out: io.Discard}); err != nil {
		t.Fatalf("window benchmark: %v", err)
	}
}

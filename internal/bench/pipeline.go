package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sluice-dev/sluice/internal/connector/parquet"
	"github.com/sluice-dev/sluice/internal/connector/postgres"
	"github.com/sluice-dev/sluice/internal/logstore"
	"github.com/sluice-dev/sluice/internal/pipeline"
	"github.com/sluice-dev/sluice/internal/record"
	"github.com/sluice-dev/sluice/internal/resource"
	"github.com/sluice-dev/sluice/internal/stream"
	"github.com/sluice-dev/sluice/internal/stream/embedded"
	"github.com/sluice-dev/sluice/internal/units"
)

// PipelineOptions configures the pipeline benchmark.
type PipelineOptions struct {
	// DSN is the PostgreSQL database the sinks and the raw COPY write to
	// (tables named sluice_bench_*, dropped afterwards). Empty skips the
	// PostgreSQL phases.
	DSN string
	// Records and RecordBytes shape the source topic (default 1,000,000
	// JSON records of about 200 bytes), over Partitions partitions (4).
	Records     int
	RecordBytes int
	Partitions  int
	// BatchRecords is the pipelines' batch.maxRecords (default 5000).
	BatchRecords int
	Runs         int
	// Dir is the scratch directory (default: a new temporary directory).
	Dir string
	// Parquet runs the topic -> Parquet phase too.
	Parquet bool
	Out     io.Writer
	// CPUProfile, if set, receives a CPU profile of the runs.
	CPUProfile io.Writer
}

func (o *PipelineOptions) setDefaults() {
	if o.Records <= 0 {
		o.Records = 1_000_000
	}
	if o.RecordBytes <= 0 {
		o.RecordBytes = 200
	}
	if o.Partitions <= 0 {
		o.Partitions = 4
	}
	if o.BatchRecords <= 0 {
		o.BatchRecords = 5000
	}
	if o.Runs <= 0 {
		o.Runs = 3
	}
	if o.Out == nil {
		o.Out = os.Stdout
	}
}

// PipelineRun is one phase of one run.
type PipelineRun struct {
	Phase   string
	Records int
	Elapsed time.Duration
	// PeakHeap is the most heap in use seen while it ran (sampled every
	// 10 ms).
	PeakHeap uint64
}

// RecordsPerSec is the phase's rate.
func (r PipelineRun) RecordsPerSec() float64 { return float64(r.Records) / r.Elapsed.Seconds() }

// Phases of the pipeline benchmark.
const (
	PhaseRawCopy     = "raw pgx CopyFrom"
	PhaseInsert      = "pipeline, postgres insert, at-least-once"
	PhaseExactlyOnce = "pipeline, postgres insert, exactly-once"
	PhaseParquet     = "pipeline, parquet"
)

// Pipeline runs the benchmark: per run, a topic of Records JSON records in
// an embedded log (fsync never: the source is not what is measured), then
// in turn a raw CopyFrom of the same rows, already decoded, into a table
// of its own (the ceiling of what a COPY-based sink can reach), and the
// same records through a pipeline into PostgreSQL in insert mode,
// at-least-once and exactly-once, and into Parquet files. A pipeline
// phase ends when its committed positions reach the end of the topic.
func Pipeline(ctx context.Context, o PipelineOptions) ([][]PipelineRun, error) {
	o.setDefaults()
	dir := o.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "sluice-bench-pipeline-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	printTitle(o.Out, "sluice bench pipeline")
	fmt.Fprintf(o.Out, "- source: %d JSON records of %d bytes in %d partitions of an embedded log; batches of %d records\n- scratch directory: %s\n\n",
		o.Records, o.RecordBytes, o.Partitions, o.BatchRecords, dir)
	if o.CPUProfile != nil {
		if err := pprof.StartCPUProfile(o.CPUProfile); err != nil {
			return nil, err
		}
		defer pprof.StopCPUProfile()
	}
	if o.DSN != "" {
		if err := warmUp(ctx, o); err != nil {
			return nil, err
		}
	}
	var all [][]PipelineRun
	for run := 0; run < o.Runs; run++ {
		runs, err := pipelineRun(ctx, o, filepath.Join(dir, "run"+strconv.Itoa(run)), run)
		if err != nil {
			return all, err
		}
		for _, r := range runs {
			fmt.Fprintf(o.Out, "- run %d, %s: %s records/s, peak heap %s\n", run+1, r.Phase, groupThousands(r.RecordsPerSec()), mibString(r.PeakHeap))
		}
		all = append(all, runs)
	}
	printPipelineReport(o, all)
	return all, nil
}

func mibString(n uint64) string { return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20)) }

func printPipelineReport(o PipelineOptions, all [][]PipelineRun) {
	rates := map[string][]float64{}
	heaps := map[string][]float64{}
	var ratios, eoRatios []float64
	var phases []string
	for _, runs := range all {
		by := map[string]PipelineRun{}
		for _, r := range runs {
			if _, ok := rates[r.Phase]; !ok {
				phases = append(phases, r.Phase)
			}
			rates[r.Phase] = append(rates[r.Phase], r.RecordsPerSec())
			heaps[r.Phase] = append(heaps[r.Phase], float64(r.PeakHeap))
			by[r.Phase] = r
		}
		if raw, ok := by[PhaseRawCopy]; ok {
			if ins, ok := by[PhaseInsert]; ok {
				ratios = append(ratios, ins.RecordsPerSec()/raw.RecordsPerSec())
			}
			if eo, ok := by[PhaseExactlyOnce]; ok {
				eoRatios = append(eoRatios, eo.RecordsPerSec()/raw.RecordsPerSec())
			}
		}
	}
	fmt.Fprintf(o.Out, "\n| medians over %d runs | records/s | peak heap |\n|---|---|---|\n", len(all))
	for _, p := range phases {
		fmt.Fprintf(o.Out, "| %s | %s | %s |\n", p, groupThousands(Median(rates[p])), mibString(uint64(Median(heaps[p]))))
	}
	if len(ratios) > 0 {
		fmt.Fprintf(o.Out, "| **insert / raw CopyFrom** | **%.2f** (runs %s) | |\n", Median(ratios), joinRatios(ratios))
	}
	if len(eoRatios) > 0 {
		fmt.Fprintf(o.Out, "| **exactly-once / raw CopyFrom** | **%.2f** (runs %s) | |\n", Median(eoRatios), joinRatios(eoRatios))
	}
	if rss, err := PeakRSS(); err == nil {
		fmt.Fprintf(o.Out, "\npeak RSS of the process over every run: %s\n", mibString(uint64(rss)))
	}
}

func joinRatios(xs []float64) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprintf("%.2f", x)
	}
	return strings.Join(s, ", ")
}

// pipelineRun is one run: the source, then each phase.
func pipelineRun(ctx context.Context, o PipelineOptions, dir string, run int) ([]PipelineRun, error) {
	env, err := OpenEnv(ctx, dir, logstore.SyncPolicy{Mode: logstore.SyncNever})
	if err != nil {
		return nil, err
	}
	defer env.Close()
	defer os.RemoveAll(dir)
	log := embedded.New(env.Log, env.Meta)
	const topic = "bench"
	if _, err := log.CreateTopic(ctx, topic, int32(o.Partitions), nil); err != nil {
		return nil, err
	}
	if err := fillJSON(ctx, log, topic, o); err != nil {
		return nil, err
	}
	var out []PipelineRun
	if o.DSN != "" {
		conn, err := pgx.Connect(ctx, o.DSN)
		if err != nil {
			return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
		}
		defer conn.Close(context.WithoutCancel(ctx))
		table := func(phase string) string { return fmt.Sprintf("sluice_bench_%s_%d", phase, run) }
		phases := []struct{ name, table, delivery string }{
			{PhaseRawCopy, table("raw"), ""},
			{PhaseInsert, table("insert"), resource.AtLeastOnce},
			{PhaseExactlyOnce, table("eo"), resource.ExactlyOnce},
		}
		if run%2 == 1 {
			// Odd runs measure the raw COPY last, so that neither side
			// always meets a fresher server.
			phases = append(phases[1:], phases[0])
		}
		for _, ph := range phases {
			// Each phase starts from a checkpointed server, so that one
			// phase's WAL is not flushed during the next.
			if err := createBenchTable(ctx, conn, ph.table); err != nil {
				return out, err
			}
			if _, err := conn.Exec(ctx, "CHECKPOINT"); err != nil {
				return out, fmt.Errorf("checkpoint: %w", err)
			}
			var r PipelineRun
			if ph.delivery == "" {
				r, err = rawCopy(ctx, conn, ph.table, o)
			} else {
				// Pipeline names take '-', not the table's '_'.
				spec := benchPipeline("bench-"+strings.ReplaceAll(ph.table, "_", "-"), topic, o)
				spec.Spec.Delivery = ph.delivery
				spec.Spec.Sink = resource.Sink{Postgres: &postgres.Config{DSN: o.DSN, Table: ph.table}}
				r, err = runPipeline(ctx, log, spec, o)
			}
			r.Phase = ph.name
			if _, derr := conn.Exec(ctx, "DROP TABLE IF EXISTS "+ph.table); derr != nil && err == nil {
				err = derr
			}
			if err != nil {
				return out, fmt.Errorf("%s: %w", ph.name, err)
			}
			out = append(out, r)
		}
		if _, err := conn.Exec(ctx, "DELETE FROM sluice_offsets WHERE pipeline LIKE 'bench-%'"); err != nil {
			var pe interface{ SQLState() string }
			if !errors.As(err, &pe) || pe.SQLState() != "42P01" {
				return out, err
			}
		}
	}
	if o.Parquet {
		spec := benchPipeline("bench-parquet", topic, o)
		pdir := filepath.Join(dir, "parquet")
		spec.Spec.Sink = resource.Sink{Parquet: &parquet.Config{Path: pdir, RollBytes: units.ByteSize(64 << 20), RollInterval: units.Duration(time.Second)}}
		r, err := runPipeline(ctx, log, spec, o)
		r.Phase = PhaseParquet
		if err != nil {
			return out, fmt.Errorf("%s: %w", PhaseParquet, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// createBenchTable creates table afresh. Autovacuum is off for the
// benchmark's tables: its worker wakes once a minute and would work on
// whichever phase's table it found then, slowing that phase alone.
func createBenchTable(ctx context.Context, conn *pgx.Conn, table string) error {
	if _, err := conn.Exec(ctx, "DROP TABLE IF EXISTS "+table+"; CREATE TABLE "+table+
		" (id bigint, name text, amount double precision, note text) WITH (autovacuum_enabled = false)"); err != nil {
		return fmt.Errorf("create %s: %w", table, err)
	}
	return nil
}

// warmUp copies the rows once, untimed, before the first run: the first
// phase of an invocation otherwise meets a server (and a machine) that has
// not yet grown its buffers and page cache to this load, and was measured
// up to 40 % slower than the same phase later on, whichever it was.
func warmUp(ctx context.Context, o PipelineOptions) error {
	conn, err := pgx.Connect(ctx, o.DSN)
	if err != nil {
		return fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	const table = "sluice_bench_warmup"
	if err := createBenchTable(ctx, conn, table); err != nil {
		return err
	}
	if _, err := rawCopy(ctx, conn, table, o); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	if _, err := conn.Exec(ctx, "DROP TABLE "+table+"; CHECKPOINT"); err != nil {
		return fmt.Errorf("drop %s: %w", table, err)
	}
	return nil
}

func benchPipeline(name, topic string, o PipelineOptions) *resource.Pipeline {
	return &resource.Pipeline{APIVersion: resource.APIVersion, Kind: resource.KindPipeline,
		Metadata: resource.Metadata{Name: name},
		Spec: resource.PipelineSpec{
			Source: resource.Source{Topic: topic, StartFrom: "earliest"},
			Batch:  resource.Batch{MaxRecords: o.BatchRecords, MaxBytes: units.ByteSize(16 << 20), MaxWait: units.Duration(200 * time.Millisecond)},
		}}
}

// benchRow is one source record as the raw COPY writes it.
type benchRow struct {
	id     int64
	name   string
	amount float64
	note   string
}

// benchRowAt is source record i, decoded and as JSON.
func benchRowAt(i int, o PipelineOptions) (benchRow, string) {
	r := benchRow{id: int64(i), name: "customer-" + strconv.Itoa(i%10007), amount: float64(i%100000) / 100}
	v := fmt.Sprintf(`{"id":%d,"name":%q,"amount":%.2f,"note":""}`, r.id, r.name, r.amount)
	if pad := o.RecordBytes - len(v); pad > 0 {
		r.note = strings.Repeat("n", pad)
		v = fmt.Sprintf(`{"id":%d,"name":%q,"amount":%.2f,"note":%q}`, r.id, r.name, r.amount, r.note)
	}
	return r, v
}

// fillJSON appends the source records.
func fillJSON(ctx context.Context, log stream.Log, topic string, o PipelineOptions) error {
	var codecs record.Codecs
	const perBatch = 1000
	recs := make([]record.Record, 0, perBatch)
	now := time.Now().UnixMilli()
	for i := 0; i < o.Records; {
		recs = recs[:0]
		for ; len(recs) < perBatch && i < o.Records; i++ {
			_, v := benchRowAt(i, o)
			recs = append(recs, record.Record{Key: []byte(strconv.Itoa(i)), Value: []byte(v), Timestamp: now})
		}
		b, err := codecs.AppendBatch(nil, recs, record.BatchOptions{})
		if err != nil {
			return err
		}
		if _, err := log.Produce(ctx, topic, int32(i/perBatch%o.Partitions), b); err != nil {
			return err
		}
	}
	return nil
}

// rawCopy copies the source's rows, decoded before the clock starts, with
// pgx's CopyFrom in batches of BatchRecords, one transaction each, as a
// sink does.
func rawCopy(ctx context.Context, conn *pgx.Conn, table string, o PipelineOptions) (PipelineRun, error) {
	rows := make([]benchRow, o.Records)
	for i := range rows {
		rows[i], _ = benchRowAt(i, o)
	}
	runtime.GC()
	stop := sampleHeap()
	start := time.Now()
	cols := []string{"id", "name", "amount", "note"}
	for i := 0; i < len(rows); i += o.BatchRecords {
		chunk := rows[i:min(i+o.BatchRecords, len(rows))]
		j := 0
		src := pgx.CopyFromFunc(func() ([]any, error) {
			if j == len(chunk) {
				return nil, nil
			}
			r := chunk[j]
			j++
			return []any{r.id, r.name, r.amount, r.note}, nil
		})
		if _, err := conn.CopyFrom(ctx, pgx.Identifier{table}, cols, src); err != nil {
			return PipelineRun{}, err
		}
	}
	return PipelineRun{Records: len(rows), Elapsed: time.Since(start), PeakHeap: stop()}, nil
}

// runPipeline runs one pipeline from the start of the topic until its
// committed positions reach the end.
func runPipeline(ctx context.Context, log stream.Log, spec *resource.Pipeline, o PipelineOptions) (PipelineRun, error) {
	mgr, err := pipeline.New(pipeline.Options{Log: log, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return PipelineRun{}, err
	}
	mctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := mgr.Start(mctx); err != nil {
		return PipelineRun{}, err
	}
	defer mgr.Close(context.WithoutCancel(ctx))
	name := spec.Metadata.Name
	runtime.GC()
	stop := sampleHeap()
	start := time.Now()
	if _, err := mgr.Put(ctx, spec); err != nil {
		stop()
		return PipelineRun{}, err
	}
	defer mgr.Delete(context.WithoutCancel(ctx), name)
	for {
		p, err := mgr.Get(name)
		if err != nil {
			stop()
			return PipelineRun{}, err
		}
		var done int64
		for _, pos := range p.Status.Positions {
			done += pos.Offset
		}
		if done >= int64(o.Records) {
			break
		}
		if p.Status.State == pipeline.StateFailed {
			stop()
			return PipelineRun{}, fmt.Errorf("pipeline failed: %s", p.Status.Error)
		}
		select {
		case <-ctx.Done():
			stop()
			return PipelineRun{}, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	return PipelineRun{Records: o.Records, Elapsed: time.Since(start), PeakHeap: stop()}, nil
}

// sampleHeap samples the heap in use every 10 ms until the returned
// function is called, which returns the peak.
func sampleHeap() func() uint64 {
	var mu sync.Mutex
	var peak uint64
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			mu.Lock()
			peak = max(peak, ms.HeapInuse)
			mu.Unlock()
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 {
		close(done)
		<-finished
		mu.Lock()
		defer mu.Unlock()
		return peak
	}
}

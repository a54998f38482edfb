package bench

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sluice-dev/sluice/internal/aggregate"
	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/connector/postgres"
	"github.com/sluice-dev/sluice/internal/logstore"
	"github.com/sluice-dev/sluice/internal/process"
	"github.com/sluice-dev/sluice/internal/record"
	"github.com/sluice-dev/sluice/internal/resource"
	"github.com/sluice-dev/sluice/internal/stream"
	"github.com/sluice-dev/sluice/internal/stream/embedded"
	"github.com/sluice-dev/sluice/internal/units"
	"github.com/sluice-dev/sluice/internal/window"
)

// WindowOptions configures the window benchmark.
type WindowOptions struct {
	// Keys is the number of group keys (default 10,000).
	Keys int
	// Events is how many events the in-process phases add (default
	// 10,000,000), E2EEvents how many go through the topic into
	// PostgreSQL (default 1,000,000).
	Events    int
	E2EEvents int
	// DSN is the PostgreSQL database of the end-to-end phase (a table
	// sluice_bench_window, dropped afterwards); empty skips it.
	DSN  string
	Runs int
	Dir  string
	Out  io.Writer
}

func (o *WindowOptions) setDefaults() {
	if o.Keys <= 0 {
		o.Keys = 10_000
	}
	if o.Events <= 0 {
		o.Events = 10_000_000
	}
	if o.E2EEvents <= 0 {
		o.E2EEvents = 1_000_000
	}
	if o.Runs <= 0 {
		o.Runs = 3
	}
	if o.Out == nil {
		o.Out = os.Stdout
	}
}

// Phases of the window benchmark.
const (
	PhaseWindowOperator  = "window state: count+sum by key, one core"
	PhaseWindowProcessor = "window processor on parsed records, one core"
	PhaseWindowE2E       = "topic -> window -> PostgreSQL upsert"
)

// windowT0 is the first event time: a multiple of every window size.
const windowT0 = int64(1_700_000_040_000)

// Window runs the window benchmark: per run, tumbling windows of a minute
// with count and sum by key, (1) in the window state alone, on one core
// (GOMAXPROCS=1, so the garbage collector shares it), (2) through the
// window processor's expressions on records already parsed, on one core,
// and (3) end to end, from a topic of JSON events through a windowed
// pipeline into PostgreSQL with upsert, timed until its checkpoint reaches
// the end of the topic. It reports events/s, and the state's bytes per key
// (the heap it holds, measured, and the state's own estimate).
func Window(ctx context.Context, o WindowOptions) error {
	o.setDefaults()
	printTitle(o.Out, "sluice bench window")
	fmt.Fprintf(o.Out, "- tumbling windows of 1m, count() and sum() by key over %d keys; %d events in process, %d end to end\n\n",
		o.Keys, o.Events, o.E2EEvents)
	rates := map[string][]float64{}
	var perKey, estimate, ratios []float64
	for run := range o.Runs {
		op, heapPerKey, estPerKey, err := windowOperatorRun(o)
		if err != nil {
			return err
		}
		rates[PhaseWindowOperator] = append(rates[PhaseWindowOperator], op)
		perKey, estimate = append(perKey, heapPerKey), append(estimate, estPerKey)
		proc, err := windowProcessorRun(o)
		if err != nil {
			return err
		}
		rates[PhaseWindowProcessor] = append(rates[PhaseWindowProcessor], proc)
		fmt.Fprintf(o.Out, "- run %d: state %s events/s (%.0f bytes per key measured, %.0f estimated); processor %s events/s",
			run+1, groupThousands(op), heapPerKey, estPerKey, groupThousands(proc))
		if o.DSN != "" {
			e2e, err := windowE2ERun(ctx, o, run)
			if err != nil {
				return err
			}
			rates[PhaseWindowE2E] = append(rates[PhaseWindowE2E], e2e)
			ratios = append(ratios, e2e/proc)
			fmt.Fprintf(o.Out, "; end to end %s events/s", groupThousands(e2e))
		}
		fmt.Fprintln(o.Out)
	}
	fmt.Fprintf(o.Out, "\n| medians over %d runs | events/s |\n|---|---|\n", o.Runs)
	for _, p := range []string{PhaseWindowOperator, PhaseWindowProcessor, PhaseWindowE2E} {
		if len(rates[p]) > 0 {
			fmt.Fprintf(o.Out, "| %s | %s |\n", p, groupThousands(Median(rates[p])))
		}
	}
	if len(ratios) > 0 {
		fmt.Fprintf(o.Out, "| **end to end / processor** | **%.2f** (runs %s) |\n", Median(ratios), joinRatios(ratios))
	}
	fmt.Fprintf(o.Out, "\nstate per key (one open window of count and sum): %.0f bytes of heap measured, %.0f estimated by the state\n",
		Median(perKey), Median(estimate))
	return nil
}

// windowEvents returns the key and amount of each event, drawn before
// the clock starts.
func windowEvents(n, keys int) ([]int32, []float64) {
	rng := rand.New(rand.NewPCG(1, 2))
	k, a := make([]int32, n), make([]float64, n)
	for i := range k {
		k[i] = int32(rng.IntN(keys))
		a[i] = float64(rng.IntN(100_000)) / 100
	}
	return k, a
}

func withOneCore(f func()) {
	prev := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(prev)
	f()
}

// windowOperatorRun adds Events events to a window operator. Event times
// run through one minute, so every key has one window open at the end,
// whose heap is measured.
func windowOperatorRun(o WindowOptions) (rate, heapPerKey, estPerKey float64, err error) {
	keys, amounts := windowEvents(o.Events, o.Keys)
	names := make([]string, o.Keys)
	for i := range names {
		names[i] = "region-" + strconv.Itoa(i)
	}
	cfg := window.Config{Kind: window.Tumbling, Size: 60_000, Lateness: 5_000,
		Aggregates: []aggregate.Spec{{Func: aggregate.Count}, {Func: aggregate.Sum}}}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	op := window.New(cfg)
	op.AddPartition(0)
	in := make([]window.Input, 2)
	now := time.Now()
	var elapsed time.Duration
	withOneCore(func() {
		start := time.Now()
		for i := range o.Events {
			in[1].Num = amounts[i]
			t := windowT0 + int64(i)*59_999/int64(o.Events)
			if err = op.Add(0, names[keys[i]], t, in); err != nil {
				return
			}
			if i%1000 == 999 {
				op.Advance(now)
			}
		}
		elapsed = time.Since(start)
	})
	if err != nil {
		return 0, 0, 0, err
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	w := float64(op.Windows())
	heapPerKey = float64(int64(after.HeapInuse)-int64(before.HeapInuse)) / w
	estPerKey = float64(op.Bytes()) / w
	runtime.KeepAlive(op)
	runtime.KeepAlive(keys)
	runtime.KeepAlive(amounts)
	runtime.KeepAlive(names)
	return float64(o.Events) / elapsed.Seconds(), heapPerKey, estPerKey, nil
}

// windowProcessorRun runs parsed records through the window processor's
// expressions (record.value.ts, record.value.region, the amount) and the
// operator.
func windowProcessorRun(o WindowOptions) (float64, error) {
	chain, err := process.NewChain([]process.Config{{Window: windowConfig()}}, process.Options{})
	if err != nil {
		return 0, err
	}
	w := chain.Window()
	op := window.New(w.Config)
	op.AddPartition(0)
	// A pool of distinct parsed records, cycled.
	const pool = 100_000
	keys, amounts := windowEvents(pool, o.Keys)
	recs := make([]*connector.Record, pool)
	for i := range recs {
		r := connector.NewRecord([]byte(fmt.Sprintf(`{"region":"region-%d","amount":%g,"ts":%d}`, keys[i], amounts[i], windowT0+int64(i)*59_999/pool)))
		if _, err := r.Doc(); err != nil {
			return 0, err
		}
		recs[i] = r
	}
	ctx := context.Background()
	var elapsed time.Duration
	withOneCore(func() {
		start := time.Now()
		for i := range o.Events {
			r := recs[i%pool]
			var ev process.Event
			if ev, err = chain.Event(ctx, r); err != nil {
				return
			}
			if err = op.Add(0, ev.Key, ev.Time, ev.In); err != nil {
				return
			}
		}
		elapsed = time.Since(start)
	})
	if err != nil {
		return 0, err
	}
	return float64(o.Events) / elapsed.Seconds(), nil
}

func windowConfig() *process.WindowConfig {
	return &process.WindowConfig{Type: "tumbling", Size: units.Duration(time.Minute), Time: "record.value.ts",
		AllowedLateness: units.Duration(5 * time.Second), GroupBy: "record.value.region",
		Aggregates:  map[string]string{"n": "count()", "revenue": "sum(record.value.amount)"},
		IdleTimeout: units.Duration(time.Second), CheckpointEvery: units.Duration(200 * time.Millisecond)}
}

// windowE2ERun fills a topic with E2EEvents JSON events over five minutes
// of event time and runs a windowed pipeline into PostgreSQL until its
// checkpoint reaches the end of the topic.
func windowE2ERun(ctx context.Context, o WindowOptions, run int) (float64, error) {
	dir := o.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "sluice-bench-window-")
		if err != nil {
			return 0, err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	dir = filepath.Join(dir, "run"+strconv.Itoa(run))
	env, err := OpenEnv(ctx, dir, logstore.SyncPolicy{Mode: logstore.SyncNever})
	if err != nil {
		return 0, err
	}
	defer env.Close()
	log := embedded.New(env.Log, env.Meta)
	const topic, partitions = "events", 4
	if _, err := log.CreateTopic(ctx, topic, partitions, nil); err != nil {
		return 0, err
	}
	if err := fillWindowEvents(ctx, log, topic, partitions, o); err != nil {
		return 0, err
	}
	conn, err := pgx.Connect(ctx, o.DSN)
	if err != nil {
		return 0, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	const table = "sluice_bench_window"
	if _, err := conn.Exec(ctx, "DROP TABLE IF EXISTS "+table+"; CREATE TABLE "+table+
		" (key text, window_start text, window_end text, n bigint, revenue double precision, PRIMARY KEY (key, window_start)); CHECKPOINT"); err != nil {
		return 0, err
	}
	defer conn.Exec(context.WithoutCancel(ctx), "DROP TABLE IF EXISTS "+table)
	spec := &resource.Pipeline{APIVersion: resource.APIVersion, Kind: resource.KindPipeline,
		Metadata: resource.Metadata{Name: "bench-window"},
		Spec: resource.PipelineSpec{
			Source:     resource.Source{Topic: topic, StartFrom: "earliest"},
			Processors: []process.Config{{Window: windowConfig()}},
			Sink:       resource.Sink{Postgres: &postgres.Config{DSN: o.DSN, Table: table, Mode: "upsert", Key: []string{"key", "window_start"}}},
			Batch:      resource.Batch{MaxRecords: 5000, MaxBytes: units.ByteSize(16 << 20), MaxWait: units.Duration(200 * time.Millisecond)},
		}}
	r, err := runPipeline(ctx, log, spec, PipelineOptions{Records: o.E2EEvents})
	if err != nil {
		return 0, err
	}
	return r.RecordsPerSec(), nil
}

func fillWindowEvents(ctx context.Context, log stream.Log, topic string, partitions int, o WindowOptions) error {
	var codecs record.Codecs
	keys, amounts := windowEvents(o.E2EEvents, o.Keys)
	const perBatch = 1000
	recs := make([]record.Record, 0, perBatch)
	for i := 0; i < o.E2EEvents; {
		recs = recs[:0]
		for ; len(recs) < perBatch && i < o.E2EEvents; i++ {
			ts := windowT0 + int64(i)*300_000/int64(o.E2EEvents)
			v := fmt.Sprintf(`{"region":"region-%d","amount":%g,"ts":%d}`, keys[i], amounts[i], ts)
			recs = append(recs, record.Record{Value: []byte(v), Timestamp: ts})
		}
		b, err := codecs.AppendBatch(nil, recs, record.BatchOptions{})
		if err != nil {
			return err
		}
		if _, err := log.Produce(ctx, topic, int32(i/perBatch%partitions), b); err != nil {
			return err
		}
	}
	return nil
}

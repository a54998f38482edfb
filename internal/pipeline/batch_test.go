package pipeline

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	pq "github.com/parquet-go/parquet-go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/connector/parquet"
	"github.com/sluice-dev/sluice/internal/process"
	"github.com/sluice-dev/sluice/internal/record"
	"github.com/sluice-dev/sluice/internal/resource"
	"github.com/sluice-dev/sluice/internal/stream"
	"github.com/sluice-dev/sluice/internal/units"
)

// batchPipeline is a batch pipeline of topic into a Parquet lake at dir,
// one directory per source partition, in batches of 50 records.
func batchPipeline(name, topic, dir string) *resource.Pipeline {
	p := testPipeline(name, topic)
	p.Spec.Mode = resource.ModeBatch
	p.Spec.Source.StartFrom = ""
	p.Spec.Batch = resource.Batch{MaxRecords: 50}
	p.Spec.Sink = resource.Sink{Parquet: &parquet.Config{Path: dir, PartitionBy: `"p=" + string(record.partition)`}}
	return p
}

// lakeRow is what the tests write: n, and where it came from.
type lakeRow struct {
	N         int64  `parquet:"n"`
	Partition int32  `parquet:"_partition"`
	Offset    int64  `parquet:"_offset"`
	Topic     string `parquet:"_topic"`
}

// readLake reads every visible Parquet file under dir (name relative to
// dir -> rows) and fails on a temporary file.
func readLake(t *testing.T, dir string) map[string][]lakeRow {
	t.Helper()
	out := map[string][]lakeRow{}
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if strings.HasSuffix(path, ".tmp") {
			t.Errorf("temporary file %s visible", path)
			return nil
		}
		rows, err := pq.ReadFile[lakeRow](path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		out[rel] = rows
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// checkOnce checks that the lake holds n = 0..total-1 exactly once each.
func checkOnce(t *testing.T, lake map[string][]lakeRow, total int) {
	t.Helper()
	seen := make([]int, total)
	for name, rows := range lake {
		for _, r := range rows {
			if r.N < 0 || r.N >= int64(total) {
				t.Fatalf("%s: row n=%d, want below %d", name, r.N, total)
			}
			seen[r.N]++
		}
	}
	for n, c := range seen {
		if c != 1 {
			t.Fatalf("record n=%d is in the lake %d times, want once (%d files)", n, c, len(lake))
		}
	}
}

// produceSpread appends records n = from..from+count-1 round robin over
// the topic's partitions.
func produceSpread(t *testing.T, l stream.Log, topic string, partitions, from, count int) {
	t.Helper()
	per := make([][]string, partitions)
	for n := from; n < from+count; n++ {
		per[n%partitions] = append(per[n%partitions], `{"n":`+strconv.Itoa(n)+`}`)
	}
	for p, vs := range per {
		if len(vs) > 0 {
			produce(t, l, topic, int32(p), vs...)
		}
	}
}

func waitRun(t *testing.T, mgr *Manager, name string, id int64, state string) Run {
	t.Helper()
	var run Run
	waitFor(t, fmt.Sprintf("run %d %s", id, state), func() bool {
		var err error
		run, err = mgr.GetRun(name, id)
		return err == nil && run.State == state
	})
	return run
}

// covered sums the ranges of a pipeline's succeeded runs, by partition,
// and checks that each starts where the last one of that partition ended.
func covered(t *testing.T, mgr *Manager, name string) (map[int32]int64, []Run) {
	t.Helper()
	runs, err := mgr.Runs(name)
	if err != nil {
		t.Fatal(err)
	}
	end := map[int32]int64{}
	var done []Run
	for i := len(runs) - 1; i >= 0; i-- {
		r := runs[i]
		if r.State != RunSucceeded {
			continue
		}
		for _, rg := range r.Ranges {
			if rg.From != end[rg.Partition] {
				t.Fatalf("run %d reads partition %d from %d, the previous run ended at %d", r.ID, rg.Partition, rg.From, end[rg.Partition])
			}
			end[rg.Partition] = rg.To
		}
		done = append(done, r)
	}
	return end, done
}

// TestBatchScheduledRunsCoverEveryRecordOnce: a pipeline on @every 1s
// over a topic that grows between its runs; each run starts where the last
// ended, and the lake ends with every record exactly once.
func TestBatchScheduledRunsCoverEveryRecordOnce(t *testing.T) {
	l := testLog(t, t.TempDir())
	createTopic(t, l, "clicks", 3)
	reg := prometheus.NewRegistry()
	mgr := startManager(t, Options{Log: l, Registerer: reg})
	lake := t.TempDir()
	p := batchPipeline("hourly", "clicks", lake)
	p.Spec.Schedule = "@every 1s"
	if _, err := mgr.Put(testCtx(t), p); err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, n := range []int{300, 200, 101} {
		produceSpread(t, l, "clicks", 3, total, n)
		total += n
		waitFor(t, fmt.Sprintf("runs to cover %d records", total), func() bool {
			end, _ := covered(t, mgr, "hourly")
			return end[0]+end[1]+end[2] == int64(total)
		})
	}
	_, done := covered(t, mgr, "hourly")
	withRecords := 0
	for _, r := range done {
		if r.Kind != RunScheduled || r.Attempt != 1 {
			t.Errorf("run %d: kind %s, attempt %d; want scheduled, 1", r.ID, r.Kind, r.Attempt)
		}
		if r.RecordsWritten > 0 {
			withRecords++
		}
	}
	if withRecords < 3 {
		t.Fatalf("got %d runs with records, want at least 3", withRecords)
	}
	checkOnce(t, readLake(t, lake), total)

	// The group follows the runs, for lag.
	waitFor(t, "the group offsets of the last run", func() bool {
		c := committed(t, l, "hourly")
		return c[0]+c[1]+c[2] == int64(total)
	})
	if v := testutil.ToFloat64(mgr.env.metrics.batchRuns.WithLabelValues("hourly", runOutcomeSucceeded)); v < 3 {
		t.Errorf("got %v succeeded runs in metrics, want 3 or more", v)
	}
	if v := testutil.ToFloat64(mgr.env.metrics.batchLastSuccess.WithLabelValues("hourly")); v < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("got last success %v, want about now", v)
	}
	if n := testutil.CollectAndCount(mgr.env.metrics.batchDuration); n != 1 {
		t.Errorf("got %d duration series, want 1", n)
	}
	st, _ := mgr.Get("hourly")
	if st.Status.Batch == nil || st.Status.Batch.NextRunAt.IsZero() || st.Status.Lag != 0 {
		t.Errorf("got status %+v, batch %+v; want the next run's time and lag 0", st.Status, st.Status.Batch)
	}
}

// filesRows reads a lake as file name -> each row's values, as text.
func filesRows(t *testing.T, dir string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for name, rows := range readLake(t, dir) {
		for _, r := range rows {
			out[name] = append(out[name], fmt.Sprintf("%+v", r))
		}
	}
	return out
}

// TestBatchBackfillReproducesFiles: a backfill over a run's explicit
// offsets writes the same files, with the same rows, as the run did; and
// it leaves lastRun where it was.
func TestBatchBackfillReproducesFiles(t *testing.T) {
	l := testLog(t, t.TempDir())
	createTopic(t, l, "clicks", 2)
	produceSpread(t, l, "clicks", 2, 0, 1000)
	mgr := startManager(t, Options{Log: l, Registerer: prometheus.NewRegistry()})
	lake := t.TempDir()
	p := batchPipeline("lake", "clicks", lake)
	// Files roll by size too, so that there are several in a directory.
	p.Spec.Sink.Parquet.RollBytes = 4 << 10
	p.Spec.Sink.Parquet.RowGroupBytes = 1 << 10
	if _, err := mgr.Put(testCtx(t), p); err != nil {
		t.Fatal(err)
	}
	first, err := mgr.StartRun(testCtx(t), "lake", RunRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if first.Kind != RunManual || first.ID != 1 || first.From != "lastRun" || first.To != "latest" {
		t.Fatalf("got run %+v, want run 1, manual, lastRun to latest", first)
	}
	waitRun(t, mgr, "lake", 1, RunSucceeded)
	original := filesRows(t, lake)
	if len(original) < 4 {
		t.Fatalf("got %d files, want several per partition", len(original))
	}
	for name := range original {
		if !strings.HasPrefix(filepath.Base(name), "lake-batch-"+first.Output+"-") {
			t.Fatalf("file %s is not named for run 1's output %s", name, first.Output)
		}
	}
	checkOnce(t, readLake(t, lake), 1000)

	// More records, and the lake lost: the backfill of run 1's offsets
	// writes run 1's files again, and nothing of the new records.
	produceSpread(t, l, "clicks", 2, 1000, 300)
	if err := os.RemoveAll(lake); err != nil {
		t.Fatal(err)
	}
	var from, to []string
	for _, rg := range first.Ranges {
		from = append(from, fmt.Sprintf("%d=%d", rg.Partition, rg.From))
		to = append(to, fmt.Sprintf("%d=%d", rg.Partition, rg.To))
	}
	bf, err := mgr.StartRun(testCtx(t), "lake", RunRequest{From: strings.Join(from, ","), To: strings.Join(to, ",")})
	if err != nil {
		t.Fatal(err)
	}
	if bf.Kind != RunBackfill || bf.Output != first.Output {
		t.Fatalf("got backfill %+v, want kind backfill and the output name %s of run 1", bf, first.Output)
	}
	waitRun(t, mgr, "lake", bf.ID, RunSucceeded)
	again := filesRows(t, lake)
	if len(again) != len(original) {
		t.Fatalf("the backfill wrote %d files, run 1 wrote %d", len(again), len(original))
	}
	for name, rows := range original {
		if !slices.Equal(again[name], rows) {
			t.Fatalf("%s: the backfill wrote %d rows (%.80q...), run 1 wrote %d (%.80q...)", name, len(again[name]), again[name], len(rows), rows)
		}
	}

	// The next run goes on from run 1's end, not the backfill's.
	next, err := mgr.StartRun(testCtx(t), "lake", RunRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for i, rg := range next.Ranges {
		if rg.From != first.Ranges[i].To || rg.To != first.Ranges[i].To+150 {
			t.Fatalf("got ranges %+v after the backfill, want each from run 1's end %+v, 150 records", next.Ranges, first.Ranges)
		}
	}
	waitRun(t, mgr, "lake", next.ID, RunSucceeded)
	checkOnce(t, readLake(t, lake), 1300)
}

// failingSink fails the Flush of a staging sink when fail says so: before
// it, or with after, once it has published the files.
type failingSink struct {
	connector.StagingSink
	fail  func() bool
	after bool
}

func (s *failingSink) Flush(ctx context.Context) error {
	if !s.fail() {
		return s.StagingSink.Flush(ctx)
	}
	if s.after {
		if err := s.StagingSink.Flush(ctx); err != nil {
			return err
		}
		return errors.New("sync the directory: input/output error")
	}
	return errors.New("disk full")
}

// newFailingManager starts a manager whose sinks are this repository's,
// each wrapped so that its Flush fails when fail(n) says so for the nth
// Flush of any sink, before publishing anything or (after) once it has
// published.
func newFailingManager(t *testing.T, l stream.Log, after bool, fail func(n int) bool) *Manager {
	t.Helper()
	var mgr *Manager
	var mu sync.Mutex
	flushes := 0
	mgr = startManager(t, Options{Log: l, Registerer: prometheus.NewRegistry(),
		OpenSink: func(ctx context.Context, p *resource.Pipeline, chain *process.Chain) (connector.Sink, error) {
			s, err := mgr.openSink(ctx, p, chain)
			if err != nil {
				return nil, err
			}
			return &failingSink{StagingSink: s.(connector.StagingSink), after: after, fail: func() bool {
				mu.Lock()
				defer mu.Unlock()
				flushes++
				return fail(flushes)
			}}, nil
		}})
	return mgr
}

// TestBatchFailedAttemptRetriedFromItsStart: an attempt whose sink fails
// at the very end, after its files were published, is attempted again over
// the same range, and its files replace the first attempt's: the lake
// holds every record once.
func TestBatchFailedAttemptRetriedFromItsStart(t *testing.T) {
	l := testLog(t, t.TempDir())
	createTopic(t, l, "clicks", 2)
	produceSpread(t, l, "clicks", 2, 0, 500)
	mgr := newFailingManager(t, l, true, func(n int) bool { return n == 1 })
	lake := t.TempDir()
	if _, err := mgr.Put(testCtx(t), batchPipeline("lake", "clicks", lake)); err != nil {
		t.Fatal(err)
	}
	if _, err := mgr.StartRun(testCtx(t), "lake", RunRequest{}); err != nil {
		t.Fatal(err)
	}
	run := waitRun(t, mgr, "lake", 1, RunSucceeded)
	if run.Attempt != 2 || run.RecordsRead != 500 || run.RecordsWritten != 500 {
		t.Fatalf("got run %+v, want attempt 2 with 500 records read and written", run)
	}
	checkOnce(t, readLake(t, lake), 500)
	if v := testutil.ToFloat64(mgr.env.metrics.batchRuns.WithLabelValues("lake", runOutcomeRetried)); v != 1 {
		t.Fatalf("got %v retried attempts in metrics, want 1", v)
	}
}

// TestBatchRunGivesUpThenResumes: a run that spends its retry budget
// fails the pipeline and blocks new runs; resume attempts the same run
// again, over the same range.
func TestBatchRunGivesUpThenResumes(t *testing.T) {
	l := testLog(t, t.TempDir())
	createTopic(t, l, "clicks", 1)
	produceSpread(t, l, "clicks", 1, 0, 120)
	var mu sync.Mutex
	broken := true
	mgr := newFailingManager(t, l, false, func(int) bool { mu.Lock(); defer mu.Unlock(); return broken })
	lake := t.TempDir()
	p := batchPipeline("lake", "clicks", lake)
	p.Spec.Retry.MaxAttempts = 2
	if _, err := mgr.Put(testCtx(t), p); err != nil {
		t.Fatal(err)
	}
	if _, err := mgr.StartRun(testCtx(t), "lake", RunRequest{}); err != nil {
		t.Fatal(err)
	}
	run := waitRun(t, mgr, "lake", 1, RunFailed)
	if run.Attempt != 2 || !strings.Contains(run.Error, "gave up after 2 attempts: sink: flush: disk full") {
		t.Fatalf("got run %+v, want 2 attempts and the sink's error", run)
	}
	waitFor(t, "failed", func() bool { st, _ := mgr.Get("lake"); return st.Status.State == StateFailed })
	if _, err := mgr.StartRun(testCtx(t), "lake", RunRequest{}); !errors.Is(err, ErrRunConflict) {
		t.Fatalf("StartRun while run 1 is failed: got %v, want ErrRunConflict", err)
	}
	if files := readLake(t, lake); len(files) != 0 {
		t.Fatalf("got files %v of the failed run, want none", files)
	}
	produceSpread(t, l, "clicks", 1, 120, 10)
	mu.Lock()
	broken = false
	mu.Unlock()
	if err := mgr.Resume(testCtx(t), "lake"); err != nil {
		t.Fatal(err)
	}
	run = waitRun(t, mgr, "lake", 1, RunSucceeded)
	if run.Attempt != 3 || run.Ranges[0].To != 120 {
		t.Fatalf("got run %+v, want attempt 3 of the same range [0, 120)", run)
	}
	checkOnce(t, readLake(t, lake), 120)
	if v := testutil.ToFloat64(mgr.env.metrics.batchRuns.WithLabelValues("lake", runOutcomeFailed)); v != 1 {
		t.Fatalf("got %v failed runs in metrics, want 1", v)
	}
}

// TestBatchOneRunAtATime: a second run asked for while one runs is a
// conflict; a stream pipeline takes no runs; bad ranges are refused before
// anything is recorded.
func TestBatchOneRunAtATime(t *testing.T) {
	l := testLog(t, t.TempDir())
	createTopic(t, l, "in", 2)
	produceSpread(t, l, "in", 2, 0, 100)
	block := make(chan struct{})
	ms := &memSink{block: block}
	e := newTestEnv(t, l, ms)
	p := batchPipeline("b", "in", "")
	p.Spec.Sink = resource.Sink{Stdout: &resource.StdoutSink{}}
	if _, err := e.mgr.Put(testCtx(t), p); err != nil {
		t.Fatal(err)
	}
	stream := testPipeline("s", "in")
	stream.Spec.Paused = true // it would write into the same sink
	if _, err := e.mgr.Put(testCtx(t), stream); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		req  RunRequest
		want string
	}{
		{RunRequest{From: "yesterday"}, `from: "yesterday": want lastRun, earliest`},
		{RunRequest{From: "0=10", To: "0=5"}, "to: partition 0 ends at 5, before its start 10"},
		{RunRequest{From: "0=0", To: "0=500"}, "partition 0 ends at 500, and in/0 holds offsets up to 50"},
		{RunRequest{From: "7=0"}, "partition 7: in has 2 partitions"},
	} {
		if _, err := e.mgr.StartRun(testCtx(t), "b", tc.req); !errors.Is(err, ErrBadRun) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("StartRun %+v: got %v, want ErrBadRun with %q", tc.req, err, tc.want)
		}
	}
	if runs, _ := e.mgr.Runs("b"); len(runs) != 0 {
		t.Fatalf("got runs %+v after refused requests, want none", runs)
	}
	run, err := e.mgr.StartRun(testCtx(t), "b", RunRequest{From: "earliest", To: "0=30,1=40"})
	if err != nil {
		t.Fatal(err)
	}
	if run.Kind != RunBackfill || len(run.Ranges) != 2 || run.Ranges[1] != (PartitionRange{Partition: 1, From: 0, To: 40}) {
		t.Fatalf("got run %+v", run)
	}
	_, err = e.mgr.StartRun(testCtx(t), "b", RunRequest{})
	if !errors.Is(err, ErrRunConflict) || !strings.Contains(err.Error(), "run 1 of b is running") {
		t.Fatalf("StartRun while run 1 runs: got %v, want ErrRunConflict", err)
	}
	if _, err := e.mgr.StartRun(testCtx(t), "s", RunRequest{}); !errors.Is(err, ErrBadRun) {
		t.Fatalf("StartRun of a stream pipeline: got %v, want ErrBadRun", err)
	}
	if _, err := e.mgr.StartRun(testCtx(t), "nope", RunRequest{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("StartRun of no pipeline: got %v, want ErrNotFound", err)
	}
	if st, _ := e.mgr.Get("b"); st.Status.Batch == nil || st.Status.Batch.Run != 1 {
		t.Fatalf("got status %+v, want run 1 in progress", st.Status)
	}
	waitFor(t, "running", func() bool { st, _ := e.mgr.Get("b"); return st.Status.State == StateRunning })
	close(block)
	run = waitRun(t, e.mgr, "b", 1, RunSucceeded)
	if run.RecordsWritten != 70 || len(ms.got()) != 70 {
		t.Fatalf("got run %+v and %d records in the sink, want 70", run, len(ms.got()))
	}
	// A backfill moves neither lastRun nor the group.
	if c := committed(t, l, "b"); len(c) != 0 {
		t.Fatalf("got group offsets %v after a backfill, want none", c)
	}
	run, err = e.mgr.StartRun(testCtx(t), "b", RunRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if run.Ranges[0].From != 0 || run.Ranges[0].To != 50 {
		t.Fatalf("got ranges %+v, want the first run from the start", run.Ranges)
	}
}

// TestBatchRunsSurviveRestarts: runs are stored in the log. A new manager
// lists them and goes on from the last; a run interrupted by a stop is
// completed by the next manager over its own range, under its own ID.
func TestBatchRunsSurviveRestarts(t *testing.T) {
	dir := t.TempDir()
	l := testLog(t, dir)
	createTopic(t, l, "in", 1)
	produceSpread(t, l, "in", 1, 0, 100)
	ms := &memSink{}
	e := newTestEnv(t, l, ms)
	p := batchPipeline("b", "in", "")
	p.Spec.Sink = resource.Sink{Stdout: &resource.StdoutSink{}}
	if _, err := e.mgr.Put(testCtx(t), p); err != nil {
		t.Fatal(err)
	}
	if _, err := e.mgr.StartRun(testCtx(t), "b", RunRequest{}); err != nil {
		t.Fatal(err)
	}
	waitRun(t, e.mgr, "b", 1, RunSucceeded)
	produceSpread(t, l, "in", 1, 100, 50)

	// Run 2 blocks in the sink and is interrupted by the stop.
	ms.block = make(chan struct{})
	if _, err := e.mgr.StartRun(testCtx(t), "b", RunRequest{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "run 2 in the sink", func() bool { st, _ := e.mgr.Get("b"); return st.Status.RecordsRead >= 150 })
	if err := e.mgr.Close(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if run, _ := e.mgr.GetRun("b", 2); run.State != RunRunning {
		t.Fatalf("got run 2 %+v after the stop, want it still running", run)
	}

	// Run 2 is active from the new manager's start: a run asked for at
	// once is refused rather than recorded over run 2's range.
	ms2 := &memSink{block: make(chan struct{})}
	e2 := newTestEnv(t, l, ms2)
	if _, err := e2.mgr.StartRun(testCtx(t), "b", RunRequest{}); !errors.Is(err, ErrRunConflict) {
		t.Fatalf("StartRun before run 2 completed: got %v, want ErrRunConflict", err)
	}
	close(ms2.block)
	run := waitRun(t, e2.mgr, "b", 2, RunSucceeded)
	if run.Attempt != 2 || run.Ranges[0] != (PartitionRange{From: 100, To: 150}) {
		t.Fatalf("got run 2 %+v, want a second attempt of [100, 150)", run)
	}
	if got, want := ms2.got(), values(50, 100); !slices.Equal(got, want) {
		t.Fatalf("the resumed run wrote %d records, want %d", len(got), len(want))
	}
	runs, err := e2.mgr.Runs("b")
	if err != nil || len(runs) != 2 || runs[0].ID != 2 || runs[1].ID != 1 {
		t.Fatalf("got runs %+v, %v; want 2 then 1", runs, err)
	}
}

// TestBatchPausedRunsOnlyWhenAsked: a paused pipeline's schedule starts
// nothing, but a run asked for runs.
func TestBatchPausedRunsOnlyWhenAsked(t *testing.T) {
	l := testLog(t, t.TempDir())
	createTopic(t, l, "in", 1)
	produceSpread(t, l, "in", 1, 0, 10)
	ms := &memSink{}
	e := newTestEnv(t, l, ms)
	p := batchPipeline("b", "in", "")
	p.Spec.Sink = resource.Sink{Stdout: &resource.StdoutSink{}}
	p.Spec.Schedule = "@every 1s"
	p.Spec.Paused = true
	if _, err := e.mgr.Put(testCtx(t), p); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	if runs, _ := e.mgr.Runs("b"); len(runs) != 0 {
		t.Fatalf("got runs %+v of a paused pipeline, want none", runs)
	}
	st, _ := e.mgr.Get("b")
	if st.Status.State != StatePaused || st.Status.Lag != 10 {
		t.Fatalf("got status %+v, want paused with lag 10", st.Status)
	}
	if _, err := e.mgr.StartRun(testCtx(t), "b", RunRequest{}); err != nil {
		t.Fatal(err)
	}
	waitRun(t, e.mgr, "b", 1, RunSucceeded)
	if err := e.mgr.Resume(testCtx(t), "b"); err != nil {
		t.Fatal(err)
	}
	produceSpread(t, l, "in", 1, 10, 5)
	waitFor(t, "a scheduled run", func() bool { return len(ms.got()) == 15 })
}

// TestBatchCutsIndependentOfFetches: a run's batches end at the same
// records whatever the fetches return.
func TestBatchCutsIndependentOfFetches(t *testing.T) {
	l := testLog(t, t.TempDir())
	createTopic(t, l, "in", 1)
	// Many small log batches, so that fetches end at various records.
	for i := 0; i < 700; i += 7 {
		produce(t, l, "in", 0, values(7, i)...)
	}
	var mu sync.Mutex
	var sizes []int
	sink := &memSink{fail: func(_ int, b *connector.Batch) error {
		mu.Lock()
		sizes = append(sizes, len(b.Records))
		mu.Unlock()
		return nil
	}}
	e := newTestEnv(t, l, sink)
	p := batchPipeline("b", "in", "")
	p.Spec.Sink = resource.Sink{Stdout: &resource.StdoutSink{}}
	p.Spec.Batch = resource.Batch{MaxRecords: 300, MaxBytes: units.ByteSize(2 << 10)}
	if _, err := e.mgr.Put(testCtx(t), p); err != nil {
		t.Fatal(err)
	}
	if _, err := e.mgr.StartRun(testCtx(t), "b", RunRequest{}); err != nil {
		t.Fatal(err)
	}
	waitRun(t, e.mgr, "b", 1, RunSucceeded)
	// {"n":0} to {"n":699} take 7 to 9 bytes: 2KiB is reached within the
	// first 256 records, so every batch but the last is 256 records.
	mu.Lock()
	defer mu.Unlock()
	if want := []int{256, 256, 188}; !slices.Equal(sizes, want) {
		t.Fatalf("got batches of %v records, want %v", sizes, want)
	}
}

// TestBatchLargeCompressedFetches: fetches whose records take more than
// the in-flight budget once decompressed (one zstd batch of highly
// compressible values) do not stall a run whose batch is part full when
// the fetch arrives, within a partition and from one to the next.
func TestBatchLargeCompressedFetches(t *testing.T) {
	l := testLog(t, t.TempDir())
	createTopic(t, l, "in", 2)
	pad := strings.Repeat("x", 2000)
	var codecs record.Codecs
	n := 0
	for p := range int32(2) {
		for range 3 {
			recs := make([]record.Record, 4000)
			for i := range recs {
				recs[i] = record.Record{Value: []byte(`{"n":` + strconv.Itoa(n) + `,"pad":"` + pad + `"}`), Timestamp: time.Now().UnixMilli()}
				n++
			}
			b, err := codecs.AppendBatch(nil, recs, record.BatchOptions{Compression: record.CompressionZstd})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := l.Produce(context.Background(), "in", p, b); err != nil {
				t.Fatal(err)
			}
		}
	}
	mgr := startManager(t, Options{Log: l, Registerer: prometheus.NewRegistry()})
	lake := t.TempDir()
	p := batchPipeline("lake", "in", lake)
	p.Spec.Batch.MaxRecords = 3000 // a batch ends inside each fetch
	if _, err := mgr.Put(testCtx(t), p); err != nil {
		t.Fatal(err)
	}
	if _, err := mgr.StartRun(testCtx(t), "lake", RunRequest{}); err != nil {
		t.Fatal(err)
	}
	waitRun(t, mgr, "lake", 1, RunSucceeded)
	checkOnce(t, readLake(t, lake), n)
}

// TestLastRunKeepsPartitionsNotRead: lastRun is kept partition by
// partition; a run that read some partitions moves only theirs, a backfill
// none, and a run of another topic starts afresh.
func TestLastRunKeepsPartitionsNotRead(t *testing.T) {
	ranges := func(ends map[int32]int64) []PartitionRange {
		var out []PartitionRange
		for p, to := range ends {
			out = append(out, PartitionRange{Partition: p, To: to})
		}
		return out
	}
	for _, tt := range []struct {
		name string
		runs []Run
		want map[int32]int64
	}{
		{"one run", []Run{
			{ID: 1, Topic: "a", Kind: RunScheduled, State: RunSucceeded, Ranges: ranges(map[int32]int64{0: 10, 1: 20})},
		}, map[int32]int64{0: 10, 1: 20}},
		{"a run of one partition", []Run{
			{ID: 1, Topic: "a", Kind: RunScheduled, State: RunSucceeded, Ranges: ranges(map[int32]int64{0: 10, 1: 20})},
			{ID: 2, Topic: "a", Kind: RunManual, State: RunSucceeded, Ranges: ranges(map[int32]int64{1: 25})},
		}, map[int32]int64{0: 10, 1: 25}},
		{"a backfill and a failed run", []Run{
			{ID: 1, Topic: "a", Kind: RunScheduled, State: RunSucceeded, Ranges: ranges(map[int32]int64{0: 10, 1: 20})},
			{ID: 2, Topic: "a", Kind: RunBackfill, State: RunSucceeded, Ranges: ranges(map[int32]int64{0: 5})},
			{ID: 3, Topic: "a", Kind: RunScheduled, State: RunFailed, Ranges: ranges(map[int32]int64{0: 30})},
		}, map[int32]int64{0: 10, 1: 20}},
		{"another topic", []Run{
			{ID: 1, Topic: "a", Kind: RunScheduled, State: RunSucceeded, Ranges: ranges(map[int32]int64{0: 10, 1: 20})},
			{ID: 2, Topic: "b", Kind: RunScheduled, State: RunSucceeded, Ranges: ranges(map[int32]int64{1: 3})},
		}, map[int32]int64{1: 3}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newRunStore(nil)
			for _, r := range tt.runs {
				r.Pipeline = "p"
				s.applyLocked(r)
			}
			topic := tt.runs[len(tt.runs)-1].Topic
			if got, _, _ := s.lastRun("p", topic); !maps.Equal(got, tt.want) {
				t.Errorf("lastRun: got %v, want %v", got, tt.want)
			}
		})
	}
}

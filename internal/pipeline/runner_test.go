package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/connector/postgres"
	"github.com/sluice-dev/sluice/internal/logstore"
	"github.com/sluice-dev/sluice/internal/meta"
	"github.com/sluice-dev/sluice/internal/process"
	"github.com/sluice-dev/sluice/internal/record"
	"github.com/sluice-dev/sluice/internal/resource"
	"github.com/sluice-dev/sluice/internal/stream"
	"github.com/sluice-dev/sluice/internal/stream/embedded"
	"github.com/sluice-dev/sluice/internal/units"
)

// testLog opens an embedded log in a temporary directory.
func testLog(t testing.TB, dir string) stream.Log {
	t.Helper()
	m, err := meta.Open(filepath.Join(dir, "meta.db"), meta.Options{})
	if err != nil {
		t.Fatal(err)
	}
	l, err := logstore.Open(context.Background(), logstore.Options{Dir: filepath.Join(dir, "log"), Catalog: m,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = l.Close()
		_ = m.Close()
	})
	return embedded.New(l, m)
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// produce appends JSON values to partition p of topic, one batch.
func produce(t testing.TB, l stream.Log, topic string, p int32, values ...string) {
	t.Helper()
	var codecs record.Codecs
	recs := make([]record.Record, len(values))
	for i, v := range values {
		recs[i] = record.Record{Value: []byte(v), Timestamp: time.Now().UnixMilli()}
	}
	b, err := codecs.AppendBatch(nil, recs, record.BatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Produce(context.Background(), topic, p, b); err != nil {
		t.Fatal(err)
	}
}

// readAll returns the values and headers of every record of a topic.
func readAll(t *testing.T, l stream.Log, topic string) []record.Record {
	t.Helper()
	info, err := l.DescribeTopic(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	var codecs record.Codecs
	var out []record.Record
	for _, p := range info.Partitions {
		for off := p.LogStartOffset; off < p.HighWatermark; {
			fr, err := l.Fetch(context.Background(), stream.FetchRequest{Topic: topic, Partition: p.Partition, Offset: off, MaxBytes: 1 << 20})
			if err != nil {
				t.Fatal(err)
			}
			for b := fr.Batches; len(b) > 0; {
				h, err := record.ParseHeader(b)
				if err != nil {
					t.Fatal(err)
				}
				out, _, err = codecs.AppendRecords(out, b[:h.Size()], record.DecodeLimits{})
				if err != nil {
					t.Fatal(err)
				}
				b = b[h.Size():]
			}
			off = fr.NextOffset
		}
	}
	return out
}

// memSink is a sink that keeps what it is given, for testing the runtime's
// side of the contract; fail, when set, decides the error of each Write.
type memSink struct {
	mu      sync.Mutex
	values  []string
	writes  int
	fail    func(n int, b *connector.Batch) error
	reject  func(r *connector.Record) error
	block   chan struct{}
	cp      connector.Checkpoint
	tx      bool
	stage   bool
	staged  []string
	flushes int
}

func (s *memSink) Write(ctx context.Context, b *connector.Batch) error {
	if s.block != nil {
		select {
		case <-s.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	if s.fail != nil {
		if err := s.fail(s.writes, b); err != nil {
			return err
		}
	}
	var rej []connector.Rejection
	var vals []string
	for _, r := range b.Records {
		if s.reject != nil {
			if err := s.reject(r); err != nil {
				rej = append(rej, connector.Rejection{Record: r, Err: err})
				continue
			}
		}
		v, err := r.Value()
		if err != nil {
			return err
		}
		vals = append(vals, string(v))
	}
	if len(rej) > 0 {
		if err := b.Reject(ctx, rej); err != nil {
			return err
		}
	}
	if s.stage {
		s.staged = append(s.staged, vals...)
	} else {
		s.values = append(s.values, vals...)
	}
	if s.tx {
		s.cp = slices.Clone(b.Checkpoint)
	}
	return nil
}

func (s *memSink) Close(context.Context) error { return nil }

func (s *memSink) got() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.values)
}

type txSink struct{ *memSink }

func (s txSink) LoadCheckpoint(context.Context) (connector.Checkpoint, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.cp), nil
}

type stagingSink struct{ *memSink }

func (s stagingSink) Flush(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.values = append(s.values, s.staged...)
	s.staged = nil
	s.flushes++
	return nil
}

func (s stagingSink) FlushDue() (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.staged) == 0 {
		return time.Time{}, false
	}
	return time.Now().Add(50 * time.Millisecond), true
}

func testPipeline(name, topic string) *resource.Pipeline {
	return &resource.Pipeline{
		APIVersion: resource.APIVersion, Kind: resource.KindPipeline,
		Metadata: resource.Metadata{Name: name},
		Spec: resource.PipelineSpec{
			Source: resource.Source{Topic: topic, StartFrom: "earliest"},
			Sink:   resource.Sink{Stdout: &resource.StdoutSink{}},
			Batch:  resource.Batch{MaxRecords: 100, MaxWait: units.Duration(20 * time.Millisecond)},
			Retry:  resource.Retry{InitialBackoff: units.Duration(10 * time.Millisecond), MaxBackoff: units.Duration(40 * time.Millisecond), MaxAttempts: 4},
		},
	}
}

type testEnv struct {
	log stream.Log
	reg *prometheus.Registry
	mgr *Manager
}

func newTestEnv(t *testing.T, l stream.Log, sink connector.Sink) *testEnv {
	t.Helper()
	reg := prometheus.NewRegistry()
	mgr := startManager(t, Options{Log: l, Registerer: reg,
		OpenSink: func(context.Context, *resource.Pipeline, *process.Chain) (connector.Sink, error) { return sink, nil }})
	return &testEnv{log: l, reg: reg, mgr: mgr}
}

// startManager starts a manager that the test's cleanup closes.
func startManager(t *testing.T, opts Options) *Manager {
	t.Helper()
	mgr, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := mgr.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer ccancel()
		if err := mgr.Close(cctx); err != nil {
			t.Error(err)
		}
		cancel()
	})
	return mgr
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	waitWithin(t, 20*time.Second, what, cond)
}

func waitWithin(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func values(n int, from int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = `{"n":` + strconv.Itoa(from+i) + `}`
	}
	return out
}

func createTopic(t *testing.T, l stream.Log, name string, partitions int32) {
	t.Helper()
	if _, err := l.CreateTopic(context.Background(), name, partitions, nil); err != nil {
		t.Fatal(err)
	}
}

func committed(t *testing.T, l stream.Log, group string) map[int32]int64 {
	t.Helper()
	offs, err := l.FetchOffsets(context.Background(), group)
	if err != nil {
		t.Fatal(err)
	}
	m := map[int32]int64{}
	for _, o := range offs {
		m[o.Partition] = o.Offset
	}
	return m
}

func TestDeliverAndCommit(t *testing.T) {
	l := testLog(t, t.TempDir())
	createTopic(t, l, "in", 2)
	produce(t, l, "in", 0, values(150, 0)...)
	produce(t, l, "in", 1, values(50, 150)...)
	sink := &memSink{}
	e := newTestEnv(t, l, sink)
	if _, err := e.mgr.Put(testCtx(t), testPipeline("p1", "in")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "200 records", func() bool { return len(sink.got()) == 200 })
	waitFor(t, "commits", func() bool {
		c := committed(t, l, "p1")
		return c[0] == 150 && c[1] == 50
	})
	got := sink.got()
	slices.Sort(got)
	want := values(200, 0)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("got %d records %v..., want %d", len(got), got[:3], len(want))
	}
	st, err := e.mgr.Get("p1")
	if err != nil {
		t.Fatal(err)
	}
	if st.Status.State != StateRunning || st.Status.Lag != 0 || st.Status.RecordsWritten != 200 {
		t.Fatalf("got status %+v, want running, lag 0, 200 written", st.Status)
	}
	if v := testutil.ToFloat64(e.mgr.env.metrics.records.WithLabelValues("p1", "sink", outcomeWritten)); v != 200 {
		t.Fatalf("got %v records written in metrics, want 200", v)
	}

	// New records arrive while it runs.
	produce(t, l, "in", 1, values(10, 200)...)
	waitFor(t, "210 records", func() bool { return len(sink.got()) == 210 })
}

func TestRestartResumesFromCommit(t *testing.T) {
	dir := t.TempDir()
	l := testLog(t, dir)
	createTopic(t, l, "in", 1)
	produce(t, l, "in", 0, values(100, 0)...)
	sink := &memSink{}
	e := newTestEnv(t, l, sink)
	if _, err := e.mgr.Put(testCtx(t), testPipeline("p1", "in")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "commit", func() bool { return committed(t, l, "p1")[0] == 100 })
	if err := e.mgr.Close(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	produce(t, l, "in", 0, values(20, 100)...)

	// A new manager finds the stored spec and goes on from the commit.
	sink2 := &memSink{}
	newTestEnv(t, l, sink2)
	waitFor(t, "20 new records", func() bool { return len(sink2.got()) == 20 })
	if got, want := sink2.got(), values(20, 100); !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestRetryThenRecover(t *testing.T) {
	l := testLog(t, t.TempDir())
	createTopic(t, l, "in", 1)
	produce(t, l, "in", 0, values(10, 0)...)
	sink := &memSink{fail: func(n int, _ *connector.Batch) error {
		if n <= 2 {
			return errors.New("connection refused")
		}
		return nil
	}}
	e := newTestEnv(t, l, sink)
	if _, err := e.mgr.Put(testCtx(t), testPipeline("p1", "in")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "10 records", func() bool { return len(sink.got()) == 10 })
	if got, want := sink.got(), values(10, 0); !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	waitFor(t, "running", func() bool {
		p, _ := e.mgr.Get("p1")
		return p.Status.State == StateRunning && p.Status.Error == ""
	})
}

func TestRetryBudgetSpentFails(t *testing.T) {
	l := testLog(t, t.TempDir())
	createTopic(t, l, "in", 1)
	produce(t, l, "in", 0, values(10, 0)...)
	var broken sync.Mutex
	down := true
	sink := &memSink{fail: func(n int, _ *connector.Batch) error {
		broken.Lock()
		defer broken.Unlock()
		if down {
			return errors.New("connection refused")
		}
		return nil
	}}
	e := newTestEnv(t, l, sink)
	if _, err := e.mgr.Put(testCtx(t), testPipeline("p1", "in")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "failed", func() bool {
		p, _ := e.mgr.Get("p1")
		return p.Status.State == StateFailed
	})
	p, _ := e.mgr.Get("p1")
	if want := "gave up after 4 attempts: sink: connection refused"; p.Status.Error != want {
		t.Fatalf("got error %q, want %q", p.Status.Error, want)
	}
	if v := testutil.ToFloat64(e.mgr.env.metrics.state.WithLabelValues("p1", StateFailed)); v != 1 {
		t.Fatalf("got state gauge %v for failed, want 1", v)
	}
	broken.Lock()
	down = false
	broken.Unlock()
	if err := e.mgr.Resume(testCtx(t), "p1"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "10 records after resume", func() bool { return len(sink.got()) == 10 })
}

func TestPermanentErrorFailsAtOnce(t *testing.T) {
	l := testLog(t, t.TempDir())
	createTopic(t, l, "in", 1)
	produce(t, l, "in", 0, values(1, 0)...)
	sink := &memSink{fail: func(int, *connector.Batch) error {
		return connector.Permanent(errors.New(`relation "orders" does not exist`))
	}}
	e := newTestEnv(t, l, sink)
	if _, err := e.mgr.Put(testCtx(t), testPipeline("p1", "in")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "failed", func() bool {
		p, _ := e.mgr.Get("p1")
		return p.Status.State == StateFailed
	})
	if sink.writes != 1 {
		t.Fatalf("got %d writes, want 1: a permanent error is not retried", sink.writes)
	}
}

func TestDeadLetter(t *testing.T) {
	l := testLog(t, t.TempDir())
	createTopic(t, l, "in", 1)
	produce(t, l, "in", 0, `{"n":1}`, `not json`, `{"n":3}`, `{"n":4,"bad":true}`)
	sink := &memSink{reject: func(r *connector.Record) error {
		v, _ := r.Value()
		if string(v) == `{"n":4,"bad":true}` {
			return errors.New(`violates check constraint "positive"`)
		}
		return nil
	}}
	e := newTestEnv(t, l, sink)
	p := testPipeline("p1", "in")
	p.Spec.Processors = []process.Config{{Filter: "record.value.n > 0"}}
	p.Spec.DeadLetter = &resource.DeadLetter{Topic: "in.dlq"}
	if _, err := e.mgr.Put(testCtx(t), p); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "commit", func() bool { return committed(t, l, "p1")[0] == 4 })
	if got, want := sink.got(), []string{`{"n":1}`, `{"n":3}`}; !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	dl := readAll(t, l, "in.dlq")
	if len(dl) != 2 {
		t.Fatalf("got %d dead letters, want 2", len(dl))
	}
	hdr := func(r record.Record, k string) string {
		for _, h := range r.Headers {
			if h.Key == k {
				return string(h.Value)
			}
		}
		return ""
	}
	vals := map[string]record.Record{}
	for _, r := range dl {
		vals[string(r.Value)] = r
	}
	bad, ok := vals["not json"]
	if !ok {
		t.Fatalf("dead letters %v lack the record that is not JSON", dl)
	}
	if got := hdr(bad, HeaderStage); got != "processors[0].filter" {
		t.Errorf("got stage %q, want processors[0].filter", got)
	}
	if got := hdr(bad, HeaderSourceOffset); got != "1" {
		t.Errorf("got source offset %q, want 1", got)
	}
	if got := hdr(bad, HeaderPipeline); got != "p1" {
		t.Errorf("got pipeline %q, want p1", got)
	}
	rej := vals[`{"n":4,"bad":true}`]
	if got := hdr(rej, HeaderStage); got != "sink" {
		t.Errorf("got stage %q, want sink", got)
	}
	if got := hdr(rej, HeaderError); got != `violates check constraint "positive"` {
		t.Errorf("got error %q", got)
	}
}

func TestNoDeadLetterFails(t *testing.T) {
	l := testLog(t, t.TempDir())
	createTopic(t, l, "in", 1)
	produce(t, l, "in", 0, `{"n":1}`, `not json`)
	sink := &memSink{}
	e := newTestEnv(t, l, sink)
	p := testPipeline("p1", "in")
	p.Spec.Processors = []process.Config{{Filter: "record.value.n > 0"}}
	if _, err := e.mgr.Put(testCtx(t), p); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "failed", func() bool {
		p, _ := e.mgr.Get("p1")
		return p.Status.State == StateFailed
	})
	if got := committed(t, l, "p1")[0]; got != 0 {
		t.Fatalf("got commit %d, want none: the batch with the bad record is not committed", got)
	}
}

func TestExactlyOnceResumesFromSinkCheckpoint(t *testing.T) {
	l := testLog(t, t.TempDir())
	createTopic(t, l, "in", 1)
	produce(t, l, "in", 0, values(30, 0)...)
	ms := &memSink{tx: true}
	// The sink holds a checkpoint at 10 while the group says nothing: the
	// sink's wins.
	ms.cp = connector.Checkpoint{{Topic: "in", Partition: 0, Offset: 10}}
	e := newTestEnv(t, l, txSink{ms})
	p := testPipeline("p1", "in")
	p.Spec.Delivery = resource.ExactlyOnce
	// A spec that may be exactly-once; the test's OpenSink ignores it.
	p.Spec.Sink = resource.Sink{Postgres: &postgres.Config{DSN: "postgres://localhost/x", Table: "t"}}
	if _, err := e.mgr.Put(testCtx(t), p); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "20 records", func() bool { return len(ms.got()) == 20 })
	if got, want := ms.got(), values(20, 10); !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	waitFor(t, "checkpoint", func() bool {
		ms.mu.Lock()
		defer ms.mu.Unlock()
		return len(ms.cp) == 1 && ms.cp[0].Offset == 30
	})
}

func TestStagingSinkCommitsAfterFlush(t *testing.T) {
	l := testLog(t, t.TempDir())
	createTopic(t, l, "in", 1)
	produce(t, l, "in", 0, values(30, 0)...)
	ms := &memSink{stage: true}
	e := newTestEnv(t, l, stagingSink{ms})
	if _, err := e.mgr.Put(testCtx(t), testPipeline("p1", "in")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "flushed", func() bool { return len(ms.got()) == 30 })
	waitFor(t, "commit", func() bool { return committed(t, l, "p1")[0] == 30 })
	_ = e
}

func TestBackpressureBoundsMemory(t *testing.T) {
	l := testLog(t, t.TempDir())
	createTopic(t, l, "in", 4)
	// 64 MiB in the source, 4 times the in-flight budget.
	val := `{"pad":"` + string(make([]byte, 0)) + fmt.Sprintf("%01000d", 0) + `"}`
	for p := int32(0); p < 4; p++ {
		for i := 0; i < 16; i++ {
			produce(t, l, "in", p, slices.Repeat([]string{val}, 1000)...)
		}
	}
	block := make(chan struct{})
	ms := &memSink{block: block}
	e := newTestEnv(t, l, ms)
	p := testPipeline("p1", "in")
	p.Spec.Batch = resource.Batch{MaxRecords: 1000, MaxBytes: units.ByteSize(1 << 20), MaxWait: units.Duration(time.Millisecond)}
	if _, err := e.mgr.Put(testCtx(t), p); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	st, _ := e.mgr.Get("p1")
	if st.Status.InFlightBytes > minInFlight+4*fetchBytes {
		t.Fatalf("got %d bytes in flight while the sink is blocked, want at most %d", st.Status.InFlightBytes, minInFlight+4*fetchBytes)
	}
	if st.Status.RecordsRead >= 64000 {
		t.Fatalf("read %d records while the sink is blocked: the source does not wait for the sink", st.Status.RecordsRead)
	}
	close(block)
	waitFor(t, "all records", func() bool { return len(ms.got()) == 64000 })
}

func TestSpecChangeRestartsPipeline(t *testing.T) {
	l := testLog(t, t.TempDir())
	createTopic(t, l, "in", 1)
	produce(t, l, "in", 0, values(10, 0)...)
	ms := &memSink{}
	e := newTestEnv(t, l, ms)
	p := testPipeline("p1", "in")
	if changed, err := e.mgr.Put(testCtx(t), p); err != nil || !changed {
		t.Fatalf("got changed %v, %v; want true", changed, err)
	}
	waitFor(t, "commit", func() bool { return committed(t, l, "p1")[0] == 10 })
	if changed, err := e.mgr.Put(testCtx(t), p); err != nil || changed {
		t.Fatalf("got changed %v, %v for the same spec; want false", changed, err)
	}
	p2 := *p
	p2.Spec.Processors = []process.Config{{Filter: "record.value.n % 2 == 0"}}
	if _, err := e.mgr.Put(testCtx(t), &p2); err != nil {
		t.Fatal(err)
	}
	produce(t, l, "in", 0, values(10, 10)...)
	waitFor(t, "commit", func() bool { return committed(t, l, "p1")[0] == 20 })
	got := ms.got()
	if want := append(values(10, 0), `{"n":10}`, `{"n":12}`, `{"n":14}`, `{"n":16}`, `{"n":18}`); !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestPauseResume(t *testing.T) {
	l := testLog(t, t.TempDir())
	createTopic(t, l, "in", 1)
	ms := &memSink{}
	e := newTestEnv(t, l, ms)
	if _, err := e.mgr.Put(testCtx(t), testPipeline("p1", "in")); err != nil {
		t.Fatal(err)
	}
	if err := e.mgr.Pause(testCtx(t), "p1"); err != nil {
		t.Fatal(err)
	}
	produce(t, l, "in", 0, values(5, 0)...)
	time.Sleep(100 * time.Millisecond)
	if p, _ := e.mgr.Get("p1"); p.Status.State != StatePaused || len(ms.got()) != 0 {
		t.Fatalf("got state %s and %d records while paused", p.Status.State, len(ms.got()))
	}
	if err := e.mgr.Resume(testCtx(t), "p1"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "records after resume", func() bool { return len(ms.got()) == 5 })
	if err := e.mgr.Delete(testCtx(t), "p1"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.mgr.Get("p1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("got %v after delete, want ErrNotFound", err)
	}
}

// TestConcurrentChangesLeaveNoStrayRunner makes changes of one pipeline at
// the same moment, as two clients of the API can: each pair must leave the
// pipeline with one runner at most, the one the manager knows, so that
// deleting it stops every delivery. A runner left out of the manager's map
// reads and delivers for ever, and nothing can stop it.
func TestConcurrentChangesLeaveNoStrayRunner(t *testing.T) {
	spec := func(i int) *resource.Pipeline {
		p := testPipeline("p1", "in")
		p.Spec.Processors = []process.Config{{Filter: fmt.Sprintf("record.value.n > %d", -1-i)}}
		return p
	}
	tests := []struct {
		name string
		ops  func(mgr *Manager, ctx context.Context, i int) []func() error
	}{
		{"two puts", func(mgr *Manager, ctx context.Context, i int) []func() error {
			return []func() error{
				func() error { _, err := mgr.Put(ctx, spec(2*i+1)); return err },
				func() error { _, err := mgr.Put(ctx, spec(2*i+2)); return err },
			}
		}},
		{"put and delete", func(mgr *Manager, ctx context.Context, i int) []func() error {
			return []func() error{
				func() error { _, err := mgr.Put(ctx, spec(2*i+1)); return err },
				func() error {
					if err := mgr.Delete(ctx, "p1"); err != nil && !errors.Is(err, ErrNotFound) {
						return err
					}
					return nil
				},
			}
		}},
		{"pause and put", func(mgr *Manager, ctx context.Context, i int) []func() error {
			return []func() error{
				func() error { return mgr.Pause(ctx, "p1") },
				func() error { _, err := mgr.Put(ctx, spec(2*i+1)); return err },
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := testLog(t, t.TempDir())
			createTopic(t, l, "in", 1)
			ms := &memSink{}
			e := newTestEnv(t, l, ms)
			ctx := testCtx(t)
			for i := range 10 {
				if _, err := e.mgr.Put(ctx, spec(-1)); err != nil {
					t.Fatal(err)
				}
				var wg sync.WaitGroup
				for _, op := range tt.ops(e.mgr, ctx, i) {
					wg.Go(func() {
						if err := op(); err != nil {
							t.Error(err)
						}
					})
				}
				wg.Wait()
			}
			if err := e.mgr.Delete(ctx, "p1"); err != nil && !errors.Is(err, ErrNotFound) {
				t.Fatal(err)
			}
			produce(t, l, "in", 0, values(5, 0)...)
			time.Sleep(300 * time.Millisecond)
			if got := ms.got(); len(got) > 0 {
				t.Fatalf("a deleted pipeline delivered %v: a runner outlived it", got)
			}
		})
	}
}

// gatedCommitLog is a log whose group commits wait for gate, or fail when
// their context ends first, as a commit to a Kafka cluster does.
type gatedCommitLog struct {
	stream.Log
	gate    chan struct{}
	started chan struct{} // closed by the first commit
	once    sync.Once
}

func (l *gatedCommitLog) CommitOffsets(ctx context.Context, group string, offsets []stream.GroupOffset) error {
	l.once.Do(func() { close(l.started) })
	select {
	case <-l.gate:
	case <-ctx.Done():
		return ctx.Err()
	}
	return l.Log.CommitOffsets(ctx, group, offsets)
}

// TestStopCompletesCommitInFlight stops a pipeline while the commit of a
// batch the sink acknowledged is in flight: the stop delivers and commits
// what the pipeline holds, so that commit must complete, or the batch is
// delivered again by the next start.
func TestStopCompletesCommitInFlight(t *testing.T) {
	base := testLog(t, t.TempDir())
	l := &gatedCommitLog{Log: base, gate: make(chan struct{}), started: make(chan struct{})}
	createTopic(t, l, "in", 1)
	produce(t, l, "in", 0, values(10, 0)...)
	ms := &memSink{}
	e := newTestEnv(t, l, ms)
	if _, err := e.mgr.Put(testCtx(t), testPipeline("p1", "in")); err != nil {
		t.Fatal(err)
	}
	<-l.started
	closed := make(chan error, 1)
	go func() { closed <- e.mgr.Close(testCtx(t)) }()
	// The stop has begun, and the commit waits for the log.
	time.Sleep(100 * time.Millisecond)
	close(l.gate)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if got := committed(t, base, "p1")[0]; got != 10 {
		t.Fatalf("got commit %d after a graceful stop, want 10: the next start delivers the batch again", got)
	}
}

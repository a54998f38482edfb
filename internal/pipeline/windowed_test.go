package pipeline

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/sluice-dev/sluice/internal/process"
	"github.com/sluice-dev/sluice/internal/record"
	"github.com/sluice-dev/sluice/internal/resource"
	"github.com/sluice-dev/sluice/internal/stream"
	"github.com/sluice-dev/sluice/internal/stream/kafka"
	"github.com/sluice-dev/sluice/internal/units"
)

// windowPipeline counts and sums events per region in tumbling windows of
// a second, by the event time in the value.
func windowPipeline(name, topic string, mod func(*process.WindowConfig)) *resource.Pipeline {
	p := testPipeline(name, topic)
	w := &process.WindowConfig{
		Type: "tumbling", Size: units.Duration(time.Second), Time: "record.value.ts",
		AllowedLateness: units.Duration(500 * time.Millisecond), GroupBy: "record.value.region",
		Aggregates:      map[string]string{"orders": "count()", "revenue": "sum(record.value.amount)"},
		IdleTimeout:     units.Duration(300 * time.Millisecond),
		CheckpointEvery: units.Duration(50 * time.Millisecond),
	}
	if mod != nil {
		mod(w)
	}
	p.Spec.Processors = []process.Config{{Filter: "record.value.amount >= 0.0"}, {Window: w}}
	return p
}

type windowEvent struct {
	Region string  `json:"region"`
	Amount float64 `json:"amount"`
	TS     int64   `json:"ts"`
}

// windowResult is an output record's value.
type windowResult struct {
	Start   string  `json:"window_start"`
	End     string  `json:"window_end"`
	Key     string  `json:"key"`
	Orders  int64   `json:"orders"`
	Revenue float64 `json:"revenue"`
}

// genWindowEvents makes n events from t0 on, in time order within each
// partition up to 300 ms of disorder, with amounts in whole cents.
func genWindowEvents(rng *rand.Rand, n int, t0 int64) []windowEvent {
	out := make([]windowEvent, n)
	for i := range out {
		out[i] = windowEvent{
			Region: fmt.Sprintf("r%d", rng.IntN(7)),
			Amount: float64(rng.IntN(10_000)) / 100,
			TS:     t0 + int64(i)*3 - rng.Int64N(300),
		}
	}
	return out
}

func encodeEvents(t *testing.T, evs []windowEvent) []string {
	t.Helper()
	out := make([]string, len(evs))
	for i, e := range evs {
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = string(b)
	}
	return out
}

// referenceWindows computes the expected results: key "region|start".
func referenceWindows(evs []windowEvent) map[string]windowResult {
	out := map[string]windowResult{}
	cents := map[string]int64{}
	for _, e := range evs {
		start := e.TS - e.TS%1000
		id := e.Region + "|" + time.UnixMilli(start).UTC().Format("2006-01-02T15:04:05.000Z")
		r := out[id]
		r.Key, r.Orders = e.Region, r.Orders+1
		r.Start = time.UnixMilli(start).UTC().Format("2006-01-02T15:04:05.000Z")
		r.End = time.UnixMilli(start + 1000).UTC().Format("2006-01-02T15:04:05.000Z")
		cents[id] += int64(e.Amount*100 + 0.5)
		r.Revenue = float64(cents[id]) / 100
		out[id] = r
	}
	return out
}

// upserted reads the sink's values as an upsert table would hold them:
// the last value of each key.
func upserted(t *testing.T, vals []string) map[string]windowResult {
	t.Helper()
	out := map[string]windowResult{}
	for _, v := range vals {
		var r windowResult
		if err := json.Unmarshal([]byte(v), &r); err != nil {
			t.Fatalf("output %s: %v", v, err)
		}
		out[r.Key+"|"+r.Start] = r
	}
	return out
}

func compareWindows(t *testing.T, got, want map[string]windowResult) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%d windows, want %d", len(got), len(want))
	}
	for id, w := range want {
		if g, ok := got[id]; !ok {
			t.Errorf("window %s missing", id)
		} else if g != w {
			t.Errorf("window %s = %+v, want %+v", id, g, w)
		}
	}
}

// The stream closes its windows once both partitions have passed them,
// and each window's result is exact.
func TestWindowedPipeline(t *testing.T) {
	l := testLog(t, t.TempDir())
	createTopic(t, l, "ev", 2)
	rng := rand.New(rand.NewPCG(1, 1))
	t0 := int64(1_700_000_000_000)
	evs := genWindowEvents(rng, 4000, t0)
	produce(t, l, "ev", 0, encodeEvents(t, evs[:2000])...)
	produce(t, l, "ev", 1, encodeEvents(t, evs[2000:])...)
	// A last event far ahead on each partition closes every window.
	last := []windowEvent{{Region: "zz", TS: t0 + 100_000}}
	produce(t, l, "ev", 0, encodeEvents(t, last)...)
	produce(t, l, "ev", 1, encodeEvents(t, last)...)

	sink := &memSink{}
	e := newTestEnv(t, l, sink)
	if _, err := e.mgr.Put(testCtx(t), windowPipeline("w1", "ev", nil)); err != nil {
		t.Fatal(err)
	}
	want := referenceWindows(evs)
	waitFor(t, "every window", func() bool { return len(upserted(t, sink.got())) >= len(want) })
	compareWindows(t, upserted(t, sink.got()), want)
	// Closed once each: on close, nothing is emitted twice.
	if n := len(sink.got()); n != len(want) {
		t.Errorf("%d outputs for %d windows", n, len(want))
	}
	waitFor(t, "a checkpoint of everything", func() bool {
		c := committed(t, l, "w1")
		return c[0] == 2001 && c[1] == 2001
	})
	p, err := e.mgr.Get("w1")
	if err != nil {
		t.Fatal(err)
	}
	if ws := p.Status.Window; ws == nil || ws.OpenWindows != 1 || ws.Watermark.IsZero() {
		t.Errorf("window status %+v, want the one window of the last event open", ws)
	}
}

// A pipeline stopped midway and started again goes on from its window
// checkpoint: no event is counted twice or lost.
func TestWindowedRestartExact(t *testing.T) {
	forEachLog(t, testWindowedRestartExact)
}

func testWindowedRestartExact(t *testing.T, l stream.Log) {
	createTopic(t, l, "ev", 1)
	rng := rand.New(rand.NewPCG(2, 2))
	t0 := int64(1_700_000_000_000)
	evs := genWindowEvents(rng, 6000, t0)
	sink := &memSink{}
	e := newTestEnv(t, l, sink)
	if _, err := e.mgr.Put(testCtx(t), windowPipeline("w2", "ev", nil)); err != nil {
		t.Fatal(err)
	}
	produce(t, l, "ev", 0, encodeEvents(t, evs[:3000])...)
	waitFor(t, "a checkpoint", func() bool { return committed(t, l, "w2")[0] == 3000 })
	if err := e.mgr.Close(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	produce(t, l, "ev", 0, encodeEvents(t, evs[3000:])...)
	produce(t, l, "ev", 0, encodeEvents(t, []windowEvent{{Region: "zz", TS: t0 + 100_000}})...)

	sink2 := &memSink{}
	newTestEnv(t, l, sink2)
	want := referenceWindows(evs)
	waitFor(t, "every window", func() bool {
		return len(upserted(t, append(sink.got(), sink2.got()...))) >= len(want)
	})
	compareWindows(t, upserted(t, append(sink.got(), sink2.got()...)), want)
}

// Late events go to the dead-letter topic, or are dropped and counted.
func TestWindowLateEvents(t *testing.T) {
	for _, late := range []string{process.LateDeadLetter, process.LateDrop} {
		t.Run(late, func(t *testing.T) {
			l := testLog(t, t.TempDir())
			createTopic(t, l, "ev", 1)
			t0 := int64(1_700_000_000_000)
			evs := []windowEvent{
				{Region: "a", Amount: 1, TS: t0},
				{Region: "a", Amount: 2, TS: t0 + 5000},
				{Region: "a", Amount: 4, TS: t0 + 100}, // late: its window ended at t0+1000 <= t0+4500
				{Region: "a", Amount: 8, TS: t0 + 4700},
				{Region: "a", Amount: 0, TS: t0 + 20_000},
			}
			produce(t, l, "ev", 0, encodeEvents(t, evs)...)
			sink := &memSink{}
			e := newTestEnv(t, l, sink)
			p := windowPipeline("w3", "ev", func(w *process.WindowConfig) { w.Late = late })
			p.Spec.DeadLetter = &resource.DeadLetter{Topic: "ev.dlq"}
			if _, err := e.mgr.Put(testCtx(t), p); err != nil {
				t.Fatal(err)
			}
			want := referenceWindows([]windowEvent{evs[0], evs[1], evs[3]})
			waitFor(t, "the windows", func() bool { return len(upserted(t, sink.got())) >= len(want) })
			compareWindows(t, upserted(t, sink.got()), want)
			switch late {
			case process.LateDeadLetter:
				var dl []string
				waitFor(t, "the dead letter", func() bool {
					_, err := l.DescribeTopic(testCtx(t), "ev.dlq")
					if err != nil {
						return false
					}
					dl = nil
					for _, r := range readAll(t, l, "ev.dlq") {
						dl = append(dl, string(r.Value))
						for _, h := range r.Headers {
							if h.Key == HeaderStage && string(h.Value) != "processors[1].window" {
								t.Errorf("stage %s", h.Value)
							}
							if h.Key == HeaderError && !strings.Contains(string(h.Value), "late event") {
								t.Errorf("error %s", h.Value)
							}
						}
					}
					return len(dl) == 1
				})
				if !strings.Contains(dl[0], `"amount":4`) {
					t.Errorf("dead letter %s, want the late event", dl[0])
				}
			case process.LateDrop:
				waitFor(t, "the late count", func() bool {
					p, _ := e.mgr.Get("w3")
					return p.Status.Window != nil && p.Status.Window.LateRecords == 1
				})
			}
		})
	}
}

// A state that outgrows its limit fails the pipeline with an error that
// says so.
func TestWindowStateLimit(t *testing.T) {
	l := testLog(t, t.TempDir())
	createTopic(t, l, "ev", 1)
	var evs []windowEvent
	for i := range 5000 {
		evs = append(evs, windowEvent{Region: fmt.Sprintf("region-%d", i), TS: 1_700_000_000_000})
	}
	produce(t, l, "ev", 0, encodeEvents(t, evs)...)
	e := newTestEnv(t, l, &memSink{})
	p := windowPipeline("w4", "ev", func(w *process.WindowConfig) { w.MaxStateBytes = units.ByteSize(64 << 10) })
	if _, err := e.mgr.Put(testCtx(t), p); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "failed", func() bool {
		p, _ := e.mgr.Get("w4")
		return p.Status.State == StateFailed
	})
	p2, _ := e.mgr.Get("w4")
	if !strings.Contains(p2.Status.Error, "window state is full") || !strings.Contains(p2.Status.Error, "maxStateBytes") {
		t.Errorf("error %q, want it to say the state is full and what to change", p2.Status.Error)
	}
}

// Deleting a windowed pipeline deletes its state and offsets: applied
// again, it starts over.
func TestWindowedDeleteDropsState(t *testing.T) {
	l := testLog(t, t.TempDir())
	createTopic(t, l, "ev", 1)
	produce(t, l, "ev", 0, encodeEvents(t, []windowEvent{{Region: "a", Amount: 1, TS: 1_700_000_000_000}})...)
	e := newTestEnv(t, l, &memSink{})
	if _, err := e.mgr.Put(testCtx(t), windowPipeline("w5", "ev", nil)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a checkpoint", func() bool { return committed(t, l, "w5")[0] == 1 })
	if _, err := l.DescribeTopic(testCtx(t), StateTopic("w5")); err != nil {
		t.Fatalf("state topic: %v", err)
	}
	if err := e.mgr.Delete(testCtx(t), "w5"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.DescribeTopic(testCtx(t), StateTopic("w5")); !errors.Is(err, stream.ErrUnknownTopic) {
		t.Errorf("state topic after delete: %v, want ErrUnknownTopic", err)
	}
	if c := committed(t, l, "w5"); len(c) != 0 {
		t.Errorf("offsets after delete: %v", c)
	}
}

// The state store keeps the last committed checkpoint across a save that
// never wrote its commit record.
func TestStateStoreTornSave(t *testing.T) {
	forEachLog(t, testStateStoreTornSave)
}

func testStateStoreTornSave(t *testing.T, l stream.Log) {
	ctx := testCtx(t)
	s := &stateStore{log: l, topic: StateTopic("x"), maxBytes: 64 << 20}
	if st, err := s.load(ctx); err != nil || st != nil {
		t.Fatalf("empty store: %v, %v", st, err)
	}
	big := make([]byte, 3*stateChunkBytes+17)
	for i := range big {
		big[i] = byte(i * 7)
	}
	if err := s.save(ctx, savedState{Positions: map[int32]int64{0: 5, 3: 9}, Snapshot: big}, time.Now()); err != nil {
		t.Fatal(err)
	}
	// A torn save: chunks of the next checkpoint and no commit.
	produceKeyed(t, l, s.topic, stateChunkKey, "garbage")
	st, err := s.load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st == nil || string(st.Snapshot) != string(big) || st.Positions[0] != 5 || st.Positions[3] != 9 {
		t.Fatalf("loaded %v", st)
	}
	if err := s.save(ctx, savedState{Positions: map[int32]int64{0: 6}, Snapshot: []byte("second")}, time.Now()); err != nil {
		t.Fatal(err)
	}
	st, err = s.load(ctx)
	if err != nil || st == nil || string(st.Snapshot) != "second" || st.Positions[0] != 6 {
		t.Fatalf("loaded %v, %v", st, err)
	}
	// The earlier checkpoint is deleted.
	start, err := l.ListOffset(ctx, s.topic, 0, stream.Earliest)
	if err != nil || start < 5 {
		t.Errorf("log start %d (%v): the first checkpoint is still there", start, err)
	}
}

// produceKeyed appends one record with a key.
func produceKeyed(t *testing.T, l stream.Log, topic, key, value string) {
	t.Helper()
	var codecs record.Codecs
	b, err := codecs.AppendBatch(nil, []record.Record{{Key: []byte(key), Value: []byte(value), Timestamp: time.Now().UnixMilli()}}, record.BatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Produce(testCtx(t), topic, 0, b); err != nil {
		t.Fatal(err)
	}
}

// With emit: onUpdate, a window's partial results arrive while it is open,
// and its final result when it closes.
func TestWindowOnUpdate(t *testing.T) {
	l := testLog(t, t.TempDir())
	createTopic(t, l, "ev", 1)
	t0 := int64(1_700_000_000_000)
	sink := &memSink{}
	e := newTestEnv(t, l, sink)
	p := windowPipeline("w6", "ev", func(w *process.WindowConfig) {
		w.Emit, w.Every = process.EmitOnUpdate, units.Duration(20*time.Millisecond)
		w.IdleTimeout = units.Duration(time.Hour)
	})
	if _, err := e.mgr.Put(testCtx(t), p); err != nil {
		t.Fatal(err)
	}
	produce(t, l, "ev", 0, encodeEvents(t, []windowEvent{{Region: "a", Amount: 1, TS: t0}})...)
	waitFor(t, "a partial result", func() bool {
		r, ok := upserted(t, sink.got())["a|2023-11-14T22:13:20.000Z"]
		return ok && r.Orders == 1
	})
	produce(t, l, "ev", 0, encodeEvents(t, []windowEvent{{Region: "a", Amount: 2, TS: t0 + 10}})...)
	waitFor(t, "an updated result", func() bool {
		r := upserted(t, sink.got())["a|2023-11-14T22:13:20.000Z"]
		return r.Orders == 2 && r.Revenue == 3
	})
	n := len(sink.got())
	time.Sleep(100 * time.Millisecond)
	if len(sink.got()) != n {
		t.Errorf("a window that did not change was emitted again")
	}
}

// A batch run's windows count every event of its range, however far out
// of order, and close when the run has read it.
func TestBatchWindow(t *testing.T) {
	l := testLog(t, t.TempDir())
	createTopic(t, l, "ev", 2)
	rng := rand.New(rand.NewPCG(5, 5))
	t0 := int64(1_700_000_000_000)
	evs := genWindowEvents(rng, 3000, t0)
	// Far out of order: a stream would find these late.
	evs = append(evs, windowEvent{Region: "r1", Amount: 0.5, TS: t0 + 10}, windowEvent{Region: "r2", Amount: 1.25, TS: t0 + 20})
	produce(t, l, "ev", 0, encodeEvents(t, evs[:1500])...)
	produce(t, l, "ev", 1, encodeEvents(t, evs[1500:])...)
	sink := &memSink{}
	e := newTestEnv(t, l, sink)
	p := windowPipeline("bw", "ev", func(w *process.WindowConfig) {
		w.AllowedLateness, w.IdleTimeout, w.CheckpointEvery = 0, 0, 0
	})
	p.Spec.Mode = resource.ModeBatch
	p.Spec.Source.StartFrom = ""
	p.Spec.Batch = resource.Batch{MaxRecords: 100}
	if err := resource.Validate(p); err != nil {
		t.Fatal(err)
	}
	if _, err := e.mgr.Put(testCtx(t), p); err != nil {
		t.Fatal(err)
	}
	run, err := e.mgr.StartRun(testCtx(t), "bw", RunRequest{})
	if err != nil {
		t.Fatal(err)
	}
	waitRun(t, e.mgr, "bw", run.ID, RunSucceeded)
	want := referenceWindows(evs)
	compareWindows(t, upserted(t, sink.got()), want)
	if n := len(sink.got()); n != len(want) {
		t.Errorf("%d outputs for %d windows", n, len(want))
	}
	if _, err := l.DescribeTopic(testCtx(t), StateTopic("bw")); !errors.Is(err, stream.ErrUnknownTopic) {
		t.Errorf("a batch pipeline has a state topic: %v", err)
	}
}

// forEachLog runs a test on the embedded log and, through stream/kafka,
// on a kfake cluster: the window state lives in the log, so it works the
// same in cluster mode.
func forEachLog(t *testing.T, test func(t *testing.T, l stream.Log)) {
	t.Run("embedded", func(t *testing.T) { test(t, testLog(t, t.TempDir())) })
	t.Run("kafka", func(t *testing.T) {
		c, err := kfake.NewCluster(kfake.NumBrokers(1))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		l, err := kafka.New(testCtx(t), kafka.Options{Brokers: c.ListenAddrs()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		test(t, l)
	})
}

// A spec change that keeps what the state means (the lateness) carries the
// windows over; one that changes it (the size) fails the pipeline, saying
// how to start over.
func TestWindowSpecChange(t *testing.T) {
	l := testLog(t, t.TempDir())
	createTopic(t, l, "ev", 1)
	t0 := int64(1_700_000_000_000)
	e := newTestEnv(t, l, &memSink{})
	if _, err := e.mgr.Put(testCtx(t), windowPipeline("w7", "ev", nil)); err != nil {
		t.Fatal(err)
	}
	produce(t, l, "ev", 0, encodeEvents(t, []windowEvent{{Region: "a", Amount: 1, TS: t0}})...)
	waitFor(t, "a checkpoint", func() bool { return committed(t, l, "w7")[0] == 1 })

	later := windowPipeline("w7", "ev", func(w *process.WindowConfig) { w.AllowedLateness = units.Duration(time.Second) })
	if _, err := e.mgr.Put(testCtx(t), later); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the window carried over", func() bool {
		p, _ := e.mgr.Get("w7")
		return p.Status.State == StateRunning && p.Status.Window != nil && p.Status.Window.OpenWindows == 1
	})

	resized := windowPipeline("w7", "ev", func(w *process.WindowConfig) { w.Size = units.Duration(time.Minute) })
	if _, err := e.mgr.Put(testCtx(t), resized); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "failed", func() bool {
		p, _ := e.mgr.Get("w7")
		return p.Status.State == StateFailed
	})
	p, _ := e.mgr.Get("w7")
	if !strings.Contains(p.Status.Error, "another window definition") || !strings.Contains(p.Status.Error, "delete the pipeline") {
		t.Errorf("error %q, want it to say the state is of another definition and what to do", p.Status.Error)
	}
}

// Session windows through a pipeline: a session runs from its first event
// to its last plus the gap.
func TestSessionWindowPipeline(t *testing.T) {
	l := testLog(t, t.TempDir())
	createTopic(t, l, "ev", 1)
	t0 := int64(1_700_000_000_000)
	produce(t, l, "ev", 0, encodeEvents(t, []windowEvent{
		{Region: "a", Amount: 1, TS: t0}, {Region: "a", Amount: 2, TS: t0 + 100}, {Region: "b", Amount: 4, TS: t0 + 200},
		{Region: "a", Amount: 8, TS: t0 + 5000}, {Region: "z", TS: t0 + 60_000},
	})...)
	sink := &memSink{}
	e := newTestEnv(t, l, sink)
	p := windowPipeline("w8", "ev", func(w *process.WindowConfig) {
		w.Type, w.Size, w.Gap = "session", 0, units.Duration(time.Second)
	})
	if _, err := e.mgr.Put(testCtx(t), p); err != nil {
		t.Fatal(err)
	}
	ts := func(ms int64) string { return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z") }
	want := map[string]windowResult{
		"a|" + ts(t0):      {Start: ts(t0), End: ts(t0 + 1100), Key: "a", Orders: 2, Revenue: 3},
		"b|" + ts(t0+200):  {Start: ts(t0 + 200), End: ts(t0 + 1200), Key: "b", Orders: 1, Revenue: 4},
		"a|" + ts(t0+5000): {Start: ts(t0 + 5000), End: ts(t0 + 6000), Key: "a", Orders: 1, Revenue: 8},
	}
	waitFor(t, "the sessions", func() bool { return len(upserted(t, sink.got())) >= len(want) })
	compareWindows(t, upserted(t, sink.got()), want)
}

package pipeline

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-dev/sluice/internal/connector/postgres"
	"github.com/sluice-dev/sluice/internal/pgtest"
	"github.com/sluice-dev/sluice/internal/process"
	"github.com/sluice-dev/sluice/internal/resource"
	"github.com/sluice-dev/sluice/internal/stream"
)

// newPGManager starts a manager with the real connectors; ${PG_DSN}
// resolves to dsn.
func newPGManager(t *testing.T, l stream.Log, dsn string) *Manager {
	t.Helper()
	return startManager(t, Options{Log: l, Registerer: prometheus.NewRegistry(),
		Env: func(k string) (string, bool) {
			if k == "PG_DSN" {
				return dsn, true
			}
			return "", false
		}})
}

func ids(from, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf(`{"id":%d,"v":"%s"}`, from+i, strings.Repeat("v", 100))
	}
	return out
}

// TestPostgresOutage stops PostgreSQL for 30 s while records keep coming:
// the pipeline retries with backoff, shows its state and last error
// meanwhile, holds no more than its in-flight budget, and resumes by
// itself with no record lost.
func TestPostgresOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("30 s outage")
	}
	pg := pgtest.Start(t)
	pg.Exec(t, "CREATE TABLE events (id bigint PRIMARY KEY, v text)")
	l := testLog(t, t.TempDir())
	createTopic(t, l, "in", 2)
	mgr := newPGManager(t, l, pg.DSN())
	p := testPipeline("outage", "in")
	p.Spec.Sink = resource.Sink{Postgres: &postgres.Config{DSN: "${PG_DSN}", Table: "events"}}
	p.Spec.Retry = resource.Retry{} // the defaults: 100ms to 30s, 10 attempts
	if _, err := mgr.Put(testCtx(t), p); err != nil {
		t.Fatal(err)
	}
	produce(t, l, "in", 0, ids(0, 1000)...)
	waitFor(t, "the first 1000 rows", func() bool { return pg.QueryInt(t, "SELECT count(*) FROM events") == 1000 })

	pg.Stop(t)
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	heapBefore := ms.HeapInuse
	var sawRetrying bool
	var peakInFlight int64
	next := 1000
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); {
		// 40,000 records of ~120 bytes during the outage: 4.8 MB, then
		// the budget's worth of them in memory at most.
		produce(t, l, "in", int32(next%2), ids(next, 500)...)
		next += 500
		st, err := mgr.Get("outage")
		if err != nil {
			t.Fatal(err)
		}
		if st.Status.State == StateRetrying && strings.Contains(st.Status.Error, "sink") {
			sawRetrying = true
		}
		if st.Status.State == StateFailed {
			t.Fatalf("the pipeline failed during a 30 s outage: %s", st.Status.Error)
		}
		peakInFlight = max(peakInFlight, st.Status.InFlightBytes)
		time.Sleep(375 * time.Millisecond)
	}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	if !sawRetrying {
		t.Error("the pipeline never showed state retrying with the sink's error during the outage")
	}
	if limit := int64(minInFlight + 2*fetchBytes); peakInFlight > limit {
		t.Errorf("got %d bytes in flight during the outage, want at most %d", peakInFlight, limit)
	}
	if grew := int64(ms.HeapInuse) - int64(heapBefore); grew > 64<<20 {
		t.Errorf("heap grew by %d bytes during the outage", grew)
	}
	pg.Start(t)
	// The next attempt may be up to maxBackoff (30 s, plus jitter) away.
	waitWithin(t, 45*time.Second, "every row after the outage", func() bool {
		return pg.QueryInt(t, "SELECT count(*) FROM events") == int64(next)
	})
	if got := pg.QueryInt(t, "SELECT count(DISTINCT id) FROM events"); got != int64(next) {
		t.Fatalf("got %d distinct ids, want %d", got, next)
	}
	waitFor(t, "running", func() bool {
		st, _ := mgr.Get("outage")
		return st.Status.State == StateRunning
	})
}

// TestPostgresPoisonRecords sends records that fail validation or violate
// a table constraint: they land in the dead-letter topic with their error
// and the rest arrive.
func TestPostgresPoisonRecords(t *testing.T) {
	pg := pgtest.Start(t)
	pg.Exec(t, "CREATE TABLE orders (id bigint PRIMARY KEY, amount double precision CHECK (amount > 0))")
	l := testLog(t, t.TempDir())
	createTopic(t, l, "orders", 1)
	mgr := newPGManager(t, l, pg.DSN())
	p := testPipeline("poison", "orders")
	p.Spec.Processors = []process.Config{{Validate: &process.ValidateConfig{JSONSchema: map[string]any{
		"type": "object", "required": []any{"id", "amount"},
		"properties": map[string]any{"id": map[string]any{"type": "integer"}, "amount": map[string]any{"type": "number"}},
	}}}}
	p.Spec.Sink = resource.Sink{Postgres: &postgres.Config{DSN: "${PG_DSN}", Table: "orders"}}
	p.Spec.DeadLetter = &resource.DeadLetter{Topic: "orders.dlq"}
	produce(t, l, "orders", 0,
		`{"id":1,"amount":10}`,
		`{"id":2}`,              // no amount: fails validation
		`{"id":3,"amount":-5}`,  // violates the check constraint
		`{"id":4,"amount":2.5}`, //
		`{"id":"five","amount":1}`,
		`{"id":6,"amount":7}`)
	if _, err := mgr.Put(testCtx(t), p); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the commit", func() bool { return committed(t, l, "poison")[0] == 6 })
	if got := pg.QueryInt(t, "SELECT count(*) FROM orders"); got != 3 {
		t.Fatalf("got %d rows, want 3 (ids 1, 4, 6)", got)
	}
	if got := pg.QueryInt(t, "SELECT sum(id) FROM orders"); got != 11 {
		t.Fatalf("got ids summing to %d, want 1+4+6", got)
	}
	dl := readAll(t, l, "orders.dlq")
	stages := map[string]string{}
	for _, r := range dl {
		var stage, msg string
		for _, h := range r.Headers {
			switch h.Key {
			case HeaderStage:
				stage = string(h.Value)
			case HeaderError:
				msg = string(h.Value)
			}
		}
		stages[string(r.Value)] = stage + ": " + msg
	}
	want := map[string]string{
		`{"id":2}`:                 "processors[0].validate",
		`{"id":3,"amount":-5}`:     "sink",
		`{"id":"five","amount":1}`: "processors[0].validate",
	}
	if len(stages) != len(want) {
		t.Fatalf("got dead letters %v, want %v", stages, slices.Collect(func(yield func(string) bool) {
			for k := range want {
				yield(k)
			}
		}))
	}
	for v, stage := range want {
		got, ok := stages[v]
		if !ok || !strings.HasPrefix(got, stage+": ") || len(got) <= len(stage)+2 {
			t.Errorf("dead letter of %s: got %q, want stage %s with an error", v, got, stage)
		}
	}
	if got := stages[`{"id":3,"amount":-5}`]; !strings.Contains(got, "orders_amount_check") {
		t.Errorf("got %q for the constraint violation, want it to name the constraint", got)
	}
}

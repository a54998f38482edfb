package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sluice-dev/sluice/internal/pgtest"
)

// windowCrashSpec counts, sums and counts distinct values per region in
// tumbling windows of 10 s of event time, upserted into PostgreSQL.
//
// Event time runs about a hundred times faster than the clock here (one
// millisecond per event), so the idle timeout is long: a partition left
// out of the watermark while the producer reconnects after a kill would
// see its next events late, as it would in production after a pause
// longer than idleTimeout. Within a partition the events are in order, so
// none is ever late otherwise.
const windowCrashSpec = `apiVersion: sluice.dev/v1
kind: Pipeline
metadata: {name: wcrash}
spec:
  source: {topic: events, startFrom: earliest}
  processors:
    - window:
        type: tumbling
        size: 10s
        time: record.value.ts
        allowedLateness: 2s
        groupBy: record.value.r
        aggregates: {n: 'count()', s: 'sum(record.value.a)', d: 'count_distinct(record.value.u)'}
        idleTimeout: 10s
        checkpointEvery: 300ms
  sink:
    postgres: {dsn: '${PG_DSN}', table: wsums, mode: upsert, key: [key, window_start]}
  deadLetter: {topic: events.dlq}
  batch: {maxRecords: 2000, maxWait: 50ms}
  retry: {initialBackoff: 50ms, maxBackoff: 1s, maxAttempts: 100}
`

// windowCell is one row of the expected table.
type windowCell struct {
	n, cents int64
	users    map[int]bool
}

// TestWindowCrashLoop sends 1,000,000 events through a windowed pipeline
// into PostgreSQL while the sluice serve running it is SIGKILLed at
// random moments (at least 5 times) and restarted. The table must end
// equal to a reference computed here: every window's count, exact sum
// and distinct count, with no event lost or counted twice.
func TestWindowCrashLoop(t *testing.T) {
	if testing.Short() {
		t.Skip("crash loop")
	}
	const (
		total   = 1_000_000
		regions = 50
		t0      = int64(1_700_000_000_000) // a multiple of the window size
	)
	pg := pgtest.Start(t)
	bin := buildSluice(t)
	pg.Exec(t, "CREATE TABLE wsums (key text, window_start text, window_end text, n bigint, s double precision, d bigint, PRIMARY KEY (key, window_start))")
	t.Setenv("PG_DSN", pg.DSN())

	// The events: event time one millisecond apart, so the last window
	// (holding the last event) is the one left open.
	event := func(i int) (string, int64, int64, int) {
		r := "r" + strconv.Itoa(i%regions)
		cents := int64(i % 997)
		return r, t0 + int64(i), cents, i % 300
	}
	want := map[string]*windowCell{}
	lastTS := t0 + total - 1
	watermark := lastTS - 2000
	for i := range total {
		r, ts, cents, u := event(i)
		start := ts - ts%10_000
		if start+10_000 > watermark {
			continue // never closes
		}
		id := r + "|" + time.UnixMilli(start).UTC().Format("2006-01-02T15:04:05.000Z")
		c := want[id]
		if c == nil {
			c = &windowCell{users: map[int]bool{}}
			want[id] = c
		}
		c.n++
		c.cents += cents
		c.users[u] = true
	}

	srv := startCrashServer(t, bin)
	srv.createTopic("events", "3")
	srv.putPipeline("wcrash", windowCrashSpec)

	prod := srv.produce("events", total, func(i int) string {
		r, ts, cents, u := event(i)
		return fmt.Sprintf(`{"r":%q,"ts":%d,"a":%s,"u":%d}`, r, ts, strconv.FormatFloat(float64(cents)/100, 'f', -1, 64), u)
	}, 10_000, 30*time.Millisecond)
	// At least 5 kills, while the events are produced and then while the
	// pipeline catches up; at most 12, so that a slow machine (the race
	// detector, a loaded CI) still lets the producer finish between them.
	kills := srv.killLoop(prod.done, 300*time.Millisecond, 1500*time.Millisecond, 5, 12, func(kill int) {
		t.Logf("kill %d: %d events acknowledged so far, %d rows", kill, prod.acked.Load(), rows(t, pg, "wsums"))
	})
	prod.wait(t, total)

	// Wait for the table to converge, then compare it whole.
	var diffs []string
	deadline := time.Now().Add(3 * time.Minute)
	for {
		diffs = compareWindowTable(t, pg, want)
		if len(diffs) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if len(diffs) > 0 {
		t.Fatalf("after %d kills, %d differences from the reference (%d events dead-lettered), such as:\n%s",
			kills, len(diffs), dlqRecords(t, srv.base, "events.dlq"), strings.Join(diffs[:min(len(diffs), 10)], "\n"))
	}
	if n := dlqRecords(t, srv.base, "events.dlq"); n != 0 {
		t.Errorf("%d events were dead-lettered: none is late in this stream", n)
	}
	t.Logf("%d windows exact after %d kills", len(want), kills)
}

// compareWindowTable lists how the table differs from want.
func compareWindowTable(t *testing.T, pg *pgtest.Server, want map[string]*windowCell) []string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pg.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rs, err := conn.Query(ctx, "SELECT key, window_start, n, s, d FROM wsums")
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	var diffs []string
	seen := map[string]bool{}
	for rs.Next() {
		var key, start string
		var n, d int64
		var s float64
		if err := rs.Scan(&key, &start, &n, &s, &d); err != nil {
			t.Fatal(err)
		}
		id := key + "|" + start
		seen[id] = true
		c := want[id]
		switch {
		case c == nil:
			diffs = append(diffs, "unexpected row "+id)
		case n != c.n || math.Round(s*100) != float64(c.cents) || s != float64(c.cents)/100 || d != int64(len(c.users)):
			diffs = append(diffs, fmt.Sprintf("%s: n=%d s=%v d=%d, want n=%d s=%v d=%d", id, n, s, d, c.n, float64(c.cents)/100, len(c.users)))
		}
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	for id := range want {
		if !seen[id] {
			diffs = append(diffs, "missing row "+id)
		}
	}
	return diffs
}

// dlqRecords returns how many records a topic holds, 0 when it does not
// exist.
func dlqRecords(t *testing.T, base, topic string) int64 {
	t.Helper()
	resp, err := http.Get(base + "/v1/topics/" + topic)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return 0
	}
	var info struct {
		Partitions []struct {
			HighWatermark int64 `json:"high_watermark"`
		} `json:"partitions"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, p := range info.Partitions {
		n += p.HighWatermark
	}
	return n
}

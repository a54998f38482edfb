package main

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/pgtest"
)

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago, so
// that a restarted server listens where its clients expect it.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestPipelineCrashLoop produces 200,000 records with franz-go's idempotent
// producer into a sluice serve that runs a pipeline into PostgreSQL, and
// SIGKILLs that process at random moments, restarting it each time, while
// the records are being produced and delivered. PostgreSQL must end with
// every record exactly once: in exactly-once mode into a table without a
// key (a duplicate would show), and in at-least-once mode with upsert.
func TestPipelineCrashLoop(t *testing.T) {
	if testing.Short() {
		t.Skip("crash loop")
	}
	pg := pgtest.Start(t)
	bin := buildSluice(t)
	for _, tc := range []struct {
		name, delivery, table, ddl, sink string
	}{
		{"exactly-once", "exactly-once", "orders_eo", "CREATE TABLE orders_eo (id bigint, payload text)",
			`{postgres: {dsn: '${PG_DSN}', table: orders_eo}}`},
		{"at-least-once upsert", "at-least-once", "orders_alo", "CREATE TABLE orders_alo (id bigint PRIMARY KEY, payload text)",
			`{postgres: {dsn: '${PG_DSN}', table: orders_alo, mode: upsert, key: [id]}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pg.Exec(t, tc.ddl)
			t.Setenv("PG_DSN", pg.DSN())
			spec := fmt.Sprintf(`apiVersion: sluice.dev/v1
kind: Pipeline
metadata: {name: crash}
spec:
  source: {topic: orders, startFrom: earliest}
  sink: %s
  delivery: %s
  batch: {maxRecords: 2000, maxWait: 50ms}
  retry: {initialBackoff: 50ms, maxBackoff: 1s, maxAttempts: 100}
`, tc.sink, tc.delivery)
			crashLoop(t, bin, pg, spec, tc.table)
		})
	}
}

func crashLoop(t *testing.T, bin string, pg *pgtest.Server, spec, table string) {
	const total = 200_000
	srv := startCrashServer(t, bin)
	srv.createTopic("orders", "3")
	srv.putPipeline("crash", spec)

	payload := strings.Repeat("x", 150)
	prod := srv.produce("orders", total, func(i int) string {
		return `{"id":` + strconv.Itoa(i) + `,"payload":"` + payload + `"}`
	}, 2000, 40*time.Millisecond)
	kills := srv.killLoop(prod.done, 200*time.Millisecond, 1300*time.Millisecond, 5, 30, func(kill int) {
		t.Logf("kill %d: %d records acknowledged so far, %d rows", kill, prod.acked.Load(), rows(t, pg, table))
	})
	prod.wait(t, total)

	deadline := time.Now().Add(2 * time.Minute)
	for rows(t, pg, table) < total && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	// Give a duplicate time to show.
	time.Sleep(time.Second)
	n := pg.QueryInt(t, "SELECT count(*) FROM "+table)
	distinct := pg.QueryInt(t, "SELECT count(DISTINCT id) FROM "+table)
	lo := pg.QueryInt(t, "SELECT coalesce(min(id), -1) FROM "+table)
	hi := pg.QueryInt(t, "SELECT coalesce(max(id), -1) FROM "+table)
	if n != total || distinct != total || lo != 0 || hi != total-1 {
		t.Fatalf("after %d kills: got %d rows, %d distinct ids from %d to %d; want %d rows, ids 0 to %d once each",
			kills, n, distinct, lo, hi, total, total-1)
	}
}

func rows(t *testing.T, pg *pgtest.Server, table string) int64 {
	t.Helper()
	return pg.QueryInt(t, "SELECT count(*) FROM "+table)
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

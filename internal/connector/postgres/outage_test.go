package postgres_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/connector/postgres"
	"github.com/sluice-dev/sluice/internal/pgtest"
)

// writeTransient calls Write once with a short deadline and wants a
// transient error.
func writeTransient(t *testing.T, s *postgres.Sink, b *connector.Batch) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	err := s.Write(ctx, b)
	if err == nil {
		t.Fatalf("Write: got nil, want an error")
	}
	if isPermanent(err) {
		t.Fatalf("Write: got permanent error %v, want a transient one", err)
	}
	return err
}

// writeEventually retries Write as the runtime does, failing the test on
// a permanent error or when it does not succeed in time. It returns the
// number of failed attempts.
func writeEventually(t *testing.T, s *postgres.Sink, b *connector.Batch) int {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for failed := 0; ; failed++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := s.Write(ctx, b)
		cancel()
		if err == nil {
			return failed
		}
		if isPermanent(err) {
			t.Fatalf("Write: got permanent error %v, want success or a transient error", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("Write: still failing after %d attempts: %v", failed+1, err)
		}
		t.Logf("attempt %d: %v", failed+1, err)
		time.Sleep(100 * time.Millisecond)
	}
}

func TestOutage(t *testing.T) {
	srv := pgtest.Start(t)
	ctx := context.Background()
	srv.Exec(t, `CREATE TABLE outage (id integer)`)
	s := openSink(t, srv, postgres.Config{Table: "outage"}, nil)
	b, _ := batch(rec(0, `{"id":0}`))
	write(t, s, b)

	srv.Stop(t)
	b, _ = batch(rec(1, `{"id":1}`))
	// The pool's connection is dead, then the server refuses connections.
	for i := 0; i < 2; i++ {
		err := writeTransient(t, s, b)
		t.Logf("while stopped: %v", err)
	}
	// A sink made while PostgreSQL is down starts all the same.
	late, err := postgres.New(ctx, postgres.Options{Config: postgres.Config{DSN: srv.DSN(), Table: "outage"}, Pipeline: "late"})
	if err != nil {
		t.Fatalf("New while PostgreSQL is down: got %v, want nil", err)
	}
	defer late.Close(ctx)
	lb, _ := batch(rec(100, `{"id":100}`))
	writeTransient(t, late, lb)
	if _, err := late.LoadCheckpoint(ctx); err == nil || isPermanent(err) {
		t.Errorf("LoadCheckpoint while stopped: got %v, want a transient error", err)
	}

	srv.Start(t)
	if failed := writeEventually(t, s, b); failed > 0 {
		t.Errorf("failed attempts after the restart: got %d, want 0 (the pool was reset)", failed)
	}
	writeEventually(t, late, lb)
	wantRows(t, srv, "outage", "id", "(0) (1) (100)")
	cp, err := s.LoadCheckpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(cp), "[{orders 0 2}]"; got != want {
		t.Errorf("checkpoint: got %s, want %s", got, want)
	}
}

// TestFailover plays a Patroni failover with two unrelated servers: A a
// standby (read-only) listed first, B the primary. Writes go to B; B
// fails and A is promoted (made writable): writes go to A, after transient
// errors. Then A is demoted while the pool holds connections to it (25006)
// and B is back: writes go to B again.
func TestFailover(t *testing.T) {
	a := pgtest.Start(t, pgtest.WithSetting("default_transaction_read_only", "on"))
	b := pgtest.Start(t)
	for _, srv := range []*pgtest.Server{a, b} {
		srv.Exec(t, `BEGIN READ WRITE; CREATE TABLE fo (id integer); COMMIT`)
	}
	dsn := fmt.Sprintf("postgres://postgres@%s,%s/postgres?sslmode=disable&target_session_attrs=read-write&connect_timeout=5", a.HostPort(), b.HostPort())
	s, err := postgres.New(context.Background(), postgres.Options{Config: postgres.Config{DSN: dsn, Table: "fo"}, Pipeline: "fo"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())

	for i := 0; i < 3; i++ {
		bt, _ := batch(rec(int64(i), fmt.Sprintf(`{"id":%d}`, i)))
		write(t, s, bt)
	}
	wantRows(t, b, "fo", "id", "(0) (1) (2)")
	wantRows(t, a, "fo", "id", "")

	b.Stop(t)
	bt, _ := batch(rec(3, `{"id":3}`))
	// No writable host: A is read-only and B is down.
	for i := 0; i < 2; i++ {
		err := writeTransient(t, s, bt)
		t.Logf("no primary: %v", err)
	}
	promote(t, a, "off")
	writeEventually(t, s, bt)
	wantRows(t, a, "fo", "id", "(3)")

	// A demoted under the pool's connections: 25006, a reset, and B.
	b.Start(t)
	promote(t, a, "on")
	bt, _ = batch(rec(4, `{"id":4}`))
	failed := writeEventually(t, s, bt)
	if failed == 0 {
		t.Errorf("failed attempts after A's demotion: got 0, want the read-only error first")
	}
	wantRows(t, b, "fo", "id", "(0) (1) (2) (4)")
	wantRows(t, a, "fo", "id", "(3)")
}

// promote sets default_transaction_read_only ("off": a promoted standby,
// "on": a demoted primary) and waits until new sessions see it.
func promote(t *testing.T, srv *pgtest.Server, readOnly string) {
	t.Helper()
	srv.Exec(t, "ALTER SYSTEM SET default_transaction_read_only = "+readOnly)
	srv.Exec(t, "SELECT pg_reload_conf()")
	deadline := time.Now().Add(10 * time.Second)
	for strings.TrimSpace(srv.QueryString(t, "SHOW default_transaction_read_only")) != readOnly {
		if time.Now().After(deadline) {
			t.Fatalf("default_transaction_read_only did not become %s", readOnly)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

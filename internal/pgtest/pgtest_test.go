package pgtest_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sluice-dev/sluice/internal/pgtest"
)

func TestStartQueryStopRestart(t *testing.T) {
	s := pgtest.Start(t)
	s.Exec(t, "CREATE TABLE t (id bigint PRIMARY KEY); INSERT INTO t VALUES (1), (2)")
	if got := s.QueryInt(t, "SELECT count(*) FROM t"); got != 2 {
		t.Fatalf("count: got %d, want 2", got)
	}
	if got := s.QueryString(t, "SHOW server_encoding"); got != "UTF8" {
		t.Errorf("server_encoding: got %q, want UTF8", got)
	}
	if got := s.QueryString(t, "SHOW fsync"); got != "off" {
		t.Errorf("fsync: got %q, want off", got)
	}
	port := s.Port()

	s.Stop(t)
	if s.Running() {
		t.Fatalf("Running after Stop: got true, want false")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if conn, err := pgx.Connect(ctx, s.DSN()); err == nil {
		conn.Close(ctx)
		t.Fatalf("connect to a stopped server: got nil error, want one")
	}

	s.Start(t)
	if got := s.Port(); got != port {
		t.Errorf("port after restart: got %d, want %d", got, port)
	}
	// A fast shutdown writes a checkpoint: the rows survive even without fsync.
	if got := s.QueryInt(t, "SELECT count(*) FROM t"); got != 2 {
		t.Fatalf("count after restart: got %d, want 2", got)
	}
}

func TestWithSetting(t *testing.T) {
	s := pgtest.Start(t, pgtest.WithSetting("default_transaction_read_only", "on"))
	if got := s.QueryString(t, "SHOW transaction_read_only"); got != "on" {
		t.Fatalf("transaction_read_only: got %q, want on", got)
	}
	conn := s.Conn(t)
	_, err := conn.Exec(context.Background(), "CREATE TABLE t (id int)")
	if err == nil {
		t.Fatalf("CREATE TABLE on a read-only server: got nil error, want one")
	}
	// The setting yields to ALTER SYSTEM, as a promoted standby's would.
	s.Exec(t, "ALTER SYSTEM SET default_transaction_read_only = off")
	s.Exec(t, "SELECT pg_reload_conf()")
	deadline := time.Now().Add(10 * time.Second)
	for s.QueryString(t, "SHOW transaction_read_only") != "off" {
		if time.Now().After(deadline) {
			t.Fatalf("transaction_read_only after ALTER SYSTEM and reload: got on, want off")
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.Exec(t, "CREATE TABLE t (id int)")
}

func TestDurable(t *testing.T) {
	s := pgtest.Start(t, pgtest.Durable())
	if got := s.QueryString(t, "SHOW fsync"); got != "on" {
		t.Fatalf("fsync: got %q, want on", got)
	}
}

func TestTwoServers(t *testing.T) {
	a, b := pgtest.Start(t), pgtest.Start(t)
	if a.Port() == b.Port() {
		t.Fatalf("ports: got %d twice, want two", a.Port())
	}
	a.Exec(t, "CREATE TABLE only_a (id int)")
	if got := b.QueryInt(t, "SELECT count(*) FROM pg_class WHERE relname = 'only_a'"); got != 0 {
		t.Fatalf("only_a on b: got %d, want 0", got)
	}
}

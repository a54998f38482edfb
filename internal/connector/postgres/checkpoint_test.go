package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/connector/postgres"
	"github.com/sluice-dev/sluice/internal/pgtest"
)

// TestCheckpointFenced checks that an exactly-once writer never writes a
// batch whose positions another writer committed after it loaded the
// checkpoint: a second instance of the pipeline, or the writer's own
// commit that was in flight when its connection broke.
func TestCheckpointFenced(t *testing.T) {
	srv := pgtest.Start(t)
	ctx := context.Background()
	open := func(t *testing.T, table string) *postgres.Sink {
		t.Helper()
		s, err := postgres.New(ctx, postgres.Options{Config: postgres.Config{DSN: srv.DSN(), Table: table}, Pipeline: "fenced-" + table})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close(ctx) })
		return s
	}
	load := func(t *testing.T, s *postgres.Sink, want string) {
		t.Helper()
		cp, err := s.LoadCheckpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(cp); got != want {
			t.Fatalf("LoadCheckpoint: got %s, want %s", got, want)
		}
	}
	wantMoved := func(t *testing.T, err error) {
		t.Helper()
		if !errors.Is(err, postgres.ErrCheckpointMoved) || isPermanent(err) {
			t.Fatalf("Write: got %v, want a transient ErrCheckpointMoved", err)
		}
	}

	t.Run("two writers", func(t *testing.T) {
		srv.Exec(t, `CREATE TABLE two (id integer)`)
		a, b := open(t, "two"), open(t, "two")
		load(t, a, "[]")
		load(t, b, "[]")
		first, _ := batch(rec(0, `{"id":0}`), rec(1, `{"id":1}`))
		write(t, a, first)
		// b read no positions: its first batch is a's.
		wantMoved(t, b.Write(ctx, first))
		load(t, b, "[{orders 0 2}]")
		load(t, a, "[{orders 0 2}]")
		more, _ := batch(rec(2, `{"id":2}`), rec(3, `{"id":3}`))
		write(t, a, more)
		// b batches the same records differently: 2 was written with 3.
		other, _ := batch(rec(2, `{"id":2}`))
		wantMoved(t, b.Write(ctx, other))
		load(t, b, "[{orders 0 4}]")
		last, _ := batch(rec(4, `{"id":4}`))
		write(t, b, last)
		wantRows(t, srv, "two", "id", "(0) (1) (2) (3) (4)")
	})

	t.Run("commit in flight", func(t *testing.T) {
		srv.Exec(t, `CREATE TABLE inflight (id integer)`)
		s := open(t, "inflight")
		load(t, s, "[]")
		b0, _ := batch(rec(0, `{"id":0}`))
		write(t, s, b0)
		// A transaction like the one of a Write whose COMMIT was sent when
		// the connection broke: the server commits it a little later,
		// after the caller loaded the checkpoint again.
		conn := srv.Conn(t)
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `BEGIN; INSERT INTO inflight VALUES (1);
			UPDATE sluice_offsets SET next_offset = 2 WHERE pipeline = 'fenced-inflight'`); err != nil {
			t.Fatal(err)
		}
		load(t, s, "[{orders 0 1}]")
		done := make(chan error, 1)
		go func() {
			time.Sleep(300 * time.Millisecond)
			_, err := conn.Exec(ctx, "COMMIT")
			done <- err
		}()
		b1, _ := batch(rec(1, `{"id":1}`))
		err := s.Write(ctx, b1)
		if cerr := <-done; cerr != nil {
			t.Fatal(cerr)
		}
		wantMoved(t, err)
		wantRows(t, srv, "inflight", "id", "(0) (1)")
		load(t, s, "[{orders 0 2}]")
	})

	t.Run("without LoadCheckpoint", func(t *testing.T) {
		// At least once: the caller resumes from its group's offsets, which
		// may lag the stored ones, and records are written again.
		srv.Exec(t, `CREATE TABLE alo (id integer)`)
		s := open(t, "alo")
		b, _ := batch(rec(0, `{"id":0}`))
		write(t, s, b)
		write(t, s, b)
		wantRows(t, srv, "alo", "id", "(0) (0)")
		var ts connector.TransactionalSink = s
		if cp, err := ts.LoadCheckpoint(ctx); err != nil || fmt.Sprint(cp) != "[{orders 0 1}]" {
			t.Fatalf("LoadCheckpoint: got %v, %v", cp, err)
		}
	})
}

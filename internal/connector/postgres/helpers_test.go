package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/connector/postgres"
	"github.com/sluice-dev/sluice/internal/pgtest"
)

// baseTime is the timestamp of the record at offset 0; offset n is n ms
// later.
var baseTime = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

// rec returns a record of topic "orders", partition 0 at offset off.
func rec(off int64, value string) *connector.Record {
	return recAt("orders", 0, off, "", value)
}

func recAt(topic string, partition int32, off int64, key, value string) *connector.Record {
	r := connector.NewRecord([]byte(value))
	r.Topic, r.Partition, r.Offset = topic, partition, off
	r.Timestamp = baseTime.Add(time.Duration(off) * time.Millisecond)
	if key != "" {
		r.Key = []byte(key)
	}
	return r
}

// rejects collects what a batch's Reject receives.
type rejects struct {
	mu     sync.Mutex
	got    []connector.Rejection
	calls  int
	fail   error                 // returned by Reject when set
	during func(context.Context) // called inside Reject
}

func (r *rejects) reject(ctx context.Context, rs []connector.Rejection) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	r.got = append(r.got, rs...)
	if r.during != nil {
		r.during(ctx)
	}
	return r.fail
}

// batch returns a batch of records whose checkpoint is the offset after
// the last record of each partition.
func batch(records ...*connector.Record) (*connector.Batch, *rejects) {
	rj := &rejects{}
	b := &connector.Batch{Records: records, Reject: rj.reject}
	idx := map[string]int{}
	for _, r := range records {
		k := fmt.Sprintf("%s/%d", r.Topic, r.Partition)
		if i, ok := idx[k]; ok {
			b.Checkpoint[i].Offset = r.Offset + 1
			continue
		}
		idx[k] = len(b.Checkpoint)
		b.Checkpoint = append(b.Checkpoint, connector.Position{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset + 1})
	}
	return b, rj
}

func openSink(t testing.TB, srv *pgtest.Server, cfg postgres.Config, schema map[string]any) *postgres.Sink {
	t.Helper()
	if cfg.DSN == "" {
		cfg.DSN = srv.DSN()
	}
	s, err := postgres.New(context.Background(), postgres.Options{Config: cfg, Pipeline: "pipe-" + cfg.Table, Schema: schema})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

func write(t testing.TB, s *postgres.Sink, b *connector.Batch) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.Write(ctx, b); err != nil {
		t.Fatalf("Write: %v", err)
	}
}

// rows returns the table's rows as PostgreSQL's row text, ordered by the
// expression order: "(1,a) (2,b)".
func rows(t testing.TB, srv *pgtest.Server, table, order string) string {
	t.Helper()
	return srv.QueryString(t, fmt.Sprintf("SELECT coalesce(string_agg(t::text, ' ' ORDER BY %s), '') FROM %s t", order, table))
}

func wantRows(t testing.TB, srv *pgtest.Server, table, order, want string) {
	t.Helper()
	if got := rows(t, srv, table, order); got != want {
		t.Errorf("rows of %s: got %s, want %s", table, got, want)
	}
}

func isPermanent(err error) bool { return errors.Is(err, connector.ErrPermanent) }

func readFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	return string(b), err
}

// writeFile replaces a file's content, keeping its owner (the server's
// user, when the tests run as root).
func writeFile(path, content string) error {
	return os.WriteFile(path, []byte(content), 0o600)
}

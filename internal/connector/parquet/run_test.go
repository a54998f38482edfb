package parquet

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/connector"
)

// runBatches are the writes of one run: three batches over two
// partitions, the last bringing a field the first file has not seen.
func runBatches() [][]*connector.Record {
	var out [][]*connector.Record
	for b := range 3 {
		var vals []string
		for i := range 40 {
			n := b*40 + i
			v := fmt.Sprintf(`{"n":%d,"pad":"%032d"}`, n, n)
			if b == 2 {
				v = fmt.Sprintf(`{"n":%d,"extra":true}`, n)
			}
			vals = append(vals, v)
		}
		out = append(out, recs(int64(b*40), vals...))
	}
	return out
}

func runSink(t *testing.T, dir, run string) *Sink {
	t.Helper()
	return newSink(t, Options{Config: Config{Path: dir, MaxOpenFiles: 1, RowGroupBytes: 1 << 10}, Run: run,
		Partition: func(r *connector.Record) (string, error) { return fmt.Sprintf("p=%d", r.Offset%2), nil }})
}

// filesAndRows reads every complete file under dir: name -> rows.
func filesAndRows(t *testing.T, dir string) map[string][]map[string]any {
	t.Helper()
	complete, _ := listFiles(t, dir)
	out := map[string][]map[string]any{}
	for _, f := range complete {
		out[f] = readParquet(t, filepath.Join(dir, f)).rows
	}
	return out
}

// TestRunPublishesOnFlushOnly: a run's files stay hidden, sealed ones
// included, until Flush publishes them all under names that follow from
// the writes alone; a second attempt of the run writes the same names
// with the same rows and removes what the first published beyond them.
func TestRunPublishesOnFlushOnly(t *testing.T) {
	dir := t.TempDir()
	s := runSink(t, dir, "3f2a9c0d11e4b7a2")
	for _, b := range runBatches() {
		write(t, s, b...)
		if complete, temps := listFiles(t, dir); len(complete) != 0 || len(temps) == 0 {
			t.Fatalf("before Flush: got complete files %q and temporary %q, want none and some", complete, temps)
		}
		if _, pending := s.FlushDue(); !pending {
			t.Fatal("FlushDue: got nothing pending with a run's files staged")
		}
	}
	if len(s.sealed) == 0 || len(s.files) > 1 {
		t.Fatalf("got %d sealed and %d open files with MaxOpenFiles 1, want some sealed and at most one open", len(s.sealed), len(s.files))
	}
	flush(t, s)
	first := filesAndRows(t, dir)
	var names []string
	var ns []int64
	for name, rows := range first {
		names = append(names, name)
		for _, r := range rows {
			ns = append(ns, r["n"].(int64))
		}
	}
	slices.Sort(names)
	slices.Sort(ns)
	if len(ns) != 120 || ns[0] != 0 || ns[119] != 119 || len(slices.Compact(slices.Clone(ns))) != 120 {
		t.Fatalf("got %d rows, want n = 0..119 once each", len(ns))
	}
	// Two partitions, a new file for the widened schema in each, and new
	// files after each seal: the names count up in the order started.
	if len(names) < 4 {
		t.Fatalf("got files %q, want several", names)
	}
	for _, n := range names {
		if !strings.Contains(n, "/orders-batch-3f2a9c0d11e4b7a2-") || !strings.HasSuffix(n, ".parquet") {
			t.Fatalf("file %q is not named for the run", n)
		}
	}
	if _, temps := listFiles(t, dir); len(temps) != 0 {
		t.Fatalf("temporary files %q left after Flush", temps)
	}

	// A file of the run that this attempt does not write (as if an
	// earlier attempt had written more), another run's file and a stream
	// file stay where they are, or go, as they should.
	stale := filepath.Join(dir, "p=0", "orders-batch-3f2a9c0d11e4b7a2-0099.parquet")
	other := filepath.Join(dir, "p=0", "orders-batch-3f2a9c0d11e4b7a3-0001.parquet")
	stream := filepath.Join(dir, "orders-20261202T101500-0001.parquet")
	for _, f := range []string{stale, other, stream} {
		if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	again := runSink(t, dir, "3f2a9c0d11e4b7a2")
	for _, b := range runBatches() {
		write(t, again, b...)
	}
	flush(t, again)
	for _, f := range []string{stale, other, stream} {
		_, err := os.Stat(f)
		if gone := os.IsNotExist(err); gone != (f == stale) {
			t.Errorf("%s: removed %v, want %v", f, gone, f == stale)
		}
		os.Remove(f)
	}
	if second := filesAndRows(t, dir); !reflect.DeepEqual(second, first) {
		t.Fatalf("the second attempt wrote other files or rows:\n got %d files\nwant %d files %q", len(second), len(first), names)
	}
}

// TestRunTempsOfAKilledAttemptRemoved: a run killed before its Flush
// leaves hidden files only, which the next sink removes when it opens.
func TestRunTempsOfAKilledAttemptRemoved(t *testing.T) {
	dir := t.TempDir()
	killed, err := New(context.Background(), Options{Config: Config{Path: dir, MaxOpenFiles: 1}, Pipeline: "orders", Run: "r1",
		Logger:    slog.New(slog.DiscardHandler),
		Partition: func(r *connector.Record) (string, error) { return fmt.Sprintf("p=%d", r.Offset%2), nil }})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range runBatches() {
		write(t, killed, b...)
	}
	// No Close: the process died.
	if complete, temps := listFiles(t, dir); len(complete) != 0 || len(temps) < 2 {
		t.Fatalf("got complete %q and temporary %q, want none and several", complete, temps)
	}
	// Another pipeline's temporary file is not this one's to remove.
	otherTmp := filepath.Join(dir, "p=0", ".orders-eu-batch-r1-0001.parquet.tmp")
	if err := os.WriteFile(otherTmp, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	newSink(t, Options{Config: Config{Path: dir}, Run: "r1"})
	if _, temps := listFiles(t, dir); !slices.Equal(temps, []string{"p=0/.orders-eu-batch-r1-0001.parquet.tmp"}) {
		t.Fatalf("got temporary files %q after New, want only the other pipeline's", temps)
	}
}

func TestRunName(t *testing.T) {
	for _, run := range []string{"Abc", "a-b", strings.Repeat("a", 65), "a.b"} {
		_, err := New(context.Background(), Options{Config: Config{Path: t.TempDir()}, Pipeline: "orders", Run: run})
		if err == nil || !strings.Contains(err.Error(), "want 1 to 64 of a-z and 0-9") {
			t.Errorf("Run %q: got %v, want an error", run, err)
		}
	}
}

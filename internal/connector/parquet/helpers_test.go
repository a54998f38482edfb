package parquet

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/sluice-dev/sluice/internal/connector"
)

var t0 = time.Date(2026, 12, 2, 10, 15, 0, 0, time.UTC)

// rec returns a record of topic orders, partition 0, at the given offset,
// with a timestamp offset milliseconds after t0.
func rec(offset int64, value string) *connector.Record {
	r := connector.NewRecord([]byte(value))
	r.Topic, r.Offset = "orders", offset
	r.Timestamp = t0.Add(time.Duration(offset) * time.Millisecond)
	return r
}

// recs returns records with the given values at offsets from first.
func recs(first int64, values ...string) []*connector.Record {
	out := make([]*connector.Record, len(values))
	for i, v := range values {
		out[i] = rec(first+int64(i), v)
	}
	return out
}

// meta returns the metadata columns of rec(offset, ...) merged with fields.
func meta(offset int64, fields map[string]any) map[string]any {
	m := map[string]any{
		colTopic:     "orders",
		colPartition: int32(0),
		colOffset:    offset,
		colTimestamp: t0.Add(time.Duration(offset) * time.Millisecond),
	}
	maps.Copy(m, fields)
	return m
}

func newSink(t testing.TB, opts Options) *Sink {
	t.Helper()
	if opts.Pipeline == "" {
		opts.Pipeline = "orders"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s, err := New(context.Background(), opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

// write writes records and returns those rejected.
func write(t testing.TB, s *Sink, rs ...*connector.Record) []connector.Rejection {
	t.Helper()
	var rejected []connector.Rejection
	b := &connector.Batch{Records: rs, Reject: func(_ context.Context, r []connector.Rejection) error {
		rejected = append(rejected, r...)
		return nil
	}}
	if err := s.Write(context.Background(), b); err != nil {
		t.Fatalf("Write: %v", err)
	}
	return rejected
}

func flush(t testing.TB, s *Sink) {
	t.Helper()
	if err := s.Flush(context.Background()); err != nil {
		t.Fatalf("Flush: %v", err)
	}
}

// parquetFile is a file read back.
type parquetFile struct {
	// columns holds "optional INT64", "required STRING", ... by name.
	columns   map[string]string
	rows      []map[string]any // null values are left out
	rowGroups int
	codecs    []string // of the first row group's column chunks
	metadata  map[string]string
}

func readParquet(t testing.TB, path string) parquetFile {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	pf, err := parquet.OpenFile(f, st.Size())
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	out := parquetFile{columns: map[string]string{}, rowGroups: len(pf.RowGroups()), metadata: map[string]string{}}
	for _, kv := range pf.Metadata().KeyValueMetadata {
		out.metadata[kv.Key] = kv.Value
	}
	schema := pf.Schema()
	names := map[int]string{}
	types := map[int]string{}
	for _, path := range schema.Columns() {
		c, _ := schema.Lookup(path...)
		name := strings.Join(path, ".")
		// parquet-go reads plain INT64 and INT32 back as signed integers
		// of their width, which is what they are.
		typ := strings.NewReplacer("INT(64,true)", "INT64", "INT(32,true)", "INT32").Replace(c.Node.Type().String())
		names[c.ColumnIndex], types[c.ColumnIndex] = name, typ
		req := "required "
		if c.Node.Optional() {
			req = "optional "
		}
		out.columns[name] = req + typ
	}
	if len(pf.Metadata().RowGroups) > 0 {
		for _, cc := range pf.Metadata().RowGroups[0].Columns {
			out.codecs = append(out.codecs, cc.MetaData.Codec.String())
		}
	}
	r := parquet.NewReader(pf)
	defer r.Close()
	buf := make([]parquet.Row, 64)
	for {
		n, err := r.ReadRows(buf)
		for _, row := range buf[:n] {
			m := map[string]any{}
			for _, v := range row {
				if v.IsNull() {
					continue
				}
				name := names[v.Column()]
				switch typ := types[v.Column()]; {
				case strings.HasPrefix(typ, "TIMESTAMP"):
					m[name] = time.UnixMilli(v.Int64()).UTC()
				case typ == "INT32":
					m[name] = v.Int32()
				case typ == "INT64":
					m[name] = v.Int64()
				case typ == "DOUBLE":
					m[name] = v.Double()
				case typ == "BOOLEAN":
					m[name] = v.Boolean()
				case typ == "STRING":
					m[name] = string(v.ByteArray())
				default:
					t.Fatalf("column %s has type %s", name, typ)
				}
			}
			out.rows = append(out.rows, m)
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("read %s: %v", path, err)
		}
	}
	return out
}

// listFiles returns the complete and the temporary files under dir, as
// paths relative to it, sorted.
func listFiles(t testing.TB, dir string) (complete, temps []string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		switch {
		case strings.HasSuffix(path, ".tmp"):
			temps = append(temps, rel)
		case strings.HasSuffix(path, ".parquet"):
			complete = append(complete, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(complete)
	slices.Sort(temps)
	return complete, temps
}

// readAll reads the rows of every complete file under dir, in file name
// order.
func readAll(t testing.TB, dir string) []map[string]any {
	t.Helper()
	complete, _ := listFiles(t, dir)
	var rows []map[string]any
	for _, f := range complete {
		rows = append(rows, readParquet(t, filepath.Join(dir, f)).rows...)
	}
	return rows
}

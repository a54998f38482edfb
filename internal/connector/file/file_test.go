package file

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/fakeclock"

	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/record"
	"github.com/sluice-dev/sluice/internal/units"
)

var t0 = time.Date(2026, 12, 2, 10, 15, 0, 123000000, time.UTC)

func rec(value string) *connector.Record {
	r := connector.NewRecord([]byte(value))
	r.Topic, r.Partition, r.Timestamp = "orders", 0, t0
	return r
}

// batch returns a batch of records with the given values whose rejections
// are kept in *rejected.
func batch(rejected *[]connector.Rejection, recs ...*connector.Record) *connector.Batch {
	return &connector.Batch{Records: recs, Reject: func(_ context.Context, r []connector.Rejection) error {
		if rejected != nil {
			*rejected = append(*rejected, r...)
		}
		return nil
	}}
}

func values(vs ...string) []*connector.Record {
	out := make([]*connector.Record, len(vs))
	for i, v := range vs {
		out[i] = rec(v)
		out[i].Offset = int64(i)
	}
	return out
}

func newSink(t *testing.T, opts Options) *Sink {
	t.Helper()
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

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestValueLines(t *testing.T) {
	changed := rec(`{"a":1}`)
	changed.SetDoc(map[string]any{"b": int64(2), "s": "<&>"})
	null := connector.NewRecord(nil)
	tests := []struct {
		name string
		rec  *connector.Record
		want string
	}{
		{"json object kept as stored", rec(`{"b":1, "a":[1,2]}`), `{"b":1, "a":[1,2]}`},
		{"json string", rec(`"text"`), `"text"`},
		{"json number", rec(`12345678901234567890`), `12345678901234567890`},
		{"multi-line json compacted", rec("{\n  \"a\": 1,\r\n  \"b\": \"x y\"\n}"), `{"a":1,"b":"x y"}`},
		{"changed document encoded", changed, `{"b":2,"s":"<&>"}`},
		{"null value", null, `null`},
		{"empty value", rec(""), `""`},
		{"text", rec("hello world"), `"hello world"`},
		{"text with newline", rec("two\nlines"), `"two\nlines"`},
		{"two json values", rec(`{} {}`), `"{} {}"`},
		{"invalid utf-8", rec("a\xffb"), `"a` + "\ufffd" + `b"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := appendLine(nil, tt.rec, FormatValue)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want+"\n" {
				t.Errorf("got %q, want %q", got, tt.want+"\n")
			}
			if !json.Valid(got) {
				t.Errorf("line %q is not valid JSON", got)
			}
		})
	}
}

func TestRecordLines(t *testing.T) {
	keyed := rec(`{"id":7}`)
	keyed.Partition, keyed.Offset, keyed.Key = 3, 42, []byte("k1")
	keyed.Timestamp = time.Date(2026, 12, 2, 11, 15, 0, 120000000, time.FixedZone("CET", 3600))
	keyed.Headers = []record.RecordHeader{{Key: "h", Value: []byte("1")}, {Key: "n", Value: nil}, {Key: "h", Value: []byte("2")}}
	text := rec("not json")
	text.Offset = 43
	text.Timestamp = time.Date(2026, 12, 2, 10, 15, 0, 0, time.UTC)
	tests := []struct {
		name string
		rec  *connector.Record
		want string
	}{
		{"keyed with headers", keyed, `{"topic":"orders","partition":3,"offset":42,"timestamp":"2026-12-02T10:15:00.12Z","key":"k1","headers":{"n":null,"h":"2"},"value":{"id":7}}`},
		{"no key, text value", text, `{"topic":"orders","partition":0,"offset":43,"timestamp":"2026-12-02T10:15:00Z","key":null,"headers":{},"value":"not json"}`},
		{"null value", func() *connector.Record { r := rec(""); r.SetValue(nil); return r }(), `{"topic":"orders","partition":0,"offset":0,"timestamp":"2026-12-02T10:15:00.123Z","key":null,"headers":{},"value":null}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := appendLine(nil, tt.rec, FormatRecord)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want+"\n" {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
			if !json.Valid(got) {
				t.Errorf("line %q is not valid JSON", got)
			}
		})
	}
}

func TestWriteAppendsDurably(t *testing.T) {
	for _, format := range []string{"", FormatValue, FormatRecord} {
		t.Run("format="+format, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "sub", "out.jsonl")
			s := newSink(t, Options{Config: Config{Path: path, Format: format}})
			ctx := context.Background()
			if err := s.Write(ctx, batch(nil, values(`{"a":1}`, `{"a":2}`)...)); err != nil {
				t.Fatal(err)
			}
			if err := s.Write(ctx, batch(nil)); err != nil {
				t.Fatal(err)
			}
			if err := s.Write(ctx, batch(nil, values(`{"a":3}`)...)); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(ctx); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, line := range strings.Split(strings.TrimSuffix(readFile(t, path), "\n"), "\n") {
				if format == FormatRecord {
					var r struct {
						Value json.RawMessage `json:"value"`
					}
					if err := json.Unmarshal([]byte(line), &r); err != nil {
						t.Fatalf("line %q: %v", line, err)
					}
					line = string(r.Value)
				}
				got = append(got, line)
			}
			want := []string{`{"a":1}`, `{"a":2}`, `{"a":3}`}
			if !slices.Equal(got, want) {
				t.Errorf("got %q, want %q", got, want)
			}

			// Opening the file again appends.
			s2 := newSink(t, Options{Config: Config{Path: path}})
			if err := s2.Write(ctx, batch(nil, values(`4`)...)); err != nil {
				t.Fatal(err)
			}
			if got := strings.Count(readFile(t, path), "\n"); got != 4 {
				t.Errorf("got %d lines after reopening, want 4", got)
			}
		})
	}
}

func TestRejectsUnencodableValues(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.jsonl")
	s := newSink(t, Options{Config: Config{Path: path}})
	bad := rec("")
	bad.SetDoc(map[string]any{"x": math.Inf(1)})
	var rejected []connector.Rejection
	if err := s.Write(context.Background(), batch(&rejected, rec(`1`), bad, rec(`2`))); err != nil {
		t.Fatal(err)
	}
	if got, want := readFile(t, path), "1\n2\n"; got != want {
		t.Errorf("got file %q, want %q", got, want)
	}
	if len(rejected) != 1 || rejected[0].Record != bad || rejected[0].Err == nil {
		t.Errorf("got rejections %v, want the record with the infinite number", rejected)
	}

	// When the dead-letter topic cannot take the rejection, nothing is
	// written.
	failing := &connector.Batch{Records: []*connector.Record{rec(`3`), bad}, Reject: func(context.Context, []connector.Rejection) error {
		return errors.New("dead-letter topic unavailable")
	}}
	if err := s.Write(context.Background(), failing); err == nil {
		t.Fatal("got nil error when Reject failed, want one")
	}
	if got, want := readFile(t, path), "1\n2\n"; got != want {
		t.Errorf("got file %q after a failed Reject, want %q", got, want)
	}
}

// rotated lists the rotated files of path, in name order, with contents.
func rotated(t *testing.T, path string) (names, contents []string) {
	t.Helper()
	m, err := filepath.Glob(path + ".*")
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(m)
	for _, f := range m {
		names = append(names, filepath.Base(f))
		contents = append(contents, readFile(t, f))
	}
	return names, contents
}

func TestRotateBySize(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.jsonl")
	c := fakeclock.New(t0)
	s := newSink(t, Options{Config: Config{Path: path, RotateBytes: 10}, Now: c.Now})
	ctx := context.Background()
	for _, b := range [][]string{{"1", "2"}, {"3"}, {"4", "5", "6"}, {"77777777777"}, {"8"}} {
		if err := s.Write(ctx, batch(nil, values(b...)...)); err != nil {
			t.Fatal(err)
		}
		c.Add(time.Second)
	}
	names, contents := rotated(t, path)
	// "1\n2\n3\n4\n5\n6\n" is 12 bytes: batch 3 starts the second file.
	// The 12-byte batch is larger than RotateBytes and has a file of its
	// own.
	wantNames := []string{"out.jsonl.20261202T101502Z.1", "out.jsonl.20261202T101503Z.1", "out.jsonl.20261202T101504Z.1"}
	wantContents := []string{"1\n2\n3\n", "4\n5\n6\n", "77777777777\n"}
	if !slices.Equal(names, wantNames) || !slices.Equal(contents, wantContents) {
		t.Errorf("got rotated files %q holding %q, want %q holding %q", names, contents, wantNames, wantContents)
	}
	if got, want := readFile(t, path), "8\n"; got != want {
		t.Errorf("got current file %q, want %q", got, want)
	}
}

func TestRotateByAge(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.jsonl")
	c := fakeclock.New(t0)
	s := newSink(t, Options{Config: Config{Path: path, RotateInterval: units.Duration(time.Minute)}, Now: c.Now})
	ctx := context.Background()
	write := func(v string) {
		t.Helper()
		if err := s.Write(ctx, batch(nil, values(v)...)); err != nil {
			t.Fatal(err)
		}
	}
	write("1")
	c.Add(59 * time.Second)
	write("2") // 59s old: not yet
	c.Add(time.Second)
	write("3") // 60s: rotated first, "3" starts the new file
	// A file that another rotation of the same second already named gets
	// the next number.
	c.Add(time.Minute)
	if err := os.WriteFile(path+".20261202T101700Z.1", []byte("taken\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	write("4")
	// An empty file is never rotated, however old.
	c.Add(time.Hour)
	names, _ := rotated(t, path)
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	s = newSink(t, Options{Config: Config{Path: path, RotateInterval: units.Duration(time.Minute)}, Now: c.Now})
	c.Add(time.Hour)
	write("5")
	names2, contents := rotated(t, path)
	if !slices.Equal(names, names2) {
		t.Errorf("got rotated files %q after writing into an empty file, want %q as before", names2, names)
	}
	wantNames := []string{"out.jsonl.20261202T101600Z.1", "out.jsonl.20261202T101700Z.1", "out.jsonl.20261202T101700Z.2"}
	wantContents := []string{"1\n2\n", "taken\n", "3\n"}
	if !slices.Equal(names2, wantNames) || !slices.Equal(contents, wantContents) {
		t.Errorf("got rotated files %q holding %q, want %q holding %q", names2, contents, wantNames, wantContents)
	}
	if got, want := readFile(t, path), "5\n"; got != want {
		t.Errorf("got current file %q, want %q", got, want)
	}
}

// faultyFile fails writes (after writing part of the buffer, as a full disk
// does), fsyncs or truncations on demand.
type faultyFile struct {
	*os.File
	failWrite, failSync, failTruncate bool
}

func (f *faultyFile) Write(p []byte) (int, error) {
	if f.failWrite {
		n, _ := f.File.Write(p[:len(p)/2])
		return n, syscall.ENOSPC
	}
	return f.File.Write(p)
}

func (f *faultyFile) Sync() error {
	if f.failSync {
		return syscall.EIO
	}
	return f.File.Sync()
}

func (f *faultyFile) Truncate(size int64) error {
	if f.failTruncate {
		return syscall.EIO
	}
	return f.File.Truncate(size)
}

func TestFailedWriteLeavesNoPartialLine(t *testing.T) {
	tests := []struct {
		name                              string
		failWrite, failSync, failTruncate bool
		wantPermanent                     bool
	}{
		{name: "write fails halfway", failWrite: true},
		{name: "fsync fails", failSync: true, wantPermanent: true},
		{name: "write and truncate fail", failWrite: true, failTruncate: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "out.jsonl")
			var ff *faultyFile
			opts := Options{Config: Config{Path: path}, openFile: func(p string) (osFile, error) {
				f, err := openOSFile(p)
				if err != nil {
					return nil, err
				}
				ff = &faultyFile{File: f.(*os.File)}
				return ff, nil
			}}
			s := newSink(t, opts)
			ctx := context.Background()
			if err := s.Write(ctx, batch(nil, values(`{"n":1}`, `{"n":2}`)...)); err != nil {
				t.Fatal(err)
			}
			before := readFile(t, path)

			ff.failWrite, ff.failSync, ff.failTruncate = tt.failWrite, tt.failSync, tt.failTruncate
			retry := batch(nil, values(`{"n":3}`, `{"n":4}`, `{"n":5}`)...)
			err := s.Write(ctx, retry)
			if err == nil {
				t.Fatal("got nil error from a failing write, want one")
			}
			if got := errors.Is(err, connector.ErrPermanent); got != tt.wantPermanent {
				t.Errorf("got permanent=%v for %v, want %v", got, err, tt.wantPermanent)
			}
			if !tt.failTruncate {
				if got := readFile(t, path); got != before {
					t.Errorf("got file %q after the failed write, want %q as before", got, before)
				}
			}

			// The runtime retries the batch once the disk is back.
			ff.failWrite, ff.failSync, ff.failTruncate = false, false, false
			if err := s.Write(ctx, retry); err != nil {
				t.Fatalf("retry: %v", err)
			}
			want := before + "{\"n\":3}\n{\"n\":4}\n{\"n\":5}\n"
			if got := readFile(t, path); got != want {
				t.Errorf("got file %q after the retry, want %q", got, want)
			}
		})
	}
}

func TestNewCutsTornLine(t *testing.T) {
	tests := []struct{ content, want string }{
		{"", ""},
		{"1\n2\n", "1\n2\n"},
		{"1\n2\n{\"torn", "1\n2\n"},
		{"no newline at all", ""},
		{"1\n" + strings.Repeat("x", 10000), "1\n"},
	}
	for _, tt := range tests {
		path := filepath.Join(t.TempDir(), "out.jsonl")
		if err := os.WriteFile(path, []byte(tt.content), 0o644); err != nil {
			t.Fatal(err)
		}
		s := newSink(t, Options{Config: Config{Path: path}})
		if got := readFile(t, path); got != tt.want {
			t.Errorf("content %.20q: got %q after New, want %q", tt.content, got, tt.want)
		}
		if err := s.Write(context.Background(), batch(nil, rec("3"))); err != nil {
			t.Fatal(err)
		}
		if got := readFile(t, path); got != tt.want+"3\n" {
			t.Errorf("content %.20q: got %q after a write, want %q", tt.content, got, tt.want+"3\n")
		}
	}
}

// countingWriter counts the Write calls.
type countingWriter struct {
	bytes.Buffer
	writes int
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.writes++
	return w.Buffer.Write(p)
}

func TestNewWriter(t *testing.T) {
	var w countingWriter
	s, err := NewWriter(&w, FormatRecord)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Write(ctx, batch(nil, values(`{"a":1}`, `x`)...)); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(ctx, batch(nil)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	want := `{"topic":"orders","partition":0,"offset":0,"timestamp":"2026-12-02T10:15:00.123Z","key":null,"headers":{},"value":{"a":1}}` + "\n" +
		`{"topic":"orders","partition":0,"offset":1,"timestamp":"2026-12-02T10:15:00.123Z","key":null,"headers":{},"value":"x"}` + "\n"
	if got := w.String(); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if w.writes != 1 {
		t.Errorf("got %d writes for one batch, want 1", w.writes)
	}
	if err := s.Write(ctx, batch(nil, values(`1`)...)); err == nil {
		t.Error("got nil error writing after Close, want one")
	}

	if _, err := NewWriter(&w, "csv"); err == nil {
		t.Error(`got nil error for format "csv", want one`)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		cfg     Config
		wantErr string
	}{
		{Config{Path: "/tmp/x"}, ""},
		{Config{Path: "/tmp/x", Format: "record", RotateBytes: 1, RotateInterval: 1}, ""},
		{Config{}, "path is required"},
		{Config{Path: "x", Format: "csv"}, `format="csv"`},
		{Config{Path: "x", RotateBytes: -1}, "rotateBytes=-1"},
		{Config{Path: "x", RotateInterval: -1}, "rotateInterval=-1ns"},
	}
	for _, tt := range tests {
		err := tt.cfg.Validate()
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%+v: got %v, want nil", tt.cfg, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%+v: got %v, want an error containing %q", tt.cfg, err, tt.wantErr)
		}
	}
}

func TestNewRejectsAnInvalidConfig(t *testing.T) {
	_, err := New(context.Background(), Options{Config: Config{Path: filepath.Join(t.TempDir(), "x"), Format: "csv"}})
	if err == nil || !errors.Is(err, connector.ErrPermanent) || !strings.Contains(err.Error(), `format="csv"`) {
		t.Errorf("got %v, want a permanent error naming format", err)
	}
}

func TestReadOnlyFileSystemIsPermanent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.jsonl")
	_, err := New(context.Background(), Options{Config: Config{Path: path}, openFile: func(p string) (osFile, error) {
		return nil, &os.PathError{Op: "open", Path: p, Err: syscall.EROFS}
	}})
	if !errors.Is(err, connector.ErrPermanent) {
		t.Errorf("got %v, want a permanent error", err)
	}
	if err != nil && !regexp.MustCompile(`^file sink .*out\.jsonl: open: `).MatchString(err.Error()) {
		t.Errorf("got %q, want it to name the file and the operation", err)
	}
}

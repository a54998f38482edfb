package parquet

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/fakeclock"

	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/units"
)

func TestWriteFlushReadBack(t *testing.T) {
	dir := t.TempDir()
	c := fakeclock.New(t0)
	s := newSink(t, Options{Config: Config{Path: dir}, Now: c.Now})
	if got := write(t, s, recs(0, `{"id":1,"name":"a","price":2.5,"ok":true,"tags":["x"],"addr":{"city":"Oslo"}}`, `{"id":2,"name":"b"}`)...); len(got) != 0 {
		t.Fatalf("got rejections %v, want none", got)
	}
	// A second batch of fields the file already has goes into the same file.
	other := rec(2, `{"id":3,"ok":false,"price":-1.25}`)
	other.Topic, other.Partition = "returns", 7
	write(t, s, other)
	if complete, temps := listFiles(t, dir); len(complete) != 0 || len(temps) != 1 {
		t.Fatalf("before Flush: got complete %q and temporary %q files, want none and one", complete, temps)
	}
	flush(t, s)

	complete, temps := listFiles(t, dir)
	if len(complete) != 1 || len(temps) != 0 {
		t.Fatalf("got complete %q and temporary %q files, want one and none", complete, temps)
	}
	if want := "orders-20261202T101500-0001.parquet"; complete[0] != want {
		t.Errorf("got file name %q, want %q", complete[0], want)
	}
	f := readParquet(t, filepath.Join(dir, complete[0]))
	want := []map[string]any{
		meta(0, map[string]any{"id": int64(1), "name": "a", "price": 2.5, "ok": true, "tags": `["x"]`, "addr": `{"city":"Oslo"}`}),
		meta(1, map[string]any{"id": int64(2), "name": "b"}),
		meta(2, map[string]any{colTopic: "returns", colPartition: int32(7), "id": int64(3), "ok": false, "price": -1.25}),
	}
	if !reflect.DeepEqual(f.rows, want) {
		t.Errorf("got rows\n%v\nwant\n%v", f.rows, want)
	}
	wantCols := map[string]string{
		colTopic: "required STRING", colPartition: "required INT32", colOffset: "required INT64",
		colTimestamp: "required TIMESTAMP(isAdjustedToUTC=true,unit=MILLIS)",
		"id":         "optional INT64", "name": "optional STRING", "price": "optional DOUBLE", "ok": "optional BOOLEAN",
		"tags": "optional STRING", "addr": "optional STRING",
	}
	if !reflect.DeepEqual(f.columns, wantCols) {
		t.Errorf("got columns %v, want %v", f.columns, wantCols)
	}
	if got := f.metadata["sluice.pipeline"]; got != "orders" {
		t.Errorf("got sluice.pipeline metadata %q, want %q", got, "orders")
	}
	if _, ok := s.FlushDue(); ok {
		t.Error("FlushDue after Flush: got due, want nothing staged")
	}

	// The next file gets the next number; a Flush with nothing staged
	// writes nothing.
	c.Add(time.Second)
	write(t, s, rec(3, `{"id":4}`))
	flush(t, s)
	flush(t, s)
	complete, _ = listFiles(t, dir)
	if want := []string{"orders-20261202T101500-0001.parquet", "orders-20261202T101501-0002.parquet"}; !slices.Equal(complete, want) {
		t.Errorf("got files %q, want %q", complete, want)
	}
}

func TestInferredSchema(t *testing.T) {
	tests := []struct {
		name     string
		values   []string
		wantCols map[string]string // user columns only
		wantRows []map[string]any  // user fields only
	}{
		{
			name:     "integers and floats widen to double",
			values:   []string{`{"n":1}`, `{"n":2.5}`, `{"n":9007199254740993}`},
			wantCols: map[string]string{"n": "optional DOUBLE"},
			wantRows: []map[string]any{{"n": 1.0}, {"n": 2.5}, {"n": 9007199254740992.0}},
		},
		{
			name:     "mixed types become JSON text",
			values:   []string{`{"v":1}`, `{"v":"one"}`, `{"v":true}`, `{"v":[1]}`, `{"v":null}`},
			wantCols: map[string]string{"v": "optional STRING"},
			wantRows: []map[string]any{{"v": "1"}, {"v": `"one"`}, {"v": "true"}, {"v": "[1]"}, {}},
		},
		{
			name:     "union of fields, missing ones null",
			values:   []string{`{"a":"x"}`, `{"b":false}`, `{}`},
			wantCols: map[string]string{"a": "optional STRING", "b": "optional BOOLEAN"},
			wantRows: []map[string]any{{"a": "x"}, {"b": false}, {}},
		},
		{
			name:     "a field only ever null has no column",
			values:   []string{`{"a":null,"b":1}`},
			wantCols: map[string]string{"b": "optional INT64"},
			wantRows: []map[string]any{{"b": int64(1)}},
		},
		{
			name:     "nested values are JSON text, keys sorted",
			values:   []string{`{"o":{"z":1,"a":[true,null,"s"]}}`},
			wantCols: map[string]string{"o": "optional STRING"},
			wantRows: []map[string]any{{"o": `{"a":[true,null,"s"],"z":1}`}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s := newSink(t, Options{Config: Config{Path: dir}})
			if got := write(t, s, recs(0, tt.values...)...); len(got) != 0 {
				t.Fatalf("got rejections %v, want none", got)
			}
			flush(t, s)
			complete, _ := listFiles(t, dir)
			if len(complete) != 1 {
				t.Fatalf("got files %q, want one", complete)
			}
			f := readParquet(t, filepath.Join(dir, complete[0]))
			cols := userColumns(f.columns)
			if !reflect.DeepEqual(cols, tt.wantCols) {
				t.Errorf("got columns %v, want %v", cols, tt.wantCols)
			}
			var want []map[string]any
			for i, r := range tt.wantRows {
				want = append(want, meta(int64(i), r))
			}
			if !reflect.DeepEqual(f.rows, want) {
				t.Errorf("got rows %v, want %v", f.rows, want)
			}
		})
	}
}

func userColumns(cols map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range cols {
		if !isMetadata(k) {
			out[k] = v
		}
	}
	return out
}

func TestInferredSchemaWidensIntoANewFile(t *testing.T) {
	dir := t.TempDir()
	s := newSink(t, Options{Config: Config{Path: dir}})
	write(t, s, recs(0, `{"a":1}`, `{"a":2}`)...)
	write(t, s, recs(2, `{"a":3}`)...)                // fits: same file
	write(t, s, recs(3, `{"a":4,"b":"new"}`)...)      // a new field: a new file
	write(t, s, recs(4, `{"a":5}`, `{"a":"six"}`)...) // a new type: a third file
	if got := len(s.files); got != 3 {
		t.Errorf("got %d open files, want 3", got)
	}
	flush(t, s)
	complete, _ := listFiles(t, dir)
	if len(complete) != 3 {
		t.Fatalf("got files %q, want 3", complete)
	}
	var got [][]map[string]any
	var cols []map[string]string
	for _, name := range complete {
		f := readParquet(t, filepath.Join(dir, name))
		got = append(got, f.rows)
		cols = append(cols, userColumns(f.columns))
	}
	want := [][]map[string]any{
		{meta(0, map[string]any{"a": int64(1)}), meta(1, map[string]any{"a": int64(2)}), meta(2, map[string]any{"a": int64(3)})},
		{meta(3, map[string]any{"a": int64(4), "b": "new"})},
		{meta(4, map[string]any{"a": "5"}), meta(5, map[string]any{"a": `"six"`})},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got rows %v, want %v", got, want)
	}
	wantCols := []map[string]string{
		{"a": "optional INT64"},
		{"a": "optional INT64", "b": "optional STRING"},
		{"a": "optional STRING", "b": "optional STRING"},
	}
	if !reflect.DeepEqual(cols, wantCols) {
		t.Errorf("got columns %v, want %v", cols, wantCols)
	}
}

var ordersSchema = map[string]any{
	"type": "object",
	"properties": map[string]any{
		"id":       map[string]any{"type": "integer"},
		"amount":   map[string]any{"type": "number"},
		"paid":     map[string]any{"type": "boolean"},
		"customer": map[string]any{"type": []any{"string", "null"}},
		"at":       map[string]any{"type": "string", "format": "date-time"},
		"items":    map[string]any{"type": "array"},
		"address":  map[string]any{"type": "object"},
		"any":      map[string]any{},
		"qty":      map[string]any{"type": []any{"integer", "number"}},
	},
	"required": []any{"id", "at", "customer"},
}

func TestSchemaFromJSONSchema(t *testing.T) {
	dir := t.TempDir()
	s := newSink(t, Options{Config: Config{Path: dir}, Schema: ordersSchema})
	got := write(t, s, recs(0,
		`{"id":1,"amount":10,"paid":true,"customer":"c1","at":"2026-12-02T10:15:00.250+01:00","items":[{"sku":"x"}],"address":{"city":"Oslo"},"any":"s","qty":2,"extra":"dropped"}`,
		`{"id":2e0,"at":"2026-12-02T11:00:00Z","customer":null}`,
	)...)
	if len(got) != 0 {
		t.Fatalf("got rejections %v, want none", got)
	}
	flush(t, s)
	complete, _ := listFiles(t, dir)
	f := readParquet(t, filepath.Join(dir, complete[0]))
	wantCols := map[string]string{
		"id": "required INT64", "amount": "optional DOUBLE", "paid": "optional BOOLEAN",
		"customer": "optional STRING", "at": "required TIMESTAMP(isAdjustedToUTC=true,unit=MILLIS)",
		"items": "optional STRING", "address": "optional STRING", "any": "optional STRING", "qty": "optional DOUBLE",
	}
	if cols := userColumns(f.columns); !reflect.DeepEqual(cols, wantCols) {
		t.Errorf("got columns %v, want %v", cols, wantCols)
	}
	want := []map[string]any{
		meta(0, map[string]any{"id": int64(1), "amount": 10.0, "paid": true, "customer": "c1",
			"at": time.Date(2026, 12, 2, 9, 15, 0, 250e6, time.UTC), "items": `[{"sku":"x"}]`,
			"address": `{"city":"Oslo"}`, "any": `"s"`, "qty": 2.0}),
		meta(1, map[string]any{"id": int64(2), "at": time.Date(2026, 12, 2, 11, 0, 0, 0, time.UTC)}),
	}
	if !reflect.DeepEqual(f.rows, want) {
		t.Errorf("got rows\n%v\nwant\n%v", f.rows, want)
	}
}

func TestRejections(t *testing.T) {
	valid := `"id":1,"at":"2026-12-02T10:15:00Z","customer":"c"`
	tests := []struct {
		name    string
		schema  map[string]any
		value   string // nil when "-"
		wantErr string
	}{
		{"not JSON", nil, `{"id":`, "value is not JSON"},
		{"null value", nil, "-", "value is null, want a JSON object"},
		{"array value", nil, `[1,2]`, "value is an array, want a JSON object"},
		{"number value", nil, `42`, "value is number 42, want a JSON object"},
		{"field named like a metadata column", nil, `{"_offset":1}`, `field "_offset" has the name of a metadata column`},
		{"string for integer", ordersSchema, `{"id":"1","at":"2026-12-02T10:15:00Z","customer":"c"}`, `field "id": want an integer, got string "1"`},
		{"fraction for integer", ordersSchema, `{"id":1.5,"at":"2026-12-02T10:15:00Z","customer":"c"}`, `field "id": want an integer, got number 1.5`},
		{"missing required", ordersSchema, `{"at":"2026-12-02T10:15:00Z","customer":"c"}`, `field "id" is required and missing`},
		{"null required", ordersSchema, `{"id":null,"at":"2026-12-02T10:15:00Z","customer":"c"}`, `field "id" is required and null`},
		{"bad date-time", ordersSchema, `{"id":1,"at":"yesterday","customer":"c"}`, `field "at": want an RFC 3339 date-time, got "yesterday"`},
		{"number for boolean", ordersSchema, `{` + valid + `,"paid":1}`, `field "paid": want a boolean, got number 1`},
		{"string for object", ordersSchema, `{` + valid + `,"address":"Oslo"}`, `field "address": want an object, got string "Oslo"`},
		{"object for array", ordersSchema, `{` + valid + `,"items":{}}`, `field "items": want an array, got an object`},
		{"object for string", ordersSchema, `{"id":1,"at":"2026-12-02T10:15:00Z","customer":{}}`, `field "customer": want a string, got an object`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s := newSink(t, Options{Config: Config{Path: dir}, Schema: tt.schema})
			bad := rec(1, tt.value)
			if tt.value == "-" {
				bad.SetValue(nil)
			}
			good := fmt.Sprintf(`{%s}`, valid)
			rejected := write(t, s, rec(0, good), bad, rec(2, good))
			if len(rejected) != 1 || rejected[0].Record != bad {
				t.Fatalf("got rejections %v, want the record at offset 1", rejected)
			}
			if got := rejected[0].Err.Error(); !strings.Contains(got, tt.wantErr) {
				t.Errorf("got error %q, want it to contain %q", got, tt.wantErr)
			}
			flush(t, s)
			var offsets []int64
			for _, r := range readAll(t, dir) {
				offsets = append(offsets, r[colOffset].(int64))
			}
			if want := []int64{0, 2}; !slices.Equal(offsets, want) {
				t.Errorf("got offsets %v written, want %v", offsets, want)
			}
		})
	}
}

func TestRejectFailureStagesNothing(t *testing.T) {
	s := newSink(t, Options{Config: Config{Path: t.TempDir()}})
	b := &connector.Batch{Records: recs(0, `{"a":1}`, `not json`), Reject: func(context.Context, []connector.Rejection) error {
		return errors.New("dead-letter topic unavailable")
	}}
	if err := s.Write(context.Background(), b); err == nil || !strings.Contains(err.Error(), "dead-letter topic unavailable") {
		t.Fatalf("got %v, want the Reject error", err)
	}
	if _, ok := s.FlushDue(); ok {
		t.Error("got something staged after a failed Reject, want nothing")
	}
}

func TestPartitions(t *testing.T) {
	dir := t.TempDir()
	part := func(r *connector.Record) (string, error) {
		doc, _ := r.Doc()
		p, ok := doc.(map[string]any)["p"].(string)
		if !ok {
			return "", errors.New("no p")
		}
		return p, nil
	}
	s := newSink(t, Options{Config: Config{Path: dir}, Partition: part})
	rejected := write(t, s, recs(0,
		`{"p":"dt=2026-12-02","n":0}`,
		`{"p":"dt=2026-12-03","n":1}`,
		`{"p":"dt=2026-12-02","n":2}`,
		`{"n":3}`,
		`{"p":"../escape","n":4}`,
		`{"p":"a/b","n":5}`,
		`{"p":"","n":6}`,
		`{"p":".hidden","n":7}`,
		`{"p":"..","n":8}`,
		`{"p":"nul\u0000","n":9}`,
		`{"p":"`+strings.Repeat("x", 256)+`","n":10}`,
	)...)
	var offsets []int64
	for _, r := range rejected {
		offsets = append(offsets, r.Record.Offset)
	}
	if want := []int64{3, 4, 5, 6, 7, 8, 9, 10}; !slices.Equal(offsets, want) {
		t.Errorf("got rejected offsets %v, want %v", offsets, want)
	}
	if len(rejected) > 0 && !strings.Contains(rejected[0].Err.Error(), "partition: no p") {
		t.Errorf("got %q, want the partition function's error", rejected[0].Err)
	}
	flush(t, s)
	complete, _ := listFiles(t, dir)
	want := []string{"dt=2026-12-02/orders-20261202T101500-0001.parquet", "dt=2026-12-03/orders-20261202T101500-0002.parquet"}
	if c := fakeTimes(complete); !slices.Equal(c, want) {
		t.Errorf("got files %q, want %q", c, want)
	}
	var ns [][]int64
	for _, name := range complete {
		var n []int64
		for _, r := range readParquet(t, filepath.Join(dir, name)).rows {
			n = append(n, r["n"].(int64))
		}
		ns = append(ns, n)
	}
	if want := [][]int64{{0, 2}, {1}}; !reflect.DeepEqual(ns, want) {
		t.Errorf("got n per file %v, want %v", ns, want)
	}
}

// fakeTimes replaces the times in file names by t0's, for tests that use
// the real clock.
func fakeTimes(names []string) []string {
	re := regexp.MustCompile(`-\d{8}T\d{6}-`)
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = re.ReplaceAllString(n, "-20261202T101500-")
	}
	return out
}

func TestCheckPartition(t *testing.T) {
	tests := []struct {
		p       string
		wantErr string
	}{
		{"dt=2026-12-02", ""},
		{"région=å", ""},
		{"a.b", ""},
		{"", "partition is empty"},
		{"a/b", "must name one directory"},
		{`a\b`, "must name one directory"},
		{"..", "starts with a dot"},
		{"a..b", `holds ".."`},
		{".", "starts with a dot"},
		{".x", "starts with a dot"},
		{"tab\there", "must name one directory"},
		{"\xff", "not UTF-8"},
		{strings.Repeat("x", 255), ""},
		{strings.Repeat("x", 256), "longer than 255 bytes"},
	}
	for _, tt := range tests {
		err := checkPartition(tt.p)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%.20q: got %v, want nil", tt.p, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%.20q: got %v, want an error containing %q", tt.p, err, tt.wantErr)
		}
	}
}

func TestRollBySize(t *testing.T) {
	dir := t.TempDir()
	c := fakeclock.New(t0)
	s := newSink(t, Options{Config: Config{Path: dir, RollBytes: 4 << 10, RowGroupBytes: 1 << 10}, Now: c.Now})
	if _, ok := s.FlushDue(); ok {
		t.Fatal("FlushDue of a new sink: got due, want nothing staged")
	}
	write(t, s, recs(0, `{"a":0,"pad":""}`)...)
	due, ok := s.FlushDue()
	if want := t0.Add(DefaultRollInterval); !ok || !due.Equal(want) {
		t.Errorf("FlushDue with a small file: got %v, %v; want %v, true", due, ok, want)
	}
	// Past RollBytes the file is due now, and further records go into a
	// new file even if the runtime has not flushed yet.
	var vals []string
	for i := range 200 {
		// Hex digits, which compression cannot shrink much.
		vals = append(vals, fmt.Sprintf(`{"a":%d,"pad":"%x"}`, i, sha256.Sum256([]byte{byte(i)})))
	}
	write(t, s, recs(1, vals...)...)
	if got := len(s.files); got != 1 {
		t.Errorf("got %d open files, want 1: a write goes into the file open when it starts", got)
	}
	c.Add(time.Second)
	due, ok = s.FlushDue()
	if !ok || !due.Equal(c.Now()) {
		t.Errorf("FlushDue past RollBytes: got %v, %v; want now (%v), true", due, ok, c.Now())
	}
	write(t, s, recs(201, `{"a":201}`)...)
	if got := len(s.files); got != 2 {
		t.Errorf("got %d open files after the first filled, want 2", got)
	}
	flush(t, s)
	complete, _ := listFiles(t, dir)
	if len(complete) != 2 {
		t.Fatalf("got files %q, want 2", complete)
	}
	f := readParquet(t, filepath.Join(dir, complete[0]))
	if f.rowGroups < 2 {
		t.Errorf("got %d row groups with RowGroupBytes 1KiB, want several", f.rowGroups)
	}
	if rows := readAll(t, dir); len(rows) != 202 {
		t.Errorf("got %d rows, want 202", len(rows))
	}
}

func TestRollByAge(t *testing.T) {
	dir := t.TempDir()
	c := fakeclock.New(t0)
	part := func(r *connector.Record) (string, error) { return fmt.Sprintf("p=%d", r.Offset), nil }
	s := newSink(t, Options{Config: Config{Path: dir, RollInterval: units.Duration(time.Minute), MaxOpenFiles: 3}, Now: c.Now, Partition: part})
	write(t, s, rec(0, `{}`))
	c.Add(10 * time.Second)
	write(t, s, rec(1, `{}`))
	due, ok := s.FlushDue()
	if want := t0.Add(time.Minute); !ok || !due.Equal(want) {
		t.Errorf("got %v, %v; want the oldest file's roll time %v, true", due, ok, want)
	}
	// MaxOpenFiles open: due now.
	write(t, s, rec(2, `{}`))
	due, ok = s.FlushDue()
	if !ok || !due.Equal(c.Now()) {
		t.Errorf("with MaxOpenFiles open: got %v, %v; want now (%v), true", due, ok, c.Now())
	}
	flush(t, s)
	c.Add(time.Hour)
	write(t, s, rec(3, `{}`))
	due, ok = s.FlushDue()
	if want := c.Now().Add(time.Minute); !ok || !due.Equal(want) {
		t.Errorf("after a flush: got %v, %v; want %v, true", due, ok, want)
	}
}

func TestCloseDiscardsStagedFiles(t *testing.T) {
	dir := t.TempDir()
	s := newSink(t, Options{Config: Config{Path: dir}})
	write(t, s, recs(0, `{"a":1}`)...)
	flush(t, s)
	write(t, s, recs(1, `{"a":2}`)...)
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	complete, temps := listFiles(t, dir)
	if len(complete) != 1 || len(temps) != 0 {
		t.Errorf("got complete %q and temporary %q files after Close, want one and none", complete, temps)
	}
	if err := s.Write(context.Background(), &connector.Batch{Records: recs(2, `{}`)}); err == nil {
		t.Error("got nil error writing after Close, want one")
	}
}

func TestFailedStagingFailsTheNextFlush(t *testing.T) {
	dir := t.TempDir()
	part := func(r *connector.Record) (string, error) {
		doc, _ := r.Doc()
		return doc.(map[string]any)["p"].(string), nil
	}
	s := newSink(t, Options{Config: Config{Path: dir}, Partition: part})
	write(t, s, recs(0, `{"p":"good"}`)...)
	// A regular file where the partition's directory should be: staging
	// fails as an I/O error does.
	if err := os.WriteFile(filepath.Join(dir, "blocked"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	err := s.Write(context.Background(), &connector.Batch{Records: recs(1, `{"p":"good"}`, `{"p":"blocked"}`)})
	if err == nil || !strings.Contains(err.Error(), "parquet: stage orders/blocked: ") {
		t.Fatalf("got %v, want an error staging orders/blocked", err)
	}
	if _, ok := s.FlushDue(); !ok {
		t.Error("got nothing due after a failed write, want a flush to report it")
	}
	if err := s.Flush(context.Background()); err == nil {
		t.Fatal("got nil error from Flush after records were discarded, want one")
	}
	if complete, temps := listFiles(t, dir); len(complete) != 0 || len(temps) != 0 {
		t.Errorf("got complete %q and temporary %q files, want none: the staged records were discarded", complete, temps)
	}
	// The sink works again for the records the runtime sends again.
	write(t, s, recs(0, `{"p":"good"}`, `{"p":"good"}`)...)
	flush(t, s)
	if rows := readAll(t, dir); len(rows) != 2 {
		t.Errorf("got %d rows, want 2", len(rows))
	}
}

func TestCompression(t *testing.T) {
	for _, tt := range []struct{ config, want string }{{"", "SNAPPY"}, {"snappy", "SNAPPY"}, {"zstd", "ZSTD"}, {"gzip", "GZIP"}, {"none", "UNCOMPRESSED"}} {
		t.Run(tt.want, func(t *testing.T) {
			dir := t.TempDir()
			s := newSink(t, Options{Config: Config{Path: dir, Compression: tt.config}})
			write(t, s, recs(0, `{"a":"x"}`, `{"a":"y"}`)...)
			flush(t, s)
			complete, _ := listFiles(t, dir)
			f := readParquet(t, filepath.Join(dir, complete[0]))
			for _, c := range f.codecs {
				if c != tt.want {
					t.Errorf("got codec %s, want %s", c, tt.want)
				}
			}
			if len(f.rows) != 2 || f.rows[1]["a"] != "y" {
				t.Errorf("got rows %v, want a=x and a=y", f.rows)
			}
		})
	}
}

func TestFileNamesNeverReplaceAFile(t *testing.T) {
	dir := t.TempDir()
	c := fakeclock.New(t0)
	// An earlier run in the same second wrote file 0001; the new sink
	// counts from 1 again.
	taken := filepath.Join(dir, "orders-20261202T101500-0001.parquet")
	if err := os.WriteFile(taken, []byte("earlier"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := newSink(t, Options{Config: Config{Path: dir}, Now: c.Now})
	write(t, s, recs(0, `{"a":1}`)...)
	// Another file takes the next name while ours is being written.
	if err := os.WriteFile(filepath.Join(dir, "orders-20261202T101500-0002.parquet"), []byte("racing"), 0o644); err != nil {
		t.Fatal(err)
	}
	flush(t, s)
	complete, _ := listFiles(t, dir)
	want := []string{"orders-20261202T101500-0001.parquet", "orders-20261202T101500-0002.parquet", "orders-20261202T101500-0003.parquet"}
	if !slices.Equal(complete, want) {
		t.Errorf("got files %q, want %q", complete, want)
	}
	if b, _ := os.ReadFile(taken); string(b) != "earlier" {
		t.Errorf("got %q in the earlier file, want it untouched", b)
	}
	if rows := readParquet(t, filepath.Join(dir, want[2])).rows; len(rows) != 1 {
		t.Errorf("got %d rows in the new file, want 1", len(rows))
	}
}

func TestNewValidates(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		opts    Options
		wantErr string
	}{
		{"no path", Options{Pipeline: "p"}, "parquet: path is required"},
		{"no pipeline", Options{Config: Config{Path: dir}}, "parquet: pipeline name is empty"},
		{"pipeline with a slash", Options{Config: Config{Path: dir}, Pipeline: "a/b"}, "must name one directory"},
		{"compression", Options{Config: Config{Path: dir, Compression: "lz4"}, Pipeline: "p"}, `parquet: compression="lz4": want snappy, zstd, gzip or none`},
		{"rollBytes", Options{Config: Config{Path: dir, RollBytes: -1}, Pipeline: "p"}, "parquet: rollBytes=-1"},
		{"rollInterval", Options{Config: Config{Path: dir, RollInterval: -1}, Pipeline: "p"}, "parquet: rollInterval=-1ns"},
		{"rowGroupBytes", Options{Config: Config{Path: dir, RowGroupBytes: -1}, Pipeline: "p"}, "parquet: rowGroupBytes=-1"},
		{"maxOpenFiles", Options{Config: Config{Path: dir, MaxOpenFiles: -1}, Pipeline: "p"}, "parquet: maxOpenFiles=-1"},
		{"schema with a metadata name", Options{Config: Config{Path: dir}, Pipeline: "p", Schema: map[string]any{"properties": map[string]any{"_topic": map[string]any{"type": "string"}}}}, `schema property "_topic": field "_topic" has the name of a metadata column`},
		{"schema with an unknown type", Options{Config: Config{Path: dir}, Pipeline: "p", Schema: map[string]any{"properties": map[string]any{"a": map[string]any{"type": "decimal"}}}}, `schema property "a": unknown type "decimal"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(context.Background(), tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("got %v, want an error containing %q", err, tt.wantErr)
			}
			if !errors.Is(err, connector.ErrPermanent) {
				t.Errorf("got %v, want a permanent error", err)
			}
		})
	}
}

func TestNonFiniteNumbers(t *testing.T) {
	dir := t.TempDir()
	s := newSink(t, Options{Config: Config{Path: dir}})
	nan := rec(0, "")
	nan.SetDoc(map[string]any{"x": math.NaN(), "o": map[string]any{"y": math.Inf(1)}})
	// A double column holds NaN; JSON text cannot hold infinity.
	rejected := write(t, s, nan)
	if len(rejected) != 1 || !strings.Contains(rejected[0].Err.Error(), `field "o"`) {
		t.Errorf("got rejections %v, want the record for field o", rejected)
	}
}

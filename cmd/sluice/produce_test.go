package main

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/client"
)

func TestProduceEncoder(t *testing.T) {
	tests := []struct {
		name string
		o    produceOptions
		line string
		want string // "" and err: an error
		err  string
	}{
		{name: "text", o: produceOptions{format: "text", partition: -1}, line: "hello", want: `{"value_base64":"aGVsbG8="}`},
		{name: "empty", o: produceOptions{format: "text", partition: -1}, line: "", want: `{"value_base64":""}`},
		{name: "compact json", o: produceOptions{format: "text", partition: -1}, line: `{"a":[1,true]}`, want: `{"value":{"a":[1,true]}}`},
		{name: "spaced json", o: produceOptions{format: "text", partition: -1}, line: `{"a": 1}`, want: `{"value_base64":"eyJhIjogMX0="}`},
		{name: "null", o: produceOptions{format: "text", partition: -1}, line: `null`, want: `{"value_base64":"bnVsbA=="}`},
		{name: "number", o: produceOptions{format: "text", partition: -1}, line: `-12`, want: `{"value":-12}`},
		{name: "invalid utf-8", o: produceOptions{format: "text", partition: -1}, line: "\"\xff\"", want: `{"value_base64":"Iv8i"}`},
		{
			name: "text with fixed fields",
			o:    produceOptions{format: "text", partition: 2, key: "k\"", keySet: true, headers: []string{"a=b"}},
			line: "x", want: `{"key":"k\"","partition":2,"headers":{"a":"b"},"value_base64":"eA=="}`,
		},
		{name: "empty key", o: produceOptions{format: "text", partition: -1, keySet: true}, line: "x", want: `{"key":"","value_base64":"eA=="}`},
		{name: "json as is", o: produceOptions{format: "json", partition: -1}, line: ` {"value": 1} `, want: `{"value": 1}`},
		{
			name: "json with defaults",
			o:    produceOptions{format: "ndjson", partition: 1, key: "k", keySet: true, headers: []string{"a=b", "c=d"}},
			line: `{"value":1,"partition":0,"headers":{"a":"x"}}`,
			want: `{"headers":{"a":"x","c":"d"},"key":"k","partition":0,"value":1}`,
		},
		{
			name: "json with a binary key",
			o:    produceOptions{format: "json", partition: -1, key: "k", keySet: true},
			line: `{"key_base64":"AA=="}`, want: `{"key_base64":"AA=="}`,
		},
		{name: "json not an object", o: produceOptions{format: "json", partition: -1, keySet: true}, line: `[1]`, err: "not a JSON record object"},
		{name: "json null", o: produceOptions{format: "json", partition: -1, keySet: true}, line: `null`, err: "not a JSON record object"},
		{name: "bad format", o: produceOptions{format: "csv", partition: -1}, err: `--format "csv": want text, json or ndjson`},
		{name: "bad header", o: produceOptions{format: "text", partition: -1, headers: []string{"x"}}, err: `--header "x": want key=value`},
		{name: "bad partition", o: produceOptions{format: "text", partition: -2}, err: `--partition -2: want a partition number, or -1`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, err := newProduceEncoder(tc.o)
			var out []byte
			if err == nil {
				out, err = e.encode(nil, []byte(tc.line))
			}
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("got %q, %v; want error %q", out, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := string(out); got != tc.want+"\n" {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

// collect runs readBatches over input and returns each batch's line
// numbers.
func collect(t *testing.T, in io.Reader, o produceOptions, maxRecs, maxBytes int, linger time.Duration) ([][]int, error) {
	t.Helper()
	e, err := newProduceEncoder(o)
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan *produceBatch)
	errc := make(chan error, 1)
	go func() { errc <- readBatches(context.Background(), in, e, maxRecs, maxBytes, linger, out) }()
	var got [][]int
	for b := range out {
		if n := strings.Count(string(b.body), "\n"); n != len(b.lines) {
			t.Errorf("batch of %d lines has %d records", len(b.lines), n)
		}
		got = append(got, b.lines)
	}
	return got, <-errc
}

func TestReadBatches(t *testing.T) {
	text := produceOptions{format: "text", partition: -1}
	ndjson := produceOptions{format: "json", partition: -1}
	for _, tc := range []struct {
		name     string
		in       string
		o        produceOptions
		maxRecs  int
		maxBytes int
		want     [][]int
		err      string
	}{
		{name: "by records", in: "a\nb\nc\nd\ne", o: text, maxRecs: 2, maxBytes: 1 << 20, want: [][]int{{1, 2}, {3, 4}, {5}}},
		{name: "crlf and empty lines", in: "a\r\n\r\nb\n", o: text, maxRecs: 10, maxBytes: 1 << 20, want: [][]int{{1, 2, 3}}},
		{name: "by bytes", in: strings.Repeat("0123456789\n", 5), o: text, maxRecs: 100, maxBytes: 80, want: [][]int{{1, 2}, {3, 4}, {5}}},
		{name: "a long line alone", in: "a\n" + strings.Repeat("x", 300<<10) + "\nb\n", o: text, maxRecs: 100, maxBytes: 1000,
			want: [][]int{{1}, {2}, {3}}},
		{name: "json skips blank lines", in: "{}\n\n  \n{}\n", o: ndjson, maxRecs: 100, maxBytes: 1 << 20, want: [][]int{{1, 4}}},
		{name: "nothing", in: "", o: text, maxRecs: 10, maxBytes: 100},
		{name: "a bad line drops its batch", in: "{}\n{}\n{}\nx\n{}\n", o: produceOptions{format: "json", partition: 3},
			maxRecs: 2, maxBytes: 1 << 20, want: [][]int{{1, 2}}, err: "line 4: not a JSON record object"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := collect(t, strings.NewReader(tc.in), tc.o, tc.maxRecs, tc.maxBytes, time.Hour)
			if (err == nil) != (tc.err == "") || err != nil && err.Error() != tc.err {
				t.Fatalf("got error %v, want %q", err, tc.err)
			}
			if !equalBatches(got, tc.want) {
				t.Errorf("got batches %v, want %v", got, tc.want)
			}
		})
	}
}

func equalBatches(a, b [][]int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if len(a[i]) != len(b[i]) {
			return false
		}
		for j := range a[i] {
			if a[i][j] != b[i][j] {
				return false
			}
		}
	}
	return true
}

// TestReadBatchesLinger checks that a partial batch leaves once its first
// line has waited the linger, while the input stays open.
func TestReadBatchesLinger(t *testing.T) {
	pr, pw := io.Pipe()
	e, _ := newProduceEncoder(produceOptions{format: "text", partition: -1})
	out := make(chan *produceBatch)
	errc := make(chan error, 1)
	go func() { errc <- readBatches(context.Background(), pr, e, 100, 1<<20, 20*time.Millisecond, out) }()
	pw.Write([]byte("a\nb\n"))
	select {
	case b := <-out:
		if len(b.lines) != 2 {
			t.Errorf("got %d lines, want 2", len(b.lines))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no batch after the linger")
	}
	pw.Write([]byte("c\n"))
	pw.Close()
	b := <-out
	if len(b.lines) != 1 || b.lines[0] != 3 {
		t.Errorf("got lines %v, want [3]", b.lines)
	}
	if _, ok := <-out; ok {
		t.Error("more batches")
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

func TestProduceError(t *testing.T) {
	b := &produceBatch{lines: []int{10, 12, 13}}
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&client.Error{StatusCode: 422, Code: 422, Message: "record 1: value_base64 is not valid base64"},
			"produce to t, line 12: value_base64 is not valid base64 (HTTP 422); nothing of that request was written (5 records before it were)"},
		{&client.Error{StatusCode: 404, Code: 404, Message: "unknown topic"},
			"produce to t, lines 10-13: unknown topic (HTTP 404); nothing of that request was written (5 records before it were)"},
		{&client.Error{StatusCode: 422, Code: 422, Message: "record 9: out of the batch"},
			"produce to t, lines 10-13: record 9: out of the batch (HTTP 422); nothing of that request was written (5 records before it were)"},
		{errors.New("boom"), "produce to t, lines 10-13: boom; nothing of that request was written (5 records before it were)"},
	} {
		if got := produceError("t", b, 5, tc.err).Error(); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
}

func TestParsePosition(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{in: "start", want: "earliest"},
		{in: "oldest", want: "earliest"},
		{in: "END", want: "latest"},
		{in: "17", want: "17"},
		{in: "@2024-05-01T12:00:00Z", want: "@2024-05-01T12:00:00Z"},
		{in: "-3", err: `-o "-3": want start, end, an offset, or @<RFC 3339 time or Unix milliseconds>`},
	} {
		p, err := parsePosition("-o", tc.in)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("%s: got %v, want error %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || p.String() != tc.want {
			t.Errorf("%s: got %s, %v; want %s", tc.in, p, err, tc.want)
		}
	}
}

func TestHumanBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1536: "1.5 KiB", 5 << 20: "5.0 MiB", 3 << 40: "3.0 TiB", 5 << 50: "5120.0 TiB"} {
		if got := humanBytes(n); got != want {
			t.Errorf("humanBytes(%d): got %s, want %s", n, got, want)
		}
	}
}

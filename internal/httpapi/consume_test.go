package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/record"
)

func TestParseOffsetSpec(t *testing.T) {
	ms := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC).UnixMilli()
	tests := []struct {
		in         string
		want       offsetSpec
		wantStatus int
	}{
		{in: "0", want: offsetSpec{specOffset, 0}},
		{in: "42", want: offsetSpec{specOffset, 42}},
		{in: "9223372036854775807", want: offsetSpec{specOffset, 1<<63 - 1}},
		{in: "earliest", want: offsetSpec{kind: specEarliest}},
		{in: "LATEST", want: offsetSpec{kind: specLatest}},
		{in: "@1714564800000", want: offsetSpec{specTime, ms}},
		{in: "@2024-05-01T12:00:00Z", want: offsetSpec{specTime, ms}},
		{in: "@2024-05-01T14:00:00+02:00", want: offsetSpec{specTime, ms}},
		{in: "@2024-05-01T14:00:00 02:00", want: offsetSpec{specTime, ms}}, // "+" decoded as a space
		{in: "@2024-05-01T12:00:00.5Z", want: offsetSpec{specTime, ms + 500}},
		{in: "@1960-01-01T00:00:00Z", want: offsetSpec{specTime, 0}},
		{in: "", wantStatus: 400},
		{in: "abc", wantStatus: 400},
		{in: "1.5", wantStatus: 400},
		{in: "+5", wantStatus: 400},
		{in: " 5", wantStatus: 400},
		{in: "-", wantStatus: 400},
		{in: "-1", wantStatus: 422},
		{in: "9223372036854775808", wantStatus: 422},
		{in: "@", wantStatus: 400},
		{in: "@yesterday", wantStatus: 400},
		{in: "@2024-05-01", wantStatus: 400},
		{in: "@-5", wantStatus: 400},
		{in: "@99999999999999999999", wantStatus: 422},
	}
	for _, tt := range tests {
		got, err := parseOffsetSpec("offset", tt.in)
		if tt.wantStatus != 0 {
			if err == nil || statusOf(err) != tt.wantStatus || !strings.HasPrefix(err.Error(), "offset: ") {
				t.Errorf("parseOffsetSpec(%q): got %v, %v; want a %d error naming the parameter", tt.in, got, err, tt.wantStatus)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parseOffsetSpec(%q): got %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

// FuzzParseOffsetSpec checks that the parser never panics, that what it
// accepts is well formed, and that a parsed spec survives formatting.
func FuzzParseOffsetSpec(f *testing.F) {
	for _, s := range []string{"0", "42", "earliest", "latest", "@1714564800000", "@2024-05-01T12:00:00Z", "@2024-05-01T14:00:00 02:00", "-1", "@", "9223372036854775808"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		spec, err := parseOffsetSpec("offset", s)
		if err != nil {
			if st := statusOf(err); st != 400 && st != 422 {
				t.Fatalf("parseOffsetSpec(%q): status %d, want 400 or 422", s, st)
			}
			return
		}
		if spec.n < 0 {
			t.Fatalf("parseOffsetSpec(%q) = %+v: negative", s, spec)
		}
		again, err := parseOffsetSpec("offset", spec.String())
		if err != nil || again != spec {
			t.Fatalf("parseOffsetSpec(%q) = %+v, formatted %q, parsed again %+v, %v", s, spec, spec.String(), again, err)
		}
	})
}

func TestConsumeRecords(t *testing.T) {
	e := newTestEnv(t)
	e.createTopic("orders", 2, nil)
	const ts = 1_700_000_000_000
	e.values("orders", 0, ts, `{"n":0}`, `{"n":1}`, `{"n":2}`)          // 0-2, ts+0..2
	e.values("orders", 0, ts+100, `{"n":3}`, `{"n":4}`)                 // 3-4, ts+100..101
	e.values("orders", 0, ts+200, `{"n":5}`, `{"n":6}`, `{"n":7}`, "8") // 5-8, ts+200..203
	at := func(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.RFC3339Nano) }

	tests := []struct {
		name  string
		query string
		want  []int64
		next  int64
	}{
		{"default earliest", "", []int64{0, 1, 2, 3, 4, 5, 6, 7, 8}, 9},
		{"offset mid-batch", "?offset=4", []int64{4, 5, 6, 7, 8}, 9},
		{"offset at the high watermark", "?offset=9", []int64{}, 9},
		{"earliest", "?offset=earliest&max_records=2", []int64{0, 1}, 2},
		{"latest", "?offset=latest", []int64{}, 9},
		{"max_records cuts a batch", "?offset=1&max_records=3", []int64{1, 2, 3}, 4},
		{"max_records cuts mid-batch", "?offset=5&max_records=2", []int64{5, 6}, 7},
		{"max_records 1", "?offset=0&max_records=1", []int64{0}, 1},
		{"max_bytes returns the first record whole", "?offset=0&max_bytes=1", []int64{0}, 1},
		{"time in unix ms", "?offset=@" + fmt.Sprint(ts+101), []int64{4, 5, 6, 7, 8}, 9},
		{"time in RFC 3339", "?offset=@" + at(ts+100), []int64{3, 4, 5, 6, 7, 8}, 9},
		{"time with an offset zone", "?offset=@" + strings.ReplaceAll(time.UnixMilli(ts+200).In(time.FixedZone("", 7200)).Format(time.RFC3339Nano), "+", "%2B"), []int64{5, 6, 7, 8}, 9},
		{"time before every record", "?offset=@0", []int64{0, 1, 2, 3, 4, 5, 6, 7, 8}, 9},
		{"time after every record", "?offset=@" + fmt.Sprint(ts+10_000), []int64{}, 9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got nativeRecords
			e.must(200, "GET", "/v1/topics/orders/partitions/0/records"+tt.query, "", &got)
			if !slices.Equal(got.offsets(), tt.want) || got.NextOffset != tt.next || got.HighWatermark != 9 {
				t.Errorf("got offsets %v, next %d, hwm %d; want %v, %d, 9", got.offsets(), got.NextOffset, got.HighWatermark, tt.want, tt.next)
			}
			for _, r := range got.Records {
				if r.Partition != 0 || r.Timestamp < ts {
					t.Errorf("record %d: partition %d, timestamp %d", r.Offset, r.Partition, r.Timestamp)
				}
			}
		})
	}

	t.Run("max_bytes bounds the response", func(t *testing.T) {
		var all nativeRecords
		r := e.must(200, "GET", "/v1/topics/orders/partitions/0/records?offset=0", "", &all)
		one := len(r.body) / 9
		var got nativeRecords
		e.must(200, "GET", fmt.Sprintf("/v1/topics/orders/partitions/0/records?offset=0&max_bytes=%d", 3*one), "", &got)
		if n := len(got.Records); n < 2 || n > 3 || got.NextOffset != int64(n) {
			t.Errorf("max_bytes %d: got %d records, next %d; want 2 or 3 records and next after them", 3*one, n, got.NextOffset)
		}
	})

	t.Run("compressed batch from mid-batch", func(t *testing.T) {
		recs := make([]record.Record, 50)
		for i := range recs {
			recs[i] = record.Record{Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, `{"i":%d}`, i), Timestamp: ts}
		}
		for _, c := range []record.Compression{record.CompressionZstd, record.CompressionGzip, record.CompressionLZ4, record.CompressionSnappy} {
			base := e.produce("orders", 1, record.BatchOptions{Compression: c}, recs...)
			var got nativeRecords
			e.must(200, "GET", fmt.Sprintf("/v1/topics/orders/partitions/1/records?offset=%d&max_records=5", base+10), "", &got)
			if !slices.Equal(got.offsets(), []int64{base + 10, base + 11, base + 12, base + 13, base + 14}) || got.NextOffset != base+15 {
				t.Fatalf("%s: got %v next %d", c, got.offsets(), got.NextOffset)
			}
			if k := got.Records[0].Key; k == nil || *k != "k10" || string(got.Records[0].Value) != `{"i":10}` {
				t.Errorf("%s: first record key %v value %s", c, k, got.Records[0].Value)
			}
		}
	})
}

func TestConsumeErrors(t *testing.T) {
	e := newTestEnv(t)
	e.createTopic("orders", 1, nil)
	e.values("orders", 0, 1000, "a", "b", "c")
	tests := []struct {
		path    string
		status  int
		message string // a part of the message
	}{
		{"/v1/topics/nope/partitions/0/records", 404, "nope"},
		{"/v1/topics/orders/partitions/1/records", 404, "partition"},
		{"/v1/topics/orders/partitions/-1/records", 404, "partition"},
		{"/v1/topics/orders/partitions/x/records", 400, "partition"},
		{"/v1/topics/orders/partitions/99999999999/records", 400, "partition"},
		{"/v1/topics/orders/partitions/0/records?offset=abc", 400, "offset"},
		{"/v1/topics/orders/partitions/0/records?offset=-1", 422, "offset"},
		{"/v1/topics/orders/partitions/0/records?offset=4", 422, "holds offsets 0 to 3"},
		{"/v1/topics/orders/partitions/0/records?offset=@never", 400, "offset"},
		{"/v1/topics/orders/partitions/0/records?max_records=0", 422, "max_records"},
		{"/v1/topics/orders/partitions/0/records?max_records=10001", 422, "max_records"},
		{"/v1/topics/orders/partitions/0/records?max_records=ten", 400, "max_records"},
		{"/v1/topics/orders/partitions/0/records?max_records=99999999999999999999", 422, "max_records"},
		{"/v1/topics/orders/partitions/0/records?max_bytes=0", 422, "max_bytes"},
		{"/v1/topics/orders/partitions/0/records?max_bytes=67108865", 422, "max_bytes"},
		{"/v1/topics/orders/partitions/0/records?timeout_ms=-1", 422, "timeout_ms"},
		{"/v1/topics/orders/partitions/0/records?timeout_ms=30001", 422, "timeout_ms"},
		{"/v1/topics/orders/partitions/0/records?timeout_ms=1s", 400, "timeout_ms"},
		{"/v1/topics/orders/partitions/0/records?encoding=hex", 422, "encoding"},
	}
	for _, tt := range tests {
		r := e.do("GET", tt.path, "")
		if r.status != tt.status {
			t.Errorf("GET %s: got %d, want %d (%s)", tt.path, r.status, tt.status, r.body)
			continue
		}
		eb := r.errBody(t)
		if eb.ErrorCode != tt.status || !strings.Contains(eb.Message, tt.message) {
			t.Errorf("GET %s: got %+v, want code %d and a message with %q", tt.path, eb, tt.status, tt.message)
		}
	}
}

func TestConsumeRendering(t *testing.T) {
	e := newTestEnv(t)
	e.createTopic("t", 1, nil)
	e.produce("t", 0, record.BatchOptions{},
		record.Record{Key: []byte("user-42"), Value: []byte(`{"a": [1, 2]}`), Timestamp: 5,
			Headers: []record.RecordHeader{{Key: "h", Value: []byte("v")}, {Key: "bin", Value: []byte{0xff, 0}}, {Key: "nil"}}},
		record.Record{Key: []byte{0xff, 0xfe}, Value: []byte("plain text"), Timestamp: 6},
		record.Record{Value: []byte{0x80, 0x81}, Timestamp: 7},
		record.Record{Key: []byte(""), Timestamp: 8},
		record.Record{Key: []byte("k"), Value: []byte(""), Timestamp: 9,
			Headers: []record.RecordHeader{{Key: "dup", Value: []byte("first")}, {Key: "dup", Value: []byte("second")}}},
		record.Record{Value: []byte(`"a JSON string"`), Timestamp: 10},
		record.Record{Value: []byte("{\"s\":\"\xff\"}"), Timestamp: 11}, // JSON-shaped, but not UTF-8
	)
	want := `{"records":[` +
		`{"partition":0,"offset":0,"timestamp":5,"key":"user-42","value":{"a": [1, 2]},"headers":{"h":"v","nil":null},"headers_base64":{"bin":"/wA="}},` +
		`{"partition":0,"offset":1,"timestamp":6,"key_base64":"//4=","value":"plain text","headers":{}},` +
		`{"partition":0,"offset":2,"timestamp":7,"value_base64":"gIE=","headers":{}},` +
		`{"partition":0,"offset":3,"timestamp":8,"key":"","headers":{}},` +
		`{"partition":0,"offset":4,"timestamp":9,"key":"k","value":"","headers":{"dup":"second"}},` +
		`{"partition":0,"offset":5,"timestamp":10,"value":"a JSON string","headers":{}},` +
		`{"partition":0,"offset":6,"timestamp":11,"value_base64":"eyJzIjoi/yJ9","headers":{}}` +
		`],"next_offset":7,"high_watermark":7}` + "\n"
	r := e.must(200, "GET", "/v1/topics/t/partitions/0/records", "", nil)
	if r.body != want {
		t.Errorf("got\n%s\nwant\n%s", r.body, want)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}

	wantB64 := `{"partition":0,"offset":0,"timestamp":5,"key_base64":"dXNlci00Mg==","value_base64":"eyJhIjogWzEsIDJdfQ==","headers":{},"headers_base64":{"h":"dg==","bin":"/wA=","nil":null}}`
	r = e.must(200, "GET", "/v1/topics/t/partitions/0/records?encoding=base64&max_records=1", "", nil)
	if !strings.Contains(r.body, wantB64) {
		t.Errorf("encoding=base64: got %s, want it to hold %s", r.body, wantB64)
	}
}

func TestConsumeLongPoll(t *testing.T) {
	e := newTestEnv(t)
	e.createTopic("t", 1, nil)

	t.Run("returns when a record arrives", func(t *testing.T) {
		done := make(chan struct{})
		go func() {
			defer close(done)
			time.Sleep(100 * time.Millisecond)
			e.values("t", 0, 1, "hello")
		}()
		start := time.Now()
		var got nativeRecords
		e.must(200, "GET", "/v1/topics/t/partitions/0/records?offset=latest&timeout_ms=20000", "", &got)
		<-done
		if elapsed := time.Since(start); elapsed > 10*time.Second {
			t.Errorf("the long poll took %s", elapsed)
		}
		if !slices.Equal(got.offsets(), []int64{0}) || string(got.Records[0].Value) != `"hello"` || got.NextOffset != 1 {
			t.Errorf("got %+v", got)
		}
	})

	t.Run("answers empty after timeout_ms", func(t *testing.T) {
		start := time.Now()
		var got nativeRecords
		e.must(200, "GET", "/v1/topics/t/partitions/0/records?offset=1&timeout_ms=300", "", &got)
		if elapsed := time.Since(start); elapsed < 300*time.Millisecond {
			t.Errorf("answered after %s, before timeout_ms", elapsed)
		}
		if len(got.Records) != 0 || got.NextOffset != 1 || got.HighWatermark != 1 {
			t.Errorf("got %+v", got)
		}
	})

	t.Run("timeout_ms 0 answers at once", func(t *testing.T) {
		start := time.Now()
		e.must(200, "GET", "/v1/topics/t/partitions/0/records?offset=1", "", nil)
		if elapsed := time.Since(start); elapsed > time.Second {
			t.Errorf("took %s", elapsed)
		}
	})

	t.Run("Close ends it", func(t *testing.T) {
		done := make(chan response)
		go func() { done <- e.do("GET", "/v1/topics/t/partitions/0/records?offset=1&timeout_ms=30000", "") }()
		time.Sleep(100 * time.Millisecond)
		start := time.Now()
		if err := e.api.Close(); err != nil {
			t.Fatal(err)
		}
		select {
		case r := <-done:
			if r.status != 200 || r.body != `{"records":[],"next_offset":1,"high_watermark":1}`+"\n" {
				t.Errorf("got %d %s", r.status, r.body)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the long poll did not end")
		}
		if elapsed := time.Since(start); elapsed > 5*time.Second {
			t.Errorf("took %s after Close", elapsed)
		}
	})

	t.Run("the client going away ends it", func(t *testing.T) {
		e := newTestEnv(t)
		e.createTopic("t", 1, nil)
		// net/http cancels the request's context when the client goes
		// away; a context deadline would be another case, which
		// stream/kafka answers by ending the wait before it.
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		time.AfterFunc(100*time.Millisecond, cancel)
		start := time.Now()
		r := e.serve(httptest.NewRequestWithContext(ctx, "GET", "/v1/topics/t/partitions/0/records?timeout_ms=30000", nil))
		if elapsed := time.Since(start); elapsed > 5*time.Second || r.status != http.StatusServiceUnavailable {
			t.Errorf("got %d after %s", r.status, elapsed)
		}
	})
}

// nativeRecords is the native consume response.
type nativeRecords struct {
	Records []struct {
		Partition     int32             `json:"partition"`
		Offset        int64             `json:"offset"`
		Timestamp     int64             `json:"timestamp"`
		Key           *string           `json:"key"`
		KeyBase64     *string           `json:"key_base64"`
		Value         json.RawMessage   `json:"value"`
		ValueBase64   *string           `json:"value_base64"`
		Headers       map[string]any    `json:"headers"`
		HeadersBase64 map[string]string `json:"headers_base64"`
	} `json:"records"`
	NextOffset    int64 `json:"next_offset"`
	HighWatermark int64 `json:"high_watermark"`
}

func (n nativeRecords) offsets() []int64 {
	out := []int64{}
	for _, r := range n.Records {
		out = append(out, r.Offset)
	}
	return out
}

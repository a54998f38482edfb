package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/record"
	"github.com/sluice-dev/sluice/internal/stream"
)

// TestRecordSize checks recordSize against the batches record.AppendBatch
// writes, which is what the size checks and batch splitting rely on.
func TestRecordSize(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var codecs record.Codecs
	randBytes := func() ([]byte, int32) {
		switch rng.IntN(4) {
		case 0:
			return nil, -1
		case 1:
			return []byte{}, 0
		}
		n := rng.IntN(300)
		if rng.IntN(20) == 0 {
			n = rng.IntN(70000)
		}
		return make([]byte, n), int32(n)
	}
	for round := range 300 {
		n := 1 + rng.IntN(50)
		recs := make([]record.Record, n)
		want := record.HeaderSize
		base := rng.Int64N(1 << 45)
		for i := range recs {
			ts := base
			switch rng.IntN(3) {
			case 1:
				ts = base + rng.Int64N(1<<40) - 1<<39
			case 2:
				ts = rng.Int64N(math.MaxInt64)
			}
			if i == 0 {
				ts = base
			}
			k, kn := randBytes()
			v, vn := randBytes()
			var hdrs []pendingHeader
			for range rng.IntN(4) {
				hv, hn := randBytes()
				key := strings.Repeat("h", rng.IntN(200))
				recs[i].Headers = append(recs[i].Headers, record.RecordHeader{Key: key, Value: hv})
				hdrs = append(hdrs, pendingHeader{key: key, value: span{n: hn}})
			}
			recs[i].Key, recs[i].Value, recs[i].Timestamp = k, v, ts
			want += recordSize(ts-base, int32(i), kn, vn, hdrs)
		}
		b, err := codecs.AppendBatch(nil, recs, record.BatchOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(b) != want {
			t.Fatalf("round %d: AppendBatch wrote %d bytes, recordSize sums to %d", round, len(b), want)
		}
	}
}

// TestAppendCompact compares appendCompact with encoding/json's Compact.
func TestAppendCompact(t *testing.T) {
	for _, v := range []string{
		`1`, ` 1 `, `"a b"`, `{ "a" : [ 1 , 2 , { } ] , "b" : "x \" y" }`, "[\n\t1,\r\n2\n]",
		`"\\"`, `["\\", " ", "\\\" \\"]`, `{"k":"v\\\\"   ,  "k2" :null}`, `  true`, `"é \u00e9"`,
	} {
		var want bytes.Buffer
		if err := json.Compact(&want, []byte(v)); err != nil {
			t.Fatalf("%s: %v", v, err)
		}
		if got := appendCompact([]byte("prefix"), []byte(v)); string(got) != "prefix"+want.String() {
			t.Errorf("appendCompact(%q) = %q, want %q", v, got, "prefix"+want.String())
		}
	}
}

func TestParseInt(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true}, {"-0", 0, true}, {"42", 42, true}, {"-7", -7, true},
		{"9223372036854775807", math.MaxInt64, true}, {"-9223372036854775808", math.MinInt64, true},
		{"9223372036854775808", 0, false}, {"-9223372036854775809", 0, false}, {"99999999999999999999", 0, false},
		{"1.0", 0, false}, {"1e3", 0, false}, {"", 0, false}, {"-", 0, false}, {"1E3", 0, false},
	}
	for _, tc := range tests {
		got, ok := parseInt([]byte(tc.in))
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseInt(%q) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

// failingLog fails Produce for one partition.
type failingLog struct {
	stream.Log
	partition int32
	err       error
}

func (f failingLog) Produce(ctx context.Context, topic string, partition int32, batch []byte) (stream.ProduceResult, error) {
	if partition == f.partition {
		return stream.ProduceResult{}, f.err
	}
	return f.Log.Produce(ctx, topic, partition, batch)
}

// TestProducePartialFailure checks the answers when producing to one
// partition fails after the others succeeded.
func TestProducePartialFailure(t *testing.T) {
	e := newTestEnv(t)
	e.createTopic("t", 2, nil)
	api, err := New(failingLog{Log: e.log, partition: 1, err: fmt.Errorf("disk gone: %w", stream.ErrUnavailable)}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	api.Register(mux)
	e.handler = mux

	r := e.do("POST", "/v1/topics/t/records", `{"records":[{"value":1,"partition":0},{"value":2,"partition":1}]}`, noContentType...)
	if r.status != 503 {
		t.Fatalf("native: got %d (%s), want 503", r.status, r.body)
	}
	if eb := r.errBody(t); !strings.Contains(eb.Message, "produce to t/1: disk gone") || !strings.Contains(eb.Message, "1 other partitions were written") {
		t.Errorf("native: got %q", eb.Message)
	}

	r = e.do("POST", "/topics/t", `{"records":[{"value":"YQ==","partition":0},{"value":"Yg==","partition":1}]}`, "Content-Type", mediaRESTBinary)
	if r.status != 200 {
		t.Fatalf("REST Proxy: got %d (%s), want 200 with per-record errors", r.status, r.body)
	}
	want := `{"key_schema_id":null,"value_schema_id":null,"offsets":[{"partition":0,"offset":1,"error_code":null,"error":null},` +
		`{"partition":null,"offset":null,"error_code":2,"error":"produce to t/1: disk gone: log unavailable"}]}` + "\n"
	if r.body != want {
		t.Errorf("REST Proxy: got %s, want %s", r.body, want)
	}

	// When every partition fails, REST Proxy gets an error status too.
	r = e.do("POST", "/topics/t", `{"records":[{"value":"Yg==","partition":1}]}`, "Content-Type", mediaRESTBinary)
	if r.status != 503 {
		t.Fatalf("REST Proxy, all failed: got %d (%s), want 503", r.status, r.body)
	}
	if eb := r.errBody(t); eb.ErrorCode != codeRetriableError {
		t.Errorf("got error_code %d, want %d", eb.ErrorCode, codeRetriableError)
	}
}

// decodeForTest decodes body in format f against a 4-partition topic.
func decodeForTest(body []byte, f bodyFormat) (*produceRequest, error) {
	p := &produceRequest{}
	err := p.decode(bytes.NewReader(body), f, decodeLimits{topic: "t", partitions: 4, maxMessageBytes: 1 << 20, now: 1, partition: -1})
	return p, err
}

// checkDecoded is what every fuzz target checks: decoding never panics,
// fails only with a 4xx *Error, and what it accepts agrees with
// encoding/json's reading of the same body.
func checkDecoded(t *testing.T, body []byte, f bodyFormat) {
	p, err := decodeForTest(body, f)
	if err != nil {
		var he *Error
		if !errors.As(err, &he) || he.Status < 400 || he.Status > 499 || he.Message == "" {
			t.Fatalf("decode %q: got %T %v, want a 4xx *Error", body, err, err)
		}
		if f.restProxy() && he.ContentType != mediaRESTV2 {
			t.Fatalf("decode %q: REST Proxy error without its content type: %+v", body, he)
		}
		return
	}
	if len(p.recs) == 0 {
		t.Fatalf("decode %q: no error and no records", body)
	}
	// encoding/json must read the same records.
	var objs []map[string]json.RawMessage
	if f == formatNDJSON {
		dec := json.NewDecoder(bytes.NewReader(body))
		for {
			var o map[string]json.RawMessage
			if err := dec.Decode(&o); err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				t.Fatalf("decode accepted %q, encoding/json: %v", body, err)
			}
			objs = append(objs, o)
		}
	} else {
		var doc struct{ Records []map[string]json.RawMessage }
		if err := json.Unmarshal(body, &doc); err != nil {
			t.Fatalf("decode accepted %q, encoding/json: %v", body, err)
		}
		objs = doc.Records
	}
	if len(objs) != len(p.recs) {
		t.Fatalf("decode %q: %d records, encoding/json %d", body, len(p.recs), len(objs))
	}
	for i, o := range objs {
		rec := p.recs[i]
		checkField := func(name string, got span, kind string) {
			raw, ok := o[name]
			if !ok || string(raw) == "null" {
				return
			}
			var want []byte
			switch kind {
			case "text":
				var s string
				if err := json.Unmarshal(raw, &s); err != nil {
					t.Fatalf("%q: record %d %s: %v", body, i, name, err)
				}
				want = []byte(s)
			case "base64":
				if err := json.Unmarshal(raw, &want); err != nil {
					t.Fatalf("%q: record %d %s: decode accepted it, encoding/json: %v", body, i, name, err)
				}
				if want == nil {
					want = []byte{}
				}
			case "json":
				var b bytes.Buffer
				if err := json.Compact(&b, raw); err != nil {
					t.Fatal(err)
				}
				want = b.Bytes()
			}
			if !sameBytes(p.bytes(got), want) {
				t.Fatalf("%q: record %d %s: got %q, want %q", body, i, name, p.bytes(got), want)
			}
		}
		switch f {
		case formatJSON, formatNDJSON:
			checkField("key", rec.key, "text")
			checkField("key_base64", rec.key, "base64")
			checkField("value", rec.value, "json")
			checkField("value_base64", rec.value, "base64")
		case formatRESTJSON:
			checkField("key", rec.key, "json")
			checkField("value", rec.value, "json")
		case formatRESTBinary:
			checkField("key", rec.key, "base64")
			checkField("value", rec.value, "base64")
		}
		if rec.partition < -1 || rec.partition >= 4 {
			t.Fatalf("%q: record %d: partition %d", body, i, rec.partition)
		}
	}
}

func fuzzSeeds(f *testing.F, seeds ...string) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
}

func FuzzProduceJSON(f *testing.F) {
	fuzzSeeds(f,
		`{"records":[{"key":"k","value":{"a":[1,2,{"b":null}]},"headers":{"h":"v"},"partition":1,"timestamp":5}]}`,
		`{"records":[{"key_base64":"AAE=","value_base64":"aGk=","headers_base64":{"b":"AA=="}}]}`,
		`{"records":[{"value":"\u00e9\ud83d\ude00"}]}`,
	)
	f.Fuzz(func(t *testing.T, body []byte) { checkDecoded(t, body, formatJSON) })
}

func FuzzProduceNDJSON(f *testing.F) {
	fuzzSeeds(f, "{\"key\":\"a\",\"value\":1}\n{\"value\":[true,false]}\n", "\n\n{}\n", `{"value_base64":"////"}`)
	f.Fuzz(func(t *testing.T, body []byte) { checkDecoded(t, body, formatNDJSON) })
}

func FuzzRESTProxyJSON(f *testing.F) {
	fuzzSeeds(f, docJSONRequest, `{"value_schema":null,"records":[{"key":{"id":1},"value":null}]}`)
	f.Fuzz(func(t *testing.T, body []byte) { checkDecoded(t, body, formatRESTJSON) })
}

func FuzzRESTProxyBinary(f *testing.F) {
	fuzzSeeds(f, docBinaryRequest, `{"records":[{"key":null,"value":"","partition":3}]}`)
	f.Fuzz(func(t *testing.T, body []byte) { checkDecoded(t, body, formatRESTBinary) })
}

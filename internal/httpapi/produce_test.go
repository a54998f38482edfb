package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/logstore"
	"github.com/sluice-dev/sluice/internal/record"
	"github.com/sluice-dev/sluice/internal/stream"
)

type offsetsBody struct {
	Offsets []struct {
		Partition int32 `json:"partition"`
		Offset    int64 `json:"offset"`
	} `json:"offsets"`
}

// TestProduceNativeRecords produces records of every kind and reads them
// back from the log.
func TestProduceNativeRecords(t *testing.T) {
	e := newTestEnv(t)
	e.createTopic("t", 4, nil)
	body := `{"records": [
		{"key": "user-42", "value": {"a": 1, "b": [1, 2], "s": " spaced  out ", "e": "\u00e9\"\\"}, "headers": {"h": "v", "n": null},
		 "headers_base64": {"bin": "AAH/"}, "timestamp": 1732000000000},
		{"key_base64": "AAEC", "value_base64": "aGVsbG8="},
		{"value": "no key", "partition": 3},
		{"key": "", "value": null},
		{"key": "\u00e9t\u00e9"},
		{"value": 53.5, "partition": 3},
		{"key": null, "key_base64": null, "value": [ ], "headers": null, "partition": null, "timestamp": null}
	]}`
	r := e.do("POST", "/v1/topics/t/records", body)
	if r.status != 200 {
		t.Fatalf("got status %d, want 200 (%s)", r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("got Content-Type %q", ct)
	}
	var got offsetsBody
	r.json(t, &got)
	if len(got.Offsets) != 7 {
		t.Fatalf("got %d offsets, want 7: %s", len(got.Offsets), r.body)
	}
	type want struct {
		key, value []byte // nil: null
		headers    []record.RecordHeader
		partition  int32 // -1: not checked here
		timestamp  int64 // 0: about now
	}
	wants := []want{
		{key: []byte("user-42"), value: []byte(`{"a":1,"b":[1,2],"s":" spaced  out ","e":"\u00e9\"\\"}`),
			headers:   []record.RecordHeader{{Key: "h", Value: []byte("v")}, {Key: "n"}, {Key: "bin", Value: []byte{0, 1, 0xff}}},
			partition: stream.KeyPartition([]byte("user-42"), 4), timestamp: 1732000000000},
		{key: []byte{0, 1, 2}, value: []byte("hello"), partition: stream.KeyPartition([]byte{0, 1, 2}, 4)},
		{value: []byte(`"no key"`), partition: 3},
		{key: []byte{}, partition: stream.KeyPartition(nil, 4)},
		{key: []byte("été"), partition: stream.KeyPartition([]byte("été"), 4)},
		{value: []byte("53.5"), partition: 3},
		{value: []byte("[]"), partition: -1},
	}
	for i, w := range wants {
		o := got.Offsets[i]
		if w.partition >= 0 && o.Partition != w.partition {
			t.Errorf("record %d: got partition %d, want %d", i, o.Partition, w.partition)
		}
		recs := readAll(t, e.log, "t", o.Partition)
		var rec *record.Record
		for j := range recs {
			if recs[j].Offset == o.Offset {
				rec = &recs[j]
			}
		}
		if rec == nil {
			t.Fatalf("record %d: no record at %d/%d", i, o.Partition, o.Offset)
		}
		if !sameBytes(rec.Key, w.key) {
			t.Errorf("record %d: got key %q (nil %v), want %q (nil %v)", i, rec.Key, rec.Key == nil, w.key, w.key == nil)
		}
		if !sameBytes(rec.Value, w.value) {
			t.Errorf("record %d: got value %q (nil %v), want %q (nil %v)", i, rec.Value, rec.Value == nil, w.value, w.value == nil)
		}
		if len(rec.Headers) != len(w.headers) {
			t.Errorf("record %d: got headers %v, want %v", i, rec.Headers, w.headers)
		} else {
			for j, h := range w.headers {
				if rec.Headers[j].Key != h.Key || !sameBytes(rec.Headers[j].Value, h.Value) {
					t.Errorf("record %d header %d: got %q=%q, want %q=%q", i, j, rec.Headers[j].Key, rec.Headers[j].Value, h.Key, h.Value)
				}
			}
		}
		if w.timestamp != 0 && rec.Timestamp != w.timestamp {
			t.Errorf("record %d: got timestamp %d, want %d", i, rec.Timestamp, w.timestamp)
		}
		if w.timestamp == 0 && rec.Timestamp < 1700000000000 {
			t.Errorf("record %d: got timestamp %d, want about now", i, rec.Timestamp)
		}
	}
	if n, _ := e.metric("sluice_produced_records_total", map[string]string{"topic": "t"}); n != 7 {
		t.Errorf("sluice_produced_records_total: got %v, want 7", n)
	}
	if n, _ := e.metric("sluice_http_requests_total", map[string]string{"route": "POST /v1/topics/{topic}/records", "code": "200"}); n != 1 {
		t.Errorf("sluice_http_requests_total: got %v, want 1", n)
	}
}

// sameBytes compares byte slices, telling nil (Kafka's null) from empty.
func sameBytes(a, b []byte) bool { return (a == nil) == (b == nil) && bytes.Equal(a, b) }

func TestProduceNDJSON(t *testing.T) {
	e := newTestEnv(t)
	e.createTopic("t", 1, nil)
	body := "{\"key\":\"a\",\"value\":1}\n\n{\"value\": {\"x\" : true}}\r\n   {\"value\":\"last\"}"
	r := e.do("POST", "/v1/topics/t/records", body, "Content-Type", "application/x-ndjson")
	if r.status != 200 {
		t.Fatalf("got status %d, want 200 (%s)", r.status, r.body)
	}
	if want := `{"offsets":[{"partition":0,"offset":0},{"partition":0,"offset":1},{"partition":0,"offset":2}]}` + "\n"; r.body != want {
		t.Errorf("got %s, want %s", r.body, want)
	}
	recs := readAll(t, e.log, "t", 0)
	var values []string
	for _, rec := range recs {
		values = append(values, string(rec.Value))
	}
	if got := strings.Join(values, " "); got != `1 {"x":true} "last"` {
		t.Errorf("got values %s", got)
	}
}

// TestProduceUnkeyedSpread checks that unkeyed records are spread evenly.
func TestProduceUnkeyedSpread(t *testing.T) {
	e := newTestEnv(t)
	e.createTopic("t", 4, nil)
	var b strings.Builder
	b.WriteString(`{"records":[`)
	for i := range 40 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"value":%d}`, i)
	}
	b.WriteString(`]}`)
	for range 3 {
		if r := e.do("POST", "/v1/topics/t/records", b.String()); r.status != 200 {
			t.Fatalf("got status %d (%s)", r.status, r.body)
		}
	}
	for p := range int32(4) {
		if n := len(readAll(t, e.log, "t", p)); n != 30 {
			t.Errorf("partition %d: got %d records, want 30", p, n)
		}
	}
}

// TestProduceErrors checks every way a produce request can be refused,
// and that a refused request writes nothing.
func TestProduceErrors(t *testing.T) {
	e := newTestEnv(t, withMaxBody(64<<10))
	e.createTopic("t", 4, nil)
	e.createTopic("small", 1, map[string]string{"max.message.bytes": "1024"})
	valid := `{"key":"k","value":{"ok":true}}`
	records := func(recs ...string) string { return `{"records":[` + strings.Join(recs, ",") + `]}` }
	tests := []struct {
		name        string
		topic       string
		contentType string
		body        string
		wantStatus  int
		wantErr     string
	}{
		{name: "malformed JSON", body: `{"records":[{"value":1},]}`, wantStatus: 400, wantErr: "record 1: malformed JSON at byte 23"},
		{name: "truncated", body: `{"records":[{"value":1}`, wantStatus: 400, wantErr: "ends in the middle"},
		{name: "invalid UTF-8 in a value", body: records(valid, "{\"value\":\"caf\xe9\"}"), wantStatus: 400, wantErr: "record 1: malformed JSON at byte 57: invalid UTF-8"},
		{name: "invalid UTF-8 in a key", body: records("{\"key\":\"\xc3\x28\"}"), wantStatus: 400, wantErr: "invalid UTF-8"},
		{name: "invalid UTF-8 in a name", body: records("{\"k\xffy\":1}"), wantStatus: 400, wantErr: "invalid UTF-8"},
		{name: "lone surrogate", body: records(`{"value":"\ud800"}`), wantStatus: 400, wantErr: "record 0: malformed JSON"},
		{name: "control character", body: records("{\"value\":\"a\x01b\"}"), wantStatus: 400, wantErr: "malformed JSON"},
		{name: "text/plain", contentType: "text/plain", body: records(valid), wantStatus: 415, wantErr: `"text/plain" is not supported`},
		{name: "form", contentType: "application/x-www-form-urlencoded", body: records(valid), wantStatus: 415, wantErr: "not supported"},
		{name: "REST Proxy type on the native path", contentType: mediaRESTJSON, body: records(valid), wantStatus: 415, wantErr: "not supported"},
		{name: "latin1", contentType: "application/json; charset=iso-8859-1", body: records(valid), wantStatus: 415, wantErr: "charset"},
		{name: "unparsable content type", contentType: "application/json; charset", body: records(valid), wantStatus: 415, wantErr: "does not parse"},
		{name: "unknown record field", body: records(valid, `{"vaule":1}`), wantStatus: 400, wantErr: `record 1: unknown field "vaule"`},
		{name: "unknown top-level field", body: `{"records":[],"extra":1}`, wantStatus: 400, wantErr: `unknown field "extra"`},
		{name: "escaped unknown field", body: records(`{"\u0076aule":1}`), wantStatus: 400, wantErr: `unknown field "vaule"`},
		{name: "long unknown field", body: records(`{"` + strings.Repeat("x", 100) + `":1}`), wantStatus: 400, wantErr: `"...`},
		{name: "duplicate field", body: records(`{"value":1,"value":2}`), wantStatus: 400, wantErr: `record 0: duplicate field "value"`},
		{name: "duplicate records", body: `{"records":[],"records":[]}`, wantStatus: 400, wantErr: `duplicate field "records"`},
		{name: "key is a number", body: records(`{"key":42}`), wantStatus: 400, wantErr: "record 0: key is a number; want a string or null; use key_base64"},
		{name: "key and key_base64", body: records(`{"key":"a","key_base64":"YQ=="}`), wantStatus: 400, wantErr: "both key and key_base64"},
		{name: "value and value_base64", body: records(`{"value":1,"value_base64":"YQ=="}`), wantStatus: 400, wantErr: "both value and value_base64"},
		{name: "bad base64", body: records(valid, `{"value_base64":"not base64!"}`), wantStatus: 422, wantErr: "record 1: value_base64 is not valid base64"},
		{name: "unpadded base64", body: records(`{"key_base64":"YQ"}`), wantStatus: 422, wantErr: "key_base64 is not valid base64"},
		{name: "base64 not a string", body: records(`{"value_base64":12}`), wantStatus: 400, wantErr: "value_base64 is a number"},
		{name: "partition out of range", body: records(valid, valid, `{"value":1,"partition":9}`), wantStatus: 404, wantErr: `record 2: partition 9 does not exist; topic "t" has 4 partitions`},
		{name: "negative partition", body: records(`{"value":1,"partition":-1}`), wantStatus: 404, wantErr: "partition -1 does not exist"},
		{name: "fractional partition", body: records(`{"value":1,"partition":1.5}`), wantStatus: 422, wantErr: "partition 1.5 is not an integer"},
		{name: "huge partition", body: records(`{"value":1,"partition":1e400}`), wantStatus: 422, wantErr: "not an integer"},
		{name: "partition as a string", body: records(`{"value":1,"partition":"1"}`), wantStatus: 400, wantErr: "partition is a string; want an integer"},
		{name: "negative timestamp", body: records(`{"value":1,"timestamp":-5}`), wantStatus: 422, wantErr: "timestamp -5 is negative"},
		{name: "timestamp as a string", body: records(`{"value":1,"timestamp":"2024-01-01"}`), wantStatus: 400, wantErr: "timestamp is a string"},
		{name: "headers not an object", body: records(`{"value":1,"headers":["a"]}`), wantStatus: 400, wantErr: "headers is an array"},
		{name: "header value a number", body: records(`{"value":1,"headers":{"h":1}}`), wantStatus: 400, wantErr: "headers.h is a number; want a string or null; use headers_base64"},
		{name: "duplicate header", body: records(`{"value":1,"headers":{"h":"a"},"headers_base64":{"h":"YQ=="}}`), wantStatus: 400, wantErr: `headers_base64: duplicate header "h"`},
		{name: "bad base64 header", body: records(`{"value":1,"headers_base64":{"h":"!"}}`), wantStatus: 422, wantErr: "headers_base64.h is not valid base64"},
		{name: "empty records", body: `{"records":[]}`, wantStatus: 422, wantErr: "records may not be empty"},
		{name: "no records", body: `{}`, wantStatus: 422, wantErr: `no "records" array`},
		{name: "records not an array", body: `{"records":{}}`, wantStatus: 400, wantErr: "records is an object; want an array"},
		{name: "record not an object", body: `{"records":[1]}`, wantStatus: 400, wantErr: "record 0: is a number; want a record object"},
		{name: "body an array", body: `[{"value":1}]`, wantStatus: 400, wantErr: "the body is an array"},
		{name: "empty body", body: ``, wantStatus: 400, wantErr: "the body is empty"},
		{name: "whitespace body", body: " \n ", wantStatus: 400, wantErr: "the body is empty"},
		{name: "trailing data", body: records(valid) + ` {}`, wantStatus: 400, wantErr: "unexpected data after the JSON body"},
		{name: "trailing garbage", body: records(valid) + `x`, wantStatus: 400, wantErr: "malformed JSON"},
		{name: "record too large", topic: "small", body: records(`{"value":"` + strings.Repeat("x", 1000) + `"}`), wantStatus: 413,
			wantErr: `record 0: the record takes 1072 bytes as a batch of its own, more than topic "small"'s max.message.bytes of 1024`},
		{name: "body too large", body: records(`{"value":"` + strings.Repeat("x", 70<<10) + `"}`), wantStatus: 413, wantErr: "larger than the limit of 65536 bytes"},
		{name: "unknown topic", topic: "nope", body: records(valid), wantStatus: 404, wantErr: "unknown topic"},
		{name: "NDJSON bad line", contentType: "application/x-ndjson", body: valid + "\n" + valid + "\n{\"value\":1,}\n", wantStatus: 400, wantErr: "record 2: malformed JSON"},
		{name: "NDJSON empty", contentType: "application/x-ndjson", body: "\n\n", wantStatus: 422, wantErr: "records may not be empty"},
		{name: "NDJSON array line", contentType: "application/x-ndjson", body: `[1]`, wantStatus: 400, wantErr: "record 0: is an array"},
		{name: "NDJSON unknown field", contentType: "application/x-ndjson", body: valid + "\n" + `{"records":[]}`, wantStatus: 400, wantErr: `record 1: unknown field "records"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			topic := tc.topic
			if topic == "" {
				topic = "t"
			}
			ct := tc.contentType
			if ct == "" {
				ct = "application/json"
			}
			r := e.do("POST", "/v1/topics/"+topic+"/records", tc.body, "Content-Type", ct)
			if r.status != tc.wantStatus {
				t.Fatalf("got status %d, want %d (body %s)", r.status, tc.wantStatus, r.body)
			}
			eb := r.errBody(t)
			if eb.ErrorCode != tc.wantStatus {
				t.Errorf("got error_code %d, want %d", eb.ErrorCode, tc.wantStatus)
			}
			if !strings.Contains(eb.Message, tc.wantErr) {
				t.Errorf("got message %q, want it to contain %q", eb.Message, tc.wantErr)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("got Content-Type %q, want application/json", ct)
			}
		})
	}
	// Every request above was refused: nothing may have been written.
	for _, name := range []string{"t", "small"} {
		info, err := e.log.DescribeTopic(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range info.Partitions {
			if p.HighWatermark != 0 {
				t.Errorf("%s/%d: high watermark %d after refused requests, want 0", name, p.Partition, p.HighWatermark)
			}
		}
	}
	if n, _ := e.metric("sluice_produced_records_total", map[string]string{"topic": "t"}); n != 0 {
		t.Errorf("sluice_produced_records_total: got %v, want 0", n)
	}
}

// TestProduceBodyLimitWhileReading sends bodies without a Content-Length,
// so the limit is only found while reading.
func TestProduceBodyLimitWhileReading(t *testing.T) {
	e := newTestEnv(t, withMaxBody(4<<10))
	e.createTopic("t", 1, nil)
	for _, ct := range []string{"application/json", "application/x-ndjson"} {
		var body string
		if ct == "application/json" {
			body = `{"records":[` + strings.Repeat(`{"value":"xxxxxxxxxxxxxxxx"},`, 300) + `{"value":1}]}`
		} else {
			body = strings.Repeat(`{"value":"xxxxxxxxxxxxxxxx"}`+"\n", 300)
		}
		req := httptest.NewRequest("POST", "/v1/topics/t/records", io.MultiReader(strings.NewReader(body)))
		req.ContentLength = -1
		req.Header.Set("Content-Type", ct)
		r := e.serve(req)
		if r.status != 413 {
			t.Fatalf("%s: got status %d, want 413 (%s)", ct, r.status, r.body)
		}
		if !strings.Contains(r.body, "larger than the limit of 4096 bytes") {
			t.Errorf("%s: got %s", ct, r.body)
		}
	}
	if hw := readAll(t, e.log, "t", 0); len(hw) != 0 {
		t.Errorf("got %d records written, want none", len(hw))
	}
}

// TestProduceSplitsBatches produces more to one partition than one batch
// may hold and checks the records arrive whole and in order.
func TestProduceSplitsBatches(t *testing.T) {
	e := newTestEnv(t)
	e.createTopic("t", 2, map[string]string{"max.message.bytes": "4096"})
	var b strings.Builder
	b.WriteString(`{"records":[`)
	const n = 200
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		// Timestamps far apart exercise the size of the delta varints.
		fmt.Fprintf(&b, `{"value":"%04d-%s","partition":%d,"timestamp":%d,"headers":{"i":"%d"}}`, i, strings.Repeat("v", 100+i*7%1000), i%2, int64(i)*(1<<40), i)
	}
	b.WriteString(`]}`)
	r := e.do("POST", "/v1/topics/t/records", b.String())
	if r.status != 200 {
		t.Fatalf("got status %d (%s)", r.status, r.body)
	}
	var got offsetsBody
	r.json(t, &got)
	for p := range int32(2) {
		recs := readAll(t, e.log, "t", p)
		if len(recs) != n/2 {
			t.Fatalf("partition %d: got %d records, want %d", p, len(recs), n/2)
		}
		for j, rec := range recs {
			i := 2*j + int(p)
			if want := fmt.Sprintf(`"%04d-`, i); !strings.HasPrefix(string(rec.Value), want) {
				t.Errorf("partition %d record %d: got value %.10q, want it to start %s", p, j, rec.Value, want)
			}
			if rec.Timestamp != int64(i)*(1<<40) {
				t.Errorf("record %d: got timestamp %d", i, rec.Timestamp)
			}
			if o := got.Offsets[i]; o.Partition != p || o.Offset != rec.Offset {
				t.Errorf("record %d: answered %d/%d, stored at %d/%d", i, o.Partition, o.Offset, p, rec.Offset)
			}
		}
	}
	// More than one batch per partition was needed.
	res, err := e.log.Fetch(context.Background(), stream.FetchRequest{Topic: "t", Partition: 0, MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	batches := 0
	for rest := res.Batches; len(rest) > 0; batches++ {
		h, err := record.ParseHeader(rest)
		if err != nil {
			t.Fatal(err)
		}
		if h.Size() > 4096 {
			t.Errorf("batch of %d bytes, over max.message.bytes", h.Size())
		}
		rest = rest[h.Size():]
	}
	if batches < 2 {
		t.Errorf("got %d batches, want several", batches)
	}
}

// TestProduceRoundTrip produces 100,000 keyed records over HTTP from four
// concurrent clients, reads them back from the log and checks their
// content, their placement by key and their order within each partition.
func TestProduceRoundTrip(t *testing.T) {
	e := newTestEnv(t)
	const (
		partitions = 6
		clients    = 4
		perClient  = 25000
		perRequest = 500
	)
	e.createTopic("events", partitions, nil)
	srv := httptest.NewServer(e.handler)
	defer srv.Close()

	value := func(client, seq int) string {
		return fmt.Sprintf(`{"client":%d,"seq":%d,"key":"c%d-k%d","pad":"%s"}`, client, seq, client, seq%997, strings.Repeat("p", seq%50))
	}
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for c := range clients {
		wg.Go(func() {
			var b bytes.Buffer
			for start := 0; start < perClient; start += perRequest {
				b.Reset()
				b.WriteString(`{"records":[`)
				for seq := start; seq < start+perRequest; seq++ {
					if seq > start {
						b.WriteByte(',')
					}
					fmt.Fprintf(&b, `{"key":"c%d-k%d","value":%s}`, c, seq%997, value(c, seq))
				}
				b.WriteString(`]}`)
				resp, err := srv.Client().Post(srv.URL+"/v1/topics/events/records", "application/json", &b)
				if err != nil {
					errs <- err
					return
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					errs <- fmt.Errorf("client %d: status %d: %s", c, resp.StatusCode, body)
					return
				}
				var got offsetsBody
				if err := json.Unmarshal(body, &got); err != nil || len(got.Offsets) != perRequest {
					errs <- fmt.Errorf("client %d: bad answer %s (%v)", c, body, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	seen := make([][]bool, clients)
	for c := range seen {
		seen[c] = make([]bool, perClient)
	}
	total := 0
	for p := range int32(partitions) {
		last := make([]int, clients) // the last seq per client in this partition
		for c := range last {
			last[c] = -1
		}
		for _, rec := range readAll(t, e.log, "events", p) {
			total++
			var v struct {
				Client, Seq int
				Key         string
			}
			if err := json.Unmarshal(rec.Value, &v); err != nil {
				t.Fatalf("%d/%d: value %q: %v", p, rec.Offset, rec.Value, err)
			}
			if string(rec.Value) != value(v.Client, v.Seq) {
				t.Fatalf("%d/%d: got value %s, want %s", p, rec.Offset, rec.Value, value(v.Client, v.Seq))
			}
			if string(rec.Key) != v.Key {
				t.Fatalf("%d/%d: got key %q, want %q", p, rec.Offset, rec.Key, v.Key)
			}
			if want := stream.KeyPartition(rec.Key, partitions); want != p {
				t.Fatalf("key %q in partition %d, want %d", rec.Key, p, want)
			}
			if v.Seq <= last[v.Client] {
				t.Fatalf("partition %d: client %d seq %d after %d", p, v.Client, v.Seq, last[v.Client])
			}
			last[v.Client] = v.Seq
			if seen[v.Client][v.Seq] {
				t.Fatalf("client %d seq %d stored twice", v.Client, v.Seq)
			}
			seen[v.Client][v.Seq] = true
		}
	}
	if total != clients*perClient {
		t.Errorf("read %d records, want %d", total, clients*perClient)
	}
	if n, _ := e.metric("sluice_produced_records_total", map[string]string{"topic": "events"}); n != clients*perClient {
		t.Errorf("sluice_produced_records_total: got %v, want %d", n, clients*perClient)
	}
}

// TestProduceCacheFollowsAlter checks that adding partitions through the
// API takes effect for the next produce request at once.
func TestProduceCacheFollowsAlter(t *testing.T) {
	e := newTestEnv(t)
	e.createTopic("t", 1, nil)
	if r := e.do("POST", "/v1/topics/t/records", `{"records":[{"value":1}]}`, noContentType...); r.status != 200 {
		t.Fatalf("got %d (%s)", r.status, r.body)
	}
	if r := e.do("PATCH", "/v1/topics/t", `{"partitions":3}`); r.status != 200 {
		t.Fatalf("alter: got %d (%s)", r.status, r.body)
	}
	r := e.do("POST", "/v1/topics/t/records", `{"records":[{"value":1,"partition":2}]}`, noContentType...)
	if r.status != 200 {
		t.Fatalf("got %d (%s)", r.status, r.body)
	}
	if r := e.do("DELETE", "/v1/topics/t", ""); r.status != 204 {
		t.Fatalf("delete: got %d (%s)", r.status, r.body)
	}
	if r := e.do("POST", "/v1/topics/t/records", `{"records":[{"value":1}]}`, noContentType...); r.status != 404 {
		t.Fatalf("after delete: got %d (%s), want 404", r.status, r.body)
	}
}

// TestProduceDurableAlways produces with fsync always, the default.
func TestProduceDurableAlways(t *testing.T) {
	e := newTestEnv(t, withSync(logstore.SyncPolicy{Mode: logstore.SyncAlways}))
	e.createTopic("t", 3, nil)
	r := e.do("POST", "/v1/topics/t/records", `{"records":[{"key":"a","value":1},{"key":"b","value":2},{"key":"c","value":3},{"value":4}]}`)
	if r.status != 200 {
		t.Fatalf("got %d (%s)", r.status, r.body)
	}
	var got offsetsBody
	r.json(t, &got)
	if len(got.Offsets) != 4 {
		t.Fatalf("got %s", r.body)
	}
}

func TestProduceContentTypes(t *testing.T) {
	e := newTestEnv(t)
	e.createTopic("t", 1, nil)
	for _, ct := range []string{"", "application/json", "application/json; charset=UTF-8", "Application/JSON",
		"application/x-ndjson", "application/ndjson; charset=utf-8"} {
		if r := e.do("POST", "/v1/topics/t/records", `{"records":[{"value":1}]}`, "Content-Type", ct); strings.Contains(ct, "ndjson") {
			if r.status != 400 {
				t.Errorf("%q with a JSON document: got %d (%s), want 400 (NDJSON lines are records)", ct, r.status, r.body)
			}
		} else if r.status != 200 {
			t.Errorf("%q: got %d (%s), want 200", ct, r.status, r.body)
		}
	}
}

// TestProduceRecordCountLimit checks that a request of more than
// maxProduceRecords records is refused, whatever its format, before it
// holds more of them, and that one of exactly that many is produced.
func TestProduceRecordCountLimit(t *testing.T) {
	e := newTestEnv(t)
	e.createTopic("t", 1, nil)
	many := func(n int, rec, sep, head, tail string) string {
		return head + strings.Repeat(rec+sep, n-1) + rec + tail
	}
	tests := []struct {
		name, path, contentType, body string
		wantStatus, wantCode          int
	}{
		{"native JSON at the limit", "/v1/topics/t/records", mediaJSON,
			many(maxProduceRecords, `{}`, ",", `{"records":[`, `]}`), 200, 0},
		{"native JSON over the limit", "/v1/topics/t/records", mediaJSON,
			many(maxProduceRecords+1, `{}`, ",", `{"records":[`, `]}`), 413, 413},
		{"NDJSON over the limit", "/v1/topics/t/records", mediaNDJSON,
			many(maxProduceRecords+1, `{}`, "\n", "", ""), 413, 413},
		{"REST Proxy over the limit", "/topics/t", mediaRESTBinary,
			many(maxProduceRecords+1, `{}`, ",", `{"records":[`, `]}`), 413, 413},
	}
	written := 0
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do("POST", tc.path, tc.body, "Content-Type", tc.contentType)
			if r.status != tc.wantStatus {
				t.Fatalf("got status %d, want %d (%.200s)", r.status, tc.wantStatus, r.body)
			}
			if tc.wantStatus == 200 {
				written += maxProduceRecords
				return
			}
			eb := r.errBody(t)
			if eb.ErrorCode != tc.wantCode {
				t.Errorf("got error_code %d, want %d", eb.ErrorCode, tc.wantCode)
			}
			if want := fmt.Sprintf("record %d: a request may hold at most %d records", maxProduceRecords, maxProduceRecords); !strings.Contains(eb.Message, want) {
				t.Errorf("got message %q, want it to contain %q", eb.Message, want)
			}
		})
	}
	if n := len(readAll(t, e.log, "t", 0)); n != written {
		t.Errorf("got %d records written, want %d (those of the request at the limit)", n, written)
	}
}

// TestProduceManyHeaders produces a record with as many headers as fit in
// max.message.bytes: checking each header name against the others must not
// take time quadratic in their number.
func TestProduceManyHeaders(t *testing.T) {
	e := newTestEnv(t)
	e.createTopic("t", 1, nil)
	const n = 50_000
	var b strings.Builder
	b.WriteString(`{"records":[{"value":1,"headers":{`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"h%d":null`, i)
	}
	b.WriteString(`},"headers_base64":{"h17":"AA=="}}]}`)
	dup := b.String()
	unique := strings.Replace(dup, `"h17":"AA=="`, `"bin":"AA=="`, 1)
	tests := []struct {
		name, body string
		wantStatus int
		wantErr    string
	}{
		{"unique names", unique, 200, ""},
		{"a name repeated in headers_base64", dup, 400, `headers_base64: duplicate header "h17"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			r := e.do("POST", "/v1/topics/t/records", tc.body)
			// Quadratic checking took about a minute here; linear takes
			// milliseconds, a few hundred with the race detector.
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("the request took %v, want well under 10s", d)
			}
			if r.status != tc.wantStatus {
				t.Fatalf("got status %d, want %d (%.200s)", r.status, tc.wantStatus, r.body)
			}
			if tc.wantErr != "" {
				if msg := r.errBody(t).Message; !strings.Contains(msg, tc.wantErr) {
					t.Errorf("got message %q, want it to contain %q", msg, tc.wantErr)
				}
			}
		})
	}
	recs := readAll(t, e.log, "t", 0)
	if len(recs) != 1 || len(recs[0].Headers) != n+1 {
		t.Fatalf("got %d records, want 1 with %d headers", len(recs), n+1)
	}
}

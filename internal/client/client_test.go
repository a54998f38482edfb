package client

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"
)

// seen is a request as the fake server received it.
type seen struct {
	method, path, rawPath, query, contentType string
	body                                      string
	contentLength                             int64
}

// fake answers every request with status and body, and records it.
func fake(t *testing.T, status int, body string) (*Client, *seen) {
	t.Helper()
	s := &seen{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		*s = seen{method: r.Method, path: r.URL.Path, rawPath: r.URL.EscapedPath(), query: r.URL.RawQuery,
			contentType: r.Header.Get("Content-Type"), body: string(b), contentLength: r.ContentLength}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	c, err := New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return c, s
}

// sameJSON reports whether a and b are equal JSON documents.
func sameJSON(t *testing.T, a, b string) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal([]byte(a), &x); err != nil {
		t.Fatalf("%q: %v", a, err)
	}
	if err := json.Unmarshal([]byte(b), &y); err != nil {
		t.Fatalf("%q: %v", b, err)
	}
	return reflect.DeepEqual(x, y)
}

func ptr[T any](v T) *T { return &v }

func TestRequests(t *testing.T) {
	ctx := context.Background()
	ts := time.UnixMilli(1732000000000)
	topicJSON := `{"name":"orders","id":"0c1d","created_at":"2024-11-19T07:06:40Z","config":{"retention.ms":"86400000"},` +
		`"overrides":{"retention.ms":"86400000"},"partitions":[{"partition":0,"log_start_offset":3,"high_watermark":10,"size_bytes":700}]}`
	wantTopic := &Topic{Name: "orders", ID: "0c1d", CreatedAt: time.Date(2024, 11, 19, 7, 6, 40, 0, time.UTC),
		Config: map[string]string{"retention.ms": "86400000"}, Overrides: map[string]string{"retention.ms": "86400000"},
		Partitions: []Partition{{Partition: 0, LogStartOffset: 3, HighWatermark: 10, SizeBytes: 700}}}

	tests := []struct {
		name   string
		call   func(c *Client) (any, error)
		status int
		reply  string

		method, path, query, contentType string
		body                             string // JSON, compared as JSON; "" for none
		want                             any
	}{
		{
			name: "create topic",
			call: func(c *Client) (any, error) {
				return c.CreateTopic(ctx, "orders", 6, map[string]string{"retention.ms": "86400000"})
			},
			status: 201, reply: topicJSON,
			method: "POST", path: "/v1/topics", contentType: "application/json",
			body: `{"name":"orders","partitions":6,"config":{"retention.ms":"86400000"}}`,
			want: wantTopic,
		},
		{
			name:   "create topic with defaults",
			call:   func(c *Client) (any, error) { return c.CreateTopic(ctx, "orders", 0, nil) },
			status: 201, reply: topicJSON,
			method: "POST", path: "/v1/topics", contentType: "application/json",
			body: `{"name":"orders"}`,
			want: wantTopic,
		},
		{
			name:   "list topics",
			call:   func(c *Client) (any, error) { return c.ListTopics(ctx) },
			status: 200, reply: `{"topics":[` + topicJSON + `]}`,
			method: "GET", path: "/v1/topics",
			want: []Topic{*wantTopic},
		},
		{
			name:   "describe topic",
			call:   func(c *Client) (any, error) { return c.DescribeTopic(ctx, "orders") },
			status: 200, reply: topicJSON,
			method: "GET", path: "/v1/topics/orders",
			want: wantTopic,
		},
		{
			name: "alter topic",
			call: func(c *Client) (any, error) {
				return c.AlterTopic(ctx, "orders", TopicChange{Set: map[string]string{"retention.ms": "1"}, Delete: []string{"segment.bytes"}})
			},
			status: 200, reply: topicJSON,
			method: "PATCH", path: "/v1/topics/orders", contentType: "application/json",
			body: `{"config":{"retention.ms":"1"},"delete_config":["segment.bytes"]}`,
			want: wantTopic,
		},
		{
			name:   "add partitions",
			call:   func(c *Client) (any, error) { return c.AlterTopic(ctx, "orders", TopicChange{Partitions: 12}) },
			status: 200, reply: topicJSON,
			method: "PATCH", path: "/v1/topics/orders", contentType: "application/json",
			body: `{"partitions":12}`,
			want: wantTopic,
		},
		{
			name:   "delete topic",
			call:   func(c *Client) (any, error) { return nil, c.DeleteTopic(ctx, "orders") },
			status: 204,
			method: "DELETE", path: "/v1/topics/orders",
		},
		{
			name: "produce",
			call: func(c *Client) (any, error) {
				return c.Produce(ctx, "orders", []ProduceRecord{
					{Key: []byte("user-42"), Value: json.RawMessage(`{"total": 12.5}`), Headers: map[string]string{"h": "v"},
						Partition: ptr[int32](3), Timestamp: ts},
					{Key: []byte{0xff, 0x00}, ValueBytes: []byte{1, 2, 3}},
					{},
				})
			},
			status: 200, reply: `{"offsets":[{"partition":3,"offset":1207},{"partition":1,"offset":5},{"partition":0,"offset":9}]}`,
			method: "POST", path: "/v1/topics/orders/records", contentType: "application/json",
			body: `{"records":[{"key":"user-42","value":{"total":12.5},"headers":{"h":"v"},"partition":3,"timestamp":1732000000000},` +
				`{"key_base64":"/wA=","value_base64":"AQID"},{}]}`,
			want: []RecordOffset{{3, 1207}, {1, 5}, {0, 9}},
		},
		{
			name: "produce ndjson",
			call: func(c *Client) (any, error) {
				return c.ProduceNDJSON(ctx, "orders", strings.NewReader("{\"value\":1}\n{\"value\":2}\n"))
			},
			status: 200, reply: `{"offsets":[{"partition":0,"offset":0},{"partition":0,"offset":1}]}`,
			method: "POST", path: "/v1/topics/orders/records", contentType: "application/x-ndjson",
			want: []RecordOffset{{0, 0}, {0, 1}},
		},
		{
			name: "consume",
			call: func(c *Client) (any, error) {
				return c.Consume(ctx, "orders", 2, Offset(17), FetchOptions{MaxRecords: 100, MaxBytes: 1 << 20, Wait: 1500 * time.Millisecond})
			},
			status: 200,
			reply: `{"records":[{"partition":2,"offset":17,"timestamp":1732000000000,"key":"k","value":{"a":1},"headers":{"h":"v","n":null}},` +
				`{"partition":2,"offset":18,"timestamp":1732000000001,"key_base64":"/wA=","value_base64":"AQID"},` +
				`{"partition":2,"offset":19,"timestamp":1732000000002}],"next_offset":20,"high_watermark":25}`,
			method: "GET", path: "/v1/topics/orders/partitions/2/records",
			query: "max_bytes=1048576&max_records=100&offset=17&timeout_ms=1500",
			want: &FetchResult{Records: []Record{
				{Partition: 2, Offset: 17, Timestamp: 1732000000000, Key: ptr("k"), Value: json.RawMessage(`{"a":1}`),
					Headers: map[string]*string{"h": ptr("v"), "n": nil}},
				{Partition: 2, Offset: 18, Timestamp: 1732000000001, KeyBase64: []byte{0xff, 0}, ValueBase64: []byte{1, 2, 3}},
				{Partition: 2, Offset: 19, Timestamp: 1732000000002},
			}, NextOffset: 20, HighWatermark: 25},
		},
		{
			name: "consume from a time",
			call: func(c *Client) (any, error) {
				return c.Consume(ctx, "orders", 0, At(time.Date(2024, 5, 1, 12, 0, 0, 0, time.FixedZone("", 7200))), FetchOptions{Base64: true})
			},
			status: 200, reply: `{"records":[],"next_offset":4,"high_watermark":4}`,
			method: "GET", path: "/v1/topics/orders/partitions/0/records",
			query: "encoding=base64&offset=%402024-05-01T10%3A00%3A00Z&timeout_ms=0",
			want:  &FetchResult{Records: []Record{}, NextOffset: 4, HighWatermark: 4},
		},
		{
			name: "commit offsets",
			call: func(c *Client) (any, error) {
				return nil, c.CommitOffsets(ctx, "billing", []GroupOffset{{Topic: "orders", Partition: 1, Offset: 42, Metadata: "m"}, {Topic: "orders", Partition: 2, Offset: 7}})
			},
			status: 204,
			method: "POST", path: "/v1/groups/billing/offsets", contentType: "application/json",
			body: `{"offsets":[{"topic":"orders","partition":1,"offset":42,"metadata":"m"},{"topic":"orders","partition":2,"offset":7}]}`,
		},
		{
			name:   "fetch offsets",
			call:   func(c *Client) (any, error) { return c.FetchOffsets(ctx, "billing") },
			status: 200, reply: `{"offsets":[{"topic":"orders","partition":1,"offset":42,"metadata":"m","commit_time":"2024-11-19T07:06:40Z"}]}`,
			method: "GET", path: "/v1/groups/billing/offsets",
			want: []GroupOffset{{Topic: "orders", Partition: 1, Offset: 42, Metadata: "m", CommitTime: time.Date(2024, 11, 19, 7, 6, 40, 0, time.UTC)}},
		},
		{
			name:   "list groups",
			call:   func(c *Client) (any, error) { return c.ListGroups(ctx) },
			status: 200, reply: `{"groups":[{"group":"billing","state":"Empty","members":0,"lag":5000}]}`,
			method: "GET", path: "/v1/groups",
			want: []GroupSummary{{Group: "billing", State: "Empty", Lag: 5000}},
		},
		{
			name:   "describe group",
			call:   func(c *Client) (any, error) { return c.DescribeGroup(ctx, "billing") },
			status: 200, reply: `{"group":"billing","state":"Stable","lag":3,` +
				`"members":[{"member_id":"m1","client_id":"c","client_host":"/127.0.0.1","topics":["orders"],` +
				`"partitions":[{"topic":"orders","partition":1}],"last_seen":"2024-11-19T07:06:40Z"}],` +
				`"partitions":[{"topic":"orders","partition":0,"committed_offset":7,"log_start_offset":2,"log_end_offset":10,"lag":3,` +
				`"commit_time":"2024-11-19T07:06:40Z"},` +
				`{"topic":"orders","partition":1,"committed_offset":null,"log_start_offset":0,"log_end_offset":4,"lag":null,"member":"m1"}]}`,
			method: "GET", path: "/v1/groups/billing",
			want: &Group{Group: "billing", State: "Stable", Lag: 3,
				Members: []Member{{MemberID: "m1", ClientID: "c", ClientHost: "/127.0.0.1", Topics: []string{"orders"},
					Partitions: []TopicPartition{{"orders", 1}}, LastSeen: time.Date(2024, 11, 19, 7, 6, 40, 0, time.UTC)}},
				Partitions: []GroupPartition{
					{Topic: "orders", Partition: 0, CommittedOffset: ptr[int64](7), LogStartOffset: 2, LogEndOffset: 10, Lag: ptr[int64](3),
						CommitTime: time.Date(2024, 11, 19, 7, 6, 40, 0, time.UTC)},
					{Topic: "orders", Partition: 1, LogEndOffset: 4, Member: "m1"},
				}},
		},
		{
			name:   "delete group",
			call:   func(c *Client) (any, error) { return nil, c.DeleteGroup(ctx, "billing") },
			status: 204,
			method: "DELETE", path: "/v1/groups/billing",
		},
		{
			name:   "seek to an offset",
			call:   func(c *Client) (any, error) { return c.Seek(ctx, "billing", "orders", Offset(5)) },
			status: 200, reply: `{"offsets":[{"topic":"orders","partition":0,"offset":5}]}`,
			method: "POST", path: "/v1/groups/billing/seek", contentType: "application/json",
			body: `{"to":5,"topic":"orders"}`,
			want: []GroupOffset{{Topic: "orders", Partition: 0, Offset: 5}},
		},
		{
			name:   "seek to the start",
			call:   func(c *Client) (any, error) { return c.Seek(ctx, "billing", "orders", Earliest, 0, 2) },
			status: 200, reply: `{"offsets":[]}`,
			method: "POST", path: "/v1/groups/billing/seek", contentType: "application/json",
			body: `{"to":"earliest","topic":"orders","partitions":[0,2]}`,
			want: []GroupOffset{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, s := fake(t, tc.status, tc.reply)
			got, err := tc.call(c)
			if err != nil {
				t.Fatalf("got error %v", err)
			}
			if s.method != tc.method || s.path != tc.path || s.query != tc.query || s.contentType != tc.contentType {
				t.Errorf("got %s %s?%s (Content-Type %q), want %s %s?%s (Content-Type %q)",
					s.method, s.path, s.query, s.contentType, tc.method, tc.path, tc.query, tc.contentType)
			}
			switch {
			case tc.body != "" && !sameJSON(t, s.body, tc.body):
				t.Errorf("got body %s, want %s", s.body, tc.body)
			case tc.body == "" && tc.contentType == "" && s.body != "":
				t.Errorf("got body %q, want none", s.body)
			}
			if tc.want != nil && !reflect.DeepEqual(got, tc.want) {
				g, _ := json.Marshal(got)
				w, _ := json.Marshal(tc.want)
				t.Errorf("got %s, want %s", g, w)
			}
		})
	}
}

func TestPathEscaping(t *testing.T) {
	c, s := fake(t, 200, `{"group":"a/b c"}`)
	if _, err := c.DescribeGroup(context.Background(), "a/b c"); err != nil {
		t.Fatal(err)
	}
	if want := "/v1/groups/a%2Fb%20c"; s.rawPath != want {
		t.Errorf("got path %s, want %s", s.rawPath, want)
	}
}

func TestProduceNDJSONStreams(t *testing.T) {
	c, s := fake(t, 200, `{"offsets":[{"partition":0,"offset":0}]}`)
	pr, pw := io.Pipe()
	go func() {
		pw.Write([]byte(`{"value":`))
		time.Sleep(10 * time.Millisecond)
		pw.Write([]byte("1}\n"))
		pw.Close()
	}()
	if _, err := c.ProduceNDJSON(context.Background(), "orders", pr); err != nil {
		t.Fatal(err)
	}
	if s.body != "{\"value\":1}\n" || s.contentLength != -1 {
		t.Errorf("got body %q with length %d, want the stream, chunked", s.body, s.contentLength)
	}
}

func TestBaseURL(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{in: "http://127.0.0.1:8080", want: "http://127.0.0.1:8080"},
		{in: "127.0.0.1:8080", want: "http://127.0.0.1:8080"},
		{in: "https://sluice.example/api/", want: "https://sluice.example/api"},
		{in: "", err: "server address is empty"},
		{in: "ftp://x", err: `server address "ftp://x": want an http:// or https:// URL`},
		{in: "http://", err: `server address "http://": no host`},
		{in: "http://x/?a=b", err: `server address "http://x/?a=b": want no query or fragment`},
	} {
		c, err := New(tc.in)
		switch {
		case tc.err != "":
			if err == nil || err.Error() != tc.err {
				t.Errorf("New(%q): got error %v, want %q", tc.in, err, tc.err)
			}
		case err != nil:
			t.Errorf("New(%q): %v", tc.in, err)
		case c.BaseURL() != tc.want:
			t.Errorf("New(%q): got %s, want %s", tc.in, c.BaseURL(), tc.want)
		}
	}

	// A base path prefixes every request.
	var path string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path = r.URL.Path
		io.WriteString(w, `{"topics":[]}`)
	}))
	defer srv.Close()
	c, err := New(srv.URL + "/sluice/")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListTopics(context.Background()); err != nil {
		t.Fatal(err)
	}
	if path != "/sluice/v1/topics" {
		t.Errorf("got path %s, want /sluice/v1/topics", path)
	}
}

func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		body   string
		want   Error
		text   string
	}{
		{"json", 404, `{"error_code":404,"message":"unknown topic: topic \"nope\""}` + "\n",
			Error{404, 404, `unknown topic: topic "nope"`}, `unknown topic: topic "nope" (HTTP 404)`},
		{"rest proxy code", 404, `{"error_code":40401,"message":"unknown topic"}`,
			Error{404, 40401, "unknown topic"}, "unknown topic (HTTP 404)"},
		{"html", 502, "<html>\n<body>Bad Gateway</body></html>",
			Error{502, 502, "<html>"}, "<html> (HTTP 502)"},
		{"empty", 503, "", Error{503, 503, "service unavailable"}, "service unavailable (HTTP 503)"},
		{"json without a message", 500, `{"error":"x"}`, Error{500, 500, `{"error":"x"}`}, `{"error":"x"} (HTTP 500)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := fake(t, tc.status, tc.body)
			_, err := c.DescribeTopic(context.Background(), "nope")
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("got %T %v, want *Error", err, err)
			}
			if *e != tc.want {
				t.Errorf("got %+v, want %+v", *e, tc.want)
			}
			if err.Error() != tc.text {
				t.Errorf("got message %q, want %q", err.Error(), tc.text)
			}
			if !IsStatus(err, tc.status) {
				t.Errorf("IsStatus(err, %d) is false", tc.status)
			}
		})
	}
}

func TestUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c, err := New(addr)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.ListTopics(context.Background())
	var re *RequestError
	if !errors.As(err, &re) || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("got %T %v, want a *RequestError wrapping ECONNREFUSED", err, err)
	}
	if want := "GET http://" + addr + "/v1/topics: "; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("got %q, want it to start %q", err, want)
	}
}

func TestTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
		io.WriteString(w, `{"records":[],"next_offset":0,"high_watermark":0}`)
	}))
	defer srv.Close()
	defer close(release)
	c, err := New(srv.URL, WithTimeout(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListTopics(context.Background()); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("list topics: got %v, want a deadline error", err)
	}
	// A fetch gets its long-poll wait on top of the timeout.
	start := time.Now()
	_, err = c.Consume(context.Background(), "t", 0, Earliest, FetchOptions{Wait: 200 * time.Millisecond})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("consume: got %v, want a deadline error", err)
	}
	if took := time.Since(start); took < 250*time.Millisecond {
		t.Errorf("consume gave up after %s, want at least the wait plus the timeout (250ms)", took)
	}
}

func TestRecordBytes(t *testing.T) {
	for _, tc := range []struct {
		in         string
		key, value []byte
	}{
		{`{"key":"k","value":{"a": 1}}`, []byte("k"), []byte(`{"a": 1}`)},
		{`{"key_base64":"/wA=","value_base64":"AQID"}`, []byte{0xff, 0}, []byte{1, 2, 3}},
		{`{}`, nil, nil},
		{`{"value":null}`, nil, []byte("null")},
		{`{"key":"","value":""}`, []byte{}, []byte(`""`)},
	} {
		var r Record
		if err := json.Unmarshal([]byte(tc.in), &r); err != nil {
			t.Fatal(err)
		}
		if k, v := r.KeyBytes(), r.ValueBytes(); !reflect.DeepEqual(k, tc.key) || !reflect.DeepEqual(v, tc.value) {
			t.Errorf("%s: got key %q value %q, want %q %q", tc.in, k, v, tc.key, tc.value)
		}
	}
}

func TestPos(t *testing.T) {
	for _, tc := range []struct {
		in, want, json, err string
	}{
		{in: "earliest", want: "earliest", json: `"earliest"`},
		{in: "latest", want: "latest", json: `"latest"`},
		{in: "42", want: "42", json: `42`},
		{in: "@1714564800000", want: "@1714564800000", json: `"@1714564800000"`},
		{in: "@2024-05-01T12:00:00+02:00", want: "@2024-05-01T12:00:00+02:00", json: `"@2024-05-01T12:00:00+02:00"`},
		{in: "-1", err: `position "-1": want an offset, earliest, latest or @<time>`},
		{in: "@yesterday", err: `position "@yesterday": want @ followed by an RFC 3339 time or Unix milliseconds`},
		{in: "", err: `position "": want an offset, earliest, latest or @<time>`},
	} {
		p, err := ParsePos(tc.in)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("ParsePos(%q): got error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("ParsePos(%q): %v", tc.in, err)
		}
		b, _ := json.Marshal(p)
		if p.String() != tc.want || string(b) != tc.json {
			t.Errorf("ParsePos(%q): got %s (JSON %s), want %s (JSON %s)", tc.in, p, b, tc.want, tc.json)
		}
	}
	if got := At(time.UnixMilli(1714564800123)).String(); got != "@2024-05-01T12:00:00.123Z" {
		t.Errorf("At: got %s", got)
	}
}

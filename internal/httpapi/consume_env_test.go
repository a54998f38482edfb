package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-dev/sluice/internal/logstore"
	"github.com/sluice-dev/sluice/internal/meta"
	"github.com/sluice-dev/sluice/internal/record"
	"github.com/sluice-dev/sluice/internal/stream"
	"github.com/sluice-dev/sluice/internal/stream/embedded"
)

// consumeEnv is the API over a real embedded log in t.TempDir(), for the
// consume, group and REST Proxy consumer tests. Records go in through
// stream.Log.Produce, not the produce endpoint.
type consumeEnv struct {
	t      testing.TB
	log    stream.Log
	api    *API
	mux    *http.ServeMux
	reg    *prometheus.Registry
	codecs record.Codecs
	clock  *testClock
}

// testClock is a settable clock for the API's Options.Now.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func newConsumeEnv(t testing.TB, opts ...func(*Options)) *consumeEnv {
	t.Helper()
	dir := t.TempDir()
	m, err := meta.Open(filepath.Join(dir, "meta.db"), meta.Options{})
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	l, err := logstore.Open(context.Background(), logstore.Options{
		Dir: filepath.Join(dir, "log"), Catalog: m, Logger: logger,
		Sync: logstore.SyncPolicy{Mode: logstore.SyncNever},
	})
	if err != nil {
		m.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("close log: %v", err)
		}
		m.Close()
	})
	clock := &testClock{now: time.Now()}
	o := Options{Logger: logger, Registerer: prometheus.NewRegistry(), Now: clock.Now}
	for _, f := range opts {
		f(&o)
	}
	e := &consumeEnv{t: t, log: embedded.New(l, m), mux: http.NewServeMux(), reg: o.Registerer.(*prometheus.Registry), clock: clock}
	if e.api, err = New(e.log, o); err != nil {
		t.Fatal(err)
	}
	e.api.Register(e.mux)
	return e
}

func (e *consumeEnv) createTopic(name string, partitions int32) {
	e.t.Helper()
	if _, err := e.log.CreateTopic(context.Background(), name, partitions, nil); err != nil {
		e.t.Fatal(err)
	}
}

// produce appends recs to a partition as one batch and returns the offset
// of the first.
func (e *consumeEnv) produce(topic string, partition int32, opts record.BatchOptions, recs ...record.Record) int64 {
	e.t.Helper()
	batch, err := e.codecs.AppendBatch(nil, recs, opts)
	if err != nil {
		e.t.Fatal(err)
	}
	res, err := e.log.Produce(context.Background(), topic, partition, batch)
	if err != nil {
		e.t.Fatal(err)
	}
	return res.BaseOffset
}

// values produces one uncompressed batch of records with the given string
// values (nil keys), timestamps ts, ts+1, ...
func (e *consumeEnv) values(topic string, partition int32, ts int64, values ...string) int64 {
	e.t.Helper()
	recs := make([]record.Record, len(values))
	for i, v := range values {
		recs[i] = record.Record{Value: []byte(v), Timestamp: ts + int64(i)}
	}
	return e.produce(topic, partition, record.BatchOptions{}, recs...)
}

// reply is a response as the tests look at it.
type reply struct {
	status int
	header http.Header
	body   string
}

// decode decodes the body into v.
func (r reply) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(r.body), v); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
}

// errBody decodes an error body, checking it has exactly the two fields.
func (r reply) errBody(t testing.TB) errorBody {
	t.Helper()
	var raw map[string]json.RawMessage
	r.decode(t, &raw)
	if len(raw) != 2 || raw["error_code"] == nil || raw["message"] == nil {
		t.Fatalf("error body %s: want exactly error_code and message", r.body)
	}
	var eb errorBody
	r.decode(t, &eb)
	if eb.Message == "" {
		t.Fatalf("error body %s has an empty message", r.body)
	}
	return eb
}

// serve sends a request; header is name, value pairs. A body is sent with
// Content-Type application/json unless a header says otherwise.
func (e *consumeEnv) serve(ctx context.Context, method, path, body string, header ...string) reply {
	e.t.Helper()
	req := httptest.NewRequestWithContext(ctx, method, path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	e.mux.ServeHTTP(rec, req)
	return reply{status: rec.Code, header: rec.Header(), body: rec.Body.String()}
}

func (e *consumeEnv) do(method, path, body string, header ...string) reply {
	e.t.Helper()
	return e.serve(context.Background(), method, path, body, header...)
}

// must sends a request and fails the test unless it gets status; it decodes
// the body into out when out is not nil.
func (e *consumeEnv) must(status int, method, path, body string, out any, header ...string) reply {
	e.t.Helper()
	r := e.do(method, path, body, header...)
	if r.status != status {
		e.t.Fatalf("%s %s: got status %d, want %d; body %s", method, path, r.status, status, r.body)
	}
	if out != nil {
		r.decode(e.t, out)
	}
	return r
}

// gauge returns the value of the gauge with the given labels, and whether
// there is one.
func (e *consumeEnv) gauge(name string, labels map[string]string) (float64, bool) {
	e.t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if labels[lp.GetName()] != lp.GetValue() {
					continue next
				}
			}
			return m.GetGauge().GetValue(), true
		}
	}
	return 0, false
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

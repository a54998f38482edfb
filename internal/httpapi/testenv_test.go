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
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-dev/sluice/internal/logstore"
	"github.com/sluice-dev/sluice/internal/meta"
	"github.com/sluice-dev/sluice/internal/record"
	"github.com/sluice-dev/sluice/internal/stream"
	"github.com/sluice-dev/sluice/internal/stream/embedded"
)

// testEnv is the API over a real embedded log in a temporary directory.
type testEnv struct {
	t       testing.TB
	log     stream.Log
	api     *API
	mux     *http.ServeMux
	reg     *prometheus.Registry
	store   *logstore.Log
	handler http.Handler
}

type envOption func(*envConfig)

type envConfig struct {
	sync    logstore.SyncPolicy
	maxBody int64
}

func withSync(p logstore.SyncPolicy) envOption { return func(c *envConfig) { c.sync = p } }
func withMaxBody(n int64) envOption            { return func(c *envConfig) { c.maxBody = n } }

// newTestEnv opens a metadata store and a log in t.TempDir() (fsync never,
// unless told otherwise) and serves the API over them.
func newTestEnv(t testing.TB, opts ...envOption) *testEnv {
	t.Helper()
	cfg := envConfig{sync: logstore.SyncPolicy{Mode: logstore.SyncNever}}
	for _, o := range opts {
		o(&cfg)
	}
	dir := t.TempDir()
	m, err := meta.Open(filepath.Join(dir, "meta.db"), meta.Options{})
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	l, err := logstore.Open(context.Background(), logstore.Options{
		Dir: filepath.Join(dir, "log"), Catalog: m, Sync: cfg.sync, Logger: logger,
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
	reg := prometheus.NewRegistry()
	log := embedded.New(l, m)
	api, err := New(log, Options{Registerer: reg, Logger: logger, MaxBodyBytes: cfg.maxBody})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	api.Register(mux)
	return &testEnv{t: t, log: log, api: api, mux: mux, reg: reg, store: l, handler: mux}
}

// createTopic creates a topic directly on the log.
func (e *testEnv) createTopic(name string, partitions int32, config map[string]string) {
	e.t.Helper()
	if _, err := e.log.CreateTopic(context.Background(), name, partitions, config); err != nil {
		e.t.Fatal(err)
	}
}

type response struct {
	status int
	header http.Header
	body   string
}

// json decodes the response body into v, failing the test if it does not
// decode.
func (r response) json(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(r.body), v); err != nil {
		t.Fatalf("response body %q: %v", r.body, err)
	}
}

// do serves one request through the handler and returns the response.
func (e *testEnv) do(method, path, contentType, body string) response {
	e.t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	rec := httptest.NewRecorder()
	e.handler.ServeHTTP(rec, req)
	return response{status: rec.Code, header: rec.Header(), body: rec.Body.String()}
}

// errorOf decodes an error response, checking its shape.
func errorOf(t testing.TB, r response) errorBody {
	t.Helper()
	var raw map[string]any
	r.json(t, &raw)
	if len(raw) != 2 {
		t.Fatalf("error body %s: want exactly error_code and message", r.body)
	}
	var e errorBody
	r.json(t, &e)
	if e.Message == "" {
		t.Fatalf("error body %s has no message", r.body)
	}
	return e
}

// readAll reads every record of a partition through stream.Log.Fetch.
func readAll(t testing.TB, log stream.Log, topic string, partition int32) []record.Record {
	t.Helper()
	var (
		codecs record.Codecs
		out    []record.Record
		offset int64
	)
	for {
		res, err := log.Fetch(context.Background(), stream.FetchRequest{Topic: topic, Partition: partition, Offset: offset, MaxBytes: 4 << 20})
		if err != nil {
			t.Fatalf("fetch %s/%d at %d: %v", topic, partition, offset, err)
		}
		if len(res.Batches) == 0 {
			return out
		}
		for b := res.Batches; len(b) > 0; {
			h, err := record.ParseHeader(b)
			if err != nil {
				t.Fatal(err)
			}
			n := h.Size()
			recs, _, err := codecs.AppendRecords(nil, b[:n], record.DecodeLimits{})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range recs {
				if r.Offset >= offset {
					out = append(out, r)
				}
			}
			b = b[n:]
		}
		offset = res.NextOffset
	}
}

// counter returns the value of a counter with the given labels, or 0.
func (e *testEnv) counter(name string, labels map[string]string) float64 {
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
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

func jsonBody(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func logstoreSyncAlways() logstore.SyncPolicy { return logstore.SyncPolicy{Mode: logstore.SyncAlways} }

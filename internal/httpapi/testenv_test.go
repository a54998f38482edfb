package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/sluice-dev/sluice/internal/group"
	"github.com/sluice-dev/sluice/internal/kafkawire"
	"github.com/sluice-dev/sluice/internal/logstore"
	"github.com/sluice-dev/sluice/internal/meta"
	"github.com/sluice-dev/sluice/internal/record"
	"github.com/sluice-dev/sluice/internal/stream"
	"github.com/sluice-dev/sluice/internal/stream/embedded"
	"github.com/sluice-dev/sluice/internal/stream/kafka"
)

// testEnv is the API over a real embedded log in t.TempDir(), served
// through its handler in process. Records go in through the API's produce
// endpoints, or straight through stream.Log with produce and values.
type testEnv struct {
	t       testing.TB
	log     stream.Log
	api     *API
	handler http.Handler
	reg     *prometheus.Registry
	codecs  record.Codecs
}

type envOption func(*envConfig)

type envConfig struct {
	sync     logstore.SyncPolicy
	opts     []func(*Options)
	embedded []embedded.Option
}

// withGroups gives the embedded log a Kafka group coordinator.
func withGroups(c *group.Coordinator) envOption {
	return func(cfg *envConfig) { cfg.embedded = append(cfg.embedded, embedded.WithGroups(c)) }
}

// withSync sets the log's fsync policy; the default is never.
func withSync(p logstore.SyncPolicy) envOption { return func(c *envConfig) { c.sync = p } }

// withOptions changes the API's Options after the environment has set its
// own (a logger, a registry, and what the other options say).
func withOptions(f func(*Options)) envOption {
	return func(c *envConfig) { c.opts = append(c.opts, f) }
}

// withMaxBody sets Options.MaxBodyBytes.
func withMaxBody(n int64) envOption {
	return withOptions(func(o *Options) { o.MaxBodyBytes = n })
}

// withClock makes c the API's clock (Options.Now) in place of time.Now.
func withClock(c *testClock) envOption {
	return withOptions(func(o *Options) { o.Now = c.Now })
}

// newTestEnv serves the API over the log that SLUICE_TEST_LOG names (see
// testLogEnv): by default a metadata store and a log in t.TempDir().
func newTestEnv(t testing.TB, opts ...envOption) *testEnv {
	t.Helper()
	cfg := envConfig{sync: logstore.SyncPolicy{Mode: logstore.SyncNever}}
	for _, o := range opts {
		o(&cfg)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	e := &testEnv{t: t, log: newTestLog(t, cfg, logger), reg: prometheus.NewRegistry()}
	o := Options{Logger: logger, Registerer: e.reg}
	for _, f := range cfg.opts {
		f(&o)
	}
	var err error
	if e.api, err = New(e.log, o); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	e.api.Register(mux)
	e.handler = mux
	return e
}

// testLogEnv selects the log the API's tests run on, so that the same HTTP
// requests are checked to give the same answers in both of Sluice's modes:
//
//	embedded (or unset)  the embedded log, called directly
//	kfake                stream/kafka (cluster mode) on a kfake cluster
//	sluice               stream/kafka on a second Sluice's Kafka listener
//	                     (internal/kafkawire over an embedded log)
//
// scripts/test runs the package once in each.
const testLogEnv = "SLUICE_TEST_LOG"

// testLogMode returns the log SLUICE_TEST_LOG selects.
func testLogMode(t testing.TB) string {
	switch m := os.Getenv(testLogEnv); m {
	case "", "embedded":
		return "embedded"
	case "kfake", "sluice":
		return m
	default:
		t.Fatalf("%s=%q: want embedded, kfake or sluice", testLogEnv, m)
		return ""
	}
}

// onlyEmbedded skips a test in the cluster-mode runs, saying why: for
// behaviour of the embedded log that cluster mode leaves to Kafka.
func onlyEmbedded(t testing.TB, why string) {
	t.Helper()
	if m := testLogMode(t); m != "embedded" {
		t.Skipf("%s=%s: %s", testLogEnv, m, why)
	}
}

// newTestLog returns the log SLUICE_TEST_LOG selects, closed when t ends.
func newTestLog(t testing.TB, cfg envConfig, logger *slog.Logger) stream.Log {
	t.Helper()
	mode := testLogMode(t)
	if mode == "embedded" {
		return newEmbeddedLog(t, cfg, logger)
	}
	if len(cfg.embedded) > 0 {
		t.Skipf("%s=%s: the test drives the embedded log's group coordinator; in cluster mode groups are the brokers'", testLogEnv, mode)
	}
	var brokers []string
	switch mode {
	case "kfake":
		c, err := kfake.NewCluster(kfake.NumBrokers(1))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		brokers = c.ListenAddrs()
	case "sluice":
		brokers = []string{startKafkaListener(t, newEmbeddedLog(t, cfg, logger), logger)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := kafka.New(ctx, kafka.Options{Brokers: brokers})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	return l
}

// startKafkaListener serves the Kafka protocol over log (an embedded one,
// whose store is in el.meta) on 127.0.0.1 until t ends, and returns its
// address.
func startKafkaListener(t testing.TB, log *embeddedTestLog, logger *slog.Logger) string {
	t.Helper()
	srv, err := kafkawire.New(log, kafkawire.Options{Store: log.meta, Logger: logger, AutoCreateTopics: true})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(context.Background(), ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, kafkawire.ErrServerClosed) {
			t.Errorf("kafka listener: %v", err)
		}
	})
	return ln.Addr().String()
}

// embeddedTestLog is the embedded log with its metadata store.
type embeddedTestLog struct {
	*embedded.Log
	meta *meta.Store
}

// newEmbeddedLog opens a metadata store and a log in t.TempDir().
func newEmbeddedLog(t testing.TB, cfg envConfig, logger *slog.Logger) *embeddedTestLog {
	t.Helper()
	dir := t.TempDir()
	m, err := meta.Open(filepath.Join(dir, "meta.db"), meta.Options{})
	if err != nil {
		t.Fatal(err)
	}
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
	return &embeddedTestLog{Log: embedded.New(l, m, cfg.embedded...), meta: m}
}

// testClock is a settable clock for withClock.
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

// createTopic creates a topic directly on the log.
func (e *testEnv) createTopic(name string, partitions int32, config map[string]string) {
	e.t.Helper()
	if _, err := e.log.CreateTopic(context.Background(), name, partitions, config); err != nil {
		e.t.Fatal(err)
	}
}

// produce appends recs to a partition as one batch, through stream.Log,
// and returns the offset of the first.
func (e *testEnv) produce(topic string, partition int32, opts record.BatchOptions, recs ...record.Record) int64 {
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
func (e *testEnv) values(topic string, partition int32, ts int64, values ...string) int64 {
	e.t.Helper()
	recs := make([]record.Record, len(values))
	for i, v := range values {
		recs[i] = record.Record{Value: []byte(v), Timestamp: ts + int64(i)}
	}
	return e.produce(topic, partition, record.BatchOptions{}, recs...)
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

// response is a response as the tests look at it.
type response struct {
	status int
	header http.Header
	body   string
}

// json decodes the body into v, failing the test if it does not decode.
func (r response) json(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(r.body), v); err != nil {
		t.Fatalf("response body %q: %v", r.body, err)
	}
}

// errBody decodes an error body, checking that it has exactly the fields
// error_code and message, and a message.
func (r response) errBody(t testing.TB) errorBody {
	t.Helper()
	var raw map[string]json.RawMessage
	r.json(t, &raw)
	if len(raw) != 2 || raw["error_code"] == nil || raw["message"] == nil {
		t.Fatalf("error body %s: want exactly error_code and message", r.body)
	}
	var eb errorBody
	r.json(t, &eb)
	if eb.Message == "" {
		t.Fatalf("error body %s has an empty message", r.body)
	}
	return eb
}

// noContentType, passed as do's header, sends a body without a
// Content-Type.
var noContentType = []string{"Content-Type", ""}

// do serves a request through the handler. header is name, value pairs; a
// body goes with Content-Type application/json unless header says
// otherwise, and a header given the value "" is not sent.
func (e *testEnv) do(method, path, body string, header ...string) response {
	e.t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i+1] == "" {
			req.Header.Del(header[i])
		} else {
			req.Header.Set(header[i], header[i+1])
		}
	}
	return e.serve(req)
}

// serve serves req through the handler, for requests do cannot make.
func (e *testEnv) serve(req *http.Request) response {
	rec := httptest.NewRecorder()
	e.handler.ServeHTTP(rec, req)
	return response{status: rec.Code, header: rec.Header(), body: rec.Body.String()}
}

// must is do that fails the test unless the answer has status; it decodes
// the body into out when out is not nil.
func (e *testEnv) must(status int, method, path, body string, out any, header ...string) response {
	e.t.Helper()
	r := e.do(method, path, body, header...)
	if r.status != status {
		e.t.Fatalf("%s %s: got status %d, want %d; body %s", method, path, r.status, status, r.body)
	}
	if out != nil {
		r.json(e.t, out)
	}
	return r
}

// metric returns the value of the counter or gauge name with the given
// labels, and whether there is one.
func (e *testEnv) metric(name string, labels map[string]string) (float64, bool) {
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
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue(), true
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue(), true
			}
			e.t.Fatalf("metric %s is a %s, not a counter or gauge", name, mf.GetType())
		}
	}
	return 0, false
}

package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/dirlock"
	"github.com/sluice-dev/sluice/internal/logstore"
)

func testOptions(t *testing.T, dir string) Options {
	t.Helper()
	return Options{
		DataDir:   dir,
		HTTPAddr:  "127.0.0.1:0",
		KafkaAddr: "127.0.0.1:0",
		Logger:    slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
}

func startServer(t *testing.T, opts Options) *Server {
	t.Helper()
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	return s
}

type response struct {
	status int
	header http.Header
	body   string
}

func get(t *testing.T, method, url string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, string(b)}
}

func TestEndpoints(t *testing.T) {
	s := startServer(t, testOptions(t, t.TempDir()))
	base := "http://" + s.Addr().String()
	tests := []struct {
		method, path string
		wantStatus   int
		wantBody     string // exact JSON, or for /metrics lines it must contain
	}{
		{"GET", "/healthz", 200, `{"status":"ok"}`},
		{"GET", "/readyz", 200, `{"status":"ok"}`},
		{"GET", "/nope", 404, `{"error_code":404,"message":"no such endpoint: /nope"}`},
		{"POST", "/healthz", 405, `{"error_code":405,"message":"method POST not allowed on /healthz; allowed: GET, HEAD"}`},
		{"DELETE", "/metrics", 405, `{"error_code":405,"message":"method DELETE not allowed on /metrics; allowed: GET, HEAD"}`},
		{"GET", "/metrics", 200, "sluice_log_recovery_duration_seconds\ngo_goroutines\nprocess_start_time_seconds"},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			r := get(t, tc.method, base+tc.path)
			if r.status != tc.wantStatus {
				t.Fatalf("got status %d, want %d (body %q)", r.status, tc.wantStatus, r.body)
			}
			if tc.path == "/metrics" && tc.wantStatus == 200 {
				for _, name := range strings.Split(tc.wantBody, "\n") {
					if !strings.Contains(r.body, "\n"+name+" ") {
						t.Errorf("metrics lack %s", name)
					}
				}
				return
			}
			if got := r.header.Get("Content-Type"); got != "application/json" {
				t.Errorf("got Content-Type %q, want application/json", got)
			}
			if got := strings.TrimSpace(r.body); got != tc.wantBody {
				t.Errorf("got body %s, want %s", got, tc.wantBody)
			}
		})
	}
}

func TestReadyz(t *testing.T) {
	failing := func() error {
		return errors.Join(errors.New("partition t-0: fsync failed"), errors.New("partition t-1: fsync failed"))
	}
	healthy := func() error { return nil }
	tests := []struct {
		name       string
		phase      phase
		checks     []check
		wantStatus int
		wantBody   string
	}{
		{"starting", phaseStarting, nil, 503, `{"error_code":503,"message":"starting up"}`},
		{"running", phaseRunning, []check{{"log", healthy}}, 200, `{"status":"ok"}`},
		{"unhealthy", phaseRunning, []check{{"log", failing}, {"other", healthy}}, 503,
			`{"error_code":503,"message":"log: partition t-0: fsync failed; partition t-1: fsync failed"}`},
		{"stopping", phaseStopping, []check{{"log", healthy}}, 503, `{"error_code":503,"message":"shutting down"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(testOptions(t, t.TempDir()))
			if err != nil {
				t.Fatal(err)
			}
			s.phase, s.checks = tc.phase, tc.checks
			rec := httptest.NewRecorder()
			s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
			if rec.Code != tc.wantStatus {
				t.Errorf("got status %d, want %d", rec.Code, tc.wantStatus)
			}
			if got := strings.TrimSpace(rec.Body.String()); got != tc.wantBody {
				t.Errorf("got body %s, want %s", got, tc.wantBody)
			}
		})
	}
}

func TestSecondServerOnSameDataDir(t *testing.T) {
	dir := t.TempDir()
	first := startServer(t, testOptions(t, dir))
	second, err := New(testOptions(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	err = second.Start(t.Context())
	if !errors.Is(err, dirlock.ErrLocked) {
		t.Fatalf("second Start: got %v, want dirlock.ErrLocked", err)
	}
	if second.Addr() != nil {
		t.Errorf("second server listens on %v; it must not bind before taking the lock", second.Addr())
	}
	if r := get(t, "GET", "http://"+first.Addr().String()+"/readyz"); r.status != 200 {
		t.Errorf("first server's /readyz: got %d, want 200", r.status)
	}
}

func TestStartFailureReleasesEverything(t *testing.T) {
	s := startOnBusyPort(t, func(o *Options, addr string) { o.HTTPAddr = addr }, "http listener")
	if err := s.Start(t.Context()); err == nil {
		t.Fatal("second Start: got nil, want an error")
	}
	if err := s.Shutdown(t.Context()); err != nil {
		t.Fatalf("Shutdown after a failed Start: %v", err)
	}
}

// TestRunAndRestart runs a server until its context is cancelled, then
// starts another on the same data directory and finds what the first
// created.
func TestRunAndRestart(t *testing.T) {
	dir := t.TempDir()
	s, err := New(testOptions(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	waitReady(t, s)
	if _, err := s.log.CreateTopic(t.Context(), "orders", 3, nil); err != nil {
		t.Fatal(err)
	}
	addr := s.Addr().String()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if _, err := http.Get("http://" + addr + "/healthz"); err == nil {
		t.Error("HTTP still served after Run returned")
	}

	s2 := startServer(t, testOptions(t, dir))
	info, err := s2.log.Topic("orders")
	if err != nil {
		t.Fatalf("topic after restart: %v", err)
	}
	if info.Spec.Partitions != 3 {
		t.Errorf("got %d partitions, want 3", info.Spec.Partitions)
	}
}

func waitReady(t *testing.T, s *Server) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(s.notReady()) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("not ready: %v", s.notReady())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestOptionsValidation(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		wantErr string
	}{
		{"no data dir", Options{}, "DataDir is required"},
		{"http addr without port", Options{DataDir: "d", HTTPAddr: "localhost"}, `http address: "localhost": want host:port`},
		{"http port out of range", Options{DataDir: "d", HTTPAddr: "127.0.0.1:70000"}, `http address: "127.0.0.1:70000": port must be a number from 0 to 65535`},
		{"kafka port not a number", Options{DataDir: "d", KafkaAddr: "127.0.0.1:kafka"}, `kafka address: "127.0.0.1:kafka": port must be`},
		{"interval without duration", Options{DataDir: "d", Fsync: logstore.SyncPolicy{Mode: logstore.SyncInterval}}, "positive duration"},
		{"defaults", Options{DataDir: "d"}, ""},
		{"any interface", Options{DataDir: "d", HTTPAddr: ":8080"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.opts)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("got %v, want nil", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("got %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestErrorBodyShape(t *testing.T) {
	rec := httptest.NewRecorder()
	writeError(rec, http.StatusBadRequest, `bad "input"`)
	var body map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	if len(body) != 2 || body["error_code"] != float64(400) || body["message"] != `bad "input"` {
		t.Fatalf("got %v, want error_code 400 and the message", body)
	}
}

// startOnBusyPort starts a server with one listener (set by setAddr) on a
// port already in use, checks that Start fails with an error mentioning
// wantErr and that the data directory is released, and returns the server.
func startOnBusyPort(t *testing.T, setAddr func(o *Options, addr string), wantErr string) *Server {
	t.Helper()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	dir := t.TempDir()
	opts := testOptions(t, dir)
	setAddr(&opts, busy.Addr().String())
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(t.Context()); err == nil || !strings.Contains(err.Error(), wantErr) {
		t.Fatalf("Start on a busy port: got %v, want a %s error", err, wantErr)
	}
	l, err := dirlock.Acquire(dir)
	if err != nil {
		t.Fatalf("lock still held after a failed Start: %v", err)
	}
	l.Release()
	return s
}

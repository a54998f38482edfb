package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestAPIBeforeTheLogIsOpen checks that API requests arriving while the
// server starts get 503 in the JSON error shape, not 404.
func TestAPIBeforeTheLogIsOpen(t *testing.T) {
	s, err := New(testOptions(t, t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	s.phase = phaseStarting
	h := s.Handler()
	for _, tc := range []struct{ method, path string }{
		{"POST", "/v1/topics"},
		{"GET", "/v1/topics/orders"},
		{"POST", "/v1/topics/orders/records"},
		{"POST", "/topics/orders"},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, strings.NewReader(`{}`)))
		if rec.Code != 503 {
			t.Errorf("%s %s: got status %d, want 503", tc.method, tc.path, rec.Code)
		}
		want := `{"error_code":503,"message":"starting up: the HTTP API is not serving yet; retry shortly"}`
		if got := strings.TrimSpace(rec.Body.String()); got != want {
			t.Errorf("%s %s: got %s, want %s", tc.method, tc.path, got, want)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
	if rec.Code != 200 {
		t.Errorf("/healthz while starting: got %d, want 200", rec.Code)
	}
}

func post(t *testing.T, url, contentType, body string) response {
	t.Helper()
	resp, err := http.Post(url, contentType, strings.NewReader(body))
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

// TestAPIServed runs the API through a started server: topics, produce,
// the metrics, and the JSON 404 for unknown paths once started.
func TestAPIServed(t *testing.T) {
	opts := testOptions(t, t.TempDir())
	opts.HTTPMaxBodyBytes = 1 << 10
	s := startServer(t, opts)
	base := "http://" + s.Addr().String()
	if r := post(t, base+"/v1/topics", "application/json", `{"name":"orders","partitions":3}`); r.status != 201 {
		t.Fatalf("create topic: got %d (%s)", r.status, r.body)
	}
	r := post(t, base+"/v1/topics/orders/records", "application/json", `{"records":[{"key":"a","value":1},{"value":2}]}`)
	if r.status != 200 || !strings.Contains(r.body, `"offsets":[`) {
		t.Fatalf("produce: got %d (%s)", r.status, r.body)
	}
	// The body limit comes from Options.
	if r := post(t, base+"/v1/topics/orders/records", "application/json", `{"records":[{"value":"`+strings.Repeat("x", 2000)+`"}]}`); r.status != 413 {
		t.Errorf("over HTTPMaxBodyBytes: got %d (%s), want 413", r.status, r.body)
	}
	if r := get(t, "GET", base+"/v1/topics/orders"); r.status != 200 || !strings.Contains(r.body, `"high_watermark"`) {
		t.Errorf("describe: got %d (%s)", r.status, r.body)
	}
	if r := get(t, "GET", base+"/v1/nope"); r.status != 404 {
		t.Errorf("unknown path once started: got %d (%s), want 404", r.status, r.body)
	}
	m := get(t, "GET", base+"/metrics").body
	for _, want := range []string{
		`sluice_produced_records_total{topic="orders"} 2`,
		`sluice_http_requests_total{code="201",route="POST /v1/topics"} 1`,
		`sluice_http_request_duration_seconds_count{route="POST /v1/topics/{topic}/records"} 2`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestSlowClientsDoNotStopProducers opens 1,000 connections that trickle
// a byte every 300ms, half of them in the request headers and half in a
// produce body, and checks that a normal client still produces promptly and
// that the server's read timeouts close the slow connections.
func TestSlowClientsDoNotStopProducers(t *testing.T) {
	opts := testOptions(t, t.TempDir())
	opts.ReadHeaderTimeout = 2 * time.Second
	opts.ReadTimeout = 3 * time.Second
	s := startServer(t, opts)
	addr := s.Addr().String()
	base := "http://" + addr
	if r := post(t, base+"/v1/topics", "application/json", `{"name":"t","partitions":4}`); r.status != 201 {
		t.Fatalf("create topic: got %d (%s)", r.status, r.body)
	}

	const slowClients = 1000
	stop := make(chan struct{})
	var (
		wg     sync.WaitGroup
		closed atomic.Int32 // slow connections the server has closed
		dialed atomic.Int32
	)
	defer func() {
		close(stop)
		wg.Wait()
	}()
	for i := range slowClients {
		payload := "POST /v1/topics/t/records HTTP/1.1\r\nHost: sluice\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
		trickleFrom := 0 // the whole request, headers included
		if i%2 == 1 {
			payload += `{"records":[{"value":"` + strings.Repeat("x", 1000)
			trickleFrom = strings.Index(payload, "\r\n\r\n") + 4 // the body only
		}
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		dialed.Add(1)
		wg.Go(func() {
			// The server closing the connection ends this read.
			io.Copy(io.Discard, conn)
			closed.Add(1)
		})
		wg.Go(func() {
			defer conn.Close()
			if _, err := io.WriteString(conn, payload[:trickleFrom]); err != nil {
				return
			}
			tick := time.NewTicker(300 * time.Millisecond)
			defer tick.Stop()
			for j := trickleFrom; j < len(payload); j++ {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				if _, err := conn.Write([]byte{payload[j]}); err != nil {
					return
				}
			}
			<-stop
		})
	}
	t.Logf("%d slow connections open", dialed.Load())

	var body bytes.Buffer
	body.WriteString(`{"records":[`)
	for i := range 500 {
		if i > 0 {
			body.WriteByte(',')
		}
		fmt.Fprintf(&body, `{"key":"k%d","value":{"n":%d}}`, i, i)
	}
	body.WriteString(`]}`)
	client := &http.Client{Timeout: 10 * time.Second}
	for i := range 5 {
		start := time.Now()
		resp, err := client.Post(base+"/v1/topics/t/records", "application/json", bytes.NewReader(body.Bytes()))
		if err != nil {
			t.Fatalf("produce %d among slow clients: %v", i, err)
		}
		var got struct{ Offsets []json.RawMessage }
		err = json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		took := time.Since(start)
		if resp.StatusCode != 200 || err != nil || len(got.Offsets) != 500 {
			t.Fatalf("produce %d: status %d, %d offsets, %v", i, resp.StatusCode, len(got.Offsets), err)
		}
		if took > 2*time.Second {
			t.Errorf("produce %d took %v among %d slow clients, want under 2s", i, took, slowClients)
		}
		t.Logf("produce %d: %v", i, took.Round(time.Millisecond))
		time.Sleep(200 * time.Millisecond)
	}

	// The header and read timeouts end every slow connection.
	deadline := time.Now().Add(15 * time.Second)
	for closed.Load() < slowClients && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := closed.Load(); n < slowClients {
		t.Errorf("the server closed %d of %d slow connections within its timeouts", n, slowClients)
	}
}

package httpapi

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// endlessBody yields head, then chunk over and over up to size bytes in
// all, without holding more than chunk in memory. It counts what was read.
type endlessBody struct {
	head, chunk []byte
	size        int64
	read        atomic.Int64
}

func (b *endlessBody) Read(p []byte) (int, error) {
	off := b.read.Load()
	if off >= b.size {
		return 0, io.EOF
	}
	n := 0
	for n < len(p) && off < b.size {
		var c int
		if off < int64(len(b.head)) {
			c = copy(p[n:], b.head[off:])
		} else {
			c = copy(p[n:], b.chunk[(off-int64(len(b.head)))%int64(len(b.chunk)):])
		}
		c = int(min(int64(c), b.size-off))
		n += c
		off += int64(c)
	}
	b.read.Store(off)
	return n, nil
}

// heapPeak samples the heap in use until stop is called and returns the
// largest growth over what was in use when it started.
func heapPeak(t *testing.T) (stop func() uint64) {
	t.Helper()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	var (
		peak uint64
		done = make(chan struct{})
		wg   sync.WaitGroup
	)
	wg.Go(func() {
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > base {
				peak = max(peak, ms.HeapInuse-base)
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	})
	return func() uint64 {
		close(done)
		wg.Wait()
		return peak
	}
}

// TestProduceTwoGiBBody sends 2 GiB bodies, generated as they are sent, and
// checks that they are refused with 413 without the heap growing by more
// than a small multiple of the body limit.
func TestProduceTwoGiBBody(t *testing.T) {
	const (
		twoGiB = 2 << 30
		limit  = DefaultMaxBodyBytes
	)
	e := newTestEnv(t)
	e.createTopic("t", 4, nil)
	srv := httptest.NewServer(e.handler)
	defer srv.Close()

	record := []byte(`{"key":"k","value":"` + strings.Repeat("v", 1000) + `"},`)
	tests := []struct {
		name string
		body *endlessBody
		// declared sends a Content-Length, which lets the server refuse
		// the request before reading any of it.
		declared bool
		wantErr  string
		// maxRead bounds how much of the body the client may have sent.
		maxRead int64
	}{
		{"records, chunked", &endlessBody{head: []byte(`{"records":[`), chunk: record, size: twoGiB}, false,
			"larger than the limit of 67108864 bytes", limit + 64<<20},
		{"records, declared length", &endlessBody{head: []byte(`{"records":[`), chunk: record, size: twoGiB}, true,
			"request body of 2147483648 bytes is larger than the limit", 64 << 20},
		{"one endless value", &endlessBody{head: []byte(`{"records":[{"value":"`), chunk: []byte("x"), size: twoGiB}, false,
			"record 0: the record's JSON is over", 64 << 20},
		{"NDJSON records", &endlessBody{chunk: append(record[:len(record)-1:len(record)-1], '\n'), size: twoGiB}, false,
			"larger than the limit", limit + 64<<20},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stop := heapPeak(t)
			ct := "application/json"
			if strings.HasPrefix(tc.name, "NDJSON") {
				ct = "application/x-ndjson"
			}
			req, err := http.NewRequest("POST", srv.URL+"/v1/topics/t/records", tc.body)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", ct)
			if tc.declared {
				req.ContentLength = twoGiB
			}
			start := time.Now()
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatalf("request: %v (after sending %d bytes)", err, tc.body.read.Load())
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			peak := stop()
			t.Logf("answered %d in %v after %d MiB were sent; heap grew by at most %d MiB",
				resp.StatusCode, time.Since(start).Round(time.Millisecond), tc.body.read.Load()>>20, peak>>20)
			if resp.StatusCode != 413 {
				t.Fatalf("got status %d, want 413 (%s)", resp.StatusCode, body)
			}
			if !bytes.Contains(body, []byte(tc.wantErr)) {
				t.Errorf("got %s, want it to contain %q", body, tc.wantErr)
			}
			if n := tc.body.read.Load(); n > tc.maxRead {
				t.Errorf("the client sent %d MiB, want at most %d MiB", n>>20, tc.maxRead>>20)
			}
			// The records decoded before the limit (64 MiB of them, at
			// most) are held until the request fails, with little besides.
			if peak > limit+limit/2 {
				t.Errorf("heap grew by %d MiB, want at most 1.5 times the %d MiB limit", peak>>20, limit>>20)
			}
		})
	}
	for p := range int32(4) {
		if n := len(readAll(t, e.log, "t", p)); n != 0 {
			t.Errorf("partition %d: %d records written", p, n)
		}
	}
}

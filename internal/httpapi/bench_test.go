package httpapi

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
)

// benchValue is a compact JSON object of exactly size bytes. Its strings
// hold spaces, as text does, so that storing it compacted has to tell them
// from whitespace between tokens.
func benchValue(i, size int) string {
	v := fmt.Sprintf(`{"id":%d,"user":"user-%d","event":"page view","ts":1732000000000,"pad":""}`, i, i%1000)
	return strings.Replace(v, `"pad":""`, `"pad":"`+strings.Repeat("x", max(size-len(v), 0))+`"`, 1)
}

// benchBody is a native produce body of n records with keys (unless
// unkeyed) and JSON values of valueSize bytes.
func benchBody(n, valueSize int, keyed bool) []byte {
	var b bytes.Buffer
	b.WriteString(`{"records":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		if keyed {
			fmt.Fprintf(&b, `{"key":"user-%d","value":%s}`, i%1000, benchValue(i, valueSize))
		} else {
			fmt.Fprintf(&b, `{"value":%s}`, benchValue(i, valueSize))
		}
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

// BenchmarkProduceJSON serves produce requests of 500 records with 200-byte
// JSON values through the handler, over the embedded log with fsync never,
// and reports records/s: the in-process cost of HTTP ingest without the
// network. The Parallel variants run requests from GOMAXPROCS goroutines
// (the CPUs are what bounds ingest), as concurrent connections would.
func BenchmarkProduceJSON(b *testing.B) {
	for _, bc := range []struct {
		name       string
		partitions int32
		keyed      bool
		parallel   bool
	}{
		{"keyed/partitions=8", 8, true, false},
		{"unkeyed/partitions=8", 8, false, false},
		{"keyed/partitions=1", 1, true, false},
		{"keyed/partitions=8/parallel", 8, true, true},
		{"unkeyed/partitions=8/parallel", 8, false, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			const records = 500
			e := newTestEnv(b)
			e.createTopic("bench", bc.partitions, nil)
			body := benchBody(records, 200, bc.keyed)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			serve := func() {
				req := httptest.NewRequest("POST", "/v1/topics/bench/records", bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				rec := httptest.NewRecorder()
				e.handler.ServeHTTP(rec, req)
				if rec.Code != 200 {
					b.Fatalf("got %d: %s", rec.Code, rec.Body)
				}
			}
			if bc.parallel {
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						serve()
					}
				})
			} else {
				for b.Loop() {
					serve()
				}
			}
			b.ReportMetric(float64(records*b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// BenchmarkProduceHTTP is BenchmarkProduceJSON over a loopback listener:
// 8 connections, each sending requests of 500 records with 200-byte JSON
// values back to back, the client in the same process (and on the same
// CPUs) as the server.
func BenchmarkProduceHTTP(b *testing.B) {
	const (
		records     = 500
		connections = 8
	)
	e := newTestEnv(b)
	e.createTopic("bench", 8, nil)
	srv := httptest.NewServer(e.handler)
	defer srv.Close()
	body := benchBody(records, 200, true)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: connections, MaxConnsPerHost: connections}}
	defer client.CloseIdleConnections()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.SetParallelism((connections + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Post(srv.URL+"/v1/topics/bench/records", "application/json", bytes.NewReader(body))
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("got %d", resp.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(float64(records*b.N)/b.Elapsed().Seconds(), "records/s")
}

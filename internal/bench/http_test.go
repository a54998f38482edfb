package bench

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/logstore"
	"github.com/sluice-dev/sluice/internal/server"
)

// TestHTTPProduce runs the HTTP produce benchmark at a tiny scale, against
// an embedded server and against one started apart: the numbers mean
// nothing, but both runs must produce and the report must be whole.
func TestHTTPProduce(t *testing.T) {
	external, err := server.New(server.Options{
		DataDir:   filepath.Join(t.TempDir(), "external"),
		HTTPAddr:  "127.0.0.1:0",
		KafkaAddr: "127.0.0.1:0",
		Fsync:     logstore.SyncPolicy{Mode: logstore.SyncNever},
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := external.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { external.Shutdown(context.Background()) })

	for _, tc := range []struct {
		name   string
		server string
		fsync  logstore.SyncPolicy
	}{
		{"embedded", "", logstore.SyncPolicy{Mode: logstore.SyncAlways}},
		{"external", "http://" + external.Addr().String(), logstore.SyncPolicy{Mode: logstore.SyncNever}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			rep, err := HTTPProduce(context.Background(), HTTPProduceOptions{
				Server: tc.server, Dir: t.TempDir(), Fsync: tc.fsync,
				Connections: 2, RecordsPerRequest: 50, ValueBytes: 40, Partitions: 3, Requests: 20, Runs: 2, Out: &out,
			})
			if err != nil {
				t.Fatalf("%v\n%s", err, out.String())
			}
			if len(rep.Runs) != 2 {
				t.Fatalf("got %d runs, want 2", len(rep.Runs))
			}
			for _, r := range []ProduceRun{rep.Runs[0].HTTP, rep.Runs[0].InProcess, rep.Runs[1].HTTP, rep.Runs[1].InProcess} {
				if r.Requests != 20 || r.Records != 1000 || r.ValueBytes != 40000 || len(r.Latencies) != 20 {
					t.Errorf("got %d requests, %d records, %d value bytes, %d latencies; want 20, 1000, 40000, 20",
						r.Requests, r.Records, r.ValueBytes, len(r.Latencies))
				}
			}
			if rep.Ratio() <= 0 {
				t.Errorf("got ratio %v", rep.Ratio())
			}
			for _, want := range []string{"| HTTP: POST /v1/topics/{topic}/records |", "| in process: AppendBatch + stream.Log.Produce |",
				"**HTTP / in process: ", "20 requests per run, 2 runs of each", "- run 2: HTTP ", "3 partitions", "40-byte JSON string values"} {
				if !strings.Contains(out.String(), want) {
					t.Errorf("report lacks %q:\n%s", want, out.String())
				}
			}
		})
	}
}

func TestBenchValues(t *testing.T) {
	v := benchValues(2, 3, 10)
	for c := range v {
		for i, b := range v[c] {
			if len(b) != 10 || b[0] != '"' || b[9] != '"' || strings.ContainsAny(string(b[1:9]), `"\`) {
				t.Errorf("value %d/%d: %q", c, i, b)
			}
		}
	}
	if bytes.Equal(v[0][0], v[1][0]) || bytes.Equal(v[0][0], v[0][1]) {
		t.Errorf("values repeat: %q", v)
	}
}

func TestPercentile(t *testing.T) {
	var r ProduceRun
	for i := 1; i <= 100; i++ {
		r.Latencies = append(r.Latencies, time.Duration(i)*time.Millisecond)
	}
	if p50, p99 := r.Percentile(0.5), r.Percentile(0.99); p50 != 50*time.Millisecond || p99 != 99*time.Millisecond {
		t.Errorf("got p50 %s, p99 %s; want 50ms, 99ms", p50, p99)
	}
	if got := groupThousands(1234567.4); got != "1,234,567" {
		t.Errorf("groupThousands: got %s", got)
	}
}

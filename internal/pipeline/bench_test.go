package pipeline

import (
	"context"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/process"
	"github.com/sluice-dev/sluice/internal/resource"
	"github.com/sluice-dev/sluice/internal/units"
)

// countSink reads every document, as a sink that maps fields does, and
// discards the records.
type countSink struct{ n atomic.Int64 }

func (s *countSink) Write(_ context.Context, b *connector.Batch) error {
	for _, r := range b.Records {
		if _, err := r.Doc(); err != nil {
			return err
		}
	}
	s.n.Add(int64(len(b.Records)))
	return nil
}

func (s *countSink) Close(context.Context) error { return nil }

// BenchmarkRuntime measures the runtime alone: 200-byte JSON records from
// an embedded log through a filter into a sink that only reads their
// documents. go test ./internal/pipeline -run XXX -bench Runtime
func BenchmarkRuntime(b *testing.B) {
	for _, procs := range []struct {
		name string
		cfg  []process.Config
	}{{"no-processors", nil}, {"filter", []process.Config{{Filter: "record.value.amount > 10.0"}}}} {
		b.Run(procs.name, func(b *testing.B) {
			const n = 100_000
			l := testLog(b, b.TempDir())
			if _, err := l.CreateTopic(context.Background(), "in", 4, nil); err != nil {
				b.Fatal(err)
			}
			pad := `"note":"` + strings.Repeat("n", 120) + `"`
			for p := 0; p < 4; p++ {
				for i := 0; i < n/4; i += 1000 {
					vs := make([]string, 1000)
					for j := range vs {
						vs[j] = `{"id":` + strconv.Itoa(i+j) + `,"name":"customer-17","amount":` + strconv.Itoa((i+j)%100) + `.5,` + pad + `}`
					}
					produce(b, l, "in", int32(p), vs...)
				}
			}
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				sink := &countSink{}
				mgr, err := New(Options{Log: l, Registerer: prometheus.NewRegistry(),
					OpenSink: func(context.Context, *resource.Pipeline, *process.Chain) (connector.Sink, error) { return sink, nil }})
				if err != nil {
					b.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				if err := mgr.Start(ctx); err != nil {
					b.Fatal(err)
				}
				p := testPipeline("bench-"+strconv.Itoa(i), "in")
				p.Spec.Processors = procs.cfg
				p.Spec.Batch = resource.Batch{MaxRecords: 5000, MaxBytes: units.ByteSize(4 << 20), MaxWait: units.Duration(50 * time.Millisecond)}
				if _, err := mgr.Put(ctx, p); err != nil {
					b.Fatal(err)
				}
				for {
					st, _ := mgr.Get(p.Metadata.Name)
					var done int64
					for _, pos := range st.Status.Positions {
						done += pos.Offset
					}
					if done >= n {
						break
					}
					time.Sleep(time.Millisecond)
				}
				_ = mgr.Close(context.Background())
				cancel()
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

package parquet

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/connector"
)

// BenchmarkWrite stages 200-byte JSON records in batches of 1000 and
// flushes every 100 batches. The records arrive as bytes, as they do when no
// processor parsed them, so parsing is included; "parsed" hands over
// documents, which is the cost of the sink alone.
func BenchmarkWrite(b *testing.B) {
	for _, bc := range []struct {
		compression string
		parsed      bool
	}{{"snappy", false}, {"zstd", false}, {"none", false}, {"snappy", true}} {
		name := bc.compression
		if bc.parsed {
			name += "/parsed"
		}
		compression := bc.compression
		b.Run(name, func(b *testing.B) {
			const batchSize = 1000
			values := make([][]byte, batchSize)
			for i := range values {
				v := fmt.Sprintf(`{"id":%d,"user":"user-%06d","amount":%d.%02d,"currency":"EUR","paid":%t,"tags":["web","eu"],"note":"`,
					1_000_000+i, i%5000, i%997, i%100, i%3 == 0)
				v += strings.Repeat("x", 200-len(v)-2) + `"}`
				values[i] = []byte(v)
			}
			if len(values[0]) != 200 {
				b.Fatalf("got %d-byte records, want 200", len(values[0]))
			}
			docs := make([]any, batchSize)
			for i, v := range values {
				var err error
				if docs[i], err = connector.DecodeJSON(v); err != nil {
					b.Fatal(err)
				}
			}
			s := newSink(b, Options{Config: Config{Path: b.TempDir(), Compression: compression}})
			batch := &connector.Batch{Records: make([]*connector.Record, batchSize), Reject: func(context.Context, []connector.Rejection) error {
				b.Fatal("got a rejection")
				return nil
			}}
			ctx := context.Background()
			b.SetBytes(200 * batchSize)
			b.ReportAllocs()
			b.ResetTimer()
			var offset int64
			for i := 0; b.Loop(); i++ {
				for j := range batch.Records {
					r := connector.NewRecord(values[j])
					if bc.parsed {
						r.SetDoc(docs[j])
					}
					r.Topic, r.Offset = "orders", offset
					offset++
					batch.Records[j] = r
				}
				if err := s.Write(ctx, batch); err != nil {
					b.Fatal(err)
				}
				if i%100 == 99 {
					if err := s.Flush(ctx); err != nil {
						b.Fatal(err)
					}
				}
			}
			if err := s.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(offset)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

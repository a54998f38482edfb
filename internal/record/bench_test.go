package record

import (
	"fmt"
	"testing"
)

// benchRecords is 1000 records with 100-byte JSON-ish values (some
// repetition, as real payloads have) and short keys.
func benchRecords() []Record {
	recs := make([]Record, 1000)
	for i := range recs {
		v := fmt.Appendf(nil, `{"id":%06d,"user":"user-%04d","event":"page_view","path":"/p/%05d","ms":%04d}`, i, i%97, i*7919%100000, i%1000)
		for len(v) < 100 {
			v = append(v, ' ')
		}
		recs[i] = Record{Key: fmt.Appendf(nil, "user-%04d", i%97), Value: v[:100], Timestamp: 1_700_000_000_000 + int64(i)}
	}
	return recs
}

var benchCodecs = []Compression{CompressionNone, CompressionZstd, CompressionSnappy, CompressionLZ4, CompressionGzip}

func BenchmarkAppendBatch(b *testing.B) {
	recs := benchRecords()
	for _, codec := range benchCodecs {
		b.Run(codec.String(), func(b *testing.B) {
			var c Codecs
			dst, err := c.AppendBatch(nil, recs, BatchOptions{Compression: codec})
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(100 * int64(len(recs)))
			b.ReportAllocs()
			for b.Loop() {
				dst, err = c.AppendBatch(dst[:0], recs, BatchOptions{Compression: codec})
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(dst)), "batch-bytes")
		})
	}
}

func BenchmarkDecodeBatch(b *testing.B) {
	recs := benchRecords()
	for _, codec := range benchCodecs {
		b.Run(codec.String(), func(b *testing.B) {
			var c Codecs
			batch, err := c.AppendBatch(nil, recs, BatchOptions{Compression: codec})
			if err != nil {
				b.Fatal(err)
			}
			var sum int
			fn := func(r Record) error { sum += len(r.Value); return nil }
			b.SetBytes(100 * int64(len(recs)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.DecodeBatch(batch, DecodeLimits{}, fn); err != nil {
					b.Fatal(err)
				}
			}
			if sum == 0 {
				b.Fatal("no records")
			}
		})
	}
}

// BenchmarkAppendRecords is DecodeBatch's owning counterpart: one buffer
// and one slice of records per batch.
func BenchmarkAppendRecords(b *testing.B) {
	recs := benchRecords()
	for _, codec := range []Compression{CompressionNone, CompressionZstd} {
		b.Run(codec.String(), func(b *testing.B) {
			var c Codecs
			batch, err := c.AppendBatch(nil, recs, BatchOptions{Compression: codec})
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(100 * int64(len(recs)))
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := c.AppendRecords(nil, batch, DecodeLimits{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

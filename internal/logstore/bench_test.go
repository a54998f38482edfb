package logstore

import (
	"context"
	"fmt"
	"testing"

	"github.com/sluice-dev/sluice/internal/record"
)

// BenchmarkAppend appends batches of 1000 100-byte records without fsync:
// the in-process cost of checking, placing and indexing a batch. The
// comparison with the disk's raw fsync bandwidth is `sluice bench log`.
func BenchmarkAppend(b *testing.B) {
	for _, mode := range []string{"never", "always"} {
		b.Run("fsync="+mode, func(b *testing.B) {
			pol, _ := ParseSyncPolicy(mode)
			tl := openTestLog(b, Options{Sync: pol})
			tl.create("t", 1, nil)
			p := tl.part("t", 0)
			batch := makeBatch(1000, 100, 1, 0)
			b.SetBytes(int64(len(batch)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := p.Append(context.Background(), batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)*1000/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// BenchmarkAppendIdempotent is BenchmarkAppend (fsync=never) with batches
// from one idempotent producer, so that it measures the sequence check.
// Rewriting each batch's sequence and CRC is left out of the timing.
func BenchmarkAppendIdempotent(b *testing.B) {
	tl := openTestLog(b, Options{Sync: SyncPolicy{Mode: SyncNever}})
	tl.create("t", 1, nil)
	p := tl.part("t", 0)
	// The same records as BenchmarkAppend's, from producer 1.
	var c record.Codecs
	recs := make([]record.Record, 1000)
	for i := range recs {
		v := make([]byte, 100)
		copy(v, fmt.Sprintf("batch 0 record %d ", i))
		recs[i] = record.Record{Key: []byte(fmt.Sprintf("k%d", i)), Value: v, Timestamp: 1}
	}
	batch, err := c.AppendBatch(nil, recs, record.BatchOptions{Producer: &record.Producer{ID: 1}})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(batch)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		withSequence(batch, int32(i*1000%(1<<30)))
		b.StartTimer()
		if _, err := p.Append(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if hw := p.HighWatermark(); hw != int64(b.N)*1000 {
		b.Fatalf("high watermark %d after %d batches of 1000: batches were taken for duplicates", hw, b.N)
	}
	b.ReportMetric(float64(b.N)*1000/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkRead reads back 1 MiB at a time from the page cache, CRC checks
// included.
func BenchmarkRead(b *testing.B) {
	tl := openTestLog(b, Options{Sync: SyncPolicy{Mode: SyncNever}})
	tl.create("t", 1, nil)
	p := tl.part("t", 0)
	batch := makeBatch(1000, 100, 1, 0)
	for i := 0; i < 2000; i++ { // ~230 MB
		if _, err := p.Append(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
	buf := make([]byte, 0, 2<<20)
	hw := p.HighWatermark()
	off := int64(0)
	b.ResetTimer()
	var n int64
	for i := 0; i < b.N; i++ {
		res, err := p.Read(context.Background(), off, 1<<20, buf)
		if err != nil {
			b.Fatal(err)
		}
		n += int64(len(res.Batches))
		off = res.NextOffset
		if off >= hw {
			off = 0
		}
	}
	b.SetBytes(n / int64(b.N))
}

// Package bench measures the embedded log against the machine it runs on:
// every figure is reported next to a baseline measured in the same run (the
// disk's raw write+fdatasync bandwidth), as medians over several runs, so
// results from a noisy shared machine can still be compared.
package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sluice-dev/sluice/internal/logstore"
	"github.com/sluice-dev/sluice/internal/meta"
	"github.com/sluice-dev/sluice/internal/record"
)

// RawFsync writes total bytes sequentially to a new file in dir, block bytes
// at a time, each followed by fdatasync, and returns bytes per second. It is
// the ceiling for any log that acknowledges only durable writes.
//
// Each block leaves the page cache as soon as it is durable
// (POSIX_FADV_DONTNEED), so that the next one reuses its pages: where the
// host backs a virtual machine's memory lazily, growing the page cache
// costs more than the disk (docs/benchmarks.md), and the figure is meant
// to be the disk's.
func RawFsync(dir string, block int, total int64) (float64, error) {
	f, err := os.CreateTemp(dir, "raw-fsync-*")
	if err != nil {
		return 0, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, block)
	for i := range buf {
		buf[i] = byte(i * 31)
	}
	start := time.Now()
	for n := int64(0); n < total; n += int64(block) {
		if _, err := f.Write(buf); err != nil {
			return 0, err
		}
		if err := unix.Fdatasync(int(f.Fd())); err != nil {
			return 0, err
		}
		if err := unix.Fadvise(int(f.Fd()), n, int64(block), unix.FADV_DONTNEED); err != nil {
			return 0, fmt.Errorf("fadvise %s: %w", f.Name(), err)
		}
	}
	return float64(total) / time.Since(start).Seconds(), nil
}

// RawFsyncParallel runs RawFsync on n files at once, total bytes in all,
// and returns the combined bytes per second: the baseline for several
// partitions fsyncing concurrently.
func RawFsyncParallel(dir string, block int, total int64, n int) (float64, error) {
	var wg sync.WaitGroup
	errs := make([]error, n)
	start := time.Now()
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = RawFsync(dir, block, total/int64(n))
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return 0, err
		}
	}
	return float64(total) / time.Since(start).Seconds(), nil
}

// AppendConfig describes an append workload.
type AppendConfig struct {
	Partitions  int
	Writers     int
	RecordSize  int
	BatchRecs   int
	TotalBytes  int64
	Sync        logstore.SyncPolicy
	SegmentSize int64 // 0 for the topic default
}

// AppendResult is what an append run achieved.
type AppendResult struct {
	Bytes   int64
	Records int64
	Elapsed time.Duration
}

// BytesPerSec is the append bandwidth.
func (r AppendResult) BytesPerSec() float64 { return float64(r.Bytes) / r.Elapsed.Seconds() }

// RecordsPerSec is the append rate in records.
func (r AppendResult) RecordsPerSec() float64 { return float64(r.Records) / r.Elapsed.Seconds() }

// Env is an opened log with its catalog, in a directory of its own.
type Env struct {
	Dir  string
	Log  *logstore.Log
	Meta *meta.Store
}

// OpenEnv opens (or creates) a log in dir.
func OpenEnv(ctx context.Context, dir string, sync logstore.SyncPolicy) (*Env, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	m, err := meta.Open(filepath.Join(dir, "meta.db"), meta.Options{})
	if err != nil {
		return nil, err
	}
	l, err := logstore.Open(ctx, logstore.Options{Dir: filepath.Join(dir, "log"), Catalog: m, Sync: sync,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		m.Close()
		return nil, err
	}
	return &Env{Dir: dir, Log: l, Meta: m}, nil
}

// Close closes the log and its catalog.
func (e *Env) Close() error {
	err := e.Log.Close()
	if merr := e.Meta.Close(); err == nil {
		err = merr
	}
	return err
}

// MakeBatch returns one uncompressed batch of n records of size bytes each,
// with distinct keys and incompressible-looking values.
func MakeBatch(n, size int) ([]byte, error) {
	var c record.Codecs
	recs := make([]record.Record, n)
	now := time.Now().UnixMilli()
	for i := range recs {
		v := make([]byte, size)
		x := uint32(i*2654435761 + 1)
		for j := range v {
			x ^= x << 13
			x ^= x >> 17
			x ^= x << 5
			v[j] = byte(x)
		}
		recs[i] = record.Record{Key: []byte(fmt.Sprintf("key-%d", i)), Value: v, Timestamp: now}
	}
	return c.AppendBatch(nil, recs, record.BatchOptions{})
}

// Append runs an append workload against topic in env, creating it.
func Append(ctx context.Context, env *Env, topicName string, cfg AppendConfig) (AppendResult, error) {
	conf := map[string]string{"max.message.bytes": fmt.Sprint(64 << 20)}
	if cfg.SegmentSize > 0 {
		conf["segment.bytes"] = fmt.Sprint(cfg.SegmentSize)
	}
	if _, err := env.Log.CreateTopic(ctx, topicName, int32(cfg.Partitions), conf); err != nil {
		return AppendResult{}, err
	}
	parts := make([]*logstore.Partition, cfg.Partitions)
	for i := range parts {
		p, err := env.Log.Partition(topicName, int32(i))
		if err != nil {
			return AppendResult{}, err
		}
		parts[i] = p
	}
	var written, recs atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < cfg.Writers; w++ {
		batch, err := MakeBatch(cfg.BatchRecs, cfg.RecordSize)
		if err != nil {
			return AppendResult{}, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; ; i += cfg.Writers {
				if written.Add(int64(len(batch))) > cfg.TotalBytes {
					written.Add(-int64(len(batch)))
					return
				}
				// Append rewrites only the base offset, so the batch can be
				// sent again once the call returns.
				if _, err := parts[i%cfg.Partitions].Append(ctx, batch); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				recs.Add(int64(cfg.BatchRecs))
			}
		}()
	}
	wg.Wait()
	res := AppendResult{Bytes: written.Load(), Records: recs.Load(), Elapsed: time.Since(start)}
	return res, firstErr
}

// ReadAll reads every partition of topic from its start with reads of
// maxBytes, one reader per partition up to readers at once, and returns
// bytes per second. Every batch is CRC-checked by the log on the way out.
func ReadAll(ctx context.Context, env *Env, topicName string, readers, maxBytes int) (float64, int64, error) {
	info, err := env.Log.Topic(topicName)
	if err != nil {
		return 0, 0, err
	}
	var total atomic.Int64
	sem := make(chan struct{}, readers)
	var wg sync.WaitGroup
	var firstErr error
	var once sync.Once
	start := time.Now()
	for _, pi := range info.Partitions {
		p, err := env.Log.Partition(topicName, pi.Partition)
		if err != nil {
			return 0, 0, err
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			buf := make([]byte, 0, maxBytes+(4<<20))
			off := pi.LogStartOffset
			for {
				res, err := p.Read(ctx, off, maxBytes, buf)
				if err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				if len(res.Batches) == 0 {
					return
				}
				total.Add(int64(len(res.Batches)))
				off = res.NextOffset
				buf = res.Batches[:0]
			}
		}()
	}
	wg.Wait()
	return float64(total.Load()) / time.Since(start).Seconds(), total.Load(), firstErr
}

// Median returns the median of xs.
func Median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// PeakRSS returns the process's peak resident set size in bytes (VmHWM).
func PeakRSS() (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	var kb int64
	for _, line := range strings.Split(string(b), "\n") {
		if _, err := fmt.Sscanf(line, "VmHWM: %d kB", &kb); err == nil {
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/self/status")
}

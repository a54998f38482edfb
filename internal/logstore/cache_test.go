package logstore

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"
)

// evictFS records what the log hands back to the page cache.
type evictFS struct {
	OSFS
	mu      sync.Mutex
	evicted map[string][][2]int64 // file name -> [off, end) in call order
}

func (fs *evictFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := fs.OSFS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &evictFile{File: f, fs: fs, name: filepath.Base(name)}, nil
}

type evictFile struct {
	File
	fs   *evictFS
	name string
}

func (f *evictFile) Evict(off, n int64) error {
	f.fs.mu.Lock()
	if f.fs.evicted == nil {
		f.fs.evicted = map[string][][2]int64{}
	}
	f.fs.evicted[f.name] = append(f.fs.evicted[f.name], [2]int64{off, off + n})
	f.fs.mu.Unlock()
	return f.File.Evict(off, n)
}

// TestCacheWindow checks that durable data behind each partition's window
// is handed back in order, exactly once, never past what is durable and
// never inside the window, and that all of it stays readable.
func TestCacheWindow(t *testing.T) {
	const window = 1 << 20
	const batchValue = 64 << 10
	for _, tc := range []struct {
		name   string
		pol    SyncPolicy
		window int64
	}{
		{"always", SyncPolicy{Mode: SyncAlways}, window},
		{"interval", SyncPolicy{Mode: SyncInterval, Interval: time.Millisecond}, window},
		{"never, sealed segments only", SyncPolicy{Mode: SyncNever}, window},
		{"off", SyncPolicy{Mode: SyncAlways}, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := &evictFS{}
			tl := openTestLog(t, Options{Sync: tc.pol, FS: fs, CacheWindow: tc.window})
			tl.create("t", 1, map[string]string{"segment.bytes": "3145728"})
			p := tl.part("t", 0)
			var want [][]byte
			for i := 0; i < 200; i++ {
				b := makeBatch(1, batchValue, 1, i)
				want = append(want, b)
				res, err := p.Append(context.Background(), b)
				if err != nil {
					t.Fatal(err)
				}
				if err := p.Durable(context.Background(), res); err != nil {
					t.Fatal(err)
				}
			}
			if tc.pol.Mode != SyncAlways {
				// Interval syncs run on a ticker, SyncNever's only on
				// rolled segments: let them run.
				time.Sleep(20 * time.Millisecond)
				p.flushSealed()
				_ = p.syncNow()
			}

			p.mu.RLock()
			type seg struct {
				name          string
				size, durable int64
			}
			var segs []seg
			var total int64
			for _, s := range p.segs {
				segs = append(segs, seg{filepath.Base(s.path), s.size.Load(), s.durableSize})
				total += s.size.Load()
			}
			p.mu.RUnlock()
			fs.mu.Lock()
			evicted := fs.evicted
			fs.mu.Unlock()

			if tc.window < 0 {
				if len(evicted) != 0 {
					t.Fatalf("window off, yet evicted %v", evicted)
				}
			} else {
				var sum, before int64
				for i, s := range segs {
					var at int64
					for _, r := range evicted[s.name] {
						if r[0] != at || r[1] <= r[0] {
							t.Fatalf("segment %s: range %v after %d: want contiguous ranges from 0", s.name, r, at)
						}
						at = r[1]
					}
					if at > s.durable {
						t.Fatalf("segment %s: evicted up to %d, past its durable size %d", s.name, at, s.durable)
					}
					if tail := total - (before + at); at > 0 && tail < window {
						t.Fatalf("segment %s: evicted up to %d, leaving %d bytes at the end, inside the %d-byte window", s.name, at, tail, window)
					}
					if tc.pol.Mode == SyncNever && i == len(segs)-1 && at != 0 {
						t.Fatalf("SyncNever: the active segment was evicted up to %d before any fsync", at)
					}
					sum += at
					before += s.size
				}
				// Everything but the window (and, under SyncNever, the
				// active segment) goes, give or take one minEvict.
				keep := int64(window)
				if tc.pol.Mode == SyncNever {
					keep = max(keep, segs[len(segs)-1].size)
				}
				if sum < total-keep-minEvict {
					t.Fatalf("evicted %d of %d bytes, want at least %d", sum, total, total-keep-minEvict)
				}
			}

			got := readAllBatches(t, p, 0)
			if len(got) != len(want) {
				t.Fatalf("read %d batches, want %d", len(got), len(want))
			}
			for i := range got {
				if !bytes.Equal(got[i][12:], want[i][12:]) { // past the base offset and length
					t.Fatalf("batch %d differs", i)
				}
			}
			names := make([]string, 0, len(evicted))
			for n := range evicted {
				names = append(names, n)
			}
			sort.Strings(names)
			t.Logf("%d segments, %d bytes; evicted from %v", len(segs), total, names)
		})
	}
}

// TestCacheWindowAfterReopen checks that a reopened log leaves what it
// recovered to the kernel and applies the window to what it writes next.
func TestCacheWindowAfterReopen(t *testing.T) {
	fs := &evictFS{}
	tl := openTestLog(t, Options{FS: fs, CacheWindow: 1 << 20})
	tl.create("t", 1, map[string]string{"segment.bytes": "3145728"})
	appendN := func(tl *testLog, n, seq int) {
		p := tl.part("t", 0)
		for i := 0; i < n; i++ {
			if _, err := p.Append(context.Background(), makeBatch(1, 64<<10, 1, seq+i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	appendN(tl, 100, 0)
	tl = tl.reopen()
	fs.mu.Lock()
	before := len(fs.evicted)
	fs.evicted = nil
	fs.mu.Unlock()
	if before == 0 {
		t.Fatal("nothing was evicted before the restart")
	}
	appendN(tl, 1, 100)
	fs.mu.Lock()
	if len(fs.evicted) != 0 {
		t.Fatalf("the first append after reopening evicted %v, recovered data", fs.evicted)
	}
	fs.mu.Unlock()
	appendN(tl, 150, 101)
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if len(fs.evicted) == 0 {
		t.Fatal("nothing written after reopening was evicted")
	}
}

package logstore

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
	"time"
)

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
			fs := newFaultFS()
			tl := openTestLog(t, Options{Sync: tc.pol, FS: fs, CacheWindow: tc.window})
			// Segments larger than minEvict plus the window, so that the
			// window's edge falls inside one that is partly handed back.
			tl.create("t", 1, map[string]string{"segment.bytes": "6291456"})
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
			evicted := fs.takeEvicted()

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
		})
	}
}

// TestCacheWindowAfterReopen checks that a reopened log leaves what it
// recovered to the kernel and applies the window to what it writes next.
func TestCacheWindowAfterReopen(t *testing.T) {
	fs := newFaultFS()
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
	if len(fs.takeEvicted()) == 0 {
		t.Fatal("nothing was evicted before the restart")
	}
	appendN(tl, 1, 100)
	if e := fs.takeEvicted(); len(e) != 0 {
		t.Fatalf("the first append after reopening evicted %v, recovered data", e)
	}
	appendN(tl, 150, 101)
	if len(fs.takeEvicted()) == 0 {
		t.Fatal("nothing written after reopening was evicted")
	}
}

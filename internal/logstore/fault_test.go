package logstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluice-dev/sluice/internal/record"
)

// faultFS wraps the OS file system and injects errors: writes fail with
// ENOSPC once a byte budget is spent (after writing part of the buffer, as
// a full disk does), fsyncs fail when failSync is set, and every mutation
// fails with EROFS when readOnly is set.
type faultFS struct {
	OSFS
	budget   atomic.Int64 // bytes that may still be written; <0 means unlimited
	failSync atomic.Bool
	readOnly atomic.Bool
	syncs    atomic.Int64

	mu      sync.Mutex
	evicted map[string][][2]int64 // file name -> ranges handed back, in call order
}

// takeEvicted returns the ranges handed back to the page cache so far and
// forgets them.
func (fs *faultFS) takeEvicted() map[string][][2]int64 {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	e := fs.evicted
	fs.evicted = nil
	return e
}

func newFaultFS() *faultFS {
	f := &faultFS{}
	f.budget.Store(-1)
	return f
}

func (fs *faultFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	if fs.readOnly.Load() && flag&(os.O_WRONLY|os.O_RDWR|os.O_CREATE|os.O_TRUNC) != 0 {
		return nil, &os.PathError{Op: "open", Path: name, Err: syscall.EROFS}
	}
	f, err := fs.OSFS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &faultFile{File: f, fs: fs, name: filepath.Base(name)}, nil
}

func (fs *faultFS) MkdirAll(path string, perm os.FileMode) error {
	if fs.readOnly.Load() {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		return &os.PathError{Op: "mkdir", Path: path, Err: syscall.EROFS}
	}
	return fs.OSFS.MkdirAll(path, perm)
}

func (fs *faultFS) Rename(a, b string) error {
	if fs.readOnly.Load() {
		return &os.LinkError{Op: "rename", Old: a, New: b, Err: syscall.EROFS}
	}
	return fs.OSFS.Rename(a, b)
}

func (fs *faultFS) Link(a, b string) error {
	if fs.readOnly.Load() {
		return &os.LinkError{Op: "link", Old: a, New: b, Err: syscall.EROFS}
	}
	return fs.OSFS.Link(a, b)
}

func (fs *faultFS) RemoveAll(path string) error {
	if fs.readOnly.Load() {
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return &os.PathError{Op: "remove", Path: path, Err: syscall.EROFS}
	}
	return fs.OSFS.RemoveAll(path)
}

type faultFile struct {
	File
	fs   *faultFS
	name string
}

func (f *faultFile) Evict(off, n int64) error {
	f.fs.mu.Lock()
	if f.fs.evicted == nil {
		f.fs.evicted = map[string][][2]int64{}
	}
	f.fs.evicted[f.name] = append(f.fs.evicted[f.name], [2]int64{off, off + n})
	f.fs.mu.Unlock()
	return f.File.Evict(off, n)
}

func (f *faultFile) WriteAt(b []byte, off int64) (int, error) {
	for {
		left := f.fs.budget.Load()
		if left < 0 {
			return f.File.WriteAt(b, off)
		}
		if int64(len(b)) <= left {
			if f.fs.budget.CompareAndSwap(left, left-int64(len(b))) {
				return f.File.WriteAt(b, off)
			}
			continue
		}
		if f.fs.budget.CompareAndSwap(left, 0) {
			n, _ := f.File.WriteAt(b[:left], off)
			return n, &os.PathError{Op: "write", Path: "segment", Err: syscall.ENOSPC}
		}
	}
}

func (f *faultFile) Sync() error {
	f.fs.syncs.Add(1)
	if f.fs.failSync.Load() {
		return &os.PathError{Op: "fdatasync", Path: "segment", Err: syscall.EIO}
	}
	return f.File.Sync()
}

// segmentPath returns the path of a partition's segment file with the given
// base offset.
func segmentPath(tl *testLog, name string, part int, base int64) string {
	return filepath.Join(tl.opts.Dir, topicsDir, name, strconv.Itoa(part), segmentName(base)+logSuffix)
}

// appendN appends n batches of 5 records and returns them as appended.
func appendN(t *testing.T, p *Partition, n, seq0 int) [][]byte {
	t.Helper()
	var out [][]byte
	for i := 0; i < n; i++ {
		b := makeBatch(5, 80, int64(1000+seq0+i), seq0+i)
		if _, err := p.Append(context.Background(), b); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
		out = append(out, b)
	}
	return out
}

func TestRecoveryTruncatesTornTail(t *testing.T) {
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	for i := 0; i < 20; i++ {
		reg := prometheus.NewRegistry()
		tl := openTestLog(t, Options{Registerer: reg, CheckpointInterval: time.Hour})
		tl.create("t", 1, nil)
		p := tl.part("t", 0)
		want := appendN(t, p, 10, 0)
		tl.crash()

		// A write the process never acknowledged: some prefix of a batch.
		extra := makeBatch(5, 80, 1, 99)
		record.SetBaseOffset(extra, 50)
		cut := 1 + rng.IntN(len(extra)-1)
		path := segmentPath(tl, "t", 0, 0)
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(extra[:cut]); err != nil {
			t.Fatal(err)
		}
		f.Close()

		tl.opts.Registerer = prometheus.NewRegistry()
		tl2 := tl.reopenAfterCrash()
		p = tl2.part("t", 0)
		got := readAllBatches(t, p, 0)
		if len(got) != len(want) || p.HighWatermark() != 50 {
			t.Fatalf("cut at %d: got %d batches, high watermark %d; want %d, 50", cut, len(got), p.HighWatermark(), len(want))
		}
		if n := testutil.ToFloat64(tl2.metrics.truncatedBytes); n != float64(cut) {
			t.Fatalf("cut at %d: truncated-bytes metric %v", cut, n)
		}
		if st, _ := os.Stat(path); st.Size() != int64(len(want)*len(extra)) {
			t.Fatalf("cut at %d: segment is %d bytes, want %d", cut, st.Size(), len(want)*len(extra))
		}
		// The offset sequence carries on where the acknowledged data ended.
		res, err := p.Append(context.Background(), makeBatch(1, 1, 1, 0))
		if err != nil || res.BaseOffset != 50 {
			t.Fatalf("append after recovery: got offset %d, %v; want 50", res.BaseOffset, err)
		}
		_ = tl2.Close()
	}
}

func TestRecoveryQuarantinesDamageBeforeValidData(t *testing.T) {
	tl := openTestLog(t, Options{CheckpointInterval: time.Hour})
	tl.create("t", 1, nil)
	p := tl.part("t", 0)
	want := appendN(t, p, 20, 0)
	tl.crash()

	// Flip one bit in the value of batch 10 (offsets 50..54).
	path := segmentPath(tl, "t", 0, 0)
	data, _ := os.ReadFile(path)
	pos := 10*len(want[0]) + len(want[0]) - 7
	data[pos] ^= 0x10
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}

	tl2 := tl.reopenAfterCrash()
	p = tl2.part("t", 0)
	got := readAllBatches(t, p, 0)
	if len(got) != 10 {
		t.Fatalf("got %d readable batches, want the 10 before the damage", len(got))
	}
	if n := testutil.ToFloat64(tl2.metrics.corruptions); n != 1 {
		t.Fatalf("corruption metric: got %v, want 1", n)
	}
	matches, _ := filepath.Glob(path + quarantineSuffix + "*")
	if len(matches) != 1 {
		t.Fatalf("got quarantined files %v, want one", matches)
	}
	if q, _ := os.ReadFile(matches[0]); len(q) != len(data) {
		t.Fatalf("quarantined file has %d bytes, want the original %d", len(q), len(data))
	}
	// Offsets 50..99 may have been handed out: they are never reused.
	res, err := p.Append(context.Background(), makeBatch(1, 1, 1, 0))
	if err != nil || res.BaseOffset != 100 {
		t.Fatalf("append after quarantine: got offset %d, %v; want 100", res.BaseOffset, err)
	}
	if _, err := p.Read(context.Background(), 60, 1000, nil); !errors.Is(err, ErrOffsetOutOfRange) && err != nil {
		t.Fatalf("read in the quarantined range: %v", err)
	}
	tl3 := tl2.reopen()
	if got := readAllBatches(t, tl3.part("t", 0), 0); len(got) != 11 {
		t.Fatalf("after another reopen: got %d batches, want 11", len(got))
	}
}

func TestReadRefusesCorruptBatch(t *testing.T) {
	reg := prometheus.NewRegistry()
	tl := openTestLog(t, Options{Registerer: reg})
	tl.create("t", 1, nil)
	want := appendN(t, tl.part("t", 0), 20, 0)
	if err := tl.Close(); err != nil {
		t.Fatal(err)
	}
	// Bit rot inside the part of the log the checkpoint vouches for: the
	// open does not rescan it, so reads must catch it.
	path := segmentPath(tl, "t", 0, 0)
	data, _ := os.ReadFile(path)
	data[10*len(want[0])+70] ^= 1
	_ = os.WriteFile(path, data, 0o644)

	tl.opts.Registerer = prometheus.NewRegistry()
	tl2 := openTestLog(t, tl.opts)
	p := tl2.part("t", 0)
	res, err := p.Read(context.Background(), 0, 1<<20, nil)
	if err != nil {
		t.Fatalf("read before the damage: %v", err)
	}
	if n := len(res.Batches) / len(want[0]); n != 10 || res.NextOffset != 50 {
		t.Fatalf("got %d batches up to %d, want 10 up to 50", n, res.NextOffset)
	}
	var ce *CorruptionError
	if _, err := p.Read(context.Background(), 52, 1<<20, nil); !errors.As(err, &ce) || ce.Offset != 52 && ce.Offset != 50 {
		t.Fatalf("read at the damage: got %v, want a CorruptionError", err)
	}
	if !errors.Is(ce, ErrCorrupt) || !errors.Is(ce, record.ErrChecksum) {
		t.Fatalf("corruption error %v should match ErrCorrupt and ErrChecksum", ce)
	}
	if res, err := p.Read(context.Background(), 55, 1<<20, nil); err != nil || len(res.Batches) != 9*len(want[0]) {
		t.Fatalf("read after the damage: got %d bytes, %v", len(res.Batches), err)
	}
	if n := testutil.ToFloat64(tl2.metrics.corruptions); n != 1 {
		t.Fatalf("corruption metric: got %v, want 1", n)
	}
}

func TestRecoveryRebuildsIndexes(t *testing.T) {
	for _, damage := range []string{"deleted", "garbage", "truncated"} {
		t.Run(damage, func(t *testing.T) {
			tl := openTestLog(t, Options{})
			tl.create("t", 1, map[string]string{"segment.bytes": "4096", "index.interval.bytes": "256"})
			want := appendN(t, tl.part("t", 0), 60, 0)
			if err := tl.Close(); err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(tl.opts.Dir, topicsDir, "t", "0")
			idx, _ := filepath.Glob(filepath.Join(dir, "*"+indexSuffix))
			if len(idx) < 3 {
				t.Fatalf("got %d index files, want several", len(idx))
			}
			victim := idx[1]
			switch damage {
			case "deleted":
				os.Remove(victim)
				os.Remove(strings.TrimSuffix(victim, indexSuffix) + timeIndexSuffix)
			case "garbage":
				os.WriteFile(victim, []byte("this is not an index at all!"), 0o644)
			case "truncated":
				b, _ := os.ReadFile(victim)
				os.WriteFile(victim, b[:len(b)-3], 0o644)
			}
			tl2 := openTestLog(t, tl.opts)
			p := tl2.part("t", 0)
			got := readAllBatches(t, p, 0)
			if len(got) != len(want) {
				t.Fatalf("got %d batches, want %d", len(got), len(want))
			}
			for off := int64(0); off < 300; off += 13 {
				res, err := p.Read(context.Background(), off, 1, nil)
				if err != nil {
					t.Fatal(err)
				}
				if h, _ := record.ParseHeader(res.Batches); off < h.BaseOffset || off > h.LastOffset() {
					t.Fatalf("read at %d returned [%d, %d]", off, h.BaseOffset, h.LastOffset())
				}
			}
			p.flushSealed()
			if _, err := os.Stat(victim); err != nil {
				t.Fatalf("index was not rewritten: %v", err)
			}
		})
	}
}

func TestFullDiskFailsPartitionSafely(t *testing.T) {
	fsys := newFaultFS()
	tl := openTestLog(t, Options{FS: fsys})
	tl.create("t", 2, nil)
	p := tl.part("t", 0)
	want := appendN(t, p, 5, 0)
	fsys.budget.Store(int64(len(want[0]) / 2)) // the disk fills mid-batch
	_, err := p.Append(context.Background(), makeBatch(5, 80, 1, 5))
	if !errors.Is(err, syscall.ENOSPC) || !errors.Is(err, ErrPartitionFailed) {
		t.Fatalf("append on a full disk: got %v, want ENOSPC and ErrPartitionFailed", err)
	}
	fsys.budget.Store(-1) // space comes back: the partition still refuses, as the page cache may lie
	if _, err := p.Append(context.Background(), makeBatch(1, 1, 1, 6)); !errors.Is(err, ErrPartitionFailed) {
		t.Fatalf("append after failure: got %v, want ErrPartitionFailed", err)
	}
	if err := tl.Health(); err == nil || !strings.Contains(err.Error(), "no space") {
		t.Fatalf("health: got %v, want the ENOSPC reason", err)
	}
	if got := readAllBatches(t, p, 0); len(got) != 5 {
		t.Fatalf("acknowledged data: got %d batches readable, want 5", len(got))
	}
	// The other partition is unaffected.
	if _, err := tl.part("t", 1).Append(context.Background(), makeBatch(1, 1, 1, 0)); err != nil {
		t.Fatalf("other partition: %v", err)
	}
	tl.crash()
	tl.opts.FS = OSFS{}
	tl2 := tl.reopenAfterCrash()
	p = tl2.part("t", 0)
	if got := readAllBatches(t, p, 0); len(got) != 5 {
		t.Fatalf("after restart: got %d batches, want 5", len(got))
	}
	if res, err := p.Append(context.Background(), makeBatch(1, 1, 1, 7)); err != nil || res.BaseOffset != 25 {
		t.Fatalf("append after restart: got %d, %v; want 25", res.BaseOffset, err)
	}
}

func TestFsyncErrorIsNotRetried(t *testing.T) {
	fsys := newFaultFS()
	tl := openTestLog(t, Options{FS: fsys})
	tl.create("t", 1, nil)
	p := tl.part("t", 0)
	appendN(t, p, 2, 0)
	fsys.failSync.Store(true)
	if _, err := p.Append(context.Background(), makeBatch(1, 1, 1, 2)); !errors.Is(err, syscall.EIO) {
		t.Fatalf("append with failing fsync: got %v, want EIO", err)
	}
	if hw := p.HighWatermark(); hw != 10 {
		t.Fatalf("unsynced batch became visible: high watermark %d, want 10", hw)
	}
	fsys.failSync.Store(false)
	syncs := fsys.syncs.Load()
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := p.Append(context.Background(), makeBatch(1, 1, 1, 3)); !errors.Is(err, ErrPartitionFailed) {
				t.Errorf("append after fsync failure: got %v, want ErrPartitionFailed", err)
			}
		}()
	}
	wg.Wait()
	if n := fsys.syncs.Load() - syncs; n != 0 {
		t.Fatalf("fsync retried %d times after it failed", n)
	}
	if tl.Health() == nil {
		t.Fatal("health reports no failure")
	}
}

func TestReadOnlyDataDirectory(t *testing.T) {
	fsys := newFaultFS()
	tl := openTestLog(t, Options{FS: fsys})
	tl.create("t", 1, nil)
	appendN(t, tl.part("t", 0), 3, 0)
	if err := tl.Close(); err != nil {
		t.Fatal(err)
	}
	fsys.readOnly.Store(true)
	_, err := Open(context.Background(), tl.opts)
	if err == nil {
		t.Fatal("open on a read-only directory succeeded")
	}
	if !errors.Is(err, syscall.EROFS) || !strings.Contains(err.Error(), tl.opts.Dir) {
		t.Fatalf("got %v, want EROFS naming %s", err, tl.opts.Dir)
	}
	// Nothing was damaged: with the volume writable again, all is there.
	fsys.readOnly.Store(false)
	tl2 := openTestLog(t, tl.opts)
	if got := readAllBatches(t, tl2.part("t", 0), 0); len(got) != 3 {
		t.Fatalf("got %d batches, want 3", len(got))
	}
}

// TestReadRefusesBatchPastSegmentEnd checks that a stored batch whose
// length field, damaged after it was checked, runs past the end of its
// segment is reported as corruption rather than read as the end of the log,
// which would leave a consumer polling the same offset for ever.
func TestReadRefusesBatchPastSegmentEnd(t *testing.T) {
	for _, at := range []int{0, 3} {
		t.Run(strconv.Itoa(at), func(t *testing.T) {
			tl := openTestLog(t, Options{})
			tl.create("t", 1, nil)
			want := appendN(t, tl.part("t", 0), 20, 0)
			if err := tl.Close(); err != nil {
				t.Fatal(err)
			}
			// The clean reopen trusts the segment, as it trusts any
			// prefix the checkpoint vouches for.
			path := segmentPath(tl, "t", 0, 0)
			data, _ := os.ReadFile(path)
			data[at*len(want[0])+record.LengthPrefix-3] ^= 0x10 // batchLength grows by 1 MiB
			_ = os.WriteFile(path, data, 0o644)

			tl2 := openTestLog(t, tl.opts)
			p := tl2.part("t", 0)
			off := int64(at * 5)
			res, err := p.Read(context.Background(), off, 1<<10, nil)
			var ce *CorruptionError
			if !errors.As(err, &ce) {
				t.Fatalf("read at %d: got %d bytes up to %d, %v; want a CorruptionError", off, len(res.Batches), res.NextOffset, err)
			}
		})
	}
}

// stopFS lets the first n changes to the file system through and refuses
// every one after, as if the process had died there: what is on disk is
// what the next open, through the real file system, finds.
type stopFS struct {
	OSFS
	left atomic.Int64
}

var errStopped = errors.New("stopped")

func (fs *stopFS) change() error {
	if fs.left.Add(-1) < 0 {
		return errStopped
	}
	return nil
}

func (fs *stopFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	if flag&(os.O_WRONLY|os.O_RDWR|os.O_CREATE|os.O_TRUNC) != 0 {
		if err := fs.change(); err != nil {
			return nil, err
		}
	}
	f, err := fs.OSFS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &stopFile{File: f, fs: fs}, nil
}

func (fs *stopFS) Remove(name string) error {
	if err := fs.change(); err != nil {
		return err
	}
	return fs.OSFS.Remove(name)
}

func (fs *stopFS) RemoveAll(path string) error {
	if err := fs.change(); err != nil {
		return err
	}
	return fs.OSFS.RemoveAll(path)
}

func (fs *stopFS) Rename(a, b string) error {
	if err := fs.change(); err != nil {
		return err
	}
	return fs.OSFS.Rename(a, b)
}

func (fs *stopFS) Link(a, b string) error {
	if err := fs.change(); err != nil {
		return err
	}
	return fs.OSFS.Link(a, b)
}

func (fs *stopFS) MkdirAll(path string, perm os.FileMode) error {
	if err := fs.change(); err != nil {
		return err
	}
	return fs.OSFS.MkdirAll(path, perm)
}

func (fs *stopFS) SyncDir(path string) error {
	if err := fs.change(); err != nil {
		return err
	}
	return fs.OSFS.SyncDir(path)
}

type stopFile struct {
	File
	fs *stopFS
}

func (f *stopFile) WriteAt(b []byte, off int64) (int, error) {
	if err := f.fs.change(); err != nil {
		return 0, err
	}
	return f.File.WriteAt(b, off)
}

func (f *stopFile) Truncate(size int64) error {
	if err := f.fs.change(); err != nil {
		return err
	}
	return f.File.Truncate(size)
}

func (f *stopFile) Sync() error {
	if err := f.fs.change(); err != nil {
		return err
	}
	return f.File.Sync()
}

// TestQuarantineInterrupted checks that recovery stopped at any step of
// quarantining a damaged segment leaves the segment's sound prefix in
// place for the next open, never only in the quarantined copy.
func TestQuarantineInterrupted(t *testing.T) {
	for n := int64(0); ; n++ {
		dir := t.TempDir()
		cat := newMemCatalog()
		tl := openTestLog(t, Options{Dir: dir, Catalog: cat, CheckpointInterval: time.Hour})
		tl.create("t", 1, nil)
		want := appendN(t, tl.part("t", 0), 20, 0)
		tl.crash()
		path := segmentPath(tl, "t", 0, 0)
		data, _ := os.ReadFile(path)
		data[10*len(want[0])+len(want[0])-7] ^= 0x10 // inside batch 10
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}

		fsys := &stopFS{}
		fsys.left.Store(n)
		l, err := Open(context.Background(), Options{Dir: dir, Catalog: cat, FS: fsys, Logger: quietLogger(), CheckpointInterval: time.Hour})
		if err == nil {
			_ = l.Close()
			if n < 5 {
				t.Fatalf("open succeeded after %d changes to the file system; the test expects more", n)
			}
			return // every step has been interrupted once
		}
		tl2 := openTestLog(t, Options{Dir: dir, Catalog: cat, CheckpointInterval: time.Hour})
		got := readAllBatches(t, tl2.part("t", 0), 0)
		if len(got) < 10 {
			t.Fatalf("open stopped after %d changes: the next open reads %d batches, want the 10 before the damage", n, len(got))
		}
		for i := range 10 {
			if !bytes.Equal(got[i][record.LengthPrefix:], want[i][record.LengthPrefix:]) {
				t.Fatalf("open stopped after %d changes: batch %d differs", n, i)
			}
		}
		_ = tl2.Close()
	}
}

// TestQuarantineNameTaken checks that a quarantine whose name is taken (by
// an earlier quarantine in the same millisecond or one interrupted after
// its link) keeps that file and uses the next free name.
func TestQuarantineNameTaken(t *testing.T) {
	dir := t.TempDir()
	cat := newMemCatalog()
	tl := openTestLog(t, Options{Dir: dir, Catalog: cat, CheckpointInterval: time.Hour})
	tl.create("t", 1, nil)
	want := appendN(t, tl.part("t", 0), 20, 0)
	tl.crash()
	path := segmentPath(tl, "t", 0, 0)
	data, _ := os.ReadFile(path)
	data[10*len(want[0])+len(want[0])-7] ^= 0x10 // inside batch 10
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	now := time.UnixMilli(1_800_000_000_000)
	taken := fmt.Sprintf("%s%s%d", path, quarantineSuffix, now.UnixMilli())
	if err := os.WriteFile(taken, []byte("earlier"), 0o644); err != nil {
		t.Fatal(err)
	}

	l, err := Open(context.Background(), Options{Dir: dir, Catalog: cat, Logger: quietLogger(),
		CheckpointInterval: time.Hour, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatalf("open with the quarantine name taken: %v", err)
	}
	defer l.Close()
	if b, _ := os.ReadFile(taken); string(b) != "earlier" {
		t.Fatalf("the file already at %s was replaced", taken)
	}
	next := fmt.Sprintf("%s%s%d", path, quarantineSuffix, now.UnixMilli()+1)
	if b, err := os.ReadFile(next); err != nil || !bytes.Equal(b, data) {
		t.Fatalf("quarantined copy at %s: %d bytes, %v; want the damaged %d bytes", next, len(b), err, len(data))
	}
}

// TestRecoveryNeverReusesCheckpointedOffsets checks that when the file
// system loses records the recovery checkpoint says were durable, what is
// left stays readable and new records get offsets after the checkpoint's,
// never those of the lost, possibly acknowledged, records.
func TestRecoveryNeverReusesCheckpointedOffsets(t *testing.T) {
	for _, tt := range []struct {
		name string
		// keep is how many bytes of the 10-batch segment survive.
		keep     func(batch int) int64
		readable int
	}{
		{"shorter by whole batches", func(b int) int64 { return int64(6 * b) }, 6},
		{"cut inside a batch", func(b int) int64 { return int64(6*b + b/2) }, 6},
		{"emptied", func(int) int64 { return 0 }, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			tl := openTestLog(t, Options{Registerer: reg, CheckpointInterval: time.Hour})
			tl.create("t", 1, nil)
			want := appendN(t, tl.part("t", 0), 10, 0)
			if err := tl.Close(); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(segmentPath(tl, "t", 0, 0), tt.keep(len(want[0]))); err != nil {
				t.Fatal(err)
			}

			tl.opts.Registerer = prometheus.NewRegistry()
			tl2 := tl.reopenAfterCrash()
			p := tl2.part("t", 0)
			if got := readAllBatches(t, p, 0); len(got) != tt.readable {
				t.Fatalf("got %d readable batches, want %d", len(got), tt.readable)
			}
			if n := testutil.ToFloat64(tl2.metrics.corruptions); n < 1 {
				t.Fatalf("corruption metric: got %v, want at least 1", n)
			}
			res, err := p.Append(context.Background(), makeBatch(1, 1, 1, 0))
			if err != nil || res.BaseOffset != 50 {
				t.Fatalf("append after recovery: got offset %d, %v; want 50", res.BaseOffset, err)
			}
			tl3 := tl2.reopen()
			if got := readAllBatches(t, tl3.part("t", 0), 0); len(got) != tt.readable+1 {
				t.Fatalf("after another reopen: got %d batches, want %d", len(got), tt.readable+1)
			}
		})
	}
}

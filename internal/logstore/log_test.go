package logstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/record"
)

func TestAppendReadRoundTrip(t *testing.T) {
	for _, sync := range []string{"always", "never", "interval:5ms"} {
		t.Run(sync, func(t *testing.T) {
			pol, err := ParseSyncPolicy(sync)
			if err != nil {
				t.Fatal(err)
			}
			tl := openTestLog(t, Options{Sync: pol})
			tl.create("orders", 3, nil)
			p := tl.part("orders", 1)
			var want [][]byte
			next := int64(0)
			for i := 0; i < 50; i++ {
				b := makeBatch(1+i%7, 100, 1000+int64(i), i)
				res, err := p.Append(context.Background(), b)
				if err != nil {
					t.Fatalf("append %d: %v", i, err)
				}
				if res.BaseOffset != next {
					t.Fatalf("append %d: got base offset %d, want %d", i, res.BaseOffset, next)
				}
				next = res.LastOffset + 1
				want = append(want, b)
			}
			check := func(p *Partition) {
				t.Helper()
				got := readAllBatches(t, p, 0)
				if len(got) != len(want) {
					t.Fatalf("got %d batches, want %d", len(got), len(want))
				}
				for i := range got {
					if !bytes.Equal(got[i], want[i]) {
						t.Fatalf("batch %d differs from what was appended", i)
					}
				}
				if hw := p.HighWatermark(); hw != next {
					t.Fatalf("got high watermark %d, want %d", hw, next)
				}
			}
			check(p)
			tl = tl.reopen()
			check(tl.part("orders", 1))
		})
	}
}

func TestReadReturnsWholeBatches(t *testing.T) {
	tl := openTestLog(t, Options{})
	tl.create("t", 1, nil)
	p := tl.part("t", 0)
	for i := 0; i < 10; i++ {
		if _, err := p.Append(context.Background(), makeBatch(10, 200, 1, i)); err != nil {
			t.Fatal(err)
		}
	}
	batchSize := len(makeBatch(10, 200, 1, 0))
	tests := []struct {
		name        string
		offset      int64
		maxBytes    int
		wantBatches int
		wantFirst   int64
	}{
		{"first batch even when over the limit", 0, 1, 1, 0},
		{"offset mid batch returns that batch", 15, 1, 1, 10},
		{"limit fits three batches", 20, 3*batchSize + 10, 3, 20},
		{"last offset", 99, 1 << 20, 1, 90},
		{"everything", 0, 1 << 20, 10, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := p.Read(context.Background(), tt.offset, tt.maxBytes, nil)
			if err != nil {
				t.Fatal(err)
			}
			n, first := 0, int64(-1)
			for b := res.Batches; len(b) > 0; n++ {
				h, err := record.ParseHeader(b)
				if err != nil {
					t.Fatal(err)
				}
				if first < 0 {
					first = h.BaseOffset
				}
				b = b[h.Size():]
			}
			if n != tt.wantBatches || first != tt.wantFirst {
				t.Fatalf("got %d batches from %d, want %d from %d", n, first, tt.wantBatches, tt.wantFirst)
			}
		})
	}
	if res, err := p.Read(context.Background(), 100, 100, nil); err != nil || len(res.Batches) != 0 {
		t.Fatalf("read at high watermark: got %d bytes, %v; want none, nil", len(res.Batches), err)
	}
	if _, err := p.Read(context.Background(), 101, 100, nil); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read past high watermark: got %v, want ErrOffsetOutOfRange", err)
	}
}

func TestAppendRejectsBadBatches(t *testing.T) {
	tl := openTestLog(t, Options{})
	tl.create("t", 1, map[string]string{"max.message.bytes": "2000"})
	p := tl.part("t", 0)
	good := makeBatch(2, 10, 1, 0)
	flipped := append([]byte(nil), good...)
	flipped[len(flipped)-1] ^= 1
	tests := []struct {
		name  string
		batch []byte
		want  error
	}{
		{"bad crc", flipped, record.ErrChecksum},
		{"truncated", good[:len(good)-3], record.ErrMalformed},
		{"too short", good[:20], record.ErrMalformed},
		{"two batches", append(append([]byte(nil), good...), good...), record.ErrMalformed},
		{"over max.message.bytes", makeBatch(10, 300, 1, 0), record.ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := p.Append(context.Background(), tt.batch)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
	if info := p.Info(); info.HighWatermark != 0 || info.SizeBytes != 0 {
		t.Fatalf("rejected batches changed the log: %+v", info)
	}
}

func TestRollAndReadAcrossSegments(t *testing.T) {
	tl := openTestLog(t, Options{})
	tl.create("t", 1, map[string]string{"segment.bytes": "4096", "index.interval.bytes": "512"})
	p := tl.part("t", 0)
	var want [][]byte
	for i := 0; i < 200; i++ {
		b := makeBatch(3, 50, int64(i), i)
		if _, err := p.Append(context.Background(), b); err != nil {
			t.Fatal(err)
		}
		want = append(want, b)
	}
	if n := p.Info().Segments; n < 10 {
		t.Fatalf("got %d segments, want at least 10", n)
	}
	for _, reopen := range []bool{false, true} {
		if reopen {
			tl = tl.reopen()
			p = tl.part("t", 0)
		}
		got := readAllBatches(t, p, 0)
		if len(got) != len(want) {
			t.Fatalf("got %d batches, want %d", len(got), len(want))
		}
		for i := range want {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("batch %d differs", i)
			}
		}
		// Every offset finds its batch.
		for off := int64(0); off < 600; off += 7 {
			res, err := p.Read(context.Background(), off, 1, nil)
			if err != nil {
				t.Fatal(err)
			}
			h, _ := record.ParseHeader(res.Batches)
			if off < h.BaseOffset || off > h.LastOffset() {
				t.Fatalf("read at %d returned batch [%d, %d]", off, h.BaseOffset, h.LastOffset())
			}
		}
	}
}

func TestSegmentRollByAge(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	tl := openTestLog(t, Options{Now: clock.Now})
	tl.create("t", 1, map[string]string{"segment.ms": "60000"})
	p := tl.part("t", 0)
	for i := 0; i < 3; i++ {
		if _, err := p.Append(context.Background(), makeBatch(1, 10, clock.Now().UnixMilli(), i)); err != nil {
			t.Fatal(err)
		}
		clock.Advance(61 * time.Second)
	}
	if got := p.Info().Segments; got != 3 {
		t.Fatalf("got %d segments, want 3", got)
	}
}

func TestOffsetForTime(t *testing.T) {
	tl := openTestLog(t, Options{})
	tl.create("t", 1, map[string]string{"segment.bytes": "2048", "index.interval.bytes": "256"})
	p := tl.part("t", 0)
	// Batch i has timestamp 1000+10i and offsets [2i, 2i+1].
	for i := 0; i < 100; i++ {
		if _, err := p.Append(context.Background(), makeBatch(2, 20, 1000+10*int64(i), i)); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		ts        int64
		want      int64
		wantFound bool
	}{
		{0, 0, true},
		{1000, 0, true},
		{1001, 2, true},
		{1500, 100, true},
		{1990, 198, true},
		{1991, 0, false},
	}
	for _, reopen := range []bool{false, true} {
		if reopen {
			tl = tl.reopen()
			p = tl.part("t", 0)
		}
		for _, tt := range tests {
			off, _, found, err := p.OffsetForTime(context.Background(), tt.ts)
			if err != nil {
				t.Fatal(err)
			}
			if found != tt.wantFound || (found && off != tt.want) {
				t.Fatalf("OffsetForTime(%d): got %d, %v; want %d, %v", tt.ts, off, found, tt.want, tt.wantFound)
			}
		}
	}
}

func TestRetention(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	tl := openTestLog(t, Options{Now: clock.Now, CheckpointInterval: time.Hour})
	tl.create("bytes", 1, map[string]string{"segment.bytes": "2048", "retention.bytes": "8192"})
	tl.create("time", 1, map[string]string{"segment.bytes": "2048", "retention.ms": "60000"})
	pb, pt := tl.part("bytes", 0), tl.part("time", 0)
	for i := 0; i < 100; i++ {
		ts := clock.Now().UnixMilli()
		if _, err := pb.Append(context.Background(), makeBatch(2, 100, ts, i)); err != nil {
			t.Fatal(err)
		}
		if _, err := pt.Append(context.Background(), makeBatch(2, 100, ts, i)); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Second)
	}
	// Rolled segments must be flushed before retention may delete them.
	pb.flushSealed()
	pt.flushSealed()
	tl.EnforceRetention()

	info := pb.Info()
	if info.SizeBytes < 8192 || info.SizeBytes > 8192+2048 {
		t.Fatalf("retention.bytes: got %d bytes, want between 8192 and 10240", info.SizeBytes)
	}
	if info.LogStartOffset == 0 {
		t.Fatalf("retention.bytes: log start offset did not advance")
	}
	if _, err := pb.Read(context.Background(), 0, 100, nil); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read below log start: got %v, want ErrOffsetOutOfRange", err)
	}
	if got := readAllBatches(t, pb, info.LogStartOffset); len(got) == 0 {
		t.Fatalf("nothing readable from the log start offset")
	}
	// Records are 100 s old at most; 60 s retention keeps the youngest.
	ti := pt.Info()
	if ti.LogStartOffset < 2*30 || ti.LogStartOffset > 2*45 {
		t.Fatalf("retention.ms: got log start offset %d, want between 60 and 90", ti.LogStartOffset)
	}
	// Everything expires: the active segment rolls, then goes.
	clock.Advance(time.Hour)
	tl.EnforceRetention()
	pt.flushSealed()
	tl.EnforceRetention()
	if ti := pt.Info(); ti.LogStartOffset != ti.HighWatermark || ti.HighWatermark != 200 {
		t.Fatalf("all expired: got log start %d, high watermark %d; want both 200", ti.LogStartOffset, ti.HighWatermark)
	}
	tl = tl.reopen()
	if ti := tl.part("time", 0).Info(); ti.LogStartOffset != 200 || ti.HighWatermark != 200 {
		t.Fatalf("after reopen: got [%d, %d), want [200, 200)", ti.LogStartOffset, ti.HighWatermark)
	}
}

func TestWaitWakesOnAppend(t *testing.T) {
	tl := openTestLog(t, Options{})
	tl.create("t", 1, nil)
	p := tl.part("t", 0)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := p.Wait(ctx, 0); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wait on empty partition: got %v, want deadline exceeded", err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Wait(context.Background(), 0) }()
	time.Sleep(10 * time.Millisecond)
	if _, err := p.Append(context.Background(), makeBatch(1, 1, 1, 0)); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("wait: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("wait was not woken by the append")
	}
	go func() { done <- p.Wait(context.Background(), 5) }()
	_ = tl.DeleteTopic(context.Background(), "t")
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("wait after delete: got %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("wait was not woken by topic deletion")
	}
}

func TestTopicAdmin(t *testing.T) {
	cat := newMemCatalog()
	tl := openTestLog(t, Options{Catalog: cat})
	tl.create("a", 2, map[string]string{"retention.ms": "1000"})
	if _, err := tl.CreateTopic(context.Background(), "a", 1, nil); !errors.Is(err, ErrTopicExists) {
		t.Fatalf("create twice: got %v, want ErrTopicExists", err)
	}
	if _, err := tl.CreateTopic(context.Background(), "bad/name", 1, nil); err == nil {
		t.Fatal("create with a bad name succeeded")
	}
	if _, err := tl.AddPartitions(context.Background(), "a", 4); err != nil {
		t.Fatal(err)
	}
	if _, err := tl.AlterTopicConfig(context.Background(), "a", map[string]string{"retention.ms": "5000"}); err != nil {
		t.Fatal(err)
	}
	tl = tl.reopen()
	ti, err := tl.Topic("a")
	if err != nil {
		t.Fatal(err)
	}
	if len(ti.Partitions) != 4 || ti.Config.RetentionMs != 5000 {
		t.Fatalf("after reopen: got %d partitions, retention.ms %d; want 4, 5000", len(ti.Partitions), ti.Config.RetentionMs)
	}
	if _, err := tl.part("a", 3).Append(context.Background(), makeBatch(1, 1, 1, 0)); err != nil {
		t.Fatal(err)
	}
	if err := tl.DeleteTopic(context.Background(), "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := tl.Partition("a", 0); !errors.Is(err, ErrUnknownTopic) {
		t.Fatalf("partition of deleted topic: got %v, want ErrUnknownTopic", err)
	}
	tl.create("a", 1, nil)
	if hw := tl.part("a", 0).HighWatermark(); hw != 0 {
		t.Fatalf("recreated topic: got high watermark %d, want 0", hw)
	}
}

func TestOffsetForTimeWithinBatch(t *testing.T) {
	tl := openTestLog(t, Options{})
	tl.create("t", 1, nil)
	p := tl.part("t", 0)
	var c record.Codecs
	for _, codec := range []record.Compression{record.CompressionNone, record.CompressionZstd} {
		recs := []record.Record{{Value: []byte("a"), Timestamp: 100}, {Value: []byte("b"), Timestamp: 300}, {Value: []byte("c"), Timestamp: 200}, {Value: []byte("d"), Timestamp: 400}}
		b, err := c.AppendBatch(nil, recs, record.BatchOptions{Compression: codec})
		if err != nil {
			t.Fatal(err)
		}
		res, err := p.Append(context.Background(), b)
		if err != nil {
			t.Fatal(err)
		}
		for _, tt := range []struct{ ts, want, wantTs int64 }{{50, 0, 100}, {150, 1, 300}, {250, 1, 300}, {350, 3, 400}} {
			off, ts, found, err := p.OffsetForTime(context.Background(), tt.ts)
			if err != nil || !found || off-res.BaseOffset != tt.want && res.BaseOffset == 0 {
				t.Fatalf("%v: OffsetForTime(%d): got %d (ts %d), %v, %v; want %d", codec, tt.ts, off, ts, found, err, tt.want)
			}
			if res.BaseOffset == 0 && ts != tt.wantTs {
				t.Fatalf("%v: OffsetForTime(%d): got timestamp %d, want %d", codec, tt.ts, ts, tt.wantTs)
			}
		}
	}
}

func TestAdminConcurrentWithBackgroundWork(t *testing.T) {
	tl := openTestLog(t, Options{CheckpointInterval: time.Millisecond, RetentionCheckInterval: time.Millisecond})
	tl.create("t", 1, nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 200; i++ {
			_ = tl.Health()
			_ = tl.Topics()
			_, _ = tl.Topic("t")
		}
	}()
	for n := int32(2); n < 20; n++ {
		if _, err := tl.AddPartitions(context.Background(), "t", n); err != nil {
			t.Fatal(err)
		}
		if _, err := tl.AlterTopicConfig(context.Background(), "t", map[string]string{"retention.ms": "100000"}); err != nil {
			t.Fatal(err)
		}
	}
	<-done
}

// TestUnsyncedListBounded checks that under every sync policy the list of
// segments waiting for an fsync holds only segments that may still change:
// rolled segments leave it once flushSealed has fsynced them, so it does
// not grow by one entry per roll.
func TestUnsyncedListBounded(t *testing.T) {
	for _, mode := range []SyncMode{SyncAlways, SyncInterval, SyncNever} {
		t.Run(SyncPolicy{Mode: mode, Interval: time.Hour}.String(), func(t *testing.T) {
			tl := openTestLog(t, Options{Sync: SyncPolicy{Mode: mode, Interval: time.Hour}})
			tl.create("t", 1, map[string]string{"segment.bytes": "4096"})
			p := tl.part("t", 0)
			for i := range 200 {
				if _, err := p.Append(context.Background(), makeBatch(3, 50, int64(i), i)); err != nil {
					t.Fatal(err)
				}
			}
			p.flushSealed()
			p.mu.RLock()
			segs, unsynced := len(p.segs), len(p.unsynced)
			p.mu.RUnlock()
			if segs < 10 {
				t.Fatalf("got %d segments, want the appends to roll at least 10", segs)
			}
			if unsynced > 1 {
				t.Errorf("got %d segments waiting for fsync after flushing the sealed ones, want at most the active one", unsynced)
			}
		})
	}
}

// TestRolledSegmentFlushedAfterCleanReopen checks that the segment that was
// active at a clean close, whose index the reopen loaded from its files, is
// flushed and gets its index rewritten once it rolls: until then the
// recovery checkpoint must not move past it.
func TestRolledSegmentFlushedAfterCleanReopen(t *testing.T) {
	for _, mode := range []SyncMode{SyncAlways, SyncInterval, SyncNever} {
		t.Run(SyncPolicy{Mode: mode, Interval: time.Hour}.String(), func(t *testing.T) {
			tl := openTestLog(t, Options{Sync: SyncPolicy{Mode: mode, Interval: time.Hour}, CheckpointInterval: time.Hour})
			tl.create("t", 1, map[string]string{"segment.bytes": "8192", "index.interval.bytes": "256"})
			ts := time.Now().UnixMilli()
			for i := range 5 {
				if _, err := tl.part("t", 0).Append(context.Background(), makeBatch(3, 50, ts, i)); err != nil {
					t.Fatal(err)
				}
			}
			tl = tl.reopen()
			p := tl.part("t", 0)
			for i := 5; p.Info().Segments < 2; i++ {
				if _, err := p.Append(context.Background(), makeBatch(3, 50, ts, i)); err != nil {
					t.Fatal(err)
				}
			}
			p.mu.RLock()
			s := p.segs[0]
			cp := p.checkpointLocked()
			p.mu.RUnlock()
			if cp.segBase != s.base {
				t.Fatalf("before the rolled segment is flushed, the checkpoint is at segment %d, want %d", cp.segBase, s.base)
			}
			p.flushSealed()
			ip, tp := s.indexPaths()
			for _, f := range []struct {
				path string
				want []byte
			}{{ip, s.idx.encodeOffsets()}, {tp, s.idx.encodeTimes()}} {
				got, err := os.ReadFile(f.path)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, f.want) {
					t.Errorf("%s holds %d bytes, want the %d of the rolled segment's index", filepath.Base(f.path), len(got), len(f.want))
				}
			}
			p.mu.RLock()
			cp = p.checkpointLocked()
			p.mu.RUnlock()
			if cp.segBase == s.base {
				t.Errorf("after flushing the rolled segment, the checkpoint is still at it")
			}
		})
	}
}

// gateFS holds the first MkdirAll of the log's trash directory until
// release is closed, so a test can act while DeleteTopic is in its middle.
type gateFS struct {
	OSFS
	once    sync.Once
	entered chan struct{}
	release chan struct{}
}

func (fs *gateFS) MkdirAll(path string, perm os.FileMode) error {
	if filepath.Base(path) == trashDir {
		fs.once.Do(func() {
			close(fs.entered)
			<-fs.release
		})
	}
	return fs.OSFS.MkdirAll(path, perm)
}

// TestRecreateTopicDuringDelete checks that a topic created under the name
// of one being deleted neither inherits the old topic's records nor loses
// its own to the deletion's removal of the old directory.
func TestRecreateTopicDuringDelete(t *testing.T) {
	fsys := &gateFS{entered: make(chan struct{}), release: make(chan struct{})}
	tl := openTestLog(t, Options{FS: fsys, CheckpointInterval: time.Hour})
	tl.create("a", 1, nil)
	appendN(t, tl.part("a", 0), 3, 0)

	deleted := make(chan error, 1)
	go func() { deleted <- tl.DeleteTopic(context.Background(), "a") }()
	<-fsys.entered
	created := make(chan error, 1)
	go func() {
		_, err := tl.CreateTopic(context.Background(), "a", 1, nil)
		created <- err
	}()
	// Give the creation time to run into the deletion, if it can.
	time.Sleep(50 * time.Millisecond)
	close(fsys.release)
	if err := <-deleted; err != nil {
		t.Fatalf("delete: %v", err)
	}
	if err := <-created; err != nil {
		t.Fatalf("create: %v", err)
	}
	p := tl.part("a", 0)
	if hw := p.HighWatermark(); hw != 0 {
		t.Fatalf("recreated topic: got high watermark %d, want 0", hw)
	}
	want := appendN(t, p, 2, 100)
	tl = tl.reopen()
	got := readAllBatches(t, tl.part("a", 0), 0)
	if len(got) != len(want) {
		t.Fatalf("after reopen the recreated topic holds %d batches, want the %d appended", len(got), len(want))
	}
}

// TestDurableAfterClose checks that waiting for a batch written before the
// log closed reports ErrClosed rather than failing the partition over an
// fsync of a file the close already closed.
func TestDurableAfterClose(t *testing.T) {
	for _, clean := range []bool{true, false} {
		t.Run(fmt.Sprintf("clean=%v", clean), func(t *testing.T) {
			tl := openTestLog(t, Options{CheckpointInterval: time.Hour})
			tl.create("t", 1, nil)
			p := tl.part("t", 0)
			res, err := p.Write(makeBatch(2, 10, 1, 0))
			if err != nil {
				t.Fatal(err)
			}
			if clean {
				if err := tl.Close(); err != nil {
					t.Fatal(err)
				}
			} else if err := tl.DeleteTopic(context.Background(), "t"); err != nil {
				t.Fatal(err)
			}
			err = p.Durable(context.Background(), res)
			if !errors.Is(err, ErrClosed) {
				t.Fatalf("Durable after close: got %v, want ErrClosed", err)
			}
			if err := p.Info().Err; err != nil {
				t.Fatalf("partition failed after close: %v", err)
			}
		})
	}
}

// TestAdminAfterClose checks that topic administration on a closed log
// fails with ErrClosed instead of opening, changing or removing files that
// the close already let go of.
func TestAdminAfterClose(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name string
		op   func(*Log) error
	}{
		{"create", func(l *Log) error { _, err := l.CreateTopic(ctx, "b", 1, nil); return err }},
		{"delete", func(l *Log) error { return l.DeleteTopic(ctx, "a") }},
		{"alter", func(l *Log) error {
			_, err := l.AlterTopicConfig(ctx, "a", map[string]string{"retention.ms": "5000"})
			return err
		}},
		{"add partitions", func(l *Log) error { _, err := l.AddPartitions(ctx, "a", 3); return err }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tl := openTestLog(t, Options{})
			tl.create("a", 1, nil)
			appendN(t, tl.part("a", 0), 2, 0)
			if err := tl.Close(); err != nil {
				t.Fatal(err)
			}
			if err := tt.op(tl.Log); !errors.Is(err, ErrClosed) {
				t.Fatalf("got %v, want ErrClosed", err)
			}
			tl = openTestLog(t, tl.opts)
			ti, err := tl.Topic("a")
			if err != nil {
				t.Fatal(err)
			}
			if len(ti.Partitions) != 1 || ti.Config.RetentionMs == 5000 || ti.Partitions[0].HighWatermark != 10 {
				t.Fatalf("after reopen: got %d partitions, retention.ms %d, high watermark %d; want the topic as it was closed",
					len(ti.Partitions), ti.Config.RetentionMs, ti.Partitions[0].HighWatermark)
			}
		})
	}
}

// TestOffsetForTimePastLogStart checks that a time lookup whose first
// candidate segment holds its only late enough batch below the log start
// moves on to the next segment instead of reporting nothing.
func TestOffsetForTimePastLogStart(t *testing.T) {
	ctx := context.Background()
	tl := openTestLog(t, Options{})
	tl.create("t", 1, map[string]string{"segment.bytes": "2048"})
	p := tl.part("t", 0)
	// Producer clocks disagree: the second batch is from the future. Each
	// batch holds offsets [2i, 2i+1]; segments hold a few batches each.
	for i := 0; i < 30; i++ {
		ts := 1000 + int64(i)
		if i == 1 {
			ts = 9000
		}
		if _, err := p.Append(ctx, makeBatch(2, 100, ts, i)); err != nil {
			t.Fatal(err)
		}
	}
	p.mu.RLock()
	next0, base1 := p.segs[0].next, p.segs[1].base
	p.mu.RUnlock()
	if next0 <= 4 {
		t.Fatalf("first segment ends at offset %d, want it to hold more than two batches", next0)
	}
	if _, err := p.DeleteRecords(ctx, 4); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		ts, want int64
		found    bool
	}{
		{1002, 4, true},
		{1000 + base1/2, base1, true},
		{1029, 58, true},
		{1030, 0, false},
		{9001, 0, false},
	} {
		off, _, found, err := p.OffsetForTime(ctx, tt.ts)
		if err != nil {
			t.Fatal(err)
		}
		if found != tt.found || found && off != tt.want {
			t.Errorf("OffsetForTime(%d): got %d, %v; want %d, %v", tt.ts, off, found, tt.want, tt.found)
		}
	}
}

// TestCreateTopicMovesOrphanAside checks that a topic created under the
// name of a directory the catalog does not list (a deletion whose rename
// failed) starts empty, and that the old directory is kept aside.
func TestCreateTopicMovesOrphanAside(t *testing.T) {
	tl := openTestLog(t, Options{CheckpointInterval: time.Hour})
	tl.create("a", 1, nil)
	appendN(t, tl.part("a", 0), 3, 0)
	// The orphan: a copy of a's directory under another name.
	topics := filepath.Join(tl.opts.Dir, topicsDir)
	if err := os.CopyFS(filepath.Join(topics, "b"), os.DirFS(filepath.Join(topics, "a"))); err != nil {
		t.Fatal(err)
	}
	tl.create("b", 1, nil)
	if hw := tl.part("b", 0).HighWatermark(); hw != 0 {
		t.Errorf("topic created over an orphaned directory: high watermark %d, want 0", hw)
	}
	kept, _ := filepath.Glob(filepath.Join(tl.opts.Dir, orphanedDir, "b-*"))
	if len(kept) != 1 {
		t.Errorf("got orphaned directories %v, want b's", kept)
	}
}

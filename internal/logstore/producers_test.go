package logstore

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/record"
)

// idemBatch builds an idempotent batch of n records from producer pid.
func idemBatch(t testing.TB, pid int64, epoch int16, seq int32, n int) []byte {
	t.Helper()
	var c record.Codecs
	recs := make([]record.Record, n)
	for i := range recs {
		recs[i] = record.Record{Value: []byte("v"), Timestamp: 1}
	}
	b, err := c.AppendBatch(nil, recs, record.BatchOptions{Producer: &record.Producer{ID: pid, Epoch: epoch, BaseSequence: seq}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// withSequence rewrites a batch's baseSequence, which the encoder keeps
// valid, and its CRC.
func withSequence(b []byte, seq int32) []byte {
	binary.BigEndian.PutUint32(b[53:], uint32(seq))
	binary.BigEndian.PutUint32(b[17:], record.Checksum(b))
	return b
}

func TestLastSequence(t *testing.T) {
	for _, tt := range []struct {
		base, delta, want int32
	}{
		{0, 0, 0},
		{0, 4, 4},
		{10, 9, 19},
		{math.MaxInt32, 0, math.MaxInt32},
		{math.MaxInt32, 1, 0},
		{math.MaxInt32 - 1, 3, 1},
	} {
		if got := lastSequence(tt.base, tt.delta); got != tt.want {
			t.Errorf("lastSequence(%d, %d): got %d, want %d", tt.base, tt.delta, got, tt.want)
		}
	}
}

// entryWith returns a producer entry of epoch holding the given batches
// (first and last sequence pairs), oldest first, at offsets 100, 200, ...
func entryWith(epoch int16, seqs ...[2]int32) *producerEntry {
	e := &producerEntry{epoch: epoch, head: maxProducerBatches - 1}
	for i, s := range seqs {
		off := int64(100 * (i + 1))
		e.add(epoch, producerBatch{firstSeq: s[0], lastSeq: s[1], firstOffset: off, lastOffset: off + int64(s[1]-s[0]), appendTime: -1}, 0)
	}
	return e
}

func TestCheckSequence(t *testing.T) {
	six := entryWith(0, [2]int32{0, 0}, [2]int32{1, 1}, [2]int32{2, 2}, [2]int32{3, 3}, [2]int32{4, 4}, [2]int32{5, 5})
	for _, tt := range []struct {
		name            string
		e               *producerEntry
		epoch           int16
		first, last     int32
		wantErr         error
		wantDupAtOffset int64 // 0: not a duplicate
		neverWritten    bool
	}{
		{"unknown producer at sequence 0", nil, 0, 0, 4, nil, 0, false},
		{"unknown producer at a later sequence (state expired)", nil, 3, 57, 60, nil, 0, false},
		{"next in sequence", entryWith(0, [2]int32{0, 4}), 0, 5, 9, nil, 0, false},
		{"gap", entryWith(0, [2]int32{0, 4}), 0, 6, 9, ErrOutOfOrderSequence, 0, false},
		{"sequence repeated with another range", entryWith(0, [2]int32{0, 4}), 0, 2, 4, ErrOutOfOrderSequence, 0, false},
		{"duplicate of the last batch", entryWith(0, [2]int32{0, 4}, [2]int32{5, 9}), 0, 5, 9, nil, 200, false},
		{"duplicate of an older batch", entryWith(0, [2]int32{0, 4}, [2]int32{5, 9}, [2]int32{10, 10}), 0, 0, 4, nil, 100, false},
		{"a sixth-newest batch is no longer a duplicate", six, 0, 0, 0, ErrOutOfOrderSequence, 0, false},
		{"the fifth-newest still is", six, 0, 1, 1, nil, 200, false},
		{"same sequences in a newer epoch are not duplicates", entryWith(0, [2]int32{0, 4}), 1, 0, 4, nil, 0, false},
		{"wrap past MaxInt32", entryWith(0, [2]int32{math.MaxInt32 - 4, math.MaxInt32}), 0, 0, 3, nil, 0, false},
		{"no wrap to 1", entryWith(0, [2]int32{math.MaxInt32 - 4, math.MaxInt32}), 0, 1, 3, ErrOutOfOrderSequence, 0, false},
		{"batch that wraps inside", entryWith(0, [2]int32{math.MaxInt32 - 1, 0}), 0, 1, 1, nil, 0, false},
		{"older epoch is fenced", entryWith(2, [2]int32{0, 4}), 1, 5, 9, ErrInvalidProducerEpoch, 0, false},
		{"older epoch duplicate is fenced too", entryWith(2, [2]int32{0, 4}), 1, 0, 4, ErrInvalidProducerEpoch, 0, false},
		{"new epoch at 0", entryWith(0, [2]int32{0, 4}), 1, 0, 2, nil, 0, false},
		{"new epoch not at 0", entryWith(0, [2]int32{0, 4}), 1, 5, 9, ErrOutOfOrderSequence, 0, false},
		{"known epoch with no batches accepts any sequence", &producerEntry{epoch: 0}, 0, 42, 43, nil, 0, false},
		{"unknown producer at sequence 0 on a never-written partition", nil, 0, 0, 4, nil, 0, true},
		{"unknown producer at a later sequence on a never-written partition", nil, 0, 5, 9, ErrOutOfOrderSequence, 0, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dup, err := checkSequence(tt.e, tt.epoch, tt.first, tt.last, tt.neverWritten)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("got error %v, want %v", err, tt.wantErr)
			}
			switch {
			case tt.wantDupAtOffset == 0 && dup != nil:
				t.Fatalf("got a duplicate of the batch at %d, want none", dup.firstOffset)
			case tt.wantDupAtOffset != 0 && dup == nil:
				t.Fatalf("got no duplicate, want the batch at %d", tt.wantDupAtOffset)
			case dup != nil && dup.firstOffset != tt.wantDupAtOffset:
				t.Fatalf("got the batch at %d as the original, want %d", dup.firstOffset, tt.wantDupAtOffset)
			}
		})
	}
}

func TestCheckSequenceDoesNotAllocate(t *testing.T) {
	e := entryWith(0, [2]int32{0, 4}, [2]int32{5, 9})
	if n := testing.AllocsPerRun(100, func() {
		if _, err := checkSequence(e, 0, 10, 14, false); err != nil {
			t.Fatal(err)
		}
		if dup, _ := checkSequence(e, 0, 5, 9, false); dup == nil {
			t.Fatal("no duplicate")
		}
	}); n != 0 {
		t.Errorf("checkSequence: got %v allocations per run, want 0", n)
	}
}

func TestIdempotentAppend(t *testing.T) {
	ctx := context.Background()
	tl := openTestLog(t, Options{})
	tl.create("t", 1, nil)
	p := tl.part("t", 0)
	mustAppend := func(b []byte) AppendResult {
		t.Helper()
		res, err := p.Append(ctx, b)
		if err != nil {
			t.Fatalf("append: %v", err)
		}
		return res
	}
	first := mustAppend(idemBatch(t, 7, 0, 0, 3))
	second := mustAppend(idemBatch(t, 7, 0, 3, 2))
	mustAppend(makeBatch(4, 10, 1, 0)) // a non-idempotent batch in between
	if got := mustAppend(idemBatch(t, 7, 0, 0, 3)); got != first {
		t.Errorf("retried first batch: got %+v, want the original %+v", got, first)
	}
	if got := mustAppend(idemBatch(t, 7, 0, 3, 2)); got != second {
		t.Errorf("retried second batch: got %+v, want the original %+v", got, second)
	}
	if hw := p.HighWatermark(); hw != 9 {
		t.Errorf("high watermark: got %d, want 9 (duplicates stored again?)", hw)
	}
	for _, tt := range []struct {
		name string
		b    []byte
		want error
	}{
		{"gap", idemBatch(t, 7, 0, 6, 1), ErrOutOfOrderSequence},
		{"new epoch not at 0", idemBatch(t, 7, 1, 5, 1), ErrOutOfOrderSequence},
		{"negative sequence", withSequence(idemBatch(t, 8, 0, 0, 1), -5), ErrInvalidRecord},
	} {
		if _, err := p.Append(ctx, tt.b); !errors.Is(err, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, err, tt.want)
		}
	}
	mustAppend(idemBatch(t, 7, 1, 0, 1)) // bump
	if _, err := p.Append(ctx, idemBatch(t, 7, 0, 5, 1)); !errors.Is(err, ErrInvalidProducerEpoch) {
		t.Errorf("old epoch after bump: got %v, want ErrInvalidProducerEpoch", err)
	}
	if hw := p.HighWatermark(); hw != 10 {
		t.Errorf("high watermark: got %d, want 10 (refused batches stored?)", hw)
	}

	// A clean restart keeps the state.
	tl = tl.reopen()
	p = tl.part("t", 0)
	res, err := p.Append(ctx, idemBatch(t, 7, 1, 0, 1))
	if err != nil || res.BaseOffset != 9 {
		t.Errorf("retry after restart: got %+v, %v; want the original at offset 9", res, err)
	}
	if _, err := p.Append(ctx, idemBatch(t, 7, 1, 2, 1)); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Errorf("gap after restart: got %v, want ErrOutOfOrderSequence", err)
	}
}

func TestIdempotentLogAppendTimeDuplicate(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	tl := openTestLog(t, Options{Now: clock.Now})
	tl.create("t", 1, map[string]string{"message.timestamp.type": "LogAppendTime"})
	p := tl.part("t", 0)
	first, err := p.Append(context.Background(), idemBatch(t, 1, 0, 0, 1))
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Minute)
	again, err := p.Append(context.Background(), idemBatch(t, 1, 0, 0, 1))
	if err != nil || again != first {
		t.Errorf("duplicate: got %+v, %v; want %+v with the original time", again, err, first)
	}
}

// TestProducerStateAfterUncleanRestart replays the batches the snapshot
// does not cover, and drops what the snapshot saw but the log lost.
func TestProducerStateAfterUncleanRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cat := newMemCatalog()
	tl := openTestLog(t, Options{Dir: dir, Catalog: cat, CheckpointInterval: time.Hour})
	tl.create("t", 1, nil)
	p := tl.part("t", 0)
	for i := int32(0); i < 3; i++ {
		if _, err := p.Append(ctx, idemBatch(t, 3, 0, i*2, 2)); err != nil {
			t.Fatal(err)
		}
	}
	// A snapshot covering the three batches, then two more batches that
	// only the log holds.
	if err := tl.writeCheckpoint(false); err != nil {
		t.Fatal(err)
	}
	snapshot, err := os.ReadFile(filepath.Join(dir, producerSnapshotFile))
	if err != nil {
		t.Fatal(err)
	}
	for i := int32(3); i < 5; i++ {
		if _, err := p.Append(ctx, idemBatch(t, 3, 0, i*2, 2)); err != nil {
			t.Fatal(err)
		}
	}
	tl = tl.reopen()
	if err := tl.Close(); err != nil {
		t.Fatal(err)
	}
	// As if the process had died after the snapshot was written.
	if err := os.WriteFile(filepath.Join(dir, producerSnapshotFile), snapshot, 0o644); err != nil {
		t.Fatal(err)
	}
	tl = openTestLog(t, Options{Dir: dir, Catalog: cat})
	p = tl.part("t", 0)
	res, err := p.Append(ctx, idemBatch(t, 3, 0, 8, 2))
	if err != nil || res.BaseOffset != 8 {
		t.Errorf("retry of a replayed batch: got %+v, %v; want the original at 8", res, err)
	}
	if err := tl.Close(); err != nil {
		t.Fatal(err)
	}

	// A snapshot that saw batches the log no longer has (they were cut as
	// a torn tail): they must not be answered as duplicates.
	lost := map[partKey]partProducers{{"t", 0}: {next: 20, entries: map[int64]producerEntry{
		3: *entryWithOffsets(0, 3, [4]int64{8, 9, 8, 9}, [4]int64{10, 11, 10, 11}, [4]int64{12, 13, 15, 16}),
	}}}
	if err := os.WriteFile(filepath.Join(dir, producerSnapshotFile), encodeProducerSnapshot(lost), 0o644); err != nil {
		t.Fatal(err)
	}
	tl = openTestLog(t, Options{Dir: dir, Catalog: cat})
	p = tl.part("t", 0)
	if res, err := p.Append(ctx, idemBatch(t, 3, 0, 10, 2)); err != nil || res.BaseOffset != 10 {
		t.Errorf("batch the snapshot saw at 10 but the log lost: got %+v, %v; want it stored at 10", res, err)
	}
	if res, err := p.Append(ctx, idemBatch(t, 3, 0, 8, 2)); err != nil || res.BaseOffset != 8 {
		t.Errorf("batch the log kept: got %+v, %v; want the original at 8", res, err)
	}
}

// entryWithOffsets builds an entry from (firstSeq, lastSeq, firstOffset,
// lastOffset) quadruples, oldest first.
func entryWithOffsets(epoch int16, lastSeen int64, bs ...[4]int64) *producerEntry {
	e := &producerEntry{epoch: epoch, head: maxProducerBatches - 1}
	for _, b := range bs {
		e.add(epoch, producerBatch{firstSeq: int32(b[0]), lastSeq: int32(b[1]), firstOffset: b[2], lastOffset: b[3], appendTime: -1}, lastSeen)
	}
	return e
}

func TestProducerExpiration(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	tl := openTestLog(t, Options{Now: clock.Now, ProducerIDExpiration: time.Hour})
	tl.create("t", 1, nil)
	p := tl.part("t", 0)
	ctx := context.Background()
	for _, pid := range []int64{1, 2} {
		if _, err := p.Append(ctx, idemBatch(t, pid, 0, 0, 1)); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(40 * time.Minute)
	if _, err := p.Append(ctx, idemBatch(t, 2, 0, 1, 1)); err != nil {
		t.Fatal(err)
	}
	clock.Advance(30 * time.Minute)
	tl.EnforceRetention()
	// Producer 1 has been idle 70 minutes: forgotten, so its retry is new.
	if res, err := p.Append(ctx, idemBatch(t, 1, 0, 0, 1)); err != nil || res.BaseOffset != 3 {
		t.Errorf("expired producer's retry: got %+v, %v; want a new batch at 3", res, err)
	}
	// Producer 2 was seen 30 minutes ago: still known.
	if res, err := p.Append(ctx, idemBatch(t, 2, 0, 1, 1)); err != nil || res.BaseOffset != 2 {
		t.Errorf("live producer's retry: got %+v, %v; want the original at 2", res, err)
	}
}

func TestProducerSnapshotRoundTrip(t *testing.T) {
	in := map[partKey]partProducers{
		{"a", 0}: {next: 0},
		{"a", 1}: {next: 500, entries: map[int64]producerEntry{
			1: *entryWithOffsets(0, 99, [4]int64{0, 4, 10, 14}),
			9: *entryWithOffsets(3, 7, [4]int64{0, 0, 1, 1}, [4]int64{1, 1, 2, 2}, [4]int64{2, 2, 3, 3},
				[4]int64{3, 3, 4, 4}, [4]int64{4, 4, 5, 5}, [4]int64{5, 9, 6, 10}),
		}},
	}
	b := encodeProducerSnapshot(in)
	out, err := decodeProducerSnapshot(b)
	if err != nil {
		t.Fatal(err)
	}
	if again := encodeProducerSnapshot(out); string(again) != string(b) {
		t.Fatalf("decode then encode changed the snapshot: got %x, want %x", again, b)
	}
	e := out[partKey{"a", 1}].entries[9]
	if e.n != maxProducerBatches || e.last().lastSeq != 9 || e.batch(0).firstOffset != 2 {
		t.Errorf("entry 9: got %d batches, last sequence %d, oldest at %d; want 5, 9, 2", e.n, e.last().lastSeq, e.batch(0).firstOffset)
	}
	for _, tt := range []struct {
		name string
		mod  func([]byte) []byte
	}{
		{"empty", func([]byte) []byte { return nil }},
		{"truncated", func(b []byte) []byte { return b[:len(b)-7] }},
		{"bit flip", func(b []byte) []byte { b[20] ^= 1; return b }},
	} {
		if _, err := decodeProducerSnapshot(tt.mod(append([]byte(nil), b...))); !errors.Is(err, errBadProducerSnapshot) {
			t.Errorf("%s: got %v, want errBadProducerSnapshot", tt.name, err)
		}
	}
}

// TestCorruptProducerSnapshot opens a log whose snapshot is damaged: the
// state is rebuilt from the active segment.
func TestCorruptProducerSnapshot(t *testing.T) {
	dir := t.TempDir()
	cat := newMemCatalog()
	tl := openTestLog(t, Options{Dir: dir, Catalog: cat})
	tl.create("t", 1, nil)
	if _, err := tl.part("t", 0).Append(context.Background(), idemBatch(t, 4, 0, 0, 2)); err != nil {
		t.Fatal(err)
	}
	if err := tl.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, producerSnapshotFile), []byte("SLPS garbage that is long enough"), 0o644); err != nil {
		t.Fatal(err)
	}
	tl = openTestLog(t, Options{Dir: dir, Catalog: cat})
	if res, err := tl.part("t", 0).Append(context.Background(), idemBatch(t, 4, 0, 0, 2)); err != nil || res.BaseOffset != 0 {
		t.Errorf("retry after a damaged snapshot: got %+v, %v; want the original at 0", res, err)
	}
}

// FuzzProducerSnapshot feeds arbitrary bytes to the snapshot decoder, which
// reads untrusted bytes from disk: it must return an error wrapping
// errBadProducerSnapshot or a snapshot whose encoding decodes to the same
// snapshot, and never panic.
func FuzzProducerSnapshot(f *testing.F) {
	f.Add(encodeProducerSnapshot(map[partKey]partProducers{}))
	f.Add(encodeProducerSnapshot(map[partKey]partProducers{
		{"t", 0}: {next: 30, entries: map[int64]producerEntry{
			5: *entryWithOffsets(1, 1, [4]int64{0, 4, 0, 4}, [4]int64{5, 9, 10, 14}),
		}},
		{"u", 3}: {next: 7},
	}))
	f.Add([]byte("SLPS\x00\x01\x00\x00\xff\xff\xff\xff\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		parts, err := decodeProducerSnapshot(b)
		if err != nil {
			if !errors.Is(err, errBadProducerSnapshot) {
				t.Fatalf("error %v does not wrap errBadProducerSnapshot", err)
			}
			return
		}
		enc := encodeProducerSnapshot(parts)
		again, err := decodeProducerSnapshot(enc)
		if err != nil {
			t.Fatalf("a decoded snapshot, encoded again, does not decode: %v", err)
		}
		if got := encodeProducerSnapshot(again); string(got) != string(enc) {
			t.Fatalf("decode(encode(snapshot)) encodes to %x, want %x", got, enc)
		}
	})
}

func TestDeleteRecords(t *testing.T) {
	ctx := context.Background()
	tl := openTestLog(t, Options{})
	tl.create("t", 1, map[string]string{"segment.bytes": "1024"})
	p := tl.part("t", 0)
	for i := 0; i < 20; i++ {
		if _, err := p.Append(ctx, makeBatch(5, 50, 1, i)); err != nil {
			t.Fatal(err)
		}
	}
	segsBefore := p.Info().Segments
	start, err := p.DeleteRecords(ctx, 42)
	if err != nil || start != 42 {
		t.Fatalf("delete records before 42: got %d, %v; want 42", start, err)
	}
	info := p.Info()
	if info.LogStartOffset != 42 || info.Segments >= segsBefore {
		t.Errorf("after delete: log start %d, %d segments; want 42 and fewer than %d", info.LogStartOffset, info.Segments, segsBefore)
	}
	if _, err := p.Read(ctx, 41, 1<<20, nil); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Errorf("read at 41: got %v, want ErrOffsetOutOfRange", err)
	}
	if bs := readAllBatches(t, p, 42); len(bs) == 0 {
		t.Error("read at 42: got nothing")
	}
	for _, tt := range []struct {
		before int64
		want   int64
		err    error
	}{
		{10, 42, nil}, // below the log start: nothing changes
		{101, 0, ErrOffsetOutOfRange},
		{-2, 0, ErrOffsetOutOfRange},
	} {
		got, err := p.DeleteRecords(ctx, tt.before)
		if !errors.Is(err, tt.err) || (tt.err == nil && (err != nil || got != tt.want)) {
			t.Errorf("delete records before %d: got %d, %v; want %d, %v", tt.before, got, err, tt.want, tt.err)
		}
	}
	// The new log start survives a crash: reopen from what is on disk,
	// without a clean close.
	tl.crash()
	tl2 := tl.reopenAfterCrash()
	if got := tl2.part("t", 0).Info().LogStartOffset; got != 42 {
		t.Errorf("log start after an unclean reopen: got %d, want 42", got)
	}
	// -1 is the high watermark, and may take the active segment.
	p = tl2.part("t", 0)
	if got, err := p.DeleteRecords(ctx, -1); err != nil || got != 100 {
		t.Fatalf("delete records before -1: got %d, %v; want 100", got, err)
	}
	if info := p.Info(); info.Segments != 1 || info.SizeBytes != 0 {
		t.Errorf("after deleting everything: %d segments of %d bytes; want 1 empty one", info.Segments, info.SizeBytes)
	}
	if res, err := p.Append(ctx, makeBatch(1, 1, 1, 0)); err != nil || res.BaseOffset != 100 {
		t.Errorf("append after deleting everything: got %+v, %v; want offset 100", res, err)
	}
}

package logstore

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/sluice-dev/sluice/internal/record"
)

// FuzzRecoverSegment writes arbitrary bytes as a partition's only segment
// and opens the log: recovery must succeed (truncating or quarantining what
// is damaged), serve only batches that pass their CRC, in offset order, and
// accept appends at the high watermark afterwards. With clean set, a
// checkpoint from a clean close vouches for the whole file, which must not
// make recovery trust bytes it cannot verify when index files are missing.
func FuzzRecoverSegment(f *testing.F) {
	f.Add(validSegment(3), false)
	f.Add(validSegment(3), true)
	f.Add([]byte{}, false)
	f.Fuzz(runFuzzRecover)
}

func runFuzzRecover(t *testing.T, data []byte, clean bool) {
	{
		dir := t.TempDir()
		cat := newMemCatalog()
		tl := openTestLog(t, Options{Dir: dir, Catalog: cat})
		tl.create("f", 1, map[string]string{"index.interval.bytes": "100"})
		if err := tl.Close(); err != nil {
			t.Fatal(err)
		}
		pdir := filepath.Join(dir, topicsDir, "f", "0")
		if err := os.WriteFile(filepath.Join(pdir, segmentName(0)+logSuffix), data, 0o644); err != nil {
			t.Fatal(err)
		}
		os.Remove(filepath.Join(pdir, segmentName(0)+indexSuffix))
		os.Remove(filepath.Join(pdir, segmentName(0)+timeIndexSuffix))
		cp := checkpoint{clean: clean, entries: map[partKey]checkpointEntry{}}
		if clean {
			cp.entries[partKey{"f", 0}] = checkpointEntry{pos: int64(len(data)), next: lastNext(data)}
		}
		if err := writeFileAtomic(OSFS{}, dir, checkpointFile, encodeCheckpoint(cp)); err != nil {
			t.Fatal(err)
		}

		l, err := Open(context.Background(), Options{Dir: dir, Catalog: cat, Logger: quietLogger()})
		if err != nil {
			t.Fatalf("open after damage: %v", err)
		}
		defer l.Close()
		p, _ := l.Partition("f", 0)
		next := p.Info().LogStartOffset
		for _, b := range readAllBatches(t, p, next) {
			h, _ := record.ParseHeader(b)
			if h.BaseOffset < next {
				t.Fatalf("batch at %d after offset %d", h.BaseOffset, next)
			}
			next = h.NextOffset()
		}
		hw := p.HighWatermark()
		res, err := p.Append(context.Background(), makeBatch(1, 1, 1, 0))
		if err != nil || res.BaseOffset != hw {
			t.Fatalf("append after recovery: got %d, %v; want %d", res.BaseOffset, err, hw)
		}
	}
}

// validSegment returns n batches laid out as the log writes them.
func validSegment(n int) []byte {
	var seg []byte
	off := int64(0)
	for i := 0; i < n; i++ {
		b := makeBatch(1+i, 10, int64(i), i)
		record.SetBaseOffset(b, off)
		off += int64(1 + i)
		seg = append(seg, b...)
	}
	return seg
}

// lastNext guesses the next offset of a segment for a checkpoint, walking
// whatever headers parse.
func lastNext(data []byte) int64 {
	next := int64(0)
	for len(data) >= record.HeaderSize {
		h, err := record.ParseHeader(data)
		if err != nil || h.Size() > len(data) {
			break
		}
		next = h.NextOffset()
		data = data[h.Size():]
	}
	return next
}

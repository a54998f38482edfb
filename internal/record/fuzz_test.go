package record

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/snappy/xerial"
	"github.com/klauspost/compress/zstd"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fuzzLimit keeps a fuzzed batch from decompressing to much.
const fuzzLimit = 1 << 20

// FuzzDecodeBatch checks that no input makes decoding panic or fail with an
// error outside ErrMalformed, ErrChecksum and ErrTooLarge; that DecodeBatch
// and AppendRecords agree; and that whatever decodes re-encodes to a batch
// that decodes to the same records. Each input is tried as it is and again
// with its batchLength and CRC fixed, so that mutations get past Check into
// decompression and record parsing.
func FuzzDecodeBatch(f *testing.F) {
	var c Codecs
	f.Fuzz(func(t *testing.T, b []byte) {
		fuzzDecode(t, &c, b)
		if len(b) >= HeaderSize {
			fuzzDecode(t, &c, reseal(append([]byte{}, b...)))
		}
	})
}

func fuzzDecode(t *testing.T, c *Codecs, b []byte) {
	limits := DecodeLimits{MaxBytes: fuzzLimit}
	got, h, err := decodeAll(c, b, limits)
	owned, h2, err2 := c.AppendRecords(nil, b, limits)
	// The codecs' own messages may differ between the two (they depend on
	// the output buffer's capacity), but not the kind of error.
	if (err == nil) != (err2 == nil) || errKind(err) != errKind(err2) || h != h2 {
		t.Fatalf("DecodeBatch and AppendRecords disagree: %v and %v", err, err2)
	}
	if err != nil {
		if errKind(err) == nil {
			t.Fatalf("got error %v, want one wrapping ErrMalformed, ErrChecksum or ErrTooLarge", err)
		}
		return
	}
	checkRecords(t, owned, got)
	if len(got) != int(h.RecordCount) {
		t.Fatalf("got %d records, header says %d", len(got), h.RecordCount)
	}
	if len(got) == 0 {
		return
	}
	for i, r := range got {
		if r.Offset != h.BaseOffset+int64(i) || r.Control != h.Control() {
			t.Fatalf("record %d: got offset %d control %v, want %d %v", i, r.Offset, r.Control, h.BaseOffset+int64(i), h.Control())
		}
		if h.LogAppendTime() && r.Timestamp != h.MaxTimestamp {
			t.Fatalf("record %d of a LogAppendTime batch: got timestamp %d, want %d", i, r.Timestamp, h.MaxTimestamp)
		}
	}

	again, err := c.AppendBatch(nil, got, BatchOptions{Compression: h.Compression()})
	if err != nil {
		t.Fatalf("re-encode: %v", err)
	}
	SetBaseOffset(again, h.BaseOffset)
	redecoded, _, err := decodeAll(c, again, DecodeLimits{MaxBytes: 4 * fuzzLimit})
	if err != nil {
		t.Fatalf("decode the re-encoded batch: %v", err)
	}
	want := make([]Record, len(got))
	for i, r := range got {
		r.Control = false
		want[i] = r
	}
	checkRecords(t, redecoded, want)
}

// errKind is the sentinel err wraps, or nil.
func errKind(err error) error {
	for _, kind := range []error{ErrMalformed, ErrChecksum, ErrTooLarge} {
		if errors.Is(err, kind) {
			return kind
		}
	}
	return nil
}

// FuzzParseHeader checks that ParseHeader never panics and that a header it
// accepts has the properties the log relies on.
func FuzzParseHeader(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHeader(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("got error %v, want one wrapping ErrMalformed", err)
			}
			return
		}
		switch {
		case h.Magic != 2:
			t.Fatalf("accepted magic %d", h.Magic)
		case h.Size() < HeaderSize:
			t.Fatalf("accepted size %d", h.Size())
		case h.BaseOffset < 0 || h.LastOffsetDelta < 0 || h.NextOffset() <= h.BaseOffset:
			t.Fatalf("accepted base offset %d, last offset delta %d", h.BaseOffset, h.LastOffsetDelta)
		case h.RecordCount < 0 || int64(h.RecordCount) > int64(h.LastOffsetDelta)+1:
			t.Fatalf("accepted record count %d with last offset delta %d", h.RecordCount, h.LastOffsetDelta)
		case h.Compression() > CompressionZstd:
			t.Fatalf("accepted codec %d", h.Compression())
		}
	})
}

// FuzzCheck checks that Check never panics, that what it accepts has a
// matching size and CRC, and that the log's in-place rewrites keep an
// accepted batch accepted.
func FuzzCheck(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := Check(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrChecksum) {
				t.Fatalf("got error %v, want one wrapping ErrMalformed or ErrChecksum", err)
			}
			if _, err := CheckProduced(b, 0); err == nil {
				t.Fatalf("CheckProduced accepted what Check refused")
			}
			return
		}
		if h.Size() != len(b) || h.CRC != Checksum(b) {
			t.Fatalf("accepted size %d of %d bytes, crc %#x (computed %#x)", h.Size(), len(b), h.CRC, Checksum(b))
		}
		if _, err := CheckProduced(b, 0); err != nil && (!errors.Is(err, ErrMalformed) || h.RecordCount >= 1 && int64(h.RecordCount) == int64(h.LastOffsetDelta)+1) {
			t.Fatalf("CheckProduced: got %v for record count %d, last offset delta %d", err, h.RecordCount, h.LastOffsetDelta)
		}
		b = append([]byte{}, b...)
		SetBaseOffset(b, 1<<40)
		SetPartitionLeaderEpoch(b, 7)
		if h2, err := Check(b); err != nil || h2.BaseOffset != 1<<40 || h2.PartitionLeaderEpoch != 7 {
			t.Fatalf("after SetBaseOffset: got base offset %d, epoch %d, %v; want %d, 7, nil", h2.BaseOffset, h2.PartitionLeaderEpoch, err, int64(1<<40))
		}
		SetMaxTimestampLogAppend(b, 99)
		if h2, err := Check(b); err != nil || !h2.LogAppendTime() || h2.MaxTimestamp != 99 {
			t.Fatalf("after SetMaxTimestampLogAppend: got LogAppendTime %v, max %d, %v; want true, 99, nil", h2.LogAppendTime(), h2.MaxTimestamp, err)
		}
	})
}

var updateCorpus = flag.Bool("update-corpus", false, "rewrite the fuzz seed corpus under testdata/fuzz")

// TestWriteFuzzCorpus regenerates the committed seed corpus when run with
// -update-corpus; otherwise it only checks that the seeds still build.
func TestWriteFuzzCorpus(t *testing.T) {
	seeds := fuzzSeeds(t)
	if !*updateCorpus {
		return
	}
	for fuzzer, inputs := range map[string]map[string][]byte{
		"FuzzDecodeBatch": seeds,
		"FuzzCheck":       seeds,
		"FuzzParseHeader": headerSeeds(seeds),
	} {
		dir := filepath.Join("testdata", "fuzz", fuzzer)
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, b := range inputs {
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
			if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// headerSeeds cuts each seed to its header, and adds headers broken field
// by field.
func headerSeeds(seeds map[string][]byte) map[string][]byte {
	out := map[string][]byte{}
	for name, b := range seeds {
		if len(b) >= HeaderSize {
			out[name] = b[:HeaderSize]
		}
	}
	good := seeds["valid-none"][:HeaderSize]
	for _, f := range []struct {
		name string
		off  int
		val  byte
	}{
		{"magic-1", offMagic, 1},
		{"short-batch-length", offBatchLength + 3, 10},
		{"negative-lod", offLastOffsetDelta, 0x80},
		{"negative-base-offset", offBaseOffset, 0x80},
		{"codec-6", offAttributes + 1, 6},
		{"negative-count", offRecordCount, 0xff},
		{"count-over-lod", offRecordCount + 3, 0x7f},
	} {
		b := append([]byte{}, good...)
		b[f.off] = f.val
		out["bad-"+f.name] = b
	}
	out["short"] = good[:HeaderSize-1]
	return out
}

// fuzzSeeds returns valid batches of every codec and framing, and corrupt
// variants of them, small enough to keep the committed corpus small.
func fuzzSeeds(t *testing.T) map[string][]byte {
	var c Codecs
	recs := []Record{
		{Key: []byte("k"), Value: []byte(`{"n":1,"text":"hello hello hello hello"}`), Timestamp: 1_700_000_000_000},
		{Key: nil, Value: []byte{}, Timestamp: 1_699_999_999_000},
		{Key: []byte{}, Value: nil, Headers: []RecordHeader{{Key: "h", Value: []byte("v")}, {Key: "", Value: nil}}, Timestamp: 1_700_000_000_500},
		{Key: []byte("k2"), Value: []byte(`{"n":2,"text":"hello hello hello hello"}`), Timestamp: 1_700_000_001_000},
	}
	seeds := map[string][]byte{}
	for _, codec := range allCodecs {
		seeds["valid-"+codec.String()] = mustAppend(t, &c, recs, BatchOptions{Compression: codec})
	}
	raw, err := appendRecords(nil, recs, recs[0].Timestamp)
	if err != nil {
		t.Fatal(err)
	}
	xer := append([]byte{}, seeds["valid-none"][:HeaderSize]...)
	xer[offAttributes+1] |= byte(CompressionSnappy)
	seeds["valid-snappy-xerial"] = reseal(append(xer, xerial.Encode(nil, raw)...))

	txn := mustAppend(t, &c, recs[:1], BatchOptions{Compression: CompressionZstd, Producer: &Producer{ID: 3, Epoch: 1, BaseSequence: 5, Transactional: true}})
	seeds["valid-transactional"] = txn
	ctl := mustAppend(t, &c, []Record{{Key: []byte{0, 0, 0, 1}, Value: []byte{0, 0, 0, 0, 0, 1}}}, BatchOptions{Producer: &Producer{ID: 3, Epoch: 1, Transactional: true}})
	ctl[offAttributes+1] |= 0x20
	seeds["valid-control"] = reseal(ctl)
	lat := mustAppend(t, &c, recs, BatchOptions{Compression: CompressionLZ4})
	SetMaxTimestampLogAppend(lat, 1_800_000_000_000)
	seeds["valid-log-append-time"] = lat
	seeds["valid-compacted-empty"] = rawBatch(CompressionNone, 0, nil)

	good := seeds["valid-gzip"]
	seeds["bad-truncated"] = good[:len(good)-3]
	bad := append([]byte{}, good...)
	bad[len(bad)-2] ^= 0xff
	seeds["bad-crc"] = bad
	seeds["bad-count"] = rawBatch(CompressionNone, 5, raw)
	seeds["bad-offset-gap"] = rawBatch(CompressionNone, 2, kmsgSection(
		kmsg.Record{OffsetDelta: 0, Value: []byte("a")}, kmsg.Record{OffsetDelta: 2, Value: []byte("b")}))
	unknown := append([]byte{}, seeds["valid-none"]...)
	unknown[offAttributes+1] |= 5
	seeds["bad-unknown-codec"] = reseal(unknown)
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	seeds["bad-zstd-bomb"] = rawBatch(CompressionZstd, 1, enc.EncodeAll(make([]byte, 2*fuzzLimit), nil))
	seeds["bad-snappy-bomb"] = rawBatch(CompressionSnappy, 1, []byte{0x80, 0x80, 0x80, 0x80, 0x04})
	seeds["bad-garbage-lz4"] = rawBatch(CompressionLZ4, 1, []byte("\x04\x22\x4d\x18\x64\x40\xa7garbage"))
	return seeds
}

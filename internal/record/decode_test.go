package record

import (
	"bytes"
	"encoding/binary"
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/snappy/xerial"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestDecodeBadInput(t *testing.T) {
	var c Codecs
	good := mustAppend(t, &c, sampleRecords(), BatchOptions{})
	edit := func(f func(b []byte) []byte) []byte { return f(append([]byte{}, good...)) }
	rec := func(delta int32, key, value string) kmsg.Record {
		return kmsg.Record{OffsetDelta: delta, Key: []byte(key), Value: []byte(value)}
	}
	section := kmsgSection(rec(0, "a", "1"), rec(1, "b", "2"))

	tests := []struct {
		name    string
		batch   []byte
		want    error
		wantMsg string
	}{
		{"empty", nil, ErrMalformed, "a header needs 61"},
		{"header only", good[:HeaderSize], ErrMalformed, "batchLength says"},
		{"truncated", good[:len(good)-1], ErrMalformed, "batchLength says"},
		{"trailing byte", append(append([]byte{}, good...), 0), ErrMalformed, "batchLength says"},
		{"wrong crc", edit(func(b []byte) []byte { b[len(b)-1] ^= 0x40; return b }), ErrChecksum, "stored"},
		{"wrong magic", edit(func(b []byte) []byte { b[offMagic] = 1; return b }), ErrMalformed, "magic 1"},
		{"unknown codec", edit(func(b []byte) []byte { b[offAttributes+1] |= 5; return reseal(b) }), ErrMalformed, "unknown compression codec 5"},
		{"codec 7", edit(func(b []byte) []byte { b[offAttributes+1] |= 7; return reseal(b) }), ErrMalformed, "unknown compression codec 7"},
		{"count too high", rawBatch(CompressionNone, 3, section), ErrMalformed, "header says 3 records, found 2"},
		{"count too low", rawBatch(CompressionNone, 1, section), ErrMalformed, "bytes follow the last of 1 records"},
		{"count vs lastOffsetDelta", edit(func(b []byte) []byte { binary.BigEndian.PutUint32(b[offLastOffsetDelta:], 20); return reseal(b) }), ErrMalformed, "does not match lastOffsetDelta"},
		{"negative count", edit(func(b []byte) []byte { binary.BigEndian.PutUint32(b[offRecordCount:], 0xffffffff); return reseal(b) }), ErrMalformed, "negative record count"},
		{"offset delta gap", rawBatch(CompressionNone, 2, kmsgSection(rec(0, "a", "1"), rec(2, "b", "2"))), ErrMalformed, "record 1 has offset delta 2, want 1"},
		{"offset deltas reversed", rawBatch(CompressionNone, 2, kmsgSection(rec(1, "a", "1"), rec(0, "b", "2"))), ErrMalformed, "record 0 has offset delta 1, want 0"},
		{"record length past the end", rawBatch(CompressionNone, 1, []byte{0x7e, 0, 0, 0, 1, 1, 0}), ErrMalformed, "record 0: bad length"},
		{"negative record length", rawBatch(CompressionNone, 1, []byte{0x01, 0, 0, 0, 1, 1, 0}), ErrMalformed, "record 0: bad length"},
		{"record body truncated", rawBatch(CompressionNone, 1, []byte{0x04, 0, 0, 0, 0x10}), ErrMalformed, "record 0: truncated"},
		{"record body too long", rawBatch(CompressionNone, 1, []byte{0x10, 0, 0, 0, 1, 1, 0, 9, 9, 9, 9, 9, 9, 9, 9, 9}), ErrMalformed, "left over inside its length"},
		{"negative header count", rawBatch(CompressionNone, 1, []byte{0x0e, 0, 0, 0, 1, 1, 1, 0, 0}), ErrMalformed, "header count -1"},
		{"huge header count", rawBatch(CompressionNone, 1, []byte{0x14, 0, 0, 0, 1, 1, 0xfe, 0xff, 0xff, 0xff, 0x0f}), ErrMalformed, "header count"},
		{"null header key", rawBatch(CompressionNone, 1, []byte{0x10, 0, 0, 0, 1, 1, 2, 1, 1}), ErrMalformed, "null key"},
		{"header truncated", rawBatch(CompressionNone, 1, []byte{0x10, 0, 0, 0, 1, 1, 2, 0x10, 0}), ErrMalformed, "header 0 truncated"},
		{"gzip garbage", rawBatch(CompressionGzip, 2, []byte("not gzip at all")), ErrMalformed, "gzip records"},
		{"gzip truncated", rawBatch(CompressionGzip, 2, compressWith(t, CompressionGzip, section)[:20]), ErrMalformed, "gzip records"},
		{"snappy garbage", rawBatch(CompressionSnappy, 2, []byte{0x05, 0xff, 0xff}), ErrMalformed, "snappy records"},
		{"snappy s2 extension", rawBatch(CompressionSnappy, 2, s2.Encode(nil, bytes.Repeat([]byte("abcdefgh12345678"), 200))), ErrMalformed, "snappy records"},
		{"xerial short header", rawBatch(CompressionSnappy, 2, xerialMagic[:]), ErrMalformed, "xerial header"},
		{"xerial block past end", rawBatch(CompressionSnappy, 2, append(xerial.Encode(nil, section), 0, 0, 1, 0)), ErrMalformed, "xerial block of 256 bytes"},
		{"xerial trailing bytes", rawBatch(CompressionSnappy, 2, append(xerial.Encode(nil, section), 0, 0)), ErrMalformed, "after the last xerial block"},
		{"lz4 garbage", rawBatch(CompressionLZ4, 2, []byte("\x04\x22\x4d\x18garbage")), ErrMalformed, "lz4 records"},
		{"lz4 truncated", rawBatch(CompressionLZ4, 2, compressWith(t, CompressionLZ4, section)[:12]), ErrMalformed, "lz4 records"},
		{"zstd garbage", rawBatch(CompressionZstd, 2, []byte("\x28\xb5\x2f\xfdgarbage")), ErrMalformed, "zstd records"},
		{"zstd truncated", rawBatch(CompressionZstd, 2, compressWith(t, CompressionZstd, section)[:10]), ErrMalformed, "zstd records"},
		{"compressed count mismatch", rawBatch(CompressionZstd, 1, compressWith(t, CompressionZstd, section)), ErrMalformed, "bytes follow the last of 1 records"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := decodeAll(&c, tt.batch, DecodeLimits{})
			wantErrIs(t, err, tt.want)
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("got error %q, want it to mention %q", err, tt.wantMsg)
			}
			recs, _, err2 := c.AppendRecords(nil, tt.batch, DecodeLimits{})
			if err2 == nil || err2.Error() != err.Error() || len(recs) != 0 {
				t.Errorf("AppendRecords: got %d records, error %v; want none, %v", len(recs), err2, err)
			}
		})
	}
}

// compressWith compresses src the way a codec's standard stream writer
// would, independently of Codecs.
func compressWith(t testing.TB, codec Compression, src []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	switch codec {
	case CompressionGzip:
		w := gzip.NewWriter(&buf)
		w.Write(src)
		w.Close()
	case CompressionLZ4:
		w := lz4.NewWriter(&buf)
		w.Write(src)
		w.Close()
	case CompressionZstd:
		// A streamed frame does not declare its content size.
		w, err := zstd.NewWriter(&buf, zstd.WithEncoderConcurrency(1))
		if err != nil {
			t.Fatal(err)
		}
		w.Write(src)
		w.Close()
	case CompressionSnappy:
		return s2.EncodeSnappy(nil, src)
	default:
		t.Fatalf("compressWith %s", codec)
	}
	return buf.Bytes()
}

// TestDecompressionBomb feeds batches whose records decompress to far more
// than the limit and checks that decoding fails with ErrTooLarge naming the
// limit, having allocated a small part of what the data expands to.
func TestDecompressionBomb(t *testing.T) {
	const limit = 1 << 20
	zeros := make([]byte, 64<<20)
	const maxAlloc = 16 << 20

	// A snappy block that merely claims 1 GiB, with nothing behind it.
	lyingSnappy := kbin.AppendUvarint(nil, 1<<30)
	lyingXerial := append(append(append([]byte{}, xerialMagic[:]...), 0, 0, 0, 1, 0, 0, 0, 1), 0, 0, 0, byte(len(lyingSnappy)))
	lyingXerial = append(lyingXerial, lyingSnappy...)
	var manyXerial []byte // many honest blocks that only add up past the limit
	for range 40 {
		manyXerial = xerial.Encode(manyXerial, zeros[:32<<10])
	}

	zstdFCS, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		codec   Compression
		section []byte
	}{
		{"gzip", CompressionGzip, compressWith(t, CompressionGzip, zeros)},
		{"lz4", CompressionLZ4, compressWith(t, CompressionLZ4, zeros)},
		{"zstd streamed", CompressionZstd, compressWith(t, CompressionZstd, zeros)},
		{"zstd with content size", CompressionZstd, zstdFCS.EncodeAll(zeros, nil)},
		{"snappy", CompressionSnappy, s2.EncodeSnappy(nil, zeros)},
		{"snappy lying length", CompressionSnappy, lyingSnappy},
		{"xerial lying length", CompressionSnappy, lyingXerial},
		{"xerial many blocks", CompressionSnappy, manyXerial},
		{"none", CompressionNone, zeros[:limit+1]},
	}
	var c Codecs
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := rawBatch(tt.codec, 1, tt.section)
			for _, decode := range []struct {
				name string
				fn   func() error
			}{
				{"DecodeBatch", func() error { _, err := c.DecodeBatch(b, DecodeLimits{MaxBytes: limit}, nil); return err }},
				{"AppendRecords", func() error { _, _, err := c.AppendRecords(nil, b, DecodeLimits{MaxBytes: limit}); return err }},
			} {
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				err := decode.fn()
				runtime.ReadMemStats(&after)
				wantErrIs(t, err, ErrTooLarge)
				if !strings.Contains(err.Error(), "1048576") {
					t.Errorf("%s: got error %q, want it to name the limit 1048576", decode.name, err)
				}
				// A quarter of what the bomb expands to. Not less: an lz4
				// frame may declare 4 MiB blocks, which a reader must
				// buffer whatever the limit.
				if alloc := after.TotalAlloc - before.TotalAlloc; alloc > maxAlloc {
					t.Errorf("%s: allocated %d bytes, want at most %d", decode.name, alloc, maxAlloc)
				}
			}
		})
	}

	// The same data passes with a limit that fits it.
	b := rawBatch(CompressionGzip, 1, compressWith(t, CompressionGzip, zeros[:limit]))
	if _, err := c.DecodeBatch(b, DecodeLimits{MaxBytes: limit}, nil); errors.Is(err, ErrTooLarge) {
		t.Errorf("exactly the limit: got %v, want no ErrTooLarge", err)
	}
}

// TestDecodeLimitDefault checks that a zero limit means the default, not
// "no limit" and not "nothing".
func TestDecodeLimitDefault(t *testing.T) {
	var c Codecs
	big := make([]byte, DefaultMaxDecompressedBytes+1)
	b := rawBatch(CompressionZstd, 1, compressWith(t, CompressionZstd, big))
	_, err := c.DecodeBatch(b, DecodeLimits{}, nil)
	wantErrIs(t, err, ErrTooLarge)
	small := mustAppend(t, &c, sampleRecords(), BatchOptions{Compression: CompressionZstd})
	if _, err := c.DecodeBatch(small, DecodeLimits{MaxBytes: -1}, nil); err != nil {
		t.Errorf("negative limit: got %v, want the default to apply", err)
	}
}

// TestSnappyFraming checks both snappy framings a Kafka client may send: a
// plain block (franz-go, librdkafka) and xerial framing (the Java client).
func TestSnappyFraming(t *testing.T) {
	var c Codecs
	recs := sampleRecords()
	raw, err := appendRecords(nil, recs, recs[0].Timestamp)
	if err != nil {
		t.Fatal(err)
	}
	header := mustAppend(t, &c, recs, BatchOptions{})[:HeaderSize]
	frame := func(section []byte) []byte {
		b := append(append([]byte{}, header...), section...)
		b[offAttributes+1] |= byte(CompressionSnappy)
		return reseal(b)
	}
	var blocks []byte // xerial with many small blocks, as a stream writer emits
	for rest := raw; len(rest) > 0; {
		n := min(len(rest), 1000)
		blocks = xerial.Encode(blocks, rest[:n])
		rest = rest[n:]
	}
	for _, tt := range []struct {
		name    string
		section []byte
	}{
		{"plain block", s2.EncodeSnappy(nil, raw)},
		{"xerial", xerial.Encode(nil, raw)},
		{"xerial small blocks", blocks},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, _, err := decodeAll(&c, frame(tt.section), DecodeLimits{})
			if err != nil {
				t.Fatalf("DecodeBatch: %v", err)
			}
			checkRecords(t, got, wantDecoded(recs, 0))
		})
	}

	// What AppendBatch sends is a plain block, as franz-go does.
	b := mustAppend(t, &c, recs, BatchOptions{Compression: CompressionSnappy})
	if bytes.HasPrefix(b[HeaderSize:], xerialMagic[:]) {
		t.Errorf("AppendBatch snappy: got xerial framing, want a plain block")
	}
}

// TestXerialGolden decodes the xerial framing of "foobar\n" exactly as the
// format's public description shows it, byte for byte.
func TestXerialGolden(t *testing.T) {
	in := []byte{
		0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01,
		0x00, 0x00, 0x00, 0x09, 0x07, 0x18, 0x66, 0x6f, 0x6f, 0x62, 0x61, 0x72, 0x0a,
	}
	got, err := decodeSnappy(nil, in, 100)
	if err != nil || string(got) != "foobar\n" {
		t.Fatalf("got %q, %v; want %q, nil", got, err, "foobar\n")
	}
	// A header and no blocks is an empty stream.
	got, err = decodeSnappy(nil, in[:16], 100)
	if err != nil || len(got) != 0 {
		t.Fatalf("empty xerial stream: got %q, %v; want empty, nil", got, err)
	}
}

// TestLZ4Frame checks the frame options Kafka's own producer uses: 64 KiB
// blocks.
func TestLZ4Frame(t *testing.T) {
	var c Codecs
	for range 2 { // the second time from a pooled writer
		b := mustAppend(t, &c, sampleRecords(), BatchOptions{Compression: CompressionLZ4})
		frame := b[HeaderSize:]
		if !bytes.HasPrefix(frame, []byte{0x04, 0x22, 0x4d, 0x18}) {
			t.Fatalf("got frame start %x, want the lz4 frame magic", frame[:4])
		}
		if bd := frame[5] >> 4 & 0x7; bd != 4 {
			t.Errorf("lz4 block size code: got %d, want 4 (64 KiB)", bd)
		}
	}
}

package record

import (
	"encoding/binary"
	"strings"
	"testing"
)

func TestParseHeader(t *testing.T) {
	var c Codecs
	good := mustAppend(t, &c, sampleRecords(), BatchOptions{Compression: CompressionGzip, Producer: &Producer{ID: 5, Epoch: 2, BaseSequence: 10}})
	h, err := ParseHeader(good)
	if err != nil {
		t.Fatalf("ParseHeader: %v", err)
	}
	n := int32(len(sampleRecords()))
	for _, f := range []struct {
		name      string
		got, want any
	}{
		{"base offset", h.BaseOffset, int64(0)},
		{"batch length", h.BatchLength, int32(len(good) - LengthPrefix)},
		{"size", h.Size(), len(good)},
		{"leader epoch", h.PartitionLeaderEpoch, int32(-1)},
		{"magic", h.Magic, int8(2)},
		{"crc", h.CRC, Checksum(good)},
		{"compression", h.Compression(), CompressionGzip},
		{"last offset delta", h.LastOffsetDelta, n - 1},
		{"last offset", h.LastOffset(), int64(n - 1)},
		{"next offset", h.NextOffset(), int64(n)},
		{"producer id", h.ProducerID, int64(5)},
		{"producer epoch", h.ProducerEpoch, int16(2)},
		{"base sequence", h.BaseSequence, int32(10)},
		{"record count", h.RecordCount, n},
	} {
		if f.got != f.want {
			t.Errorf("%s: got %v, want %v", f.name, f.got, f.want)
		}
	}
	// The header alone is enough.
	if _, err := ParseHeader(good[:HeaderSize]); err != nil {
		t.Errorf("ParseHeader of the header alone: got %v, want nil", err)
	}

	set := func(off int, v uint64, size int) []byte {
		b := append([]byte{}, good[:HeaderSize]...)
		switch size {
		case 1:
			b[off] = byte(v)
		case 2:
			binary.BigEndian.PutUint16(b[off:], uint16(v))
		case 4:
			binary.BigEndian.PutUint32(b[off:], uint32(v))
		case 8:
			binary.BigEndian.PutUint64(b[off:], v)
		}
		return b
	}
	tests := []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "0 bytes, a header needs 61"},
		{"short", good[:HeaderSize-1], "60 bytes, a header needs 61"},
		{"magic 1", set(offMagic, 1, 1), "magic 1"},
		{"magic 3", set(offMagic, 3, 1), "magic 3"},
		{"batch length under the header", set(offBatchLength, 48, 4), "batchLength 48 is shorter"},
		{"negative batch length", set(offBatchLength, 0xffffffff, 4), "batchLength -1 is shorter"},
		{"negative last offset delta", set(offLastOffsetDelta, 0xffffffff, 4), "negative lastOffsetDelta"},
		{"negative base offset", set(offBaseOffset, 1<<63, 8), "negative baseOffset"},
		{"codec 5", set(offAttributes, 5, 2), "unknown compression codec 5"},
		{"negative record count", set(offRecordCount, 0x80000000, 4), "negative record count"},
		{"more records than offsets", set(offRecordCount, uint64(n+1), 4), "exceeds lastOffsetDelta"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseHeader(tt.b)
			wantErrIs(t, err, ErrMalformed)
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got error %q, want it to mention %q", err, tt.want)
			}
		})
	}

	// Fewer records than offsets is what compaction leaves: allowed.
	if _, err := ParseHeader(set(offRecordCount, 1, 4)); err != nil {
		t.Errorf("compacted header: got %v, want nil", err)
	}
	if _, err := ParseHeader(set(offRecordCount, 0, 4)); err != nil {
		t.Errorf("empty batch header: got %v, want nil", err)
	}
}

func TestCheck(t *testing.T) {
	var c Codecs
	good := mustAppend(t, &c, sampleRecords(), BatchOptions{})
	clone := func() []byte { return append([]byte{}, good...) }
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"good", clone(), nil},
		{"extra byte", append(clone(), 0), ErrMalformed},
		{"missing byte", good[:len(good)-1], ErrMalformed},
		{"flipped record byte", func() []byte { b := clone(); b[HeaderSize+3] ^= 1; return b }(), ErrChecksum},
		{"flipped attributes", func() []byte { b := clone(); b[offAttributes+1] ^= 0x10; return b }(), ErrChecksum},
		{"flipped crc", func() []byte { b := clone(); b[offCRC] ^= 0x80; return b }(), ErrChecksum},
		// baseOffset and partitionLeaderEpoch lie outside the CRC.
		{"other base offset", func() []byte { b := clone(); b[offBaseOffset+7] = 9; return b }(), nil},
		{"other leader epoch", func() []byte { b := clone(); b[offLeaderEpoch+3] = 9; return b }(), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Check(tt.b)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("got %v, want nil", err)
				}
				return
			}
			wantErrIs(t, err, tt.want)
		})
	}
}

func TestCheckProduced(t *testing.T) {
	var c Codecs
	good := mustAppend(t, &c, sampleRecords(), BatchOptions{})
	edit := func(f func([]byte)) []byte { b := append([]byte{}, good...); f(b); return reseal(b) }
	tests := []struct {
		name     string
		b        []byte
		maxBytes int
		want     error
	}{
		{"good", good, 0, nil},
		{"at the limit", good, len(good), nil},
		{"over the limit", good, len(good) - 1, ErrTooLarge},
		{"bad crc", func() []byte { b := append([]byte{}, good...); b[len(b)-1] ^= 1; return b }(), 0, ErrChecksum},
		{"no records", edit(func(b []byte) { binary.BigEndian.PutUint32(b[offRecordCount:], 0) }), 0, ErrMalformed},
		{"count below lastOffsetDelta", edit(func(b []byte) { binary.BigEndian.PutUint32(b[offRecordCount:], 2) }), 0, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := CheckProduced(tt.b, tt.maxBytes)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("got %v, want nil", err)
				}
				return
			}
			wantErrIs(t, err, tt.want)
		})
	}
}

func TestSetBaseOffsetKeepsCRC(t *testing.T) {
	var c Codecs
	for _, codec := range allCodecs {
		b := mustAppend(t, &c, sampleRecords(), BatchOptions{Compression: codec})
		crc := Checksum(b)
		SetBaseOffset(b, 1<<40)
		SetPartitionLeaderEpoch(b, 12)
		h, err := Check(b)
		if err != nil {
			t.Fatalf("%s: Check after SetBaseOffset: %v", codec, err)
		}
		if h.BaseOffset != 1<<40 || h.PartitionLeaderEpoch != 12 || h.CRC != crc {
			t.Errorf("%s: got base offset %d, epoch %d, crc %#x; want %d, 12, %#x", codec, h.BaseOffset, h.PartitionLeaderEpoch, h.CRC, int64(1<<40), crc)
		}
		got, _, err := decodeAll(&c, b, DecodeLimits{})
		if err != nil {
			t.Fatalf("%s: DecodeBatch: %v", codec, err)
		}
		checkRecords(t, got, wantDecoded(sampleRecords(), 1<<40))
	}
}

func TestCompressionNames(t *testing.T) {
	for _, codec := range allCodecs {
		got, err := ParseCompression(codec.String())
		if err != nil || got != codec {
			t.Errorf("ParseCompression(%q): got %v, %v; want %v, nil", codec.String(), got, err, codec)
		}
	}
	if got, err := ParseCompression(""); err != nil || got != CompressionNone {
		t.Errorf(`ParseCompression(""): got %v, %v; want none, nil`, got, err)
	}
	if _, err := ParseCompression("brotli"); err == nil {
		t.Errorf(`ParseCompression("brotli"): got nil error, want one`)
	}
	if got := Compression(6).String(); got != "codec(6)" {
		t.Errorf("Compression(6).String(): got %q, want %q", got, "codec(6)")
	}
}

package record

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"unsafe"
)

func TestRoundTrip(t *testing.T) {
	one := []Record{{Key: []byte("only"), Value: []byte("one"), Timestamp: 42}}
	nulls := []Record{{Timestamp: -5}, {Key: []byte{}, Value: []byte{}, Headers: []RecordHeader{}, Timestamp: -7}}
	tests := []struct {
		name string
		recs []Record
		opts BatchOptions
	}{
		{"sample", sampleRecords(), BatchOptions{}},
		{"one record", one, BatchOptions{}},
		{"nulls and empties", nulls, BatchOptions{}},
		{"idempotent", sampleRecords(), BatchOptions{Producer: &Producer{ID: 7, Epoch: 3, BaseSequence: 100}}},
		{"transactional", one, BatchOptions{Producer: &Producer{ID: 9, Epoch: 0, BaseSequence: 0, Transactional: true}}},
	}
	var c Codecs
	for _, tt := range tests {
		for _, codec := range allCodecs {
			t.Run(tt.name+"/"+codec.String(), func(t *testing.T) {
				opts := tt.opts
				opts.Compression = codec
				prefix := []byte("existing")
				b, err := c.AppendBatch(prefix, tt.recs, opts)
				if err != nil {
					t.Fatalf("AppendBatch: %v", err)
				}
				if !bytes.Equal(b[:len(prefix)], []byte("existing")) {
					t.Fatalf("got prefix %q, want it kept", b[:len(prefix)])
				}
				b = b[len(prefix):]
				h, err := CheckProduced(b, 0)
				if err != nil {
					t.Fatalf("CheckProduced: %v", err)
				}
				wantProducer := Producer{ID: -1, Epoch: -1, BaseSequence: -1}
				if opts.Producer != nil {
					wantProducer = *opts.Producer
				}
				minTS, maxTS := tt.recs[0].Timestamp, tt.recs[0].Timestamp
				for _, r := range tt.recs {
					maxTS = max(maxTS, r.Timestamp)
					minTS = min(minTS, r.Timestamp)
				}
				for _, f := range []struct {
					name      string
					got, want any
				}{
					{"compression", h.Compression(), codec},
					{"base offset", h.BaseOffset, int64(0)},
					{"leader epoch", h.PartitionLeaderEpoch, int32(-1)},
					{"record count", h.RecordCount, int32(len(tt.recs))},
					{"last offset delta", h.LastOffsetDelta, int32(len(tt.recs) - 1)},
					{"base timestamp", h.BaseTimestamp, tt.recs[0].Timestamp},
					{"max timestamp", h.MaxTimestamp, maxTS},
					{"producer id", h.ProducerID, wantProducer.ID},
					{"producer epoch", h.ProducerEpoch, wantProducer.Epoch},
					{"base sequence", h.BaseSequence, wantProducer.BaseSequence},
					{"transactional", h.Transactional(), wantProducer.Transactional},
					{"control", h.Control(), false},
					{"log append time", h.LogAppendTime(), false},
				} {
					if f.got != f.want {
						t.Errorf("%s: got %v, want %v", f.name, f.got, f.want)
					}
				}

				SetBaseOffset(b, 1000)
				want := wantDecoded(tt.recs, 1000)
				got, h2, err := decodeAll(&c, b, DecodeLimits{})
				if err != nil {
					t.Fatalf("DecodeBatch: %v", err)
				}
				if h2.BaseOffset != 1000 {
					t.Errorf("DecodeBatch header base offset: got %d, want 1000", h2.BaseOffset)
				}
				checkRecords(t, got, want)

				owned, _, err := c.AppendRecords(nil, b, DecodeLimits{})
				if err != nil {
					t.Fatalf("AppendRecords: %v", err)
				}
				checkRecords(t, owned, want)
				// AppendRecords' records must not alias the batch.
				clear(b[HeaderSize:])
				checkRecords(t, owned, want)
			})
		}
	}
}

// TestAppendRecordsOwnsMemory checks that appending to one decoded key
// cannot overwrite the value next to it in the shared buffer.
func TestAppendRecordsOwnsMemory(t *testing.T) {
	var c Codecs
	for _, codec := range allCodecs {
		b := mustAppend(t, &c, []Record{{Key: []byte("ab"), Value: []byte("cd")}}, BatchOptions{Compression: codec})
		recs, _, err := c.AppendRecords(nil, b, DecodeLimits{})
		if err != nil {
			t.Fatalf("%s: AppendRecords: %v", codec, err)
		}
		_ = append(recs[0].Key, 'X', 'Y')
		if got := string(recs[0].Value); got != "cd" {
			t.Errorf("%s: value after appending to the key: got %q, want %q", codec, got, "cd")
		}
	}
}

func TestAppendRecordsInPlace(t *testing.T) {
	var c Codecs
	for _, codec := range allCodecs {
		b := mustAppend(t, &c, []Record{{Key: []byte("ab"), Value: []byte("cd")}, {Value: []byte("ef")}}, BatchOptions{Compression: codec})
		orig := slices.Clone(b)
		recs, _, err := c.AppendRecordsInPlace(nil, b, DecodeLimits{})
		if err != nil {
			t.Fatalf("%s: AppendRecordsInPlace: %v", codec, err)
		}
		checkRecords(t, recs, wantDecoded([]Record{{Key: []byte("ab"), Value: []byte("cd")}, {Value: []byte("ef")}}, 0))
		inB := func(v []byte) bool {
			p := uintptr(unsafe.Pointer(unsafe.SliceData(v)))
			lo := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
			return p >= lo && p < lo+uintptr(len(b))
		}
		if want := codec == CompressionNone; inB(recs[0].Value) != want {
			t.Errorf("%s: value in the batch's bytes: %v, want %v", codec, !want, want)
		}
		_ = append(recs[0].Key, 'X', 'Y')
		_ = append(recs[0].Value, 'X', 'Y')
		if !bytes.Equal(b, orig) {
			t.Errorf("%s: appending to a key or value changed the batch", codec)
		}
	}
}

func TestAppendRecordsAppends(t *testing.T) {
	var c Codecs
	b := mustAppend(t, &c, sampleRecords(), BatchOptions{Compression: CompressionZstd})
	first := Record{Key: []byte("before")}
	got, _, err := c.AppendRecords([]Record{first}, b, DecodeLimits{})
	if err != nil {
		t.Fatalf("AppendRecords: %v", err)
	}
	checkRecords(t, got, append([]Record{first}, wantDecoded(sampleRecords(), 0)...))

	// On error, dst comes back as it was.
	b[len(b)-1] ^= 1
	got, _, err = c.AppendRecords([]Record{first}, b, DecodeLimits{})
	wantErrIs(t, err, ErrChecksum)
	if len(got) != 1 {
		t.Errorf("records after a failed decode: got %d, want 1", len(got))
	}
}

func TestAppendBatchErrors(t *testing.T) {
	var c Codecs
	one := []Record{{Value: []byte("x")}}
	tests := []struct {
		name string
		recs []Record
		opts BatchOptions
		want string
	}{
		{"no records", nil, BatchOptions{}, "no records"},
		{"unknown codec", one, BatchOptions{Compression: 5}, "unknown compression"},
		{"negative codec", one, BatchOptions{Compression: -1}, "unknown compression"},
		{"negative producer id", one, BatchOptions{Producer: &Producer{ID: -1}}, "may be negative"},
		{"negative sequence", one, BatchOptions{Producer: &Producer{ID: 1, BaseSequence: -1}}, "may be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := []byte("keep")
			got, err := c.AppendBatch(dst, tt.recs, tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got error %v, want one containing %q", err, tt.want)
			}
			if string(got) != "keep" {
				t.Errorf("dst after error: got %q, want %q", got, "keep")
			}
		})
	}
	if _, err := c.AppendBatch(nil, nil, BatchOptions{}); !errors.Is(err, ErrNoRecords) {
		t.Errorf("got error %v, want ErrNoRecords", err)
	}
}

func TestDecodeBatchCallbackError(t *testing.T) {
	var c Codecs
	b := mustAppend(t, &c, sampleRecords(), BatchOptions{Compression: CompressionLZ4})
	stop := errors.New("stop")
	calls := 0
	_, err := c.DecodeBatch(b, DecodeLimits{}, func(Record) error {
		calls++
		if calls == 3 {
			return stop
		}
		return nil
	})
	if err != stop {
		t.Fatalf("got error %v, want the callback's own error unchanged", err)
	}
	if calls != 3 {
		t.Errorf("got %d calls, want 3", calls)
	}
	// A nil fn only validates.
	h, err := c.DecodeBatch(b, DecodeLimits{}, nil)
	if err != nil || h.RecordCount != int32(len(sampleRecords())) {
		t.Errorf("validate: got %d records, %v; want %d, nil", h.RecordCount, err, len(sampleRecords()))
	}
}

func TestLogAppendTime(t *testing.T) {
	var c Codecs
	for _, codec := range allCodecs {
		b := mustAppend(t, &c, sampleRecords(), BatchOptions{Compression: codec})
		SetMaxTimestampLogAppend(b, 1_800_000_000_000)
		h, err := Check(b)
		if err != nil {
			t.Fatalf("%s: Check after SetMaxTimestampLogAppend: %v", codec, err)
		}
		if !h.LogAppendTime() || h.MaxTimestamp != 1_800_000_000_000 {
			t.Errorf("%s: got LogAppendTime %v, max %d; want true, 1800000000000", codec, h.LogAppendTime(), h.MaxTimestamp)
		}
		got, _, err := decodeAll(&c, b, DecodeLimits{})
		if err != nil {
			t.Fatalf("%s: DecodeBatch: %v", codec, err)
		}
		for i, r := range got {
			if r.Timestamp != 1_800_000_000_000 {
				t.Errorf("%s: record %d timestamp: got %d, want 1800000000000", codec, i, r.Timestamp)
			}
		}
	}
}

func TestControlBatch(t *testing.T) {
	var c Codecs
	// A commit marker as the log writes it: key version 0, type 1; value
	// version 0 and coordinator epoch.
	key := []byte{0, 0, 0, 1}
	value := []byte{0, 0, 0, 0, 0, 5}
	b := mustAppend(t, &c, []Record{{Key: key, Value: value, Timestamp: 9}}, BatchOptions{
		Producer: &Producer{ID: 4, Epoch: 1, Transactional: true},
	})
	b[offAttributes+1] |= 0x20
	reseal(b)
	got, h, err := decodeAll(&c, b, DecodeLimits{})
	if err != nil {
		t.Fatalf("DecodeBatch: %v", err)
	}
	if !h.Control() {
		t.Errorf("header Control: got false, want true")
	}
	checkRecords(t, got, []Record{{Key: key, Value: value, Timestamp: 9, Control: true}})
	typ, err := ParseControlKey(got[0].Key)
	if err != nil || typ != ControlCommit {
		t.Errorf("ParseControlKey: got %d, %v; want %d, nil", typ, err, ControlCommit)
	}
	for _, bad := range [][]byte{nil, {0, 0, 1}, {0xff, 0xff, 0, 0}} {
		if _, err := ParseControlKey(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseControlKey(%x): got %v, want ErrMalformed", bad, err)
		}
	}
}

// TestConcurrentCodecs shares one Codecs between goroutines, as the server
// will; run with -race.
func TestConcurrentCodecs(t *testing.T) {
	var c Codecs
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 5; i++ {
				codec := allCodecs[(g+i)%len(allCodecs)]
				limit := DecodeLimits{MaxBytes: 1<<20 + g} // decoders see differing limits
				b, err := c.AppendBatch(nil, sampleRecords(), BatchOptions{Compression: codec})
				if err == nil {
					_, _, err = c.AppendRecords(nil, b, limit)
				}
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

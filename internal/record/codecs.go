package record

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Codecs encodes and decodes batches, keeping the compressors' and
// decompressors' state (zstd encoders and decoders, gzip and lz4 writers and
// readers, scratch buffers) for reuse across calls: building that state
// costs far more than compressing one batch. Keep one Codecs per process, or
// per component, rather than one per call.
//
// The zero value is ready to use. A Codecs is safe for concurrent use and
// must not be copied after first use. It starts no goroutines and holds
// nothing that needs closing; whatever it pools is released to the garbage
// collector like any sync.Pool content.
type Codecs struct {
	zstdOnce sync.Once
	zstdEnc  *zstd.Encoder // EncodeAll is safe for concurrent use
	zstdErr  error

	gzipEnc sync.Pool // *streamEncoder around a *gzip.Writer
	lz4Enc  sync.Pool // *streamEncoder around a *lz4.Writer
	gzipDec sync.Pool // *gzipDecoder
	lz4Dec  sync.Pool // *lz4Decoder
	zstdDec sync.Pool // *zstdDecoder
	bufs    sync.Pool // *[]byte scratch for uncompressed records
}

// maxPooledBuffer is the largest scratch buffer Codecs keeps for reuse. A
// rare huge batch should not pin its buffer for every later small one.
const maxPooledBuffer = 8 << 20

// zstdWindow bounds the window our zstd frames declare. Batches up to this
// size are written as single-segment frames whose window is the content
// size; larger ones do not make a consumer reserve more than this.
const zstdWindow = 1 << 20

// lz4BlockSize is the frame block size Kafka's own producer uses. A reader
// allocates a block of this size, so it is kinder to consumers than lz4's
// 4 MiB default.
const lz4BlockSize = lz4.Block64Kb

// getBuf returns a pooled scratch buffer; the pointer goes back with putBuf
// so that pooling it does not allocate.
func (c *Codecs) getBuf() *[]byte {
	if p, _ := c.bufs.Get().(*[]byte); p != nil {
		return p
	}
	return new([]byte)
}

// putBuf pools *p unless it grew too big to keep.
func (c *Codecs) putBuf(p *[]byte) {
	if cap(*p) > maxPooledBuffer {
		return
	}
	*p = (*p)[:0]
	c.bufs.Put(p)
}

// appendWriter is an io.Writer that appends to b, so stream codecs can write
// straight onto the caller's dst.
type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// streamWriter is what gzip.Writer and lz4.Writer have in common.
type streamWriter interface {
	io.WriteCloser
	Reset(io.Writer)
}

type streamEncoder struct {
	w   streamWriter
	out appendWriter
}

func (c *Codecs) zstdEncoder() (*zstd.Encoder, error) {
	c.zstdOnce.Do(func() {
		c.zstdEnc, c.zstdErr = zstd.NewWriter(nil,
			zstd.WithWindowSize(zstdWindow),
			zstd.WithZeroFrames(true),
		)
	})
	return c.zstdEnc, c.zstdErr
}

// compress appends src compressed with codec to dst.
func (c *Codecs) compress(dst, src []byte, codec Compression) ([]byte, error) {
	switch codec {
	case CompressionNone:
		return append(dst, src...), nil
	case CompressionSnappy:
		// A plain snappy block, as franz-go sends; every Kafka consumer
		// accepts it alongside the Java client's xerial framing.
		n := s2.MaxEncodedLen(len(src))
		if n < 0 {
			return dst, fmt.Errorf("%w: %d bytes of records are too many for one snappy block", ErrTooLarge, len(src))
		}
		dst = slices.Grow(dst, n)
		out := s2.EncodeSnappy(dst[len(dst):len(dst)+n], src)
		return dst[:len(dst)+len(out)], nil
	case CompressionZstd:
		enc, err := c.zstdEncoder()
		if err != nil {
			return dst, fmt.Errorf("zstd encoder: %w", err)
		}
		return enc.EncodeAll(src, dst), nil
	case CompressionGzip, CompressionLZ4:
		pool := &c.gzipEnc
		if codec == CompressionLZ4 {
			pool = &c.lz4Enc
		}
		e, _ := pool.Get().(*streamEncoder)
		if e == nil {
			e = new(streamEncoder)
			if codec == CompressionGzip {
				e.w = gzip.NewWriter(nil)
			} else {
				w := lz4.NewWriter(nil)
				if err := w.Apply(lz4.BlockSizeOption(lz4BlockSize)); err != nil {
					return dst, fmt.Errorf("lz4 writer: %w", err)
				}
				e.w = w
			}
		}
		e.out.b = dst
		e.w.Reset(&e.out)
		_, err := e.w.Write(src)
		if err == nil {
			err = e.w.Close()
		}
		dst = e.out.b
		e.out.b = nil
		e.w.Reset(nil) // drop the reference to dst before pooling
		if err != nil {
			// The writer may be mid-stream; let it go rather than reuse it.
			return dst, fmt.Errorf("%s compress: %w", codec, err)
		}
		pool.Put(e)
		return dst, nil
	}
	return dst, fmt.Errorf("unknown compression %s", codec)
}

type gzipDecoder struct {
	r   gzip.Reader
	src bytes.Reader
}

type lz4Decoder struct {
	r   *lz4.Reader
	src bytes.Reader
}

type zstdDecoder struct {
	d     *zstd.Decoder
	limit int // the WithDecoderMaxMemory the decoder was last set to
}

// decompress appends src, compressed with codec, decompressed to dst. It
// never lets the output grow past limit bytes: the stream codecs are read
// through a bound of limit+1 bytes, snappy's declared lengths and zstd's
// frame sizes are checked before anything is allocated for them. Errors wrap
// ErrTooLarge when the output would exceed limit and ErrMalformed when src
// does not decode.
func (c *Codecs) decompress(dst, src []byte, codec Compression, limit int) ([]byte, error) {
	var (
		out []byte
		err error
	)
	switch codec {
	case CompressionNone:
		if len(src) > limit {
			return dst, tooLarge(codec, limit)
		}
		return append(dst, src...), nil
	case CompressionGzip:
		d, _ := c.gzipDec.Get().(*gzipDecoder)
		if d == nil {
			d = new(gzipDecoder)
		}
		d.src.Reset(src)
		if err = d.r.Reset(&d.src); err == nil {
			out, err = readBounded(dst, &d.r, limit)
		}
		d.src.Reset(nil)
		c.gzipDec.Put(d)
	case CompressionLZ4:
		d, _ := c.lz4Dec.Get().(*lz4Decoder)
		if d == nil {
			d = &lz4Decoder{r: lz4.NewReader(nil)}
		}
		d.src.Reset(src)
		d.r.Reset(&d.src)
		out, err = readBounded(dst, d.r, limit)
		d.r.Reset(nil)
		d.src.Reset(nil)
		c.lz4Dec.Put(d)
	case CompressionSnappy:
		out, err = decodeSnappy(dst, src, limit)
	case CompressionZstd:
		out, err = c.decodeZstd(dst, src, limit)
	default:
		return dst, fmt.Errorf("%w: unknown compression codec %d", ErrMalformed, codec)
	}
	switch {
	case err == nil:
		return out, nil
	case errors.Is(err, errOverLimit):
		return dst, tooLarge(codec, limit)
	case errors.Is(err, ErrMalformed):
		return dst, err
	}
	return dst, fmt.Errorf("%w: %s records: %v", ErrMalformed, codec, err)
}

// errOverLimit is decompress's internal signal that the output outgrew the
// limit; decompress turns it into an ErrTooLarge naming the limit.
var errOverLimit = errors.New("over the decompression limit")

func tooLarge(codec Compression, limit int) error {
	return fmt.Errorf("%w: %s records decompress to more than the limit of %d bytes", ErrTooLarge, codec, limit)
}

// readBounded appends what r yields to dst, reading at most limit+1 bytes:
// one byte past the limit is enough to know the limit is exceeded, so the
// output never grows further than that, whatever the stream claims.
func readBounded(dst []byte, r io.Reader, limit int) ([]byte, error) {
	end := len(dst) + limit + 1 // where reading stops
	for empty := 0; ; {
		if len(dst) == cap(dst) {
			grow := max(cap(dst), 4<<10)
			dst = slices.Grow(dst, min(grow, end-len(dst)))
		}
		n, err := r.Read(dst[len(dst):min(cap(dst), end)])
		dst = dst[:len(dst)+n]
		switch {
		case len(dst) == end:
			return dst, errOverLimit
		case err == io.EOF:
			return dst, nil
		case err != nil:
			return dst, err
		case n > 0:
			empty = 0
		default:
			// As bufio does: a reader that keeps returning nothing
			// would otherwise spin here forever.
			if empty++; empty == 100 {
				return dst, io.ErrNoProgress
			}
		}
	}
}

func (c *Codecs) decodeZstd(dst, src []byte, limit int) ([]byte, error) {
	d, _ := c.zstdDec.Get().(*zstdDecoder)
	if d == nil {
		// One goroutine-free decoder per concurrent call: DecodeAll alone
		// is safe to share, but the size bound is the decoder's setting
		// and differs between callers.
		zd, err := zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxMemory(uint64(limit)),
		)
		if err != nil {
			return dst, fmt.Errorf("zstd decoder: %w", err)
		}
		d = &zstdDecoder{d: zd, limit: limit}
	}
	defer c.zstdDec.Put(d)
	if d.limit != limit {
		// DecodeAll checks each frame's declared size against this bound
		// before allocating for it, and stops a frame that outgrows it.
		if err := d.d.ResetWithOptions(nil, zstd.WithDecoderMaxMemory(uint64(limit))); err != nil {
			return dst, fmt.Errorf("zstd decoder: %w", err)
		}
		d.limit = limit
	}
	out, err := d.d.DecodeAll(src, dst)
	switch {
	case err == nil:
		if len(out)-len(dst) > limit {
			return dst, errOverLimit
		}
		return out, nil
	case errors.Is(err, zstd.ErrDecoderSizeExceeded), errors.Is(err, zstd.ErrWindowSizeExceeded):
		// The decoder caps the window at the output bound too: a frame
		// that needs more history than the whole allowed output is over
		// the limit as well.
		return dst, errOverLimit
	}
	return dst, err
}

// xerialMagic starts the framing the Java client's snappy-java library
// writes: this magic, a big-endian int32 version and an int32 minimum
// compatible version (both 1), then blocks, each a big-endian int32 length
// followed by a plain snappy block.
var xerialMagic = [8]byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

const xerialHeaderSize = 16

// decodeSnappy decodes a plain snappy block or xerial-framed blocks. It
// strictly follows the snappy format (no S2 extensions), as Kafka's own
// consumers would.
func decodeSnappy(dst, src []byte, limit int) ([]byte, error) {
	if len(src) < len(xerialMagic) || !bytes.Equal(src[:len(xerialMagic)], xerialMagic[:]) {
		return decodeSnappyBlocks(dst, [][]byte{src}, limit)
	}
	if len(src) < xerialHeaderSize {
		return dst, fmt.Errorf("%w: snappy records: xerial header of %d bytes, want %d", ErrMalformed, len(src), xerialHeaderSize)
	}
	var blocks [][]byte
	for rest := src[xerialHeaderSize:]; len(rest) > 0; {
		if len(rest) < 4 {
			return dst, fmt.Errorf("%w: snappy records: %d bytes after the last xerial block", ErrMalformed, len(rest))
		}
		n := binary.BigEndian.Uint32(rest)
		rest = rest[4:]
		if uint64(n) > uint64(len(rest)) {
			return dst, fmt.Errorf("%w: snappy records: xerial block of %d bytes, %d remain", ErrMalformed, n, len(rest))
		}
		blocks = append(blocks, rest[:n])
		rest = rest[n:]
	}
	return decodeSnappyBlocks(dst, blocks, limit)
}

// decodeSnappyBlocks sums the decoded lengths the blocks declare and checks
// them against limit before allocating, then decodes each block in place.
func decodeSnappyBlocks(dst []byte, blocks [][]byte, limit int) ([]byte, error) {
	total := 0
	for _, b := range blocks {
		n, err := snappy.DecodedLen(b)
		if err != nil {
			return dst, err
		}
		if n > limit-total {
			return dst, errOverLimit
		}
		total += n
	}
	out := slices.Grow(dst, total)
	for _, b := range blocks {
		n, _ := snappy.DecodedLen(b)
		at := len(out)
		// DecodeStrict decodes into the start of its dst when the capacity
		// suffices, which it does: the whole output was reserved above.
		if _, err := snappy.DecodeStrict(out[at:at+n], b); err != nil {
			return dst, err
		}
		out = out[:at+n]
	}
	return out, nil
}

// clampLimit turns a DecodeLimits byte bound into the one the codecs use.
func clampLimit(n int) int {
	switch {
	case n <= 0:
		return DefaultMaxDecompressedBytes
	case n > math.MaxInt32:
		// A records section is counted in int32 everywhere in Kafka.
		return math.MaxInt32
	}
	return n
}

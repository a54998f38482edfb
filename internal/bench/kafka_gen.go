package bench

import (
	"math/bits"
	"math/rand/v2"
	"time"
)

// latencyHist is a log-linear latency histogram in nanoseconds: exact below
// histSub ns, then histSub buckets per power of two (under 1 % error), so
// millions of latencies a second cost one increment each and no memory
// growth. It is not safe for concurrent use: each producer client has its
// own, written only from its promise goroutine (franz-go calls a client's
// promises serially), and they are merged once the run is over.
type latencyHist struct {
	counts [64 * histSub]int64
	n      int64
	max    int64
}

const (
	histSubBits = 7
	histSub     = 1 << histSubBits
)

func histIndex(v int64) int {
	if v < histSub {
		return int(max(v, 0))
	}
	e := bits.Len64(uint64(v)) - histSubBits - 1 // v>>e is in [histSub, 2*histSub)
	return (e+1)*histSub + int(v>>e) - histSub
}

// histValue is the middle of bucket i.
func histValue(i int) int64 {
	if i < histSub {
		return int64(i)
	}
	e := i/histSub - 1
	m := int64(i%histSub + histSub)
	return m<<e + (int64(1)<<e)/2
}

func (h *latencyHist) record(d time.Duration) {
	v := int64(d)
	h.counts[histIndex(v)]++
	h.n++
	h.max = max(h.max, v)
}

func (h *latencyHist) merge(o *latencyHist) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// percentile returns the latency below which a fraction q of the recorded
// ones fall.
func (h *latencyHist) percentile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := int64(q*float64(h.n) + 0.5)
	rank = min(max(rank, 1), h.n)
	var seen int64
	for i, c := range h.counts {
		if seen += c; seen >= rank {
			return time.Duration(min(histValue(i), h.max))
		}
	}
	return time.Duration(h.max)
}

// valuePool is a block of bytes from a fast PRNG that record values are
// sliced from, so that producing costs no per-record generation or copy
// (franz-go retains a value only until its promise runs, and the pool is
// never written after it is made). A value is recordBytes consecutive pool
// bytes at a position that walks through the pool; the pool is larger than
// any batch, so no batch repeats a byte string and compression finds
// nothing to squeeze.
type valuePool struct {
	buf  []byte
	size int
}

func newValuePool(recordBytes, batchBytes int, seed uint64) *valuePool {
	n := max(16<<20, 4*batchBytes) + recordBytes
	buf := make([]byte, n)
	var s [32]byte
	for i := range 4 {
		for j := range 8 {
			s[i*8+j] = byte((seed + uint64(i)) >> (8 * j))
		}
	}
	// ChaCha8 fills at several GB/s: a 16 MiB pool takes milliseconds.
	_, _ = rand.NewChaCha8(s).Read(buf)
	return &valuePool{buf: buf, size: recordBytes}
}

// cursor returns a walker through the pool starting at the i-th of n
// evenly spaced positions, one per producer.
func (p *valuePool) cursor(i, n int) valueCursor {
	span := len(p.buf) - p.size
	return valueCursor{p: p, off: span / max(n, 1) * i}
}

type valueCursor struct {
	p   *valuePool
	off int
}

func (c *valueCursor) next() []byte {
	if c.off+c.p.size > len(c.p.buf) {
		c.off = 0
	}
	v := c.p.buf[c.off : c.off+c.p.size : c.off+c.p.size]
	// An odd step keeps successive runs from lining up on the same values.
	c.off += c.p.size + 1
	return v
}

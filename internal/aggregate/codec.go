package aggregate

import (
	"encoding/binary"
	"fmt"
	"math/bits"
)

// reader reads an encoded state, keeping the first error.
type reader struct {
	f   Func
	b   []byte
	err error
}

// failf records a corruption error, unless one is recorded already, and
// returns the recorded error.
func (r *reader) failf(format string, args ...any) error {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s: %s", ErrCorrupt, r.f, fmt.Sprintf(format, args...))
	}
	return r.err
}

func (r *reader) byte(what string) byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) == 0 {
		r.failf("truncated before the %s", what)
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) bytes(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n > len(r.b) {
		r.failf("%s needs %d bytes, %d are left", what, n, len(r.b))
		return nil
	}
	p := r.b[:n]
	r.b = r.b[n:]
	return p
}

func (r *reader) uvarint(what string) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	switch {
	case n == 0:
		r.failf("truncated in the %s", what)
		return 0
	case n < 0:
		r.failf("the %s overflows 64 bits", what)
		return 0
	case n > 1 && r.b[n-1] == 0:
		r.failf("the %s is not minimally encoded", what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint(what string) int64 {
	u := r.uvarint(what)
	return int64(u>>1) ^ -int64(u&1)
}

// count reads a count of at most max items of at least minBytes each, so
// that nothing is allocated for items the bytes left cannot hold.
func (r *reader) count(what string, max, minBytes int) int {
	n := r.uvarint(what)
	if r.err != nil {
		return 0
	}
	if n > uint64(max) {
		r.failf("%d %s, at most %d", n, what, max)
		return 0
	}
	if n > uint64(len(r.b)/minBytes) {
		r.failf("%d %s do not fit in the %d bytes left", n, what, len(r.b))
		return 0
	}
	return int(n)
}

// i128 is a two's complement 128-bit integer.
type i128 struct {
	hi int64
	lo uint64
}

func i128From(n int64) i128 { return i128{hi: n >> 63, lo: uint64(n)} }

// add returns a+b and whether it did not overflow.
func (a i128) add(b i128) (i128, bool) {
	lo, c := bits.Add64(a.lo, b.lo, 0)
	hi := a.hi + b.hi + int64(c)
	return i128{hi, lo}, (a.hi^hi)&(b.hi^hi) >= 0
}

func (a i128) neg() i128 {
	lo := -a.lo
	hi := ^a.hi
	if a.lo == 0 {
		hi++
	}
	return i128{hi, lo}
}

func (a i128) isZero() bool { return a.hi == 0 && a.lo == 0 }

func (a i128) isInt64() bool { return a.hi == int64(a.lo)>>63 }

// abs returns the magnitude of a, which must not be -2^127.
func (a i128) abs() (hi, lo uint64, neg bool) {
	if a.hi < 0 {
		a = a.neg()
		return uint64(a.hi), a.lo, true
	}
	return uint64(a.hi), a.lo, false
}

// fromMagnitude returns ±(hi, lo), which must be below 2^127.
func fromMagnitude(hi, lo uint64, neg bool) i128 {
	a := i128{int64(hi), lo}
	if neg {
		return a.neg()
	}
	return a
}

// mulPow10 returns the magnitude m·10^k, or false if it overflows 128
// bits.
func mulPow10(m uint64, k int) (hi, lo uint64, ok bool) {
	lo = m
	for range k {
		h1, l := bits.Mul64(lo, 10)
		h2, l2 := bits.Mul64(hi, 10)
		h, c := bits.Add64(h1, l2, 0)
		if h2 != 0 || c != 0 {
			return 0, 0, false
		}
		hi, lo = h, l
	}
	return hi, lo, true
}

// bitLen returns the length of the magnitude (hi, lo) in bits.
func bitLen(hi, lo uint64) int {
	if hi != 0 {
		return 64 + bits.Len64(hi)
	}
	return bits.Len64(lo)
}

// appendI128 appends a zigzagged LEB128 varint.
func appendI128(b []byte, a i128) []byte {
	// zigzag: (a << 1) ^ (a >> 127)
	sign := uint64(a.hi >> 63)
	hi := (uint64(a.hi)<<1 | a.lo>>63) ^ sign
	lo := (a.lo << 1) ^ sign
	for hi != 0 || lo >= 0x80 {
		b = append(b, byte(lo)|0x80)
		lo = lo>>7 | hi<<57
		hi >>= 7
	}
	return append(b, byte(lo))
}

func (r *reader) i128(what string) i128 {
	if r.err != nil {
		return i128{}
	}
	var hi, lo uint64
	for i := 0; ; i++ {
		if i == len(r.b) {
			r.failf("truncated in the %s", what)
			return i128{}
		}
		c := r.b[i]
		shift := uint(7 * i)
		if i == 18 && c > 3 {
			r.failf("the %s overflows 128 bits", what)
			return i128{}
		}
		v := uint64(c & 0x7f)
		if shift < 64 {
			lo |= v << shift
			if shift > 57 {
				hi |= v >> (64 - shift)
			}
		} else {
			hi |= v << (shift - 64)
		}
		if c < 0x80 {
			if i > 0 && c == 0 {
				r.failf("the %s is not minimally encoded", what)
				return i128{}
			}
			r.b = r.b[i+1:]
			break
		}
	}
	// unzigzag: (u >> 1) ^ -(u & 1)
	sign := -(lo & 1)
	return i128{hi: int64((hi >> 1) ^ sign), lo: (lo>>1 | hi<<63) ^ sign}
}

package postgres

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/sluice-dev/sluice/internal/connector"
)

// copyRows is the data of a binary COPY of records into every target of a
// table, as an io.Reader: pgconn reads it in the goroutine that sends it,
// so each record is converted as its turn to be sent comes, while the
// server works on the rows before it.
//
// The common values are written from the JSON bytes: a string of plain
// ASCII without escapes into text, an integer into an integer column that
// holds it, a number into double precision, true and false into boolean,
// null into anything.
// Every other value takes the general way, decoded, converted by convert
// and encoded by pgx, so that what is written, and what is rejected with
// what error, is the same as for rows prepared by extract.
//
// Records that do not convert are left out and listed in rejected; those
// missing a field whose column has a default are left out and listed in
// rest, for rows with their own columns (see group).
type copyRows struct {
	x       *extractor
	types   *pgtype.Map
	records []*connector.Record
	next    int

	buf     []byte // encoded, from off on not yet read
	off     int
	started bool
	done    bool

	raws  [][]byte // of the record being converted, like x.mvals
	found []bool

	rejected []connector.Rejection
	rest     []*connector.Record
}

// errDeferred marks a record that goes to rest.
var errDeferred = errors.New("a field with a default is missing")

func newCopyRows(x *extractor, types *pgtype.Map, records []*connector.Record) *copyRows {
	return &copyRows{x: x, types: types, records: records,
		raws: make([][]byte, len(x.tbl.members)), found: make([]bool, len(x.tbl.members))}
}

// copySignature starts every binary COPY: the signature, no flags, no
// header extension.
var copySignature = []byte("PGCOPY\n\377\r\n\000\x00\x00\x00\x00\x00\x00\x00\x00")

func (c *copyRows) Read(p []byte) (int, error) {
	if c.off > 0 {
		// What is left is at most the end of one row.
		c.buf = append(c.buf[:0], c.buf[c.off:]...)
		c.off = 0
	}
	for len(c.buf) < len(p) && !c.done {
		switch {
		case !c.started:
			c.buf = append(c.buf, copySignature...)
			c.started = true
		case c.next == len(c.records):
			c.buf = binary.BigEndian.AppendUint16(c.buf, 0xffff) // the trailer: -1
			c.done = true
		default:
			rec := c.records[c.next]
			c.next++
			start := len(c.buf)
			var err error
			if c.buf, err = c.appendRow(c.buf, rec); err != nil {
				c.buf = c.buf[:start]
				if errors.Is(err, errDeferred) {
					c.rest = append(c.rest, rec)
				} else {
					c.rejected = append(c.rejected, connector.Rejection{Record: rec, Err: err})
				}
			}
		}
	}
	n := copy(p, c.buf)
	c.off = n
	if n == 0 && c.done {
		return 0, io.EOF
	}
	return n, nil
}

// appendRow appends rec's row: the field count, then each field's length
// (-1 for NULL) and bytes.
func (c *copyRows) appendRow(buf []byte, rec *connector.Record) ([]byte, error) {
	x, tbl := c.x, c.x.tbl
	buf = binary.BigEndian.AppendUint16(buf, uint16(len(tbl.targets)))
	raw := false // c.raws holds the members of an object value
	if len(tbl.members) > 0 && !rec.Parsed() {
		if v, _ := rec.Value(); v != nil {
			clear(c.found)
			var err error
			if raw, err = x.dec.RawFields(v, tbl.fields, c.raws, c.found); err != nil {
				return buf, &RecordError{Err: fmt.Errorf("value is not JSON: %w", err)}
			}
		}
	}
	obj := raw
	if !raw {
		// Parsed already, null or not an object: the general way, which
		// also says what is wrong with it.
		var err error
		if obj, err = x.readMembers(rec); err != nil {
			return buf, err
		}
	}
	decoded := !raw // x.mvals holds the members
	for j := range tbl.targets {
		t := &tbl.targets[j]
		if raw && t.src.special == "" && len(t.src.path) == 1 {
			if !c.found[t.member] {
				if t.hasDefault {
					return buf, errDeferred
				}
				buf = appendNull(buf)
				continue
			}
			if b, ok := appendPlain(buf, t.kind, c.raws[t.member]); ok {
				buf = b
				continue
			}
		}
		if raw && !decoded && t.src.special == "" {
			if err := c.decodeMembers(); err != nil {
				return buf, &RecordError{Err: err}
			}
			decoded = true
		}
		v, found := x.value(rec, t, obj)
		if !found {
			if t.hasDefault {
				return buf, errDeferred
			}
			buf = appendNull(buf)
			continue
		}
		var text []byte // v's JSON text, when at hand
		if raw && t.src.special == "" && len(t.src.path) == 1 {
			text = c.raws[t.member]
		}
		cv, err := x.convert(rec, t, v, text)
		if err != nil {
			return buf, err
		}
		if buf, err = c.appendEncoded(buf, t, cv); err != nil {
			return buf, err
		}
	}
	return buf, nil
}

// decodeMembers decodes the members RawFields found into x.mvals.
func (c *copyRows) decodeMembers() error {
	x := c.x
	for i, f := range c.found {
		x.mfound[i], x.mvals[i] = f, nil
		if f {
			v, err := x.dec.Decode(c.raws[i])
			if err != nil {
				return fmt.Errorf("value is not JSON: %w", err) // RawFields checked it: not reached
			}
			x.mvals[i] = v
		}
	}
	return nil
}

// appendEncoded appends a converted value as pgx encodes it in binary.
func (c *copyRows) appendEncoded(buf []byte, t *target, v any) ([]byte, error) {
	at := len(buf)
	buf = binary.BigEndian.AppendUint32(buf, math.MaxUint32) // -1 until known
	out, err := c.types.Encode(t.oid, pgtype.BinaryFormatCode, v, buf)
	if err != nil {
		return buf[:at], &RecordError{Column: t.name, Type: t.typ, Err: err}
	}
	if out == nil {
		return buf, nil // NULL
	}
	binary.BigEndian.PutUint32(out[at:], uint32(len(out)-at-4))
	return out, nil
}

func appendNull(buf []byte) []byte { return binary.BigEndian.AppendUint32(buf, math.MaxUint32) }

// appendPlain appends a JSON value of the common shapes for a column of
// kind k, as convert and pgx would write it, or reports false to leave it
// to them.
func appendPlain(buf []byte, k kind, raw []byte) ([]byte, bool) {
	switch raw[0] {
	case 'n':
		return appendNull(buf), true
	case '"':
		// Plain ASCII between the quotes (no escape, no control
		// character): the text is the bytes, valid and without NUL.
		if k != kindText || !connector.PlainJSONString(raw) {
			return buf, false
		}
		s := raw[1 : len(raw)-1]
		buf = binary.BigEndian.AppendUint32(buf, uint32(len(s)))
		return append(buf, s...), true
	case 't', 'f':
		if k != kindBool {
			return buf, false
		}
		var b byte
		if raw[0] == 't' {
			b = 1
		}
		return append(binary.BigEndian.AppendUint32(buf, 1), b), true
	case '{', '[':
		return buf, false
	}
	// A number.
	n, isInt := connector.JSONInt(raw)
	switch k {
	case kindInt8:
		if isInt {
			return binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint32(buf, 8), uint64(n)), true
		}
	case kindInt4:
		if isInt && n >= math.MinInt32 && n <= math.MaxInt32 {
			return binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(buf, 4), uint32(int32(n))), true
		}
	case kindInt2:
		if isInt && n >= math.MinInt16 && n <= math.MaxInt16 {
			return binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint32(buf, 2), uint16(int16(n))), true
		}
	case kindFloat8:
		f := float64(n)
		if !isInt {
			var err error
			if f, err = connector.JSONFloat(raw); err != nil {
				return buf, false
			}
		}
		return binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint32(buf, 8), math.Float64bits(f)), true
	}
	return buf, false
}

package httpapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/twmb/franz-go/pkg/kbin"

	"github.com/sluice-dev/sluice/internal/record"
)

// This file decodes produce request bodies: the native JSON and NDJSON
// bodies and the Kafka REST Proxy v2 json and binary embedded formats. Bodies
// are decoded as a stream with jsontext (the decoder behind encoding/json/v2):
// it holds one token or one record value at a time, never the whole body,
// and rejects malformed JSON and invalid UTF-8 anywhere in the body. Every
// record is validated against the topic as it is decoded, so a request is
// refused, naming the record, before anything is produced.

// bodyFormat is the shape of a produce body, chosen by its Content-Type.
type bodyFormat uint8

const (
	// formatJSON is {"records": [record, ...]} with native record objects.
	formatJSON bodyFormat = iota + 1
	// formatNDJSON is native record objects, one per line.
	formatNDJSON
	// formatRESTJSON is REST Proxy v2's json embedded format: key and value
	// are JSON values, each stored as its compact JSON encoding.
	formatRESTJSON
	// formatRESTBinary is REST Proxy v2's binary embedded format: key and
	// value are base64 strings.
	formatRESTBinary
)

func (f bodyFormat) restProxy() bool { return f == formatRESTJSON || f == formatRESTBinary }

// REST Proxy error codes for invalid keys and values, after the codes
// REST Proxy v2 gives key and value problems.
const (
	codeInvalidKey   = 42201
	codeInvalidValue = 42202
)

// decodeLimits are the facts about the topic each record is checked
// against while it is decoded.
type decodeLimits struct {
	topic      string
	partitions int32
	// maxMessageBytes is the topic's max.message.bytes: the largest batch
	// the log accepts, so the largest a batch of one record may be.
	maxMessageBytes int
	// now is the timestamp (Unix ms) of records that carry none.
	now int64
	// partition, when not -1, is where every record goes (the REST Proxy
	// partition endpoint).
	partition int32
}

// maxProduceRecords bounds the records of one produce request. The body
// limit alone does not bound the memory a request takes: a record costs
// about a hundred bytes to hold, answer and produce, however few bytes of
// the body it takes ({} is two), so a body of tiny records would hold
// gigabytes.
const maxProduceRecords = 100_000

// span locates bytes in produceRequest.chunks; n == -1 is Kafka's null.
type span struct{ chunk, off, n int32 }

var null = span{n: -1}

// pendingRecord is a decoded record, waiting to be produced.
type pendingRecord struct {
	key, value span
	// hdrOff and hdrN locate the record's headers in produceRequest.hdrs.
	hdrOff, hdrN int32
	// partition is -1 until assigned.
	partition int32
	timestamp int64
	// offset is filled in once the record is acknowledged.
	offset int64
}

type pendingHeader struct {
	key   string
	value span
}

// produceRequest is one produce request's records and the buffers they
// live in; it is pooled (see producer), so its buffers serve many requests.
type produceRequest struct {
	recs []pendingRecord
	hdrs []pendingHeader
	// chunks hold every key, value and header value of the request, in
	// blocks of chunkSize (or larger, for one larger item) that are never
	// reallocated: a request that grows copies nothing and leaves no
	// garbage, so it holds little more memory than its records. spare
	// keeps emptied blocks for reuse.
	chunks, spare [][]byte
	dec           *jsontext.Decoder
	// body is what dec reads: the request body, bounded per record.
	body recordBoundReader
	// name and str are scratch space for unquoting names and strings.
	name, str []byte

	// maxValue is the longest token or value read, which the decoder's
	// buffer grew to hold.
	maxValue int

	// Used while producing; see producer.
	order  []int32
	starts []int32
	out    []byte
}

// chunkSize is the size of the blocks records are stored in.
const chunkSize = 256 << 10

// maxSpareChunks bounds the blocks a pooled request keeps.
const maxSpareChunks = 8

func (p *produceRequest) reset() {
	for _, c := range p.chunks {
		if cap(c) == chunkSize && len(p.spare) < maxSpareChunks {
			p.spare = append(p.spare, c[:0])
		}
	}
	clear(p.chunks)
	p.recs, p.hdrs, p.chunks, p.maxValue = p.recs[:0], p.hdrs[:0], p.chunks[:0], 0
}

// room returns the index of a block with at least n bytes free: the last
// one, or a new one.
func (p *produceRequest) room(n int) int {
	if k := len(p.chunks); k > 0 && cap(p.chunks[k-1])-len(p.chunks[k-1]) >= n {
		return k - 1
	}
	var c []byte
	if k := len(p.spare); k > 0 && n <= chunkSize {
		c, p.spare = p.spare[k-1], p.spare[:k-1]
	} else {
		c = make([]byte, 0, max(n, chunkSize))
	}
	p.chunks = append(p.chunks, c)
	return len(p.chunks) - 1
}

// spanFrom returns the span of what was appended to block c from start.
func (p *produceRequest) spanFrom(c, start int) span {
	return span{chunk: int32(c), off: int32(start), n: int32(len(p.chunks[c]) - start)}
}

// bytes returns the bytes of s, nil for a null span.
func (p *produceRequest) bytes(s span) []byte {
	if s.n < 0 {
		return nil
	}
	return p.chunks[s.chunk][s.off : s.off+s.n : s.off+s.n]
}

// decode reads a produce body of format f from r into p, checking every
// record against lim. It returns an *Error: 400 for a body that is not
// well-formed or not of the documented shape, 404 for a partition the
// topic lacks, 413 for a record or body over its limit, 422 for invalid
// values; REST Proxy formats get REST Proxy's codes. A body over the
// reader's limit (http.MaxBytesReader) is a 413.
func (p *produceRequest) decode(r io.Reader, f bodyFormat, lim decodeLimits) error {
	p.reset()
	// Names are checked for duplicates where they matter (record fields
	// and headers); within values, JSON allows them and so do we.
	p.body = recordBoundReader{r: r}
	if p.dec == nil {
		p.dec = jsontext.NewDecoder(&p.body, jsontext.AllowDuplicateNames(true))
	} else {
		p.dec.Reset(&p.body, jsontext.AllowDuplicateNames(true))
	}
	d := bodyDecoder{p: p, dec: p.dec, f: f, lim: lim, index: -1}
	var err error
	if f == formatNDJSON {
		err = d.lines()
	} else {
		err = d.document()
	}
	// Drop the references to the request body.
	p.dec.Reset(eofReader{})
	p.body = recordBoundReader{}
	return err
}

// recordTextLimit bounds the JSON text of one record. A record's text may
// exceed its stored size (escapes in keys and headers take up to six bytes
// for one, base64 four for three, whitespace is free), but not by much more
// than that: the bound lets the decoder refuse an oversized record after
// reading a few times max.message.bytes of it, rather than buffering a huge
// value before its size can be checked.
func recordTextLimit(maxMessageBytes int) int64 {
	return 6*int64(maxMessageBytes) + 64<<10
}

// errRecordText is what recordBoundReader reports when a record's text
// reaches its bound.
var errRecordText = errors.New("record text over its bound")

// recordBoundReader passes on a body's bytes up to a moving bound: the
// decoder sets it before each record, so that one record can make the
// decoder buffer no more than its bound (plus the decoder's look-ahead).
type recordBoundReader struct {
	r     io.Reader
	read  int64 // bytes passed on
	bound int64 // read stops here; 0: no bound
}

func (b *recordBoundReader) Read(p []byte) (int, error) {
	if b.bound > 0 {
		if b.read >= b.bound {
			return 0, errRecordText
		}
		if rest := b.bound - b.read; int64(len(p)) > rest {
			p = p[:rest]
		}
	}
	n, err := b.r.Read(p)
	b.read += int64(n)
	return n, err
}

// decoderRetainLimit is the largest body after which a produceRequest is
// pooled: the decoder's buffer grows to hold the largest value it has read.
const decoderRetainLimit = 1 << 20

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// bodyDecoder is the state of one decode call.
type bodyDecoder struct {
	p     *produceRequest
	dec   *jsontext.Decoder
	f     bodyFormat
	lim   decodeLimits
	index int // the record being decoded, -1 outside records
	// lastNull says the last value read was null.
	lastNull bool
	// hdrNames holds the header names of the record whose headers start
	// at hdrFrom, once it has more than a few, so that each new name is
	// checked against the others in constant time: a record may have
	// hundreds of thousands of headers within max.message.bytes, and
	// comparing each with all before it would take minutes.
	hdrNames map[string]struct{}
	hdrFrom  int32
}

// fail returns a 4xx error, prefixed with the record index inside a record.
// code is the REST Proxy code for REST Proxy formats (0: the status).
func (d *bodyDecoder) fail(status, code int, format string, args ...any) *Error {
	msg := fmt.Sprintf(format, args...)
	if d.index >= 0 {
		msg = "record " + strconv.Itoa(d.index) + ": " + msg
	}
	e := &Error{Status: status, Message: msg}
	if d.f.restProxy() {
		// REST Proxy answers every invalid payload with 422.
		if status == http.StatusBadRequest && code != 0 {
			e.Status = http.StatusUnprocessableEntity
		}
		e.Code = code
		e.ContentType = mediaRESTV2
	}
	return e
}

// shape reports a body that is well-formed JSON but not the documented
// shape (400; 422 with REST Proxy's code for REST Proxy formats).
func (d *bodyDecoder) shape(format string, args ...any) *Error {
	return d.fail(http.StatusBadRequest, http.StatusUnprocessableEntity, format, args...)
}

// readErr turns an error from the JSON decoder into a 4xx: malformed JSON
// and invalid UTF-8 are 400, a record over its bound 413, and a failure to
// read the body what bodyReadError says.
func (d *bodyDecoder) readErr(err error) error {
	var synErr *jsontext.SyntacticError
	switch {
	case errors.Is(err, errRecordText):
		return d.fail(http.StatusRequestEntityTooLarge, 0, "the record's JSON is over %d bytes, too large for topic %q's max.message.bytes of %d",
			recordTextLimit(d.lim.maxMessageBytes), d.lim.topic, d.lim.maxMessageBytes)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return d.fail(http.StatusBadRequest, 0, "malformed JSON: the body ends in the middle of a JSON value")
	case errors.As(err, &synErr):
		return d.fail(http.StatusBadRequest, 0, "malformed JSON at byte %d: %s", synErr.ByteOffset, trimJSONErr(synErr.Err))
	}
	// The decoder passes read errors on as they are (wrapped, never as a
	// SyntacticError).
	re := bodyReadError(err)
	return d.fail(re.Status, 0, "%s", re.Message)
}

// trimJSONErr drops the jsontext package prefix from an error message.
func trimJSONErr(err error) string {
	if err == nil {
		return "syntax error"
	}
	msg := err.Error()
	const prefix = "jsontext: "
	if len(msg) > len(prefix) && msg[:len(prefix)] == prefix {
		msg = msg[len(prefix):]
	}
	return msg
}

// peek returns the kind of the next token. An error is left for the next
// read, which reports it.
func (d *bodyDecoder) peek() jsontext.Kind { return d.dec.PeekKind() }

// value reads the next value whole. The result is valid until the next read.
func (d *bodyDecoder) value() ([]byte, error) {
	v, err := d.dec.ReadValue()
	if err != nil {
		return nil, d.readErr(err)
	}
	d.p.maxValue = max(d.p.maxValue, len(v))
	d.lastNull = string(v) == "null"
	return v, nil
}

// delim reads the delimiter the caller peeked.
func (d *bodyDecoder) delim() error {
	if _, err := d.dec.ReadToken(); err != nil {
		return d.readErr(err)
	}
	return nil
}

// nullOrEnd is for a value that is not of the kind the caller wants: it
// reads it when it is null, or what ended the input when there is none
// (kind 0), and reports whether it did. Other kinds are for the caller to
// refuse.
func (d *bodyDecoder) nullOrEnd(k jsontext.Kind) (bool, error) {
	switch k {
	case 'n':
		_, err := d.value()
		return true, err
	case 0:
		return true, d.delim()
	}
	return false, nil
}

// name reads an object member name, unquoted. The result is valid until
// the next call.
func (d *bodyDecoder) name() ([]byte, error) {
	raw, err := d.value()
	if err != nil {
		return nil, err
	}
	return d.unquote(&d.p.name, raw)
}

// unquote returns the text of raw, a JSON string: a part of raw when it has
// no escapes, else *scratch, reused, holding it unescaped.
func (d *bodyDecoder) unquote(scratch *[]byte, raw []byte) ([]byte, error) {
	if bytes.IndexByte(raw, '\\') < 0 {
		return raw[1 : len(raw)-1], nil
	}
	var err error
	if *scratch, err = jsontext.AppendUnquote((*scratch)[:0], raw); err != nil {
		return nil, d.readErr(err)
	}
	return *scratch, nil
}

// kindName describes a JSON kind for messages.
func kindName(k jsontext.Kind) string {
	switch k {
	case '"':
		return "a string"
	case '0':
		return "a number"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "not a JSON value"
}

// quoteName quotes a field name for a message, shortened if it is long.
func quoteName(name []byte) string {
	const max = 64
	if len(name) > max {
		return strconv.Quote(string(name[:max])) + "..."
	}
	return strconv.Quote(string(name))
}

// document decodes {"records": [...]} (with REST Proxy's schema fields for
// REST Proxy formats) followed by the end of the body.
func (d *bodyDecoder) document() error {
	if k := d.peek(); k != '{' {
		if k == 0 {
			return d.emptyOr(`the body is empty; want a JSON object with a "records" array`)
		}
		return d.shape(`the body is %s; want a JSON object with a "records" array`, kindName(k))
	}
	if err := d.delim(); err != nil {
		return err
	}
	seen := false
	for d.peek() != '}' {
		name, err := d.name()
		if err != nil {
			return err
		}
		switch string(name) {
		case "records":
			if seen {
				return d.shape(`duplicate field "records"`)
			}
			seen = true
			if err := d.records(); err != nil {
				return err
			}
		case "key_schema", "key_schema_id", "value_schema", "value_schema_id":
			if !d.f.restProxy() {
				return d.shape("unknown field %s", quoteName(name))
			}
			field := string(name)
			v, err := d.value()
			if err != nil {
				return err
			}
			if string(v) != "null" {
				code := codeInvalidKey
				if field[0] == 'v' {
					code = codeInvalidValue
				}
				return d.fail(http.StatusUnprocessableEntity, code,
					"%s: schemas are not supported (there is no schema registry); use the json or binary embedded format", field)
			}
		default:
			return d.shape("unknown field %s; the body has only \"records\"", quoteName(name))
		}
	}
	if err := d.delim(); err != nil {
		return err
	}
	if _, err := d.dec.ReadToken(); err != io.EOF {
		if err != nil {
			return d.readErr(err)
		}
		return d.fail(http.StatusBadRequest, 0, "unexpected data after the JSON body")
	}
	if !seen {
		return d.fail(http.StatusUnprocessableEntity, 0, `the body has no "records" array`)
	}
	if len(d.p.recs) == 0 {
		return d.fail(http.StatusUnprocessableEntity, 0, "records may not be empty")
	}
	return nil
}

// emptyOr reads what made the decoder report no next token: the end of an
// empty body, answered with msg, or an error.
func (d *bodyDecoder) emptyOr(msg string) error {
	_, err := d.dec.ReadToken()
	if err == nil || err == io.EOF {
		return d.fail(http.StatusBadRequest, http.StatusUnprocessableEntity, "%s", msg)
	}
	return d.readErr(err)
}

func (d *bodyDecoder) records() error {
	if k := d.peek(); k != '[' {
		if k == 0 {
			return d.delim()
		}
		return d.shape("records is %s; want an array of record objects", kindName(k))
	}
	if err := d.delim(); err != nil {
		return err
	}
	for d.peek() != ']' {
		d.index = len(d.p.recs)
		if err := d.record(); err != nil {
			return err
		}
	}
	d.index = -1
	return d.delim()
}

// lines decodes NDJSON: record objects up to the end of the body. Blank
// lines are skipped.
func (d *bodyDecoder) lines() error {
	for {
		d.index = len(d.p.recs)
		if d.peek() == 0 {
			_, err := d.dec.ReadToken()
			if err == io.EOF {
				break
			}
			return d.readErr(err)
		}
		if err := d.record(); err != nil {
			return err
		}
	}
	d.index = -1
	if len(d.p.recs) == 0 {
		return d.fail(http.StatusUnprocessableEntity, 0, "records may not be empty: the body has no lines")
	}
	return nil
}

// Record fields, as bits of a set.
const (
	fKey = 1 << iota
	fKeyBase64
	fValue
	fValueBase64
	fHeaders
	fHeadersBase64
	fPartition
	fTimestamp
)

// field maps a record field name to its bit in the body's format, or 0.
func (d *bodyDecoder) field(name []byte) int {
	switch string(name) {
	case "key":
		return fKey
	case "value":
		return fValue
	case "partition":
		return fPartition
	}
	if d.f.restProxy() {
		return 0
	}
	switch string(name) {
	case "key_base64":
		return fKeyBase64
	case "value_base64":
		return fValueBase64
	case "headers":
		return fHeaders
	case "headers_base64":
		return fHeadersBase64
	case "timestamp":
		return fTimestamp
	}
	return 0
}

// keyCode and valueCode are the REST Proxy codes for problems with a
// record's key and value.
func fieldCode(f int) int {
	switch f {
	case fKey, fKeyBase64:
		return codeInvalidKey
	case fValue, fValueBase64:
		return codeInvalidValue
	}
	return http.StatusUnprocessableEntity
}

// record decodes one record object, checks it against the topic and
// appends it to d.p.recs.
func (d *bodyDecoder) record() error {
	p := d.p
	if len(p.recs) >= maxProduceRecords {
		return d.fail(http.StatusRequestEntityTooLarge, 0, "a request may hold at most %d records; send the rest in another request", maxProduceRecords)
	}
	// Bound the record's text; an error ends decoding, so only success
	// needs to lift the bound again.
	p.body.bound = d.dec.InputOffset() + recordTextLimit(d.lim.maxMessageBytes)
	if k := d.peek(); k != '{' {
		if k == 0 {
			return d.delim()
		}
		return d.shape("is %s; want a record object", kindName(k))
	}
	if err := d.delim(); err != nil {
		return err
	}
	rec := pendingRecord{key: null, value: null, hdrOff: int32(len(p.hdrs)), partition: -1, timestamp: -1, offset: -1}
	seen, given := 0, 0 // fields present; fields present and not null
	for d.peek() != '}' {
		name, err := d.name()
		if err != nil {
			return err
		}
		f := d.field(name)
		if f == 0 {
			if d.f.restProxy() {
				return d.shape("unknown field %s; a REST Proxy v2 record has key, value and partition", quoteName(name))
			}
			return d.shape("unknown field %s", quoteName(name))
		}
		if seen&f != 0 {
			return d.shape("duplicate field %s", quoteName(name))
		}
		seen |= f
		switch f {
		case fKey:
			switch d.f {
			case formatRESTJSON:
				rec.key, err = d.jsonValue()
			case formatRESTBinary:
				rec.key, err = d.base64("key", f)
			default:
				rec.key, err = d.text("key", "; use key_base64 for binary keys")
			}
		case fKeyBase64:
			rec.key, err = d.base64("key_base64", f)
		case fValue:
			if d.f == formatRESTBinary {
				rec.value, err = d.base64("value", f)
			} else {
				rec.value, err = d.jsonValue()
			}
		case fValueBase64:
			rec.value, err = d.base64("value_base64", f)
		case fHeaders, fHeadersBase64:
			err = d.headers(f == fHeadersBase64, rec.hdrOff)
		case fPartition:
			var n int64
			var ok bool
			n, ok, err = d.integer("partition")
			if ok {
				if n < 0 || n >= int64(d.lim.partitions) {
					return d.fail(http.StatusNotFound, codeUnknownPartition, "partition %d does not exist; topic %q has %d partitions (0 to %d)",
						n, d.lim.topic, d.lim.partitions, d.lim.partitions-1)
				}
				rec.partition = int32(n)
			}
		case fTimestamp:
			var n int64
			var ok bool
			n, ok, err = d.integer("timestamp")
			if ok {
				if n < 0 {
					return d.fail(http.StatusUnprocessableEntity, 0, "timestamp %d is negative; want Unix milliseconds", n)
				}
				rec.timestamp = n
			}
		}
		if err != nil {
			return err
		}
		if d.lastNull {
			d.lastNull = false
		} else {
			given |= f
		}
	}
	if err := d.delim(); err != nil {
		return err
	}
	if given&(fKey|fKeyBase64) == fKey|fKeyBase64 {
		return d.shape("has both key and key_base64; give at most one")
	}
	if given&(fValue|fValueBase64) == fValue|fValueBase64 {
		return d.shape("has both value and value_base64; give at most one")
	}
	if fixed := d.lim.partition; fixed >= 0 {
		if rec.partition >= 0 && rec.partition != fixed {
			return d.fail(http.StatusUnprocessableEntity, 0, "partition %d conflicts with partition %d of the request path", rec.partition, fixed)
		}
		rec.partition = fixed
	}
	if rec.timestamp < 0 {
		rec.timestamp = d.lim.now
	}
	rec.hdrN = int32(len(p.hdrs)) - rec.hdrOff
	if size := recordSize(0, 0, rec.key.n, rec.value.n, p.hdrs[rec.hdrOff:]) + record.HeaderSize; size > d.lim.maxMessageBytes {
		return d.fail(http.StatusRequestEntityTooLarge, 0, "the record takes %d bytes as a batch of its own, more than topic %q's max.message.bytes of %d",
			size, d.lim.topic, d.lim.maxMessageBytes)
	}
	p.recs = append(p.recs, rec)
	p.body.bound = 0
	return nil
}

// text reads a string (stored as its UTF-8 bytes) or null.
func (d *bodyDecoder) text(field, hint string) (span, error) {
	if k := d.peek(); k != '"' {
		if done, err := d.nullOrEnd(k); done {
			return null, err
		}
		return null, d.shape("%s is %s; want a string or null%s", field, kindName(k), hint)
	}
	raw, err := d.value()
	if err != nil {
		return null, err
	}
	// The unquoted string is never longer than the quoted one.
	p := d.p
	c := p.room(len(raw))
	start := len(p.chunks[c])
	if bytes.IndexByte(raw, '\\') < 0 {
		p.chunks[c] = append(p.chunks[c], raw[1:len(raw)-1]...)
	} else if p.chunks[c], err = jsontext.AppendUnquote(p.chunks[c], raw); err != nil {
		return null, d.readErr(err)
	}
	return p.spanFrom(c, start), nil
}

// jsonValue reads any JSON value and stores it compacted; null is Kafka's
// null.
func (d *bodyDecoder) jsonValue() (span, error) {
	raw, err := d.value()
	if err != nil {
		return null, err
	}
	if string(raw) == "null" {
		return null, nil
	}
	p := d.p
	c := p.room(len(raw))
	start := len(p.chunks[c])
	p.chunks[c] = appendCompact(p.chunks[c], raw)
	return p.spanFrom(c, start), nil
}

// base64 reads a base64 string (standard alphabet, padded) or null and
// stores the bytes it encodes.
func (d *bodyDecoder) base64(field string, f int) (span, error) {
	if k := d.peek(); k != '"' {
		if done, err := d.nullOrEnd(k); done {
			return null, err
		}
		return null, d.fail(http.StatusBadRequest, fieldCode(f), "%s is %s; want a base64 string or null", field, kindName(k))
	}
	raw, err := d.value()
	if err != nil {
		return null, err
	}
	p := d.p
	s, err := d.unquote(&p.str, raw)
	if err != nil {
		return null, err
	}
	c := p.room(base64.StdEncoding.DecodedLen(len(s)))
	buf := p.chunks[c]
	start := len(buf)
	n, err := base64.StdEncoding.Decode(buf[start:start+base64.StdEncoding.DecodedLen(len(s))], s)
	if err != nil {
		return null, d.fail(http.StatusUnprocessableEntity, fieldCode(f), "%s is not valid base64 (standard alphabet, padded): %v", field, err)
	}
	p.chunks[c] = buf[:start+n]
	return p.spanFrom(c, start), nil
}

// headers reads a headers object (values are strings, or base64 strings
// when b64) or null, appending to d.p.hdrs. A name may appear once across
// a record's headers and headers_base64; from is the record's first header.
func (d *bodyDecoder) headers(b64 bool, from int32) error {
	field := "headers"
	if b64 {
		field = "headers_base64"
	}
	if k := d.peek(); k != '{' {
		if done, err := d.nullOrEnd(k); done {
			return err
		}
		return d.shape("%s is %s; want an object of header names to values", field, kindName(k))
	}
	if err := d.delim(); err != nil {
		return err
	}
	p := d.p
	for d.peek() != '}' {
		name, err := d.name()
		if err != nil {
			return err
		}
		if d.dupHeader(from, name) {
			return d.shape("%s: duplicate header %s", field, quoteName(name))
		}
		h := pendingHeader{key: string(name)}
		if b64 {
			h.value, err = d.base64(field+"."+h.key, fHeadersBase64)
		} else {
			h.value, err = d.text(field+"."+h.key, "; use headers_base64 for binary values")
		}
		if err != nil {
			return err
		}
		p.hdrs = append(p.hdrs, h)
	}
	return d.delim()
}

// dupHeader reports whether name is among the headers of the record that
// start at from, and otherwise counts it among them: the caller appends it
// next, or fails the request.
func (d *bodyDecoder) dupHeader(from int32, name []byte) bool {
	hs := d.p.hdrs[from:]
	if len(hs) < 16 {
		for _, h := range hs {
			if h.key == string(name) {
				return true
			}
		}
		return false
	}
	if d.hdrNames == nil || d.hdrFrom != from || len(d.hdrNames) != len(hs) {
		if d.hdrNames == nil {
			d.hdrNames = make(map[string]struct{}, 2*len(hs))
		}
		clear(d.hdrNames)
		for _, h := range hs {
			d.hdrNames[h.key] = struct{}{}
		}
		d.hdrFrom = from
	}
	if _, ok := d.hdrNames[string(name)]; ok {
		return true
	}
	d.hdrNames[string(name)] = struct{}{}
	return false
}

// integer reads an integer or null (ok is false for null).
func (d *bodyDecoder) integer(field string) (n int64, ok bool, err error) {
	if k := d.peek(); k != '0' {
		if done, err := d.nullOrEnd(k); done {
			return 0, false, err
		}
		return 0, false, d.shape("%s is %s; want an integer", field, kindName(k))
	}
	raw, err := d.value()
	if err != nil {
		return 0, false, err
	}
	n, ok = parseInt(raw)
	if !ok {
		return 0, false, d.fail(http.StatusUnprocessableEntity, 0, "%s %s is not an integer in the int64 range", field, raw)
	}
	return n, true, nil
}

// parseInt parses a JSON number that is an integer in the int64 range,
// written without fraction or exponent.
func parseInt(b []byte) (int64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	switch {
	case neg && n <= 1<<63:
		return -int64(n), true
	case !neg && n < 1<<63:
		return int64(n), true
	}
	return 0, false
}

// appendCompact appends v, a valid JSON value, without the whitespace
// outside its strings: what encoding/json's Compact does, without checking
// again what the decoder checked.
func appendCompact(dst, v []byte) []byte {
	// Many values are compact already. JSON strings hold no raw tab, CR
	// or LF, so a value without any of those bytes or spaces has no
	// whitespace to drop.
	if bytes.IndexByte(v, ' ') < 0 && bytes.IndexByte(v, '\n') < 0 && bytes.IndexByte(v, '\t') < 0 && bytes.IndexByte(v, '\r') < 0 {
		return append(dst, v...)
	}
	for len(v) > 0 {
		i := 0
		for i < len(v) && v[i] != '"' && !isSpace(v[i]) {
			i++
		}
		dst = append(dst, v[:i]...)
		v = v[i:]
		switch {
		case len(v) == 0:
		case v[0] == '"':
			end := stringEnd(v)
			dst = append(dst, v[:end]...)
			v = v[end:]
		default:
			v = v[1:]
		}
	}
	return dst
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// stringEnd returns the index just past the string v starts with.
func stringEnd(v []byte) int {
	i := 1
	for {
		j := bytes.IndexByte(v[i:], '"')
		if j < 0 {
			return len(v) // not reached for valid JSON
		}
		i += j
		backslashes := 0
		for k := i - 1; k > 0 && v[k] == '\\'; k-- {
			backslashes++
		}
		i++
		if backslashes%2 == 0 {
			return i
		}
	}
}

// recordSize is the encoded size of a record in a batch, with its length
// prefix: what record.AppendBatch writes for it at the given timestamp
// and offset deltas. keyLen and valueLen are -1 for null.
func recordSize(tsDelta int64, offsetDelta int32, keyLen, valueLen int32, hdrs []pendingHeader) int {
	body := 1 + kbin.VarlongLen(tsDelta) + kbin.VarintLen(offsetDelta) +
		bytesSize(keyLen) + bytesSize(valueLen) + kbin.VarintLen(int32(len(hdrs)))
	for _, h := range hdrs {
		body += kbin.VarintLen(int32(len(h.key))) + len(h.key) + bytesSize(h.value.n)
	}
	return kbin.VarintLen(int32(body)) + body
}

func bytesSize(n int32) int {
	if n < 0 {
		return 1
	}
	return kbin.VarintLen(n) + int(n)
}

// maxAdminBody bounds the JSON bodies of requests other than produce.
const maxAdminBody = 1 << 20

// jsonBodyError describes an encoding/json decoding error as a 4xx.
func jsonBodyError(err error) error {
	var (
		he      *Error
		synErr  *json.SyntaxError
		typeErr *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &he):
		return he
	case errors.As(err, &synErr):
		return errorf(http.StatusBadRequest, "malformed JSON at byte %d: %s", synErr.Offset, strings.TrimPrefix(synErr.Error(), "json: "))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errorf(http.StatusBadRequest, "malformed JSON: the body ends in the middle of a JSON value")
	case errors.As(err, &typeErr):
		if typeErr.Field == "" {
			return errorf(http.StatusBadRequest, "the body is a JSON %s; want an object", typeErr.Value)
		}
		return errorf(http.StatusBadRequest, "field %q is a JSON %s; want %s", typeErr.Field, typeErr.Value, jsonTypeName(typeErr.Type.Kind()))
	}
	// encoding/json reports unknown fields as `json: unknown field "x"`.
	return errorf(http.StatusBadRequest, "%s", strings.TrimPrefix(err.Error(), "json: "))
}

func jsonTypeName(k reflect.Kind) string {
	switch k {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return k.String()
}

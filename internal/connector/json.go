package connector

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// DecodeJSON parses one JSON value into nil, bool, int64 (numbers written
// without a fraction or exponent that fit), float64 (every other number),
// string, []any and map[string]any. Keeping integers exact matters: IDs and
// cents above 2^53 survive, and CEL sees int where the producer wrote one.
// The input must be exactly one value (whitespace around it aside), valid
// UTF-8, with no duplicate object names, no number beyond float64's range
// and at most 10,000 levels of nesting: a document that cannot be written
// back unchanged is refused here, as the record's fault, rather than
// failing later in a sink.
//
// This is the per-record cost of every pipeline that looks into values, so
// it is a scanner of its own over the bytes, in one pass, rather than a
// general tokenizer: several times faster than jsontext's tokens and ten
// times faster than encoding/json's reflection. Its tests hold it to
// jsontext's verdict, value for value, on every input the fuzzer finds.
func DecodeJSON(b []byte) (any, error) {
	var d JSONDecoder
	return d.Decode(b)
}

// JSONDecoder decodes documents as DecodeJSON does, reusing its state
// from one document to the next and sharing the strings of object names
// that repeat (every record of a topic has the same few), which saves most
// of the allocations of a small document. A JSONDecoder is used by one
// goroutine at a time; the zero value is ready to use.
type JSONDecoder struct {
	b     []byte
	i     int
	depth int
	names map[string]string
	used  bool
	buf   []byte // unescaped strings
	// share makes strings without escapes views of b (DecodeFields);
	// discard checks values without building them (RawFields).
	share, discard bool
	// others (or otherSet, when there are many) are the names of the
	// members DecodeFields drops.
	others   []string
	otherSet map[string]struct{}
}

// maxInternedNames bounds the names a JSONDecoder keeps: documents with
// ever-new names (maps keyed by IDs) must not grow it without bound.
const maxInternedNames = 4096

// maxJSONDepth is jsontext's nesting limit, kept so that what one accepts
// the other does.
const maxJSONDepth = 10000

// Decode parses one document; see DecodeJSON.
func (jd *JSONDecoder) Decode(b []byte) (any, error) {
	jd.start(b)
	defer func() { jd.b = nil }()
	v, err := jd.value()
	if err != nil {
		return nil, err
	}
	if err := jd.finish(); err != nil {
		return nil, err
	}
	return v, nil
}

// start readies jd for the document b, up to its first value.
func (jd *JSONDecoder) start(b []byte) {
	jd.b, jd.i, jd.depth = b, 0, 0
	if jd.used && jd.names == nil {
		// Reused: names are worth sharing from now on.
		jd.names = make(map[string]string)
	}
	jd.used = true
	jd.space()
}

// finish checks that nothing but space follows the top-level value.
func (jd *JSONDecoder) finish() error {
	jd.space()
	if jd.i < len(jd.b) {
		return jd.errorf("invalid JSON: data after the top-level value")
	}
	return nil
}

func (jd *JSONDecoder) errorf(format string, args ...any) error {
	return fmt.Errorf("%s at offset %d", fmt.Sprintf(format, args...), jd.i)
}

func (jd *JSONDecoder) eof() error {
	return fmt.Errorf("invalid JSON: unexpected EOF at offset %d", jd.i)
}

func (jd *JSONDecoder) space() {
	for jd.i < len(jd.b) {
		switch jd.b[jd.i] {
		case ' ', '\t', '\n', '\r':
			jd.i++
		default:
			return
		}
	}
}

func (jd *JSONDecoder) value() (any, error) {
	if jd.i >= len(jd.b) {
		return nil, jd.eof()
	}
	switch c := jd.b[jd.i]; {
	case c == '{':
		return jd.object()
	case c == '[':
		return jd.array()
	case c == '"':
		s, err := jd.str(false)
		if jd.discard {
			return nil, err // boxing s would allocate
		}
		return s, err
	case c == '-' || (c >= '0' && c <= '9'):
		return jd.number()
	case c == 't':
		return true, jd.literal("true")
	case c == 'f':
		return false, jd.literal("false")
	case c == 'n':
		return nil, jd.literal("null")
	default:
		return nil, jd.errorf("invalid JSON: invalid character %q at the start of a value", c)
	}
}

func (jd *JSONDecoder) literal(lit string) error {
	if len(jd.b)-jd.i < len(lit) {
		if string(jd.b[jd.i:]) == lit[:len(jd.b)-jd.i] {
			return jd.eof()
		}
		return jd.errorf("invalid JSON: invalid literal, want %s", lit)
	}
	if string(jd.b[jd.i:jd.i+len(lit)]) != lit {
		return jd.errorf("invalid JSON: invalid literal, want %s", lit)
	}
	jd.i += len(lit)
	return nil
}

func (jd *JSONDecoder) nest() error {
	jd.depth++
	if jd.depth > maxJSONDepth {
		return jd.errorf("invalid JSON: more than %d levels of nesting", maxJSONDepth)
	}
	return nil
}

func (jd *JSONDecoder) object() (any, error) {
	// Room for 8 members in the map's first group: most records' objects
	// are that small, and growing from nothing costs an allocation more.
	m := make(map[string]any, 8)
	err := jd.members(func(name string, _ []byte, v any) error {
		if _, dup := m[name]; dup {
			return fmt.Errorf("invalid JSON: duplicate object name %q", name)
		}
		m[name] = v
		return nil
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// members reads the object at jd.i, handing each member to put once its
// value is read, with the value's bytes.
func (jd *JSONDecoder) members(put func(name string, raw []byte, v any) error) error {
	if err := jd.nest(); err != nil {
		return err
	}
	jd.i++ // {
	jd.space()
	if jd.i < len(jd.b) && jd.b[jd.i] == '}' {
		jd.i++
		jd.depth--
		return nil
	}
	for {
		if jd.i >= len(jd.b) {
			return jd.eof()
		}
		if jd.b[jd.i] != '"' {
			return jd.errorf("invalid JSON: invalid character %q, want an object name", jd.b[jd.i])
		}
		name, err := jd.str(true)
		if err != nil {
			return err
		}
		jd.space()
		if jd.i >= len(jd.b) {
			return jd.eof()
		}
		if jd.b[jd.i] != ':' {
			return jd.errorf("invalid JSON: invalid character %q after an object name, want ':'", jd.b[jd.i])
		}
		jd.i++
		jd.space()
		start := jd.i
		v, err := jd.value()
		if err != nil {
			return err
		}
		if err := put(name, jd.b[start:jd.i], v); err != nil {
			return err
		}
		jd.space()
		if jd.i >= len(jd.b) {
			return jd.eof()
		}
		switch jd.b[jd.i] {
		case ',':
			jd.i++
			jd.space()
		case '}':
			jd.i++
			jd.depth--
			return nil
		default:
			return jd.errorf("invalid JSON: invalid character %q after an object member, want ',' or '}'", jd.b[jd.i])
		}
	}
}

// DecodeFields decodes a document that is a JSON object as Decode does,
// with the same verdict on every input, but keeps only some of its
// members: fields maps a member's name to its index in vals and found,
// which receive its value and true; the other members are read and
// dropped. This is the cheap way to read a record for a sink that writes
// named fields: no map is built, and the strings kept share b's bytes
// when they hold no escape, so b must not change while they are in use.
// ok is false, with nothing read, when the document is not an object
// (Decode tells what it is). vals and found must be as long as the
// largest index in fields; they are not cleared first.
func (jd *JSONDecoder) DecodeFields(b []byte, fields map[string]int, vals []any, found []bool) (ok bool, err error) {
	return jd.fields(b, fields, found, func(i int, _ []byte, v any) { vals[i] = v })
}

// RawFields is DecodeFields without decoding: raws[i] receives the bytes
// of the member's value (a view of b) instead. Every value is still
// checked as Decode checks it, so a nil error means the whole document
// decodes; scalars are checked without allocating.
func (jd *JSONDecoder) RawFields(b []byte, fields map[string]int, raws [][]byte, found []bool) (ok bool, err error) {
	jd.discard = true
	defer func() { jd.discard = false }()
	return jd.fields(b, fields, found, func(i int, raw []byte, _ any) { raws[i] = raw })
}

func (jd *JSONDecoder) fields(b []byte, fields map[string]int, found []bool, keep func(i int, raw []byte, v any)) (ok bool, err error) {
	jd.start(b)
	jd.share = true
	defer func() { jd.b, jd.share, jd.others, jd.otherSet = nil, false, jd.others[:0], nil }()
	if jd.i >= len(jd.b) || jd.b[jd.i] != '{' {
		return false, nil
	}
	err = jd.members(func(name string, raw []byte, v any) error {
		if i, ok := fields[name]; ok {
			if found[i] {
				return fmt.Errorf("invalid JSON: duplicate object name %q", name)
			}
			found[i] = true
			keep(i, raw, v)
			return nil
		}
		// Names not kept are remembered only to refuse duplicates, as
		// Decode does: in a list while there are few, as in most records.
		dup := false
		if jd.otherSet != nil {
			_, dup = jd.otherSet[name]
			jd.otherSet[name] = struct{}{}
		} else {
			dup = slices.Contains(jd.others, name)
			if jd.others = append(jd.others, name); len(jd.others) > 16 {
				jd.otherSet = make(map[string]struct{}, 2*len(jd.others))
				for _, n := range jd.others {
					jd.otherSet[n] = struct{}{}
				}
			}
		}
		if dup {
			return fmt.Errorf("invalid JSON: duplicate object name %q", name)
		}
		return nil
	})
	if err != nil {
		return true, err
	}
	return true, jd.finish()
}

func (jd *JSONDecoder) array() (any, error) {
	if err := jd.nest(); err != nil {
		return nil, err
	}
	jd.i++ // [
	a := make([]any, 0, 4)
	jd.space()
	if jd.i < len(jd.b) && jd.b[jd.i] == ']' {
		jd.i++
		jd.depth--
		return a, nil
	}
	for {
		v, err := jd.value()
		if err != nil {
			return nil, err
		}
		if !jd.discard {
			a = append(a, v)
		}
		jd.space()
		if jd.i >= len(jd.b) {
			return nil, jd.eof()
		}
		switch jd.b[jd.i] {
		case ',':
			jd.i++
			jd.space()
		case ']':
			jd.i++
			jd.depth--
			return a, nil
		default:
			return nil, jd.errorf("invalid JSON: invalid character %q after an array element, want ',' or ']'", jd.b[jd.i])
		}
	}
}

// str reads a string at jd.i (its opening quote). Names are shared with
// earlier documents' when they repeat.
func (jd *JSONDecoder) str(name bool) (string, error) {
	start := jd.i + 1
	// The common case: no escape, all ASCII.
	i := plainRun(jd.b, start)
	if i < len(jd.b) && jd.b[i] == '"' {
		raw := jd.b[start:i]
		jd.i = i + 1
		switch {
		case jd.discard && !name:
			return "", nil
		case jd.share:
			return unsafeString(raw), nil
		case name:
			return jd.intern(raw), nil
		}
		return string(raw), nil
	}
	// Escapes, control characters or UTF-8: the slow path, from the
	// start of the string.
	buf := jd.buf[:0]
	i = start
	for {
		if i >= len(jd.b) {
			jd.i = i
			return "", jd.eof()
		}
		c := jd.b[i]
		switch {
		case c == '"':
			jd.i = i + 1
			jd.buf = buf
			switch {
			case jd.discard && !name:
				return "", nil
			case name && !jd.share:
				return jd.intern(buf), nil
			}
			return string(buf), nil
		case c < 0x20:
			jd.i = i
			return "", jd.errorf("invalid JSON: invalid control character %q in a string", c)
		case c < utf8.RuneSelf && c != '\\':
			buf = append(buf, c)
			i++
		case c >= utf8.RuneSelf:
			r, n := utf8.DecodeRune(jd.b[i:])
			if r == utf8.RuneError && n == 1 {
				jd.i = i
				return "", jd.errorf("invalid JSON: invalid UTF-8 in a string")
			}
			buf = append(buf, jd.b[i:i+n]...)
			i += n
		default: // backslash
			if i+1 >= len(jd.b) {
				jd.i = i + 1
				return "", jd.eof()
			}
			e := jd.b[i+1]
			i += 2
			switch e {
			case '"', '\\', '/':
				buf = append(buf, e)
			case 'b':
				buf = append(buf, '\b')
			case 'f':
				buf = append(buf, '\f')
			case 'n':
				buf = append(buf, '\n')
			case 'r':
				buf = append(buf, '\r')
			case 't':
				buf = append(buf, '\t')
			case 'u':
				r, err := jd.hex4(i)
				if err != nil {
					return "", err
				}
				i += 4
				if utf16.IsSurrogate(r) {
					// A high surrogate must be followed by a low one.
					if r >= 0xdc00 || i+6 > len(jd.b) || jd.b[i] != '\\' || jd.b[i+1] != 'u' {
						jd.i = i
						return "", jd.errorf("invalid JSON: invalid surrogate pair in a string")
					}
					lo, err := jd.hex4(i + 2)
					if err != nil {
						return "", err
					}
					if lo < 0xdc00 || lo > 0xdfff {
						jd.i = i
						return "", jd.errorf("invalid JSON: invalid surrogate pair in a string")
					}
					r = utf16.DecodeRune(r, lo)
					i += 6
				}
				buf = utf8.AppendRune(buf, r)
			default:
				jd.i = i - 1
				return "", jd.errorf("invalid JSON: invalid escape %q in a string", e)
			}
		}
	}
}

// hex4 reads the 4 hex digits of a \u escape at i.
func (jd *JSONDecoder) hex4(i int) (rune, error) {
	if i+4 > len(jd.b) {
		for j := i; j < len(jd.b); j++ {
			if !isHex(jd.b[j]) {
				jd.i = j
				return 0, jd.errorf("invalid JSON: invalid \\u escape in a string")
			}
		}
		jd.i = len(jd.b)
		return 0, jd.eof()
	}
	var r rune
	for _, c := range jd.b[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			jd.i = i
			return 0, jd.errorf("invalid JSON: invalid \\u escape in a string")
		}
	}
	return r, nil
}

// PlainJSONString reports whether raw, a JSON value that decodes, is a
// string of plain ASCII without escapes: its text is the bytes between
// the quotes.
func PlainJSONString(raw []byte) bool {
	return len(raw) >= 2 && raw[0] == '"' && plainRun(raw, 1) == len(raw)-1
}

// plainRun returns the index of the first byte from i on that is not
// plainASCII (or len(b)), eight bytes at a time while it can.
func plainRun(b []byte, i int) int {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	for ; i+8 <= len(b); i += 8 {
		w := binary.LittleEndian.Uint64(b[i:])
		// (x - ones) &^ x has a byte's high bit set when some byte of x is
		// zero, and (x - n*ones) &^ x when some byte is below n (exact
		// while no byte has its high bit set, which w&highs catches).
		q, bs := w^(ones*'"'), w^(ones*'\\')
		special := (q-ones)&^q | (bs-ones)&^bs | (w-ones*0x20)&^w | w
		if special&highs != 0 {
			break
		}
	}
	for i < len(b) && plainASCII[b[i]] {
		i++
	}
	return i
}

// plainASCII marks the bytes a string holds as they are: not the quote,
// the backslash, a control character or the start of a UTF-8 sequence.
var plainASCII = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func (jd *JSONDecoder) intern(raw []byte) string {
	if s, ok := jd.names[string(raw)]; ok {
		return s
	}
	s := string(raw)
	if jd.names != nil && len(jd.names) < maxInternedNames {
		jd.names[s] = s
	}
	return s
}

// number reads a number: int64 when it is an integer that fits, else
// float64.
func (jd *JSONDecoder) number() (any, error) {
	start := jd.i
	i := start
	if jd.b[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(jd.b) && jd.b[i] >= '0' && jd.b[i] <= '9' {
			i++
			n++
		}
		return n
	}
	switch {
	case i >= len(jd.b):
		jd.i = i
		return nil, jd.eof()
	case jd.b[i] == '0':
		i++
	case jd.b[i] >= '1' && jd.b[i] <= '9':
		digits()
	default:
		jd.i = i
		return nil, jd.errorf("invalid JSON: invalid character %q in a number", jd.b[i])
	}
	// someDigits reads the digits a fraction or an exponent must have.
	someDigits := func() error {
		if digits() > 0 {
			return nil
		}
		jd.i = i
		if i >= len(jd.b) {
			return jd.eof()
		}
		return jd.errorf("invalid JSON: invalid character %q in a number", jd.b[i])
	}
	integer := true
	if i < len(jd.b) && jd.b[i] == '.' {
		integer = false
		i++
		if err := someDigits(); err != nil {
			return nil, err
		}
	}
	if i < len(jd.b) && (jd.b[i] == 'e' || jd.b[i] == 'E') {
		integer = false
		i++
		if i < len(jd.b) && (jd.b[i] == '+' || jd.b[i] == '-') {
			i++
		}
		if err := someDigits(); err != nil {
			return nil, err
		}
	}
	raw := jd.b[start:i]
	jd.i = i
	if integer {
		if n, ok := parseInt64(raw); ok {
			if jd.discard {
				return nil, nil // boxing n would allocate
			}
			return n, nil
		}
	}
	f, err := strconv.ParseFloat(unsafeString(raw), 64)
	if err != nil {
		return nil, fmt.Errorf("JSON number %.40s is out of range", raw)
	}
	if jd.discard {
		return nil, nil
	}
	return f, nil
}

// JSONInt reads raw, a JSON number that decodes, as DecodeJSON does an
// integer: ok when it is written without a fraction or an exponent and
// fits an int64.
func JSONInt(raw []byte) (int64, bool) {
	if bytes.ContainsAny(raw, ".eE") {
		return 0, false
	}
	return parseInt64(raw)
}

// JSONFloat reads raw, a JSON number that decodes, as a float64.
func JSONFloat(raw []byte) (float64, error) { return strconv.ParseFloat(unsafeString(raw), 64) }

// parseInt64 parses an optionally negative run of digits, reporting
// whether it fits.
func parseInt64(raw []byte) (int64, bool) {
	neg := raw[0] == '-'
	if neg {
		raw = raw[1:]
	}
	if len(raw) > 19 {
		return 0, false
	}
	var u uint64
	for _, c := range raw {
		u = u*10 + uint64(c-'0')
	}
	// 19 digits are below 10^19, which fits in a uint64.
	switch {
	case neg && u <= 1<<63:
		return -int64(u), true
	case !neg && u < 1<<63:
		return int64(u), true
	}
	return 0, false
}

// unsafeString views b as a string for a call that does not keep it.
func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// EncodeJSON encodes a document of DecodeJSON's types (and the other types
// encoding/json takes: processors produce uint64, int and []byte too)
// compactly, without escaping <, > and &. Non-finite floats, which JSON
// cannot hold, are an error.
func EncodeJSON(v any) ([]byte, error) {
	if err := checkFinite(v); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	e := json.NewEncoder(&buf)
	e.SetEscapeHTML(false)
	if err := e.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func checkFinite(v any) error {
	switch t := v.(type) {
	case float64:
		if math.IsInf(t, 0) || math.IsNaN(t) {
			return fmt.Errorf("JSON cannot hold the number %v", t)
		}
	case map[string]any:
		for _, e := range t {
			if err := checkFinite(e); err != nil {
				return err
			}
		}
	case []any:
		for _, e := range t {
			if err := checkFinite(e); err != nil {
				return err
			}
		}
	}
	return nil
}

// CloneJSON deep-copies the maps and slices of a document.
func CloneJSON(v any) any {
	switch t := v.(type) {
	case map[string]any:
		c := make(map[string]any, len(t))
		for k, e := range t {
			c[k] = CloneJSON(e)
		}
		return c
	case []any:
		c := make([]any, len(t))
		for i, e := range t {
			c[i] = CloneJSON(e)
		}
		return c
	}
	return v
}

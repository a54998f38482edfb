package postgres

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/sluice-dev/sluice/internal/connector"
)

// kind is how a column's values are converted: to the Go type that pgx
// encodes in binary for the column's (base) type, or, for every other
// type, to text that the server casts (kindOther).
type kind uint8

const (
	kindOther kind = iota
	kindBool
	kindInt2
	kindInt4
	kindInt8
	kindFloat4
	kindFloat8
	kindNumeric
	kindText
	kindJSON
	kindUUID
	kindTimestamptz
	kindTimestamp
	kindDate
	kindBytea
	kindArray // of a kind above but kindOther and kindArray
)

func kindOf(oid uint32) kind {
	switch oid {
	case pgtype.BoolOID:
		return kindBool
	case pgtype.Int2OID:
		return kindInt2
	case pgtype.Int4OID:
		return kindInt4
	case pgtype.Int8OID:
		return kindInt8
	case pgtype.Float4OID:
		return kindFloat4
	case pgtype.Float8OID:
		return kindFloat8
	case pgtype.NumericOID:
		return kindNumeric
	case pgtype.TextOID, pgtype.VarcharOID, pgtype.BPCharOID, pgtype.NameOID:
		return kindText
	case pgtype.JSONOID, pgtype.JSONBOID:
		return kindJSON
	case pgtype.UUIDOID:
		return kindUUID
	case pgtype.TimestamptzOID:
		return kindTimestamptz
	case pgtype.TimestampOID:
		return kindTimestamp
	case pgtype.DateOID:
		return kindDate
	case pgtype.ByteaOID:
		return kindBytea
	}
	return kindOther
}

// convert turns a document value (DecodeJSON's types, plus what processors
// and the special sources produce: int, uint64, []byte, time.Time) into
// what pgx encodes for a column of kind k (elem for arrays). nil is NULL.
// An error is the record's fault: the value does not fit the column.
func convert(k, elem kind, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	if b, ok := v.([]byte); ok && k != kindBytea && k != kindJSON {
		v = string(b)
	}
	switch k {
	case kindBool:
		return toBool(v)
	case kindInt2:
		return toIntRange(v, math.MinInt16, math.MaxInt16, "smallint")
	case kindInt4:
		return toIntRange(v, math.MinInt32, math.MaxInt32, "integer")
	case kindInt8:
		return toInt(v)
	case kindFloat4:
		f, err := toFloat(v)
		if err == nil && !math.IsInf(f, 0) && math.Abs(f) > math.MaxFloat32 {
			return nil, fmt.Errorf("%v is out of range for type real", f)
		}
		return f, err
	case kindFloat8:
		if _, ok := v.(float64); ok {
			return v, nil // as it is: boxing it again would allocate
		}
		return toFloat(v)
	case kindNumeric:
		return toNumeric(v)
	case kindText:
		return toText(v)
	case kindJSON:
		b, err := connector.EncodeJSON(v)
		if err != nil {
			return nil, err
		}
		return b, nil
	case kindUUID:
		return toUUID(v)
	case kindTimestamptz:
		return toTime(v, false)
	case kindTimestamp:
		t, err := toTime(v, false)
		switch tt := t.(type) {
		case time.Time:
			// pgx writes a timestamp's wall clock: make it UTC's.
			return tt.UTC(), err
		case pgtype.Timestamptz:
			return pgtype.Timestamp{InfinityModifier: tt.InfinityModifier, Valid: true}, err
		}
		return t, err
	case kindDate:
		return toTime(v, true)
	case kindBytea:
		return toBytes(v)
	case kindArray:
		a, ok := v.([]any)
		if !ok {
			return nil, fmt.Errorf("%s is not an array", describe(v))
		}
		out := make([]any, len(a))
		for i, e := range a {
			if _, nested := e.([]any); nested {
				return nil, fmt.Errorf("element %d: nested arrays are not supported", i)
			}
			c, err := convert(elem, kindOther, e)
			if err != nil {
				return nil, fmt.Errorf("element %d: %w", i, err)
			}
			out[i] = c
		}
		return out, nil
	}
	return toOther(v)
}

// describe names a value in an error, briefly.
func describe(v any) string {
	switch t := v.(type) {
	case string:
		if len(t) > 40 {
			return strconv.Quote(t[:40]) + "..."
		}
		return strconv.Quote(t)
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case bool:
		return strconv.FormatBool(t)
	case time.Time:
		return t.Format(time.RFC3339Nano)
	}
	return fmt.Sprint(v)
}

func toBool(v any) (any, error) {
	switch t := v.(type) {
	case bool:
		return t, nil
	case int64:
		if t == 0 || t == 1 {
			return t == 1, nil
		}
	case string:
		switch strings.ToLower(strings.TrimSpace(t)) {
		case "t", "true", "y", "yes", "on", "1":
			return true, nil
		case "f", "false", "n", "no", "off", "0":
			return false, nil
		}
	}
	return nil, fmt.Errorf("%s is not a boolean", describe(v))
}

// 2^63 as a float64: the first float beyond int64's range.
const twoTo63 = 9223372036854775808.0

func toInt(v any) (any, error) {
	switch t := v.(type) {
	case int64:
		return v, nil // as it is: boxing t again would allocate
	case int:
		return int64(t), nil
	case int32:
		return int64(t), nil
	case uint64:
		if t > math.MaxInt64 {
			return nil, fmt.Errorf("%d is out of range for type bigint", t)
		}
		return int64(t), nil
	case float64:
		if t != math.Trunc(t) {
			return nil, fmt.Errorf("%v is not an integer", t)
		}
		if t < -twoTo63 || t >= twoTo63 {
			return nil, fmt.Errorf("%v is out of range for type bigint", t)
		}
		return int64(t), nil
	case string:
		s := strings.TrimSpace(t)
		i, err := strconv.ParseInt(s, 10, 64)
		if err == nil {
			return i, nil
		}
		if errors.Is(err, strconv.ErrRange) {
			return nil, fmt.Errorf("%s is out of range for type bigint", describe(v))
		}
	}
	return nil, fmt.Errorf("%s is not an integer", describe(v))
}

func toIntRange(v any, lo, hi int64, typ string) (any, error) {
	i, err := toInt(v)
	if err != nil {
		return nil, err
	}
	if n := i.(int64); n < lo || n > hi {
		return nil, fmt.Errorf("%d is out of range for type %s", n, typ)
	}
	return i, nil
}

func toFloat(v any) (float64, error) {
	switch t := v.(type) {
	case float64:
		return t, nil
	case int64:
		return float64(t), nil
	case int:
		return float64(t), nil
	case uint64:
		return float64(t), nil
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(t), 64)
		if err == nil {
			return f, nil
		}
		if errors.Is(err, strconv.ErrRange) {
			return 0, fmt.Errorf("%s is out of range for type double precision", describe(v))
		}
	}
	return 0, fmt.Errorf("%s is not a number", describe(v))
}

var numericSyntax = regexp.MustCompile(`^[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?$`)

// The limits of PostgreSQL's numeric: digits before and after the point.
const (
	numericMaxWeight = 131072
	numericMaxScale  = 16383
)

func toNumeric(v any) (any, error) {
	var s string
	switch t := v.(type) {
	case int64:
		return pgtype.Numeric{Int: big.NewInt(t), Valid: true}, nil
	case int:
		return pgtype.Numeric{Int: big.NewInt(int64(t)), Valid: true}, nil
	case uint64:
		return pgtype.Numeric{Int: new(big.Int).SetUint64(t), Valid: true}, nil
	case float64:
		if math.IsNaN(t) {
			return pgtype.Numeric{NaN: true, Valid: true}, nil
		}
		if math.IsInf(t, 0) {
			return infiniteNumeric(t > 0), nil
		}
		s = strconv.FormatFloat(t, 'g', -1, 64)
	case string:
		s = strings.TrimSpace(t)
		switch strings.ToLower(s) {
		case "nan":
			return pgtype.Numeric{NaN: true, Valid: true}, nil
		case "infinity", "+infinity", "inf", "+inf":
			return infiniteNumeric(true), nil
		case "-infinity", "-inf":
			return infiniteNumeric(false), nil
		}
		if !numericSyntax.MatchString(s) {
			return nil, fmt.Errorf("%s is not a number", describe(v))
		}
	default:
		return nil, fmt.Errorf("%s is not a number", describe(v))
	}
	s = strings.TrimPrefix(s, "+")
	var n pgtype.Numeric
	if err := n.ScanScientific(s); err != nil {
		return nil, fmt.Errorf("%s is not a number: %v", describe(v), err)
	}
	if digits := int64(len(n.Int.String())) + int64(n.Exp); digits > numericMaxWeight || n.Exp < -numericMaxScale {
		return nil, fmt.Errorf("%s is out of range for type numeric", describe(v))
	}
	return n, nil
}

func infiniteNumeric(positive bool) pgtype.Numeric {
	if positive {
		return pgtype.Numeric{InfinityModifier: pgtype.Infinity, Valid: true}
	}
	return pgtype.Numeric{InfinityModifier: pgtype.NegativeInfinity, Valid: true}
}

func toText(v any) (any, error) {
	var s string
	switch t := v.(type) {
	case string:
		s = t
	case time.Time:
		return t.Format(time.RFC3339Nano), nil
	default:
		b, err := connector.EncodeJSON(v)
		if err != nil {
			return nil, err
		}
		return string(b), nil
	}
	// The server refuses both, with a less helpful message.
	if !utf8.ValidString(s) {
		return nil, errors.New("text is not valid UTF-8")
	}
	if strings.IndexByte(s, 0) >= 0 {
		return nil, errors.New("text contains a NUL character, which PostgreSQL cannot store")
	}
	return v, nil // the string as it came, not boxed again
}

func toUUID(v any) (any, error) {
	switch t := v.(type) {
	case [16]byte:
		return t, nil
	case string:
		s := strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(t), "{"), "}")
		s = strings.ReplaceAll(s, "-", "")
		var u [16]byte
		if len(s) == 32 {
			if _, err := hex.Decode(u[:], []byte(s)); err == nil {
				return u, nil
			}
		}
	}
	return nil, fmt.Errorf("%s is not a UUID", describe(v))
}

// timeLayouts are what a time may be written as: RFC 3339 (with a T or a
// space, with or without a zone, taken as UTC when there is none) or a
// date alone (midnight UTC).
var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999Z0700",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999Z0700",
	"2006-01-02 15:04:05.999999999Z07",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02",
}

// toTime converts RFC 3339 text, epoch milliseconds and time.Time. For a
// date the day is the one written (in the text's zone), or UTC's for
// epoch milliseconds.
func toTime(v any, date bool) (any, error) {
	var t time.Time
	switch x := v.(type) {
	case time.Time:
		t = x
		if date {
			t = t.UTC()
		}
	case int64:
		t = time.UnixMilli(x).UTC()
	case float64:
		if x != x || math.Abs(x) > 1e16 {
			return nil, fmt.Errorf("%v is out of range for epoch milliseconds", x)
		}
		t = time.UnixMicro(int64(math.Round(x * 1000))).UTC()
	case string:
		s := strings.TrimSpace(x)
		switch strings.ToLower(s) {
		case "infinity", "+infinity":
			if date {
				return pgtype.Date{InfinityModifier: pgtype.Infinity, Valid: true}, nil
			}
			return pgtype.Timestamptz{InfinityModifier: pgtype.Infinity, Valid: true}, nil
		case "-infinity":
			if date {
				return pgtype.Date{InfinityModifier: pgtype.NegativeInfinity, Valid: true}, nil
			}
			return pgtype.Timestamptz{InfinityModifier: pgtype.NegativeInfinity, Valid: true}, nil
		}
		ok := false
		for _, layout := range timeLayouts {
			if p, err := time.Parse(layout, s); err == nil {
				t, ok = p, true
				break
			}
		}
		if !ok {
			return nil, fmt.Errorf("%s is not an RFC 3339 time or date", describe(v))
		}
	default:
		return nil, fmt.Errorf("%s is not a time: want RFC 3339 text or epoch milliseconds", describe(v))
	}
	// PostgreSQL's range is 4713 BC to 294276 AD (5874897 AD for dates).
	if y := t.Year(); y < -4712 || y > 294276 {
		return nil, fmt.Errorf("%s is out of range for a PostgreSQL time", describe(v))
	}
	return t, nil
}

// toBytes takes bytes as they are, and text as base64 (as encoding/json
// writes []byte) or as PostgreSQL's \x hex.
func toBytes(v any) (any, error) {
	switch t := v.(type) {
	case []byte:
		return t, nil
	case string:
		if h, ok := strings.CutPrefix(t, `\x`); ok {
			b, err := hex.DecodeString(h)
			if err != nil {
				return nil, fmt.Errorf(`%s is not \x hex: %v`, describe(v), err)
			}
			return b, nil
		}
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
			if b, err := enc.DecodeString(t); err == nil {
				return b, nil
			}
		}
		return nil, fmt.Errorf(`%s is neither base64 nor \x hex`, describe(v))
	}
	return nil, fmt.Errorf("%s is not bytes: want base64 or \\x hex text", describe(v))
}

// toOther is the text of a value for a type this package does not
// convert itself (interval, inet, an enum, citext, ...): the server casts
// it, and refuses what does not parse. Arrays become array literals.
func toOther(v any) (any, error) {
	switch t := v.(type) {
	case string:
		return toText(t)
	case time.Time:
		return t.Format(time.RFC3339Nano), nil
	case []any:
		var b strings.Builder
		if err := arrayLiteral(&b, t); err != nil {
			return nil, err
		}
		return toText(b.String())
	}
	return toText(v)
}

func arrayLiteral(b *strings.Builder, a []any) error {
	b.WriteByte('{')
	for i, e := range a {
		if i > 0 {
			b.WriteByte(',')
		}
		switch t := e.(type) {
		case nil:
			b.WriteString("NULL")
		case []any:
			if err := arrayLiteral(b, t); err != nil {
				return err
			}
		default:
			s, err := toOther(e)
			if err != nil {
				return err
			}
			b.WriteByte('"')
			for _, r := range s.(string) {
				if r == '"' || r == '\\' {
					b.WriteByte('\\')
				}
				b.WriteRune(r)
			}
			b.WriteByte('"')
		}
	}
	b.WriteByte('}')
	return nil
}

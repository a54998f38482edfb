package postgres

import (
	"bytes"
	"testing"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/sluice-dev/sluice/internal/connector"
)

// checkPlain holds appendPlain to the general way: where it writes a
// value, convert accepts the decoded value and pgx encodes the result to
// the same bytes (length included).
func checkPlain(t *testing.T, types *pgtype.Map, raw []byte) {
	t.Helper()
	doc, err := connector.DecodeJSON(raw)
	if err != nil {
		return // RawFields refuses it before appendPlain sees it
	}
	// appendPlain sees a member's bytes, without the space around them.
	raw = bytes.TrimSpace(raw)
	for _, c := range []struct {
		k   kind
		oid uint32
	}{
		{kindText, pgtype.TextOID}, {kindInt8, pgtype.Int8OID}, {kindInt4, pgtype.Int4OID}, {kindInt2, pgtype.Int2OID},
		{kindFloat8, pgtype.Float8OID}, {kindBool, pgtype.BoolOID}, {kindNumeric, pgtype.NumericOID}, {kindJSON, pgtype.JSONBOID},
	} {
		got, ok := appendPlain([]byte("x"), c.k, raw)
		if !ok {
			if !bytes.Equal(got, []byte("x")) {
				t.Fatalf("%s into kind %d: not written, but the buffer became %q", raw, c.k, got)
			}
			continue
		}
		v, err := convert(c.k, kindOther, doc)
		if err != nil {
			t.Fatalf("%s into kind %d: written as %q, but convert refuses it: %v", raw, c.k, got[1:], err)
		}
		cr := &copyRows{types: types}
		want, err := cr.appendEncoded([]byte("x"), &target{column: column{kind: c.k, oid: c.oid}}, v)
		if err != nil {
			t.Fatalf("%s into kind %d: pgx cannot encode %#v: %v", raw, c.k, v, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%s into kind %d: written %x; the general way writes %x", raw, c.k, got, want)
		}
	}
}

func TestAppendPlain(t *testing.T) {
	types := pgtype.NewMap()
	for _, raw := range []string{
		`null`, `"abc"`, `""`, `"a\"b"`, `"\u00e9"`, "\"\u00e9\"", `"12"`, `"true"`,
		`0`, `-0`, `123`, `-9223372036854775808`, `9223372036854775807`, `9223372036854775808`,
		`2147483647`, `2147483648`, `-2147483648`, `-2147483649`, `32767`, `32768`, `-32768`, `-32769`,
		`1.5`, `1e3`, `-0.0`, `1E-7`, `12345678901234567890123`, `0.1`, `true`, `false`, `[1]`, `{"a":1}`,
	} {
		checkPlain(t, types, []byte(raw))
	}
}

func FuzzAppendPlain(f *testing.F) {
	for _, s := range []string{`null`, `"abc"`, `-0`, `9223372036854775808`, `1e3`, `true`, `"\u0000"`} {
		f.Add([]byte(s))
	}
	types := pgtype.NewMap()
	f.Fuzz(func(t *testing.T, raw []byte) { checkPlain(t, types, raw) })
}

package postgres

import (
	"bytes"
	"io"
	"strings"
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

// TestCopyRowsReads checks that the COPY data is the same however pgconn
// reads it, rows split across reads included, and that records which do
// not convert or miss a defaulted field are left out and listed.
func TestCopyRowsReads(t *testing.T) {
	tbl := &table{targets: []target{
		{column: column{name: "id", kind: kindInt8, oid: pgtype.Int8OID}, src: source{path: []string{"id"}}},
		{column: column{name: "note", kind: kindText, oid: pgtype.TextOID, hasDefault: true}, src: source{path: []string{"note"}}},
	}}
	tbl.fields = map[string]int{"id": 0, "note": 1}
	tbl.members = []string{"id", "note"}
	tbl.targets[1].member = 1
	var records []*connector.Record
	for _, v := range []string{`{"id":1,"note":"a"}`, `{"id":"x","note":"b"}`, `{"id":3}`, `{"id":4,"note":"` + strings.Repeat("n", 300) + `"}`} {
		records = append(records, connector.NewRecord([]byte(v)))
	}
	read := func(size int) ([]byte, *copyRows) {
		s := &Sink{cfg: Config{}}
		c := newCopyRows(s.extractor(tbl), pgtype.NewMap(), records)
		var out []byte
		p := make([]byte, size)
		for {
			n, err := c.Read(p)
			out = append(out, p[:n]...)
			if err == io.EOF {
				return out, c
			}
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	whole, c := read(1 << 16)
	if len(c.rejected) != 1 || c.rejected[0].Record != records[1] {
		t.Errorf("rejected %v, want the record with id \"x\"", c.rejected)
	}
	if len(c.rest) != 1 || c.rest[0] != records[2] {
		t.Errorf("rest %v, want the record without a note", c.rest)
	}
	if !bytes.HasPrefix(whole, copySignature) || !bytes.HasSuffix(whole, []byte{0xff, 0xff}) {
		t.Fatalf("COPY data %q lacks the signature or the trailer", whole)
	}
	for _, size := range []int{1, 7, 64, 301} {
		if got, _ := read(size); !bytes.Equal(got, whole) {
			t.Errorf("read %d bytes at a time: got %d bytes, want the %d of one read", size, len(got), len(whole))
		}
	}
}

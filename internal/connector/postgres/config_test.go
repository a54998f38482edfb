package postgres

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/sluice-dev/sluice/internal/connector"
)

func TestValidate(t *testing.T) {
	const dsn = "postgres://u@localhost/db"
	tests := []struct {
		name string
		cfg  Config
		want []string // substrings of the error; none: valid
	}{
		{"minimal", Config{DSN: dsn, Table: "orders"}, nil},
		{"schema and upsert", Config{DSN: dsn, Table: "sales.Orders", Mode: "upsert", Key: []string{"id"}}, nil},
		{"columns", Config{DSN: dsn, Table: "t", Mode: "upsert", Key: []string{"id"},
			Columns: map[string]string{"id": "$key", "ts": "$timestamp", "c": "customer.id", "o": "$offset", "p": "$partition", "topic": "$topic"}}, nil},
		{"kv dsn", Config{DSN: "host=h1,h2 dbname=db target_session_attrs=read-write", Table: "t"}, nil},
		{"empty", Config{}, []string{"dsn: required", "table: required"}},
		{"mode", Config{DSN: dsn, Table: "t", Mode: "upsrt"}, []string{`mode: "upsrt": want insert or upsert`}},
		{"upsert without key", Config{DSN: dsn, Table: "t", Mode: "upsert"}, []string{"key: required in upsert mode"}},
		{"table syntax", Config{DSN: dsn, Table: "a.b.c"}, []string{`table: "a.b.c": want "name" or "schema.name"`}},
		{"table chars", Config{DSN: dsn, Table: "orders; drop"}, []string{`table: "orders; drop": want letters, digits`}},
		{"table digit", Config{DSN: dsn, Table: "1t"}, []string{`table: "1t"`}},
		{"table long", Config{DSN: dsn, Table: strings.Repeat("t", 64)}, []string{"longer than 63 bytes"}},
		{"key twice", Config{DSN: dsn, Table: "t", Mode: "upsert", Key: []string{"id", "id"}}, []string{`key: "id" named twice`}},
		{"key not in columns", Config{DSN: dsn, Table: "t", Mode: "upsert", Key: []string{"id"}, Columns: map[string]string{"x": "x"}},
			[]string{`key: "id" is not among columns`}},
		{"bad source", Config{DSN: dsn, Table: "t", Columns: map[string]string{"x": "$kye"}}, []string{`columns: x: "$kye": unknown source`}},
		{"empty path element", Config{DSN: dsn, Table: "t", Columns: map[string]string{"x": "a..b"}}, []string{"empty element"}},
		{"bad column name", Config{DSN: dsn, Table: "t", Columns: map[string]string{"x y": "a"}}, []string{`columns: "x y"`}},
		{"empty columns", Config{DSN: dsn, Table: "t", Columns: map[string]string{}}, []string{"columns: empty"}},
		{"max connections", Config{DSN: dsn, Table: "t", MaxConnections: -1}, []string{"maxConnections: -1"}},
		{"bad dsn", Config{DSN: "postgres://u:hunter2@h:notaport/db", Table: "t"}, []string{"dsn: cannot parse"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("got %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("got nil, want an error with %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("got %q, want it to contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("got %q, which contains the password", err)
			}
		})
	}
}

func TestNewInvalid(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name string
		opts Options
		want string
	}{
		{"config", Options{Config: Config{DSN: "postgres://x@h/db", Table: "t", Mode: "upsrt"}, Pipeline: "p"}, `postgres: invalid config: mode: "upsrt"`},
		{"pipeline", Options{Config: Config{DSN: "postgres://x@h/db", Table: "t"}}, "pipeline: required"},
		{"dsn with password", Options{Config: Config{DSN: "postgres://u:s3cr3t-pw@h:99999999/db", Table: "t"}, Pipeline: "p"}, "dsn: cannot parse"},
		{"kv dsn with password", Options{Config: Config{DSN: "host=h port=x password=s3cr3t-pw", Table: "t"}, Pipeline: "p"}, "dsn: cannot parse"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(ctx, tt.opts)
			if err == nil {
				s.Close(ctx)
				t.Fatalf("got nil, want an error with %q", tt.want)
			}
			if !errors.Is(err, connector.ErrPermanent) {
				t.Errorf("got %v, want it to wrap ErrPermanent", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %q, want it to contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "s3cr3t-pw") {
				t.Errorf("got %q, which contains the password", err)
			}
		})
	}
}

func TestConvert(t *testing.T) {
	ts := time.Date(2024, 5, 6, 7, 8, 9, 123000000, time.UTC)
	tests := []struct {
		kind    kind
		elem    kind
		in      any
		want    any
		wantErr string
	}{
		{kindInt8, 0, int64(42), int64(42), ""},
		{kindInt8, 0, 42.0, int64(42), ""},
		{kindInt8, 0, "42", int64(42), ""},
		{kindInt8, 0, 1.5, nil, "1.5 is not an integer"},
		{kindInt8, 0, "x", nil, `"x" is not an integer`},
		{kindInt8, 0, 1e19, nil, "out of range for type bigint"},
		{kindInt8, 0, map[string]any{}, nil, "an object is not an integer"},
		{kindInt4, 0, int64(math.MaxInt32 + 1), nil, "out of range for type integer"},
		{kindInt2, 0, int64(-40000), nil, "out of range for type smallint"},
		{kindFloat8, 0, int64(3), 3.0, ""},
		{kindFloat8, 0, "2.5", 2.5, ""},
		{kindFloat8, 0, true, nil, "true is not a number"},
		{kindFloat4, 0, 1e300, nil, "out of range for type real"},
		{kindBool, 0, true, true, ""},
		{kindBool, 0, "yes", true, ""},
		{kindBool, 0, int64(2), nil, "2 is not a boolean"},
		{kindText, 0, "héllo", "héllo", ""},
		{kindText, 0, int64(7), "7", ""},
		{kindText, 0, map[string]any{"a": int64(1)}, `{"a":1}`, ""},
		{kindText, 0, "a\x00b", nil, "NUL"},
		{kindText, 0, "\xff", nil, "not valid UTF-8"},
		{kindJSON, 0, map[string]any{"a": []any{int64(1), "x"}}, []byte(`{"a":[1,"x"]}`), ""},
		{kindJSON, 0, "s", []byte(`"s"`), ""},
		{kindUUID, 0, "123e4567-e89b-12d3-a456-426614174000", [16]byte{0x12, 0x3e, 0x45, 0x67, 0xe8, 0x9b, 0x12, 0xd3, 0xa4, 0x56, 0x42, 0x66, 0x14, 0x17, 0x40, 0x00}, ""},
		{kindUUID, 0, "not-a-uuid", nil, "is not a UUID"},
		{kindTimestamptz, 0, "2024-05-06T07:08:09.123Z", ts, ""},
		{kindTimestamptz, 0, "2024-05-06T09:08:09.123+02:00", ts, ""},
		{kindTimestamptz, 0, ts.UnixMilli(), ts, ""},
		{kindTimestamptz, 0, "yesterday", nil, "not an RFC 3339 time"},
		{kindTimestamptz, 0, int64(math.MaxInt64), nil, "out of range"},
		{kindTimestamp, 0, "2024-05-06T09:08:09.123+02:00", ts, ""},
		{kindDate, 0, "2024-05-06", time.Date(2024, 5, 6, 0, 0, 0, 0, time.UTC), ""},
		{kindBytea, 0, "aGVsbG8=", []byte("hello"), ""},
		{kindBytea, 0, `\x6869`, []byte("hi"), ""},
		{kindBytea, 0, "!!", nil, "neither base64 nor"},
		{kindArray, kindInt8, []any{int64(1), nil, "3"}, []any{int64(1), nil, int64(3)}, ""},
		{kindArray, kindInt8, []any{"x"}, nil, `element 0: "x" is not an integer`},
		{kindArray, kindInt8, int64(1), nil, "is not an array"},
		{kindOther, 0, "1 hour", "1 hour", ""},
		{kindOther, 0, []any{"a", `b"c`, nil}, `{"a","b\"c",NULL}`, ""},
		{kindInt8, 0, nil, nil, ""},
	}
	for _, tt := range tests {
		got, err := convert(tt.kind, tt.elem, tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("convert(%d, %#v): got error %v, want one with %q", tt.kind, tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("convert(%d, %#v): got error %v, want %#v", tt.kind, tt.in, err, tt.want)
			continue
		}
		if tm, ok := got.(time.Time); ok {
			if want, _ := tt.want.(time.Time); !tm.Equal(want) || (tt.kind == kindTimestamp && tm.Location() != time.UTC) {
				t.Errorf("convert(%d, %#v): got %v, want %v", tt.kind, tt.in, tm, want)
			}
			continue
		}
		if !equalValue(got, tt.want) {
			t.Errorf("convert(%d, %#v): got %#v, want %#v", tt.kind, tt.in, got, tt.want)
		}
	}
}

func TestConvertNumeric(t *testing.T) {
	for _, tt := range []struct {
		in      any
		want    string
		wantErr string
	}{
		{int64(12), "12", ""},
		{"12.50", "12.50", ""},
		{"-1.5e3", "-1500", ""},
		{2.25, "2.25", ""},
		{"NaN", "NaN", ""},
		{"12,5", "", "is not a number"},
		{"1e200000", "", "out of range"},
		{"1e-20000", "", "out of range"},
	} {
		got, err := convert(kindNumeric, 0, tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("numeric %#v: got error %v, want one with %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("numeric %#v: got error %v", tt.in, err)
			continue
		}
		n := got.(pgtype.Numeric)
		v, err := n.Value()
		if err != nil {
			t.Fatal(err)
		}
		// Compare as numbers: "-1500" may come back as "-15E+2".
		var want, have pgtype.Numeric
		if err := want.Scan(tt.want); err != nil {
			t.Fatal(err)
		}
		if err := have.Scan(v); err != nil {
			t.Fatal(err)
		}
		wf, _ := want.Float64Value()
		hf, _ := have.Float64Value()
		if wf != hf && !(math.IsNaN(wf.Float64) && math.IsNaN(hf.Float64)) {
			t.Errorf("numeric %#v: got %v, want %s", tt.in, v, tt.want)
		}
	}
}

func equalValue(a, b any) bool {
	switch x := a.(type) {
	case []byte:
		y, ok := b.([]byte)
		return ok && string(x) == string(y)
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equalValue(x[i], y[i]) {
				return false
			}
		}
		return true
	}
	return a == b
}

func TestRedact(t *testing.T) {
	sec := secrets("postgres://u:p%40ss-w0rd@h/db", nil)
	err := redact(errors.New("failed for postgres://u:p%40ss-w0rd@h/db and p@ss-w0rd"), sec)
	if strings.Contains(err.Error(), "ss-w0rd") {
		t.Fatalf("got %q, want the password and DSN masked", err)
	}
	perm := redact(connector.Permanent(errors.New("bad p@ss-w0rd")), sec)
	if !errors.Is(perm, connector.ErrPermanent) || strings.Contains(perm.Error(), "ss-w0rd") {
		t.Fatalf("got %q (permanent %v), want a permanent error without the password", perm, errors.Is(perm, connector.ErrPermanent))
	}
}

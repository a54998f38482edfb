package postgres_test

import (
	"fmt"
	"testing"

	"github.com/sluice-dev/sluice/internal/connector/postgres"
	"github.com/sluice-dev/sluice/internal/pgtest"
)

// TestExactNumbers checks that JSON numbers a float64 cannot hold exactly
// (more than 17 digits, beyond int64) reach numeric, text and jsonb
// columns as written, on every way a row takes: streamed COPY, COPY after
// the rows were prepared, and upsert; and for a value a processor parsed.
func TestExactNumbers(t *testing.T) {
	srv := pgtest.Start(t)
	const value = `{"id":1,"n":12345678901234567.89,"big":123456789012345678901234567890,"t":0.10000000000000000555,"j":{"x":[98765432109876543210.5]},"o":{"n":1.000000000000000000001}}`
	const want = `(1,12345678901234567.89,123456789012345678901234567890,0.10000000000000000555,"{""x"": [98765432109876543210.5]}",1.000000000000000000001)`
	for i, tt := range []struct {
		name   string
		mode   string
		extra  string // a column the server casts, which takes rows off the streamed COPY
		parsed bool
	}{
		{name: "insert"},
		{name: "insert parsed", parsed: true},
		{name: "insert prepared", extra: ", iv interval"},
		{name: "upsert", mode: "upsert"},
		{name: "upsert parsed", mode: "upsert", parsed: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			table := fmt.Sprintf("exact_%d", i)
			srv.Exec(t, `CREATE TABLE `+table+` (id bigint PRIMARY KEY, n numeric, big numeric, t text, j jsonb, o numeric`+tt.extra+`)`)
			cfg := postgres.Config{Table: table, Mode: tt.mode, Columns: map[string]string{"id": "id", "n": "n", "big": "big", "t": "t", "j": "j", "o": "o.n"}}
			if tt.extra != "" {
				cfg.Columns["iv"] = "iv"
			}
			if tt.mode == "upsert" {
				cfg.Key = []string{"id"}
			}
			s := openSink(t, srv, cfg, nil)
			r := rec(0, value)
			if tt.parsed {
				if _, err := r.Doc(); err != nil {
					t.Fatal(err)
				}
			}
			b, rj := batch(r)
			write(t, s, b)
			if len(rj.got) != 0 {
				t.Fatalf("rejections: %v", rj.got)
			}
			got := srv.QueryString(t, `SELECT (id, n, big, t, j, o)::text FROM `+table)
			if got != want {
				t.Errorf("row: got %s, want %s", got, want)
			}
		})
	}
}

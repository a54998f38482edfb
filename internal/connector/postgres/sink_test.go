package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/connector/postgres"
	"github.com/sluice-dev/sluice/internal/pgtest"
)

// TestSink runs the sink's cases against one server; each case has its
// own table.
func TestSink(t *testing.T) {
	srv := pgtest.Start(t)
	ctx := context.Background()

	t.Run("insert", func(t *testing.T) {
		srv.Exec(t, `CREATE TABLE ins (id bigint, name text, amount numeric(10,2), paid boolean, at timestamptz,
			d date, tags text[], meta jsonb, u uuid, raw bytea, f real, n integer)`)
		s := openSink(t, srv, postgres.Config{Table: "ins"}, nil)
		b, rj := batch(
			rec(0, `{"id":1,"name":"a","amount":12.5,"paid":true,"at":"2024-01-02T03:04:05Z","d":"2024-01-02","tags":["x","y"],"meta":{"k":[1,2]},"u":"123e4567-e89b-12d3-a456-426614174000","raw":"aGk=","f":1.5,"n":7,"extra":"ignored"}`),
			rec(1, `{"id":2,"name":null,"amount":"3","at":1704164645000,"n":"8"}`),
			rec(2, `{"id":3}`),
		)
		write(t, s, b)
		if rj.calls != 0 {
			t.Errorf("Reject calls: got %d, want 0", rj.calls)
		}
		wantRows(t, srv, "ins", "id", `(1,a,12.50,t,"2024-01-02 03:04:05+00",2024-01-02,"{x,y}","{""k"": [1, 2]}",123e4567-e89b-12d3-a456-426614174000,"\\x6869",1.5,7)`+
			` (2,,3.00,,"2024-01-02 03:04:05+00",,,,,,,8)`+
			` (3,,,,,,,,,,,)`)
		cp, err := s.LoadCheckpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := fmt.Sprint(cp), "[{orders 0 3}]"; got != want {
			t.Errorf("checkpoint: got %s, want %s", got, want)
		}
	})

	t.Run("upsert", func(t *testing.T) {
		srv.Exec(t, `CREATE TABLE ups (id bigint PRIMARY KEY, v text, n integer NOT NULL DEFAULT 0)`)
		s := openSink(t, srv, postgres.Config{Table: "ups", Mode: "upsert", Key: []string{"id"}}, nil)
		// Key 1 three times in one batch: the last wins.
		b, _ := batch(rec(0, `{"id":1,"v":"a","n":5}`), rec(1, `{"id":2,"v":"b","n":1}`), rec(2, `{"id":1,"v":"c","n":6}`), rec(3, `{"id":1,"v":"d","n":7}`))
		write(t, s, b)
		wantRows(t, srv, "ups", "id", "(1,d,7) (2,b,1)")
		// Across batches, and a missing field keeps the stored value: the
		// column is not written for that record.
		b, _ = batch(rec(4, `{"id":2,"v":"e"}`), rec(5, `{"id":3,"v":"f","n":2}`), rec(6, `{"id":1,"v":null,"n":8}`))
		write(t, s, b)
		wantRows(t, srv, "ups", "id", "(1,,8) (2,e,1) (3,f,2)")
		// The same batch again (a retry) leaves the same rows.
		write(t, s, b)
		wantRows(t, srv, "ups", "id", "(1,,8) (2,e,1) (3,f,2)")
	})

	t.Run("upsert composite key and equal keys the batch cannot see", func(t *testing.T) {
		srv.Exec(t, `CREATE TABLE ups2 (a text, b numeric, v text, PRIMARY KEY (a, b))`)
		s := openSink(t, srv, postgres.Config{Table: "ups2", Mode: "upsert", Key: []string{"a", "b"}}, nil)
		// 1 and 1.0 are one numeric key: ON CONFLICT meets it twice, and
		// the sink writes the rows in separate statements, in order.
		b, rj := batch(rec(0, `{"a":"x","b":1,"v":"first"}`), rec(1, `{"a":"x","b":"1.0","v":"second"}`), rec(2, `{"a":"y","b":1,"v":"other"}`))
		write(t, s, b)
		if len(rj.got) != 0 {
			t.Errorf("rejections: got %d, want 0", len(rj.got))
		}
		// The key stays as first written: only the other columns are updated.
		wantRows(t, srv, "ups2", "a", "(x,1,second) (y,1,other)")
	})

	t.Run("defaults for missing fields", func(t *testing.T) {
		srv.Exec(t, `CREATE TABLE defs (id bigserial, name text, status text DEFAULT 'new', at timestamptz DEFAULT '2000-01-01Z')`)
		s := openSink(t, srv, postgres.Config{Table: "defs"}, nil)
		b, _ := batch(rec(0, `{"name":"a"}`), rec(1, `{"name":"b","status":"paid"}`), rec(2, `{"name":"c","status":null}`), rec(3, `{"name":"d"}`))
		write(t, s, b)
		wantRows(t, srv, "defs", "name", `(1,a,new,"2000-01-01 00:00:00+00") (3,b,paid,"2000-01-01 00:00:00+00") (4,c,,"2000-01-01 00:00:00+00") (2,d,new,"2000-01-01 00:00:00+00")`)
	})

	t.Run("create table from schema", func(t *testing.T) {
		schema := map[string]any{
			"type": "object",
			"properties": map[string]any{
				"id":    map[string]any{"type": "integer"},
				"name":  map[string]any{"type": "string"},
				"at":    map[string]any{"type": "string", "format": "date-time"},
				"ok":    map[string]any{"type": "boolean"},
				"score": map[string]any{"type": []any{"number", "null"}},
				"meta":  map[string]any{"type": "object"},
				"tags":  map[string]any{"type": "array"},
			},
			"required": []any{"id", "name", "score"},
		}
		s := openSink(t, srv, postgres.Config{Table: "from_schema", CreateTable: true, Mode: "upsert", Key: []string{"id"}}, schema)
		b, _ := batch(rec(0, `{"id":1,"name":"a","at":"2024-01-02T03:04:05Z","ok":true,"score":1.5,"meta":{"x":1},"tags":[1]}`))
		write(t, s, b)
		if got, want := columns(t, srv, "from_schema"), "id bigint NO, at timestamp with time zone YES, meta jsonb YES, name text NO, ok boolean YES, score double precision YES, tags jsonb YES"; got != want {
			t.Errorf("columns: got %s, want %s", got, want)
		}
		if got, want := srv.QueryString(t, `SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'from_schema'::regclass AND contype = 'p'`), "PRIMARY KEY (id)"; got != want {
			t.Errorf("primary key: got %s, want %s", got, want)
		}
		wantRows(t, srv, "from_schema", "id", `(1,"2024-01-02 03:04:05+00","{""x"": 1}",a,t,1.5,[1])`)
	})

	t.Run("create table from records", func(t *testing.T) {
		s := openSink(t, srv, postgres.Config{Table: "inferred", CreateTable: true}, nil)
		b, _ := batch(rec(0, `{"id":1,"name":"a","x":1.5,"nothing":null}`), rec(1, `{"id":2,"y":true,"x":2,"o":{"a":1},"mixed":1}`), rec(2, `{"id":3,"mixed":"s"}`))
		write(t, s, b)
		if got, want := columns(t, srv, "inferred"), "id bigint YES, mixed jsonb YES, name text YES, nothing jsonb YES, o jsonb YES, x double precision YES, y boolean YES"; got != want {
			t.Errorf("columns: got %s, want %s", got, want)
		}
		wantRows(t, srv, "inferred", "id", `(1,,a,,,1.5,) (2,1,,,"{""a"": 1}",2,t) (3,"""s""",,,,,)`)
		// Later records with new fields: those fields are not written.
		b, _ = batch(rec(3, `{"id":4,"z":1}`))
		write(t, s, b)
		wantRows(t, srv, "inferred", "id", `(1,,a,,,1.5,) (2,1,,,"{""a"": 1}",2,t) (3,"""s""",,,,,) (4,,,,,,)`)
	})

	t.Run("columns mapped and created", func(t *testing.T) {
		cfg := postgres.Config{Table: "mapped", CreateTable: true, Mode: "upsert", Key: []string{"k"}, Columns: map[string]string{
			"k": "$key", "ts": "$timestamp", "off": "$offset", "part": "$partition", "topic": "$topic",
			"cust": "customer.id", "city": "customer.address.city",
		}}
		schema := map[string]any{"type": "object", "properties": map[string]any{
			"customer": map[string]any{"type": "object", "properties": map[string]any{"id": map[string]any{"type": "integer"}}},
		}}
		s := openSink(t, srv, cfg, schema)
		b, _ := batch(
			recAt("orders", 2, 10, "k1", `{"customer":{"id":7,"address":{"city":"Oslo"}}}`),
			recAt("orders", 2, 11, "k2", `{"customer":{"id":8}}`),
			recAt("orders", 2, 12, "k3", `"not an object"`),
		)
		write(t, s, b)
		if got, want := columns(t, srv, "mapped"), "k text NO, city text YES, cust bigint YES, off bigint YES, part integer YES, topic text YES, ts timestamp with time zone YES"; got != want {
			t.Errorf("columns: got %s, want %s", got, want)
		}
		wantRows(t, srv, "mapped", "k", `(k1,Oslo,7,10,2,orders,"2024-01-02 03:04:05.01+00") (k2,,8,11,2,orders,"2024-01-02 03:04:05.011+00") (k3,,,12,2,orders,"2024-01-02 03:04:05.012+00")`)
	})

	t.Run("columns mapped into an existing table", func(t *testing.T) {
		srv.Exec(t, `CREATE TABLE events (id uuid, at timestamptz, amount numeric, payload jsonb, src text, extra text DEFAULT 'x')`)
		cfg := postgres.Config{Table: "public.events", Columns: map[string]string{"id": "$key", "at": "meta.at", "amount": "order.total.amount", "payload": "order", "src": "$topic"}}
		s := openSink(t, srv, cfg, nil)
		b, _ := batch(recAt("shop", 0, 0, "123e4567-e89b-12d3-a456-426614174000", `{"meta":{"at":"2024-05-06T07:08:09+02:00"},"order":{"total":{"amount":"9.99"}}}`))
		write(t, s, b)
		wantRows(t, srv, "events", "id", `(123e4567-e89b-12d3-a456-426614174000,"2024-05-06 05:08:09+00",9.99,"{""total"": {""amount"": ""9.99""}}",shop,x)`)
	})

	t.Run("columns from the record alone take any value", func(t *testing.T) {
		// No column reads the value, so it need not be JSON.
		srv.Exec(t, `CREATE TABLE meta (k text, o bigint)`)
		s := openSink(t, srv, postgres.Config{Table: "meta", Columns: map[string]string{"k": "$key", "o": "$offset"}}, nil)
		b, _ := batch(recAt("shop", 0, 7, "a", `not JSON`), recAt("shop", 0, 8, "b", `{"half":`))
		write(t, s, b)
		wantRows(t, srv, "meta", "k", "(a,7) (b,8)")
	})

	t.Run("conversion rejections", func(t *testing.T) {
		srv.Exec(t, `CREATE TABLE conv (id integer, n numeric, ts timestamptz, u uuid, b boolean, s smallint, a bigint[])`)
		s := openSink(t, srv, postgres.Config{Table: "conv"}, nil)
		cases := []struct {
			value string
			want  string // in the rejection's error; "" for a record written
		}{
			{`{"id":1}`, ""},
			{`{"id":"x"}`, `column id (integer): "x" is not an integer`},
			{`{"id":2,"n":"12,5"}`, `column n (numeric): "12,5" is not a number`},
			{`{"id":3,"ts":"yesterday"}`, `column ts (timestamp with time zone): "yesterday" is not an RFC 3339 time`},
			{`{"id":4,"u":"nope"}`, `column u (uuid): "nope" is not a UUID`},
			{`{"id":5,"b":"maybe"}`, `column b (boolean): "maybe" is not a boolean`},
			{`{"id":6,"s":70000}`, `column s (smallint): 70000 is out of range for type smallint`},
			{`{"id":7,"a":[1,"two"]}`, `column a (bigint[]): element 1: "two" is not an integer`},
			{`{"id":8,"id2":1.5,"n":1.25}`, ""},
			{`[1,2]`, "value is not a JSON object"},
			{`null`, "value is null"},
			{`{"id":`, "value is not JSON"},
			{`{"id":9,"a":[1,null,3]}`, ""},
			{`{"id":10,"id":11}`, `value is not JSON: invalid JSON: duplicate object name "id"`},
			{`{"x":1,"id":12,"x":2}`, `value is not JSON: invalid JSON: duplicate object name "x"`},
		}
		var recs []*connector.Record
		var want []string
		for i, c := range cases {
			r := rec(int64(i), c.value)
			if c.value == "null" {
				r.SetValue(nil)
			}
			recs = append(recs, r)
			if c.want != "" {
				want = append(want, c.want)
			}
		}
		b, rj := batch(recs...)
		write(t, s, b)
		if len(rj.got) != len(want) {
			t.Fatalf("rejections: got %d (%v), want %d", len(rj.got), rj.got, len(want))
		}
		for i, r := range rj.got {
			if !strings.Contains(r.Err.Error(), want[i]) {
				t.Errorf("rejection %d: got %q, want it to contain %q", i, r.Err, want[i])
			}
			var re *postgres.RecordError
			if !errors.As(r.Err, &re) {
				t.Errorf("rejection %d: got %T, want a *postgres.RecordError", i, r.Err)
			}
		}
		if rj.calls != 1 {
			t.Errorf("Reject calls: got %d, want 1", rj.calls)
		}
		wantRows(t, srv, "conv", "id", `(1,,,,,,) (8,1.25,,,,,) (9,,,,,,"{1,NULL,3}")`)
	})

	t.Run("constraint rejections", func(t *testing.T) {
		for _, mode := range []string{"insert", "upsert"} {
			t.Run(mode, func(t *testing.T) {
				table := "cons_" + mode
				srv.Exec(t, fmt.Sprintf(`CREATE TABLE %s (id integer PRIMARY KEY, qty integer NOT NULL CONSTRAINT qty_positive CHECK (qty > 0), name varchar(5))`, table))
				srv.Exec(t, fmt.Sprintf(`INSERT INTO %s VALUES (100, 1, 'old')`, table))
				cfg := postgres.Config{Table: table, Mode: mode}
				if mode == "upsert" {
					cfg.Key = []string{"id"}
				}
				s := openSink(t, srv, cfg, nil)
				values := []string{
					`{"id":1,"qty":1}`,
					`{"id":2,"qty":null}`, // NOT NULL
					`{"id":3,"qty":2}`,
					`{"id":4,"qty":-1}`, // CHECK
					`{"id":5,"qty":3,"name":"toolong"}`,
					`{"id":6,"qty":4}`,
				}
				wantErr := []string{
					`null value in column "qty"`,
					`violates check constraint "qty_positive" (SQLSTATE 23514, constraint qty_positive)`,
					`value too long for type character varying(5) (SQLSTATE 22001`,
				}
				wantStored := "(1,1,) (3,2,) (6,4,) (100,1,old)"
				if mode == "insert" {
					// Unique violations are the record's fault in insert mode:
					// against a stored row and within the batch.
					values = append(values, `{"id":100,"qty":1}`, `{"id":6,"qty":9}`)
					wantErr = append(wantErr, `duplicate key value violates unique constraint "cons_insert_pkey" (SQLSTATE 23505, constraint cons_insert_pkey): Key (id)=(100) already exists.`,
						`Key (id)=(6) already exists`)
				} else {
					values = append(values, `{"id":100,"qty":5}`)
					wantStored = "(1,1,) (3,2,) (6,4,) (100,5,old)"
				}
				var recs []*connector.Record
				for i, v := range values {
					recs = append(recs, rec(int64(i), v))
				}
				b, rj := batch(recs...)
				// Reject runs before the commit: nothing of the batch is
				// visible from another connection yet.
				var seen int64 = -1
				rj.during = func(context.Context) { seen = srv.QueryInt(t, "SELECT count(*) FROM "+table) }
				write(t, s, b)
				if seen != 1 {
					t.Errorf("rows visible while Reject ran: got %d, want 1 (the row stored before)", seen)
				}
				if len(rj.got) != len(wantErr) {
					t.Fatalf("rejections: got %d (%v), want %d", len(rj.got), rj.got, len(wantErr))
				}
				for i, r := range rj.got {
					if !strings.Contains(r.Err.Error(), wantErr[i]) {
						t.Errorf("rejection %d: got %q, want it to contain %q", i, r.Err, wantErr[i])
					}
					var pe *pgconn.PgError
					if !errors.As(r.Err, &pe) {
						t.Errorf("rejection %d: got %T, want it to wrap a *pgconn.PgError", i, r.Err)
					}
				}
				if r := rj.got[0]; r.Record != recs[1] {
					t.Errorf("first rejection: got the record at offset %d, want 1", r.Record.Offset)
				}
				var re *postgres.RecordError
				if !errors.As(rj.got[0].Err, &re) || re.Column != "qty" {
					t.Errorf("NOT NULL rejection's column: got %+v, want qty", re)
				}
				wantRows(t, srv, table, "id", wantStored)
			})
		}
	})

	t.Run("many rejections in a large batch", func(t *testing.T) {
		for _, mode := range []string{"insert", "upsert"} {
			t.Run(mode, func(t *testing.T) {
				table := "many_" + mode
				srv.Exec(t, fmt.Sprintf(`CREATE TABLE %s (id integer PRIMARY KEY, qty integer CHECK (qty > 0))`, table))
				cfg := postgres.Config{Table: table, Mode: mode}
				if mode == "upsert" {
					cfg.Key = []string{"id"}
				}
				s := openSink(t, srv, cfg, nil)
				bad := map[int]bool{0: true, 17: true, 18: true, 500: true, 777: true, 998: true, 999: true}
				var recs []*connector.Record
				for i := 0; i < 1000; i++ {
					qty := 1
					if bad[i] {
						qty = -1
					}
					recs = append(recs, rec(int64(i), fmt.Sprintf(`{"id":%d,"qty":%d}`, i, qty)))
				}
				b, rj := batch(recs...)
				write(t, s, b)
				if len(rj.got) != len(bad) {
					t.Fatalf("rejections: got %d, want %d", len(rj.got), len(bad))
				}
				for _, r := range rj.got {
					if !bad[int(r.Record.Offset)] {
						t.Errorf("rejected offset %d: want only %v", r.Record.Offset, bad)
					}
				}
				if got := srv.QueryInt(t, "SELECT count(*) FROM "+table); got != 1000-int64(len(bad)) {
					t.Errorf("rows: got %d, want %d", got, 1000-len(bad))
				}
			})
		}
	})

	t.Run("failing reject commits nothing", func(t *testing.T) {
		srv.Exec(t, `CREATE TABLE rejfail (id integer NOT NULL)`)
		s := openSink(t, srv, postgres.Config{Table: "rejfail"}, nil)
		b, _ := batch(rec(0, `{"id":1}`))
		write(t, s, b)
		b, rj := batch(rec(1, `{"id":2}`), rec(2, `{"id":null}`))
		rj.fail = errors.New("dead-letter topic unavailable")
		err := s.Write(ctx, b)
		if err == nil || !strings.Contains(err.Error(), "dead-letter topic unavailable") {
			t.Fatalf("Write: got %v, want the Reject error", err)
		}
		if isPermanent(err) {
			t.Errorf("Write: got a permanent error %v, want a transient one", err)
		}
		wantRows(t, srv, "rejfail", "id", "(1)")
		cp, err := s.LoadCheckpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := fmt.Sprint(cp), "[{orders 0 1}]"; got != want {
			t.Errorf("checkpoint: got %s, want %s", got, want)
		}
	})

	t.Run("exactly-once checkpoint", func(t *testing.T) {
		srv.Exec(t, `CREATE SCHEMA eo; CREATE TABLE eo.t (id integer)`)
		s := openSink(t, srv, postgres.Config{Table: "eo.t"}, nil)
		var ts connector.TransactionalSink = s // the runtime's test for exactly-once
		cp, err := ts.LoadCheckpoint(ctx)
		if err != nil || len(cp) != 0 {
			t.Fatalf("LoadCheckpoint before any Write: got %v, %v; want none, nil", cp, err)
		}
		b, _ := batch(recAt("a", 0, 5, "", `{"id":1}`), recAt("a", 1, 9, "", `{"id":2}`), recAt("b", 0, 0, "", `{"id":3}`))
		write(t, s, b)
		// A batch of no records (all filtered out) still moves the checkpoint.
		write(t, s, &connector.Batch{Checkpoint: connector.Checkpoint{{Topic: "a", Partition: 0, Offset: 20}, {Topic: "a", Partition: 0, Offset: 21}}})
		cp, err = s.LoadCheckpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := fmt.Sprint(cp), "[{a 0 21} {a 1 10} {b 0 1}]"; got != want {
			t.Errorf("checkpoint: got %s, want %s", got, want)
		}
		// In the target's schema, one row per partition and pipeline.
		if got := srv.QueryInt(t, "SELECT count(*) FROM eo.sluice_offsets WHERE pipeline = 'pipe-eo.t'"); got != 3 {
			t.Errorf("rows in eo.sluice_offsets: got %d, want 3", got)
		}
		// Another pipeline on the same table has its own positions.
		other, err := postgres.New(ctx, postgres.Options{Config: postgres.Config{DSN: srv.DSN(), Table: "eo.t"}, Pipeline: "other"})
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close(ctx)
		if cp, err := other.LoadCheckpoint(ctx); err != nil || len(cp) != 0 {
			t.Errorf("other pipeline's checkpoint: got %v, %v; want none", cp, err)
		}
		// A failing statement of the batch leaves rows and checkpoint as
		// they were.
		srv.Exec(t, `ALTER TABLE eo.t ADD CONSTRAINT no_sevens CHECK (id <> 7) NOT VALID`)
		srv.Exec(t, `CREATE FUNCTION eo.boom() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION USING ERRCODE = '40001', MESSAGE = 'injected serialization failure'; END $$`)
		srv.Exec(t, `CREATE TRIGGER boom BEFORE INSERT ON eo.t FOR EACH ROW WHEN (NEW.id = 42) EXECUTE FUNCTION eo.boom()`)
		b, _ = batch(recAt("a", 0, 21, "", `{"id":4}`), recAt("a", 0, 22, "", `{"id":42}`))
		err = s.Write(ctx, b)
		if err == nil || isPermanent(err) || !strings.Contains(err.Error(), "injected serialization failure") {
			t.Fatalf("Write: got %v, want the transient serialization failure", err)
		}
		cp, _ = s.LoadCheckpoint(ctx)
		if got, want := fmt.Sprint(cp), "[{a 0 21} {a 1 10} {b 0 1}]"; got != want {
			t.Errorf("checkpoint after a failed Write: got %s, want %s", got, want)
		}
		wantRows(t, srv, "eo.t", "id", "(1) (2) (3)")
	})

	t.Run("types the server converts", func(t *testing.T) {
		srv.Exec(t, `CREATE TYPE color AS ENUM ('red', 'green'); CREATE DOMAIN posint AS integer CHECK (VALUE > 0);
			CREATE TABLE exotic (id integer, c color, i inet, iv interval, cs color[], p posint)`)
		s := openSink(t, srv, postgres.Config{Table: "exotic"}, nil)
		b, rj := batch(
			rec(0, `{"id":1,"c":"red","i":"10.0.0.1","iv":"1 hour","cs":["red","green"],"p":3}`),
			rec(1, `{"id":2,"c":"blue"}`),
			rec(2, `{"id":3,"iv":"soon"}`),
			rec(3, `{"id":4,"p":-1}`),
			rec(4, `{"id":5,"c":"green"}`),
		)
		write(t, s, b)
		want := []string{`invalid input value for enum color: "blue"`, `invalid input syntax for type interval: "soon"`, `value for domain posint violates check constraint "posint_check"`}
		if len(rj.got) != len(want) {
			t.Fatalf("rejections: got %d (%v), want %d", len(rj.got), rj.got, len(want))
		}
		for i, r := range rj.got {
			if !strings.Contains(r.Err.Error(), want[i]) {
				t.Errorf("rejection %d: got %q, want it to contain %q", i, r.Err, want[i])
			}
		}
		wantRows(t, srv, "exotic", "id", `(1,red,10.0.0.1,01:00:00,"{red,green}",3) (5,green,,,,)`)
	})

	t.Run("missing table", func(t *testing.T) {
		s := openSink(t, srv, postgres.Config{Table: "nope"}, nil)
		b, _ := batch(rec(0, `{"id":1}`))
		err := s.Write(ctx, b)
		if !isPermanent(err) || !strings.Contains(err.Error(), `"nope" does not exist`) {
			t.Fatalf("Write: got %v, want a permanent error naming the table", err)
		}
	})

	t.Run("missing column", func(t *testing.T) {
		srv.Exec(t, `CREATE TABLE fewcols (id integer)`)
		s := openSink(t, srv, postgres.Config{Table: "fewcols", Columns: map[string]string{"id": "id", "other": "x"}}, nil)
		b, _ := batch(rec(0, `{"id":1}`))
		err := s.Write(ctx, b)
		if !isPermanent(err) || !strings.Contains(err.Error(), "has no column other") {
			t.Fatalf("Write: got %v, want a permanent error naming the column", err)
		}
	})

	t.Run("upsert without a unique constraint", func(t *testing.T) {
		srv.Exec(t, `CREATE TABLE nokey (id integer, v text)`)
		s := openSink(t, srv, postgres.Config{Table: "nokey", Mode: "upsert", Key: []string{"id"}}, nil)
		b, _ := batch(rec(0, `{"id":1}`))
		err := s.Write(ctx, b)
		if !isPermanent(err) || !strings.Contains(err.Error(), "42P10") {
			t.Fatalf("Write: got %v, want a permanent 42P10", err)
		}
	})

	t.Run("table changed between writes", func(t *testing.T) {
		srv.Exec(t, `CREATE TABLE altered (id integer, a text)`)
		s := openSink(t, srv, postgres.Config{Table: "altered"}, nil)
		b, _ := batch(rec(0, `{"id":1,"a":"x","b":"y"}`))
		write(t, s, b)
		srv.Exec(t, `ALTER TABLE altered DROP COLUMN a, ADD COLUMN b text`)
		b, _ = batch(rec(1, `{"id":2,"a":"x","b":"y"}`))
		write(t, s, b)
		wantRows(t, srv, "altered", "id", "(1,) (2,y)")
	})

	t.Run("privileges", func(t *testing.T) {
		srv.Exec(t, `CREATE TABLE secret (id integer); CREATE ROLE reader LOGIN`)
		cfg := postgres.Config{DSN: "postgres://reader@" + srv.HostPort() + "/postgres?sslmode=disable", Table: "secret"}
		s := openSink(t, srv, cfg, nil)
		b, _ := batch(rec(0, `{"id":1}`))
		err := s.Write(ctx, b)
		if !isPermanent(err) || !strings.Contains(err.Error(), "42501") {
			t.Fatalf("Write: got %v, want a permanent 42501", err)
		}
	})
}

// columns lists a table's columns as "name type nullable".
func columns(t testing.TB, srv *pgtest.Server, table string) string {
	t.Helper()
	return srv.QueryString(t, `SELECT string_agg(column_name || ' ' || CASE WHEN data_type = 'ARRAY' THEN udt_name ELSE data_type END || ' ' || is_nullable, ', ' ORDER BY ordinal_position)
		FROM information_schema.columns WHERE table_name = $1`, table)
}

// TestErrorsHideThePassword checks every kind of failure for the DSN's
// password: refused connection, failed authentication, a missing database.
func TestErrorsHideThePassword(t *testing.T) {
	srv := pgtest.Start(t)
	ctx := context.Background()
	const password = "Sup3r-s3cret"
	srv.Exec(t, `CREATE ROLE pwuser LOGIN PASSWORD '`+password+`'; CREATE TABLE pw (id integer); GRANT ALL ON pw TO pwuser; GRANT CREATE ON SCHEMA public TO pwuser`)
	// The test server trusts everyone: require a password of pwuser.
	hba := srv.DataDir() + "/pg_hba.conf"
	old, err := readFile(hba)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeFile(hba, "host all pwuser 127.0.0.1/32 scram-sha-256\n"+old); err != nil {
		t.Fatal(err)
	}
	srv.Exec(t, "SELECT pg_reload_conf()")
	time.Sleep(200 * time.Millisecond)

	closed := "postgres://pwuser:" + password + "@127.0.0.1:1/postgres?sslmode=disable"
	for _, tt := range []struct {
		name      string
		dsn       string
		permanent bool
	}{
		{"refused", closed, false},
		{"wrong password", "postgres://pwuser:not-" + password + "@" + srv.HostPort() + "/postgres?sslmode=disable", true},
		{"kv wrong password", "host=127.0.0.1 port=" + fmt.Sprint(srv.Port()) + " user=pwuser password=wrong-" + password + " dbname=postgres sslmode=disable", true},
		{"no database", "postgres://pwuser:" + password + "@" + srv.HostPort() + "/nodb?sslmode=disable", true},
		{"right password", "postgres://pwuser:" + password + "@" + srv.HostPort() + "/postgres?sslmode=disable", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, err := postgres.New(ctx, postgres.Options{Config: postgres.Config{DSN: tt.dsn, Table: "pw"}, Pipeline: "p"})
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			defer s.Close(ctx)
			b, _ := batch(rec(0, `{"id":1}`))
			err = s.Write(ctx, b)
			if tt.name == "right password" {
				if err != nil {
					t.Fatalf("Write: got %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Write: got nil, want an error")
			}
			if strings.Contains(err.Error(), password) {
				t.Errorf("Write: got %q, which contains the password", err)
			}
			if isPermanent(err) != tt.permanent {
				t.Errorf("Write: got %v (permanent %v), want permanent %v", err, isPermanent(err), tt.permanent)
			}
			_, err = s.LoadCheckpoint(ctx)
			if err == nil || strings.Contains(err.Error(), password) {
				t.Errorf("LoadCheckpoint: got %v, want an error without the password", err)
			}
		})
	}
}

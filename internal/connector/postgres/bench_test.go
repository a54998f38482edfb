package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/connector/postgres"
	"github.com/sluice-dev/sluice/internal/pgtest"
)

// The benchmarks write benchRows records of about 200 bytes of JSON in
// batches of benchBatch, through the sink and straight through pgx's
// CopyFrom, to the same table of the same server (fsync off), so that the
// sink's cost over a bare COPY shows as the ratio of their rows/s.
const (
	benchRows  = 100_000
	benchBatch = 5_000
	benchDDL   = `CREATE TABLE IF NOT EXISTS bench (id bigint, name text, amount double precision, note text)`
)

func benchValues() [][]byte {
	vals := make([][]byte, benchRows)
	for i := range vals {
		v := fmt.Sprintf(`{"id":%d,"name":"customer-%07d","amount":%d.%02d,"note":"`, i, i%1_000_000, i%10_000, i%100)
		v += strings.Repeat("x", 200-len(v)-2) + `"}`
		vals[i] = []byte(v)
	}
	return vals
}

func BenchmarkSinkInsert(b *testing.B) {
	srv := pgtest.Start(b)
	srv.Exec(b, benchDDL)
	vals := benchValues()
	s := openSink(b, srv, postgres.Config{Table: "bench"}, nil)
	ctx := context.Background()
	b.SetBytes(int64(len(vals[0])) * benchRows)
	b.ResetTimer()
	var elapsed time.Duration
	for n := 0; n < b.N; n++ {
		b.StopTimer()
		srv.Exec(b, "TRUNCATE bench")
		// Fresh records: a record keeps its parsed document.
		recs := make([]*connector.Record, len(vals))
		for i, v := range vals {
			recs[i] = recAt("bench", 0, int64(i), "", string(v))
		}
		b.StartTimer()
		start := time.Now()
		for lo := 0; lo < len(recs); lo += benchBatch {
			bt, _ := batch(recs[lo:min(lo+benchBatch, len(recs))]...)
			if err := s.Write(ctx, bt); err != nil {
				b.Fatal(err)
			}
		}
		elapsed += time.Since(start)
	}
	b.ReportMetric(float64(benchRows*b.N)/elapsed.Seconds(), "rows/s")
}

// BenchmarkRawCopyFrom is the baseline: prebuilt decodes nothing (PostgreSQL
// and pgx alone), decode parses each record into a struct as a hand-written
// loader would. One transaction per batch, as the sink.
func BenchmarkRawCopyFrom(b *testing.B) {
	srv := pgtest.Start(b)
	srv.Exec(b, benchDDL)
	vals := benchValues()
	conn := srv.Conn(b)
	ctx := context.Background()
	type row struct {
		ID     int64   `json:"id"`
		Name   string  `json:"name"`
		Amount float64 `json:"amount"`
		Note   string  `json:"note"`
	}
	decode := func(v []byte) ([]any, error) {
		var r row
		if err := json.Unmarshal(v, &r); err != nil {
			return nil, err
		}
		return []any{r.ID, r.Name, r.Amount, r.Note}, nil
	}
	prebuilt := make([][]any, len(vals))
	for i, v := range vals {
		var err error
		if prebuilt[i], err = decode(v); err != nil {
			b.Fatal(err)
		}
	}
	cols := []string{"id", "name", "amount", "note"}
	for _, bc := range []struct {
		name string
		row  func(i int) ([]any, error)
	}{
		{"prebuilt", func(i int) ([]any, error) { return prebuilt[i], nil }},
		{"decode", func(i int) ([]any, error) { return decode(vals[i]) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(vals[0])) * benchRows)
			var elapsed time.Duration
			for n := 0; n < b.N; n++ {
				b.StopTimer()
				srv.Exec(b, "TRUNCATE bench")
				b.StartTimer()
				start := time.Now()
				for lo := 0; lo < len(vals); lo += benchBatch {
					hi := min(lo+benchBatch, len(vals))
					err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
						_, err := tx.CopyFrom(ctx, pgx.Identifier{"bench"}, cols, pgx.CopyFromSlice(hi-lo, func(i int) ([]any, error) { return bc.row(lo + i) }))
						return err
					})
					if err != nil {
						b.Fatal(err)
					}
				}
				elapsed += time.Since(start)
			}
			b.ReportMetric(float64(benchRows*b.N)/elapsed.Seconds(), "rows/s")
		})
	}
}

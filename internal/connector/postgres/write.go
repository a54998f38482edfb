package postgres

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sluice-dev/sluice/internal/connector"
)

// group is the rows of a batch that write the same columns. A column with
// a default (in upsert mode, any column) is left out of the rows whose
// field is missing, so that the default applies, or an update keeps the
// stored value: one COPY (or INSERT) per set of columns, and nearly every
// batch is a single group.
type group struct {
	cols    []int // indexes of tbl.targets
	names   []string
	records []*connector.Record
	rows    [][]any // values of cols, one slice per row
}

// prepare converts the records into rows. Records that do not convert are
// rejected here; in upsert mode only the last record of each key is kept.
func (s *Sink) prepare(tbl *table, records []*connector.Record) ([]*group, []connector.Rejection) {
	type prepared struct {
		rec    *connector.Record
		vals   []any
		absent string // indexes of defaulted targets missing, as bytes
	}
	var rejected []connector.Rejection
	rows := make([]prepared, 0, len(records))
	x := s.extractor(tbl)
	slab := newRowSlab(len(records), len(tbl.targets))
	var absent []byte
	for i, rec := range records {
		vals := slab.row(i)
		absent = absent[:0]
		if err := x.extract(rec, vals, &absent); err != nil {
			rejected = append(rejected, connector.Rejection{Record: rec, Err: err})
			continue
		}
		rows = append(rows, prepared{rec: rec, vals: vals, absent: string(absent)})
	}
	if s.upsert && len(tbl.key) > 0 {
		// PostgreSQL refuses to update a row twice in one statement; the
		// last record of a key is the one a sequence of writes would leave.
		seen := make(map[string]bool, len(rows))
		kept := make([]prepared, 0, len(rows))
		var kb strings.Builder
		for i := len(rows) - 1; i >= 0; i-- {
			if k, ok := dedupKey(&kb, tbl.key, rows[i].vals); ok {
				if seen[k] {
					continue
				}
				seen[k] = true
			}
			kept = append(kept, rows[i])
		}
		for i, j := 0, len(kept)-1; i < j; i, j = i+1, j-1 {
			kept[i], kept[j] = kept[j], kept[i]
		}
		rows = kept
	}

	var groups []*group
	index := map[string]*group{}
	for _, r := range rows {
		g := index[r.absent]
		if g == nil {
			g = &group{}
			skip := map[int]bool{}
			for _, b := range decodeIndexes(r.absent) {
				skip[b] = true
			}
			for j, t := range tbl.targets {
				if !skip[j] {
					g.cols = append(g.cols, j)
					g.names = append(g.names, t.name)
				}
			}
			index[r.absent] = g
			groups = append(groups, g)
		}
		vals := r.vals
		if len(g.cols) < len(tbl.targets) {
			vals = make([]any, len(g.cols))
			for i, j := range g.cols {
				vals[i] = r.vals[j]
			}
		}
		g.records = append(g.records, r.rec)
		g.rows = append(g.rows, vals)
	}
	return groups, rejected
}

// rowSlab holds the values of a batch's rows in one allocation.
type rowSlab struct {
	vals []any
	n    int
}

func newRowSlab(rows, cols int) rowSlab { return rowSlab{vals: make([]any, rows*cols), n: cols} }

// row returns row i's values; appending to them cannot reach row i+1.
func (s rowSlab) row(i int) []any { return s.vals[i*s.n : (i+1)*s.n : (i+1)*s.n] }

// streams says whether batches go to tbl by copyStream: insert mode, with
// every column converted here (no staging table).
func (s *Sink) streams(tbl *table) bool {
	if s.upsert {
		return false
	}
	for _, t := range tbl.targets {
		if t.kind == kindOther {
			return false
		}
	}
	return true
}

// errRowRefused is copyStream's error when the server refused a row: the
// transaction is lost, and the batch is to be written again by prepare and
// writeGroup, which locate the rows refused.
var errRowRefused = errors.New("a row was refused")

// copyStream writes records with one binary COPY whose rows are converted
// as pgconn sends them (see copyRows), so that the conversion of a batch
// overlaps the server's work on it rather than preceding all of it. It
// takes the records whose row has every column, returns those that miss
// one with a default in rest, for prepare's groups, and rejects those that
// do not convert. The COPY is not in a savepoint, which would cost two
// round trips a batch: when the server refuses a row it fails with
// errRowRefused.
func (s *Sink) copyStream(ctx context.Context, tx pgx.Tx, tbl *table, records []*connector.Record) (rejected []connector.Rejection, rest []*connector.Record, err error) {
	names := make([]string, len(tbl.targets))
	for j, t := range tbl.targets {
		names[j] = t.name
	}
	sql := fmt.Sprintf("COPY %s (%s) FROM STDIN BINARY", tbl.quoted, quoteList(names))
	rows := newCopyRows(s.extractor(tbl), tx.Conn().TypeMap(), records)
	if _, err := tx.Conn().PgConn().CopyFrom(ctx, rows, sql); err != nil {
		if recordFault(err) {
			return nil, nil, fmt.Errorf("copy into %s: %w: %w", tbl, errRowRefused, err)
		}
		return nil, nil, fmt.Errorf("copy into %s: %w", tbl, err)
	}
	return rows.rejected, rows.rest, nil
}

func (s *Sink) extractor(tbl *table) *extractor {
	return &extractor{tbl: tbl, byName: s.cfg.Columns == nil, upsert: s.upsert,
		mvals: make([]any, len(tbl.members)), mfound: make([]bool, len(tbl.members))}
}

// extractor turns records into rows for one table.
type extractor struct {
	tbl            *table
	byName, upsert bool
	dec            connector.JSONDecoder
	// mvals and mfound receive the value's members that targets read
	// (indexed like tbl.members), record by record.
	mvals  []any
	mfound []bool
}

// extract fills vals with the converted values of rec, one per target,
// and appends to absent the targets whose field is missing and that are
// left out of the row: those with a default, and in upsert mode all of
// them, so that an update leaves the stored value as it is.
func (x *extractor) extract(rec *connector.Record, vals []any, absent *[]byte) error {
	obj, err := x.readMembers(rec)
	if err != nil {
		return err
	}
	for j := range x.tbl.targets {
		t := &x.tbl.targets[j]
		v, found := x.value(rec, t, obj)
		if !found {
			if t.hasDefault || x.upsert {
				*absent = appendIndex(*absent, j)
			}
			vals[j] = nil
			continue
		}
		c, err := x.convert(rec, t, v, nil)
		if err != nil {
			return err
		}
		vals[j] = c
	}
	return nil
}

// convert converts v, target t's value in rec. DecodeJSON keeps a number
// with a fraction, an exponent or beyond int64 as a float64, exact to 17
// digits only: for the columns that can hold it as written (numeric,
// text, json and the types the server casts), such a number is taken
// from its JSON text instead, raw when the caller has it, else found in
// the record's bytes, so that 12345678901234567.89 is not stored as
// 12345678901234568.
func (x *extractor) convert(rec *connector.Record, t *target, v any, raw []byte) (any, error) {
	switch t.kind {
	case kindNumeric, kindText, kindOther, kindJSON:
		if !hasFloat(v, t.kind == kindJSON) {
			break
		}
		if raw == nil {
			raw = x.rawAt(rec, t.src.path)
		}
		if raw == nil {
			break // a document a processor built: its floats are all there is
		}
		if t.kind == kindJSON {
			return raw, nil // checked by the decoder; the rows live no longer than the batch
		}
		v = string(raw)
	}
	return t.convert(v)
}

// hasFloat reports whether v is a float64, or in deep holds one.
func hasFloat(v any, deep bool) bool {
	switch t := v.(type) {
	case float64:
		return true
	case map[string]any:
		if deep {
			for _, e := range t {
				if hasFloat(e, true) {
					return true
				}
			}
		}
	case []any:
		if deep {
			for _, e := range t {
				if hasFloat(e, true) {
					return true
				}
			}
		}
	}
	return false
}

// rawAt returns the JSON text at path in rec's value bytes, or nil when
// there is none (a special source, or a value a processor replaced).
func (x *extractor) rawAt(rec *connector.Record, path []string) []byte {
	b, ok := rec.RawValue()
	if !ok || b == nil || len(path) == 0 {
		return nil
	}
	var raws [1][]byte
	var found [1]bool
	for _, name := range path {
		found[0] = false
		obj, err := x.dec.RawFields(b, map[string]int{name: 0}, raws[:], found[:])
		if err != nil || !obj || !found[0] {
			return nil
		}
		b = raws[0]
	}
	return b
}

// value is target t's value in rec, unconverted, and whether there is one;
// obj says whether x.mvals holds the members of an object value.
func (x *extractor) value(rec *connector.Record, t *target, obj bool) (any, bool) {
	switch t.src.special {
	case "":
		if !obj || !x.mfound[t.member] {
			return nil, false
		}
		v := x.mvals[t.member]
		if len(t.src.path) > 1 {
			return lookup(v, t.src.path[1:])
		}
		return v, true
	case SourceKey:
		if rec.Key == nil {
			return nil, true
		}
		if t.kind == kindBytea {
			return rec.Key, true
		}
		return string(rec.Key), true
	case SourceTimestamp:
		if rec.Timestamp.IsZero() {
			return nil, true
		}
		return rec.Timestamp, true
	case SourceTopic:
		return rec.Topic, true
	case SourcePartition:
		return int64(rec.Partition), true
	case SourceOffset:
		return rec.Offset, true
	}
	return nil, false
}

// readMembers reads into x.mvals and x.mfound the members of rec's value
// that the targets read, and reports whether the value is an object; for
// a table whose columns are the members, a value that is not one is the
// record's error. A value nobody has parsed yet is read with
// DecodeFields, which builds no document and shares the value's bytes:
// the rows live no longer than the batch, whose records hold those bytes
// unchanged.
func (x *extractor) readMembers(rec *connector.Record) (bool, error) {
	clear(x.mfound)
	clear(x.mvals)
	if len(x.tbl.members) == 0 && !x.byName {
		return false, nil // every column is a special source
	}
	if !rec.Parsed() {
		if v, _ := rec.Value(); v != nil {
			ok, err := x.dec.DecodeFields(v, x.tbl.fields, x.mvals, x.mfound)
			if err != nil {
				return false, &RecordError{Err: fmt.Errorf("value is not JSON: %w", err)}
			}
			if ok {
				return true, nil
			}
		}
	}
	doc, err := rec.Doc()
	if err != nil {
		return false, &RecordError{Err: err}
	}
	m, ok := doc.(map[string]any)
	if !ok {
		if !x.byName {
			return false, nil
		}
		if v, _ := rec.Value(); v == nil {
			return false, &RecordError{Err: errors.New("value is null, not a JSON object")}
		}
		return false, &RecordError{Err: errors.New("value is not a JSON object")}
	}
	for i, name := range x.tbl.members {
		x.mvals[i], x.mfound[i] = m[name]
	}
	return true, nil
}

func appendIndex(b []byte, i int) []byte { return append(b, byte(i>>8), byte(i)) }

func decodeIndexes(s string) []int {
	out := make([]int, 0, len(s)/2)
	for i := 0; i+1 < len(s); i += 2 {
		out = append(out, int(s[i])<<8|int(s[i+1]))
	}
	return out
}

// dedupKey encodes a row's key values; false when a key value is NULL or
// missing, which conflicts with nothing.
func dedupKey(b *strings.Builder, key []int, vals []any) (string, bool) {
	b.Reset()
	for _, i := range key {
		v := vals[i]
		switch t := v.(type) {
		case nil:
			return "", false
		case time.Time:
			v = t.UTC().Format(time.RFC3339Nano)
		case []byte:
			v = hex.EncodeToString(t)
		}
		fmt.Fprintf(b, "%T\x00%v\x00", v, v)
	}
	return b.String(), true
}

// stageRow names the staging table's column holding a row's index in its
// group: a name no real column is likely to have.
const stageRow = "sluice_row$"

// writeGroup writes one group in tx and returns the records the server
// refused. Insert mode COPYs straight into the table when every column is
// converted by this package; otherwise, and in upsert mode, rows are
// COPYed into a temporary staging table first (with the base types, and
// text for the types the server converts) and then inserted from there.
func (s *Sink) writeGroup(ctx context.Context, tx pgx.Tx, tbl *table, gi int, g *group) ([]connector.Rejection, error) {
	var rejected []connector.Rejection
	reject := func(i int, err error) {
		rejected = append(rejected, connector.Rejection{Record: g.records[i], Err: recordError(err)})
	}
	direct := !s.upsert
	for _, j := range g.cols {
		if tbl.targets[j].kind == kindOther {
			direct = false
		}
	}
	if direct {
		err := locate(ctx, tx, len(g.rows), true, func(q pgx.Tx, lo, hi int) error {
			_, err := q.CopyFrom(ctx, tbl.ident, g.names, pgx.CopyFromRows(g.rows[lo:hi]))
			if err != nil {
				return fmt.Errorf("copy into %s: %w", tbl, err)
			}
			return nil
		}, reject)
		return rejected, err
	}

	stage := pgx.Identifier{fmt.Sprintf("sluice_stage_%d", gi)}
	var b strings.Builder
	fmt.Fprintf(&b, "CREATE TEMP TABLE %s (%s bigint", stage.Sanitize(), pgx.Identifier{stageRow}.Sanitize())
	for _, j := range g.cols {
		t := tbl.targets[j]
		fmt.Fprintf(&b, ", %s %s", pgx.Identifier{t.name}.Sanitize(), t.base)
	}
	b.WriteString(") ON COMMIT DROP")
	if _, err := tx.Exec(ctx, b.String()); err != nil {
		return nil, fmt.Errorf("create staging table for %s: %w", tbl, err)
	}
	stageCols := append([]string{stageRow}, g.names...)
	err := locate(ctx, tx, len(g.rows), true, func(q pgx.Tx, lo, hi int) error {
		_, err := q.CopyFrom(ctx, stage, stageCols, pgx.CopyFromSlice(hi-lo, func(i int) ([]any, error) {
			row := make([]any, 0, len(stageCols))
			return append(append(row, int64(lo+i)), g.rows[lo+i]...), nil
		}))
		if err != nil {
			return fmt.Errorf("copy into staging table for %s: %w", tbl, err)
		}
		return nil
	}, reject)
	if err != nil {
		return nil, err
	}

	merge := s.mergeSQL(tbl, stage, g)
	op := "insert into"
	if s.upsert {
		op = "upsert into"
	}
	err = locate(ctx, tx, len(g.rows), false, func(q pgx.Tx, lo, hi int) error {
		if _, err := q.Exec(ctx, merge, int64(lo), int64(hi)); err != nil {
			return fmt.Errorf("%s %s: %w", op, tbl, err)
		}
		return nil
	}, reject)
	return rejected, err
}

// mergeSQL moves rows [$1, $2) of the staging table into the table.
func (s *Sink) mergeSQL(tbl *table, stage pgx.Identifier, g *group) string {
	var b strings.Builder
	fmt.Fprintf(&b, "INSERT INTO %s (%s) SELECT ", tbl.quoted, quoteList(g.names))
	for i, j := range g.cols {
		t := tbl.targets[j]
		if i > 0 {
			b.WriteString(", ")
		}
		col := pgx.Identifier{t.name}.Sanitize()
		if t.kind == kindOther {
			// Text to the column's type: an explicit cast, which is
			// PostgreSQL's input function. Others are assigned as they
			// are, so that varchar(3) refuses "abcd" instead of cutting it.
			fmt.Fprintf(&b, "CAST(%s AS %s)", col, t.typ)
		} else {
			b.WriteString(col)
		}
	}
	row := pgx.Identifier{stageRow}.Sanitize()
	fmt.Fprintf(&b, " FROM %s WHERE %s >= $1 AND %s < $2 ORDER BY %s", stage.Sanitize(), row, row, row)
	if s.upsert {
		keys := make([]string, len(tbl.key))
		isKey := map[int]bool{}
		for i, k := range tbl.key {
			keys[i] = tbl.targets[k].name
			isKey[k] = true
		}
		fmt.Fprintf(&b, " ON CONFLICT (%s) ", quoteList(keys))
		var set []string
		for _, j := range g.cols {
			if !isKey[j] {
				col := pgx.Identifier{tbl.targets[j].name}.Sanitize()
				set = append(set, col+" = EXCLUDED."+col)
			}
		}
		if len(set) == 0 {
			b.WriteString("DO NOTHING")
		} else {
			b.WriteString("DO UPDATE SET " + strings.Join(set, ", "))
		}
	}
	return b.String()
}

// locate applies rows [0, n) in a savepoint and, when the server refuses
// one of them for its content, finds the rows it refuses and rejects them
// while applying the rest: COPY's error names its line, which splits the
// rows around it; otherwise halves are tried, so k bad rows cost about
// k·log2(n) statements. Any other error is returned, and the transaction
// is to be rolled back.
func locate(ctx context.Context, tx pgx.Tx, n int, useLine bool, apply func(q pgx.Tx, lo, hi int) error, reject func(i int, err error)) error {
	type span struct{ lo, hi int }
	stack := []span{{0, n}}
	for len(stack) > 0 {
		sp := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if sp.lo >= sp.hi {
			continue
		}
		err := inSavepoint(ctx, tx, func(q pgx.Tx) error { return apply(q, sp.lo, sp.hi) })
		if err == nil {
			continue
		}
		fault := recordFault(err)
		if !fault && !cardinalityFault(err) {
			return err
		}
		if sp.hi-sp.lo == 1 {
			if !fault {
				return err // a key met twice needs two rows
			}
			reject(sp.lo, err)
			continue
		}
		var parts []span
		var pe *pgconn.PgError
		if line := 0; useLine && fault && errors.As(err, &pe) {
			line = copyLine(pe)
			if line >= 1 && line <= sp.hi-sp.lo {
				bad := sp.lo + line - 1
				parts = []span{{sp.lo, bad}, {bad, bad + 1}, {bad + 1, sp.hi}}
			}
		}
		if parts == nil {
			mid := sp.lo + (sp.hi-sp.lo)/2
			parts = []span{{sp.lo, mid}, {mid, sp.hi}}
		}
		for i := len(parts) - 1; i >= 0; i-- {
			stack = append(stack, parts[i])
		}
	}
	return nil
}

// inSavepoint runs f in a savepoint of tx, rolled back to when f fails.
func inSavepoint(ctx context.Context, tx pgx.Tx, f func(q pgx.Tx) error) error {
	sp, err := tx.Begin(ctx)
	if err != nil {
		return fmt.Errorf("savepoint: %w", err)
	}
	if err := f(sp); err != nil {
		if rerr := sp.Rollback(ctx); rerr != nil {
			// Not wrapping err: its record fault must not let locate go on
			// in a transaction that is broken now.
			return fmt.Errorf("roll back to savepoint: %w (after: %v)", rerr, err)
		}
		return err
	}
	if err := sp.Commit(ctx); err != nil {
		return fmt.Errorf("release savepoint: %w", err)
	}
	return nil
}

// recordError is the Err of the rejection of a row the server refused.
func recordError(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pgRecordError(pe)
	}
	return &RecordError{Err: err}
}

// sortRejections puts rejections in the order of the batch.
func sortRejections(rejected []connector.Rejection, records []*connector.Record) {
	pos := make(map[*connector.Record]int, len(records))
	for i, r := range records {
		pos[r] = i
	}
	sort.SliceStable(rejected, func(i, j int) bool { return pos[rejected[i].Record] < pos[rejected[j].Record] })
}

package postgres

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sluice-dev/sluice/internal/connector"
)

// table is the target table as the catalog describes it, with the plan
// of where each written column's value comes from.
type table struct {
	schema, name string // as found in the catalog
	ident        pgx.Identifier
	quoted       string
	// targets are the columns written, in the table's order, with their
	// sources; key indexes the targets of Config.Key.
	targets []target
	key     []int
	// members are the distinct first elements of the targets' paths:
	// the members of the value that are read, found by name in fields.
	members []string
	fields  map[string]int
}

// column is one column of the table.
type column struct {
	name string
	// typ is the column's type as SQL writes it, modifiers included
	// (character varying(3)); base is its base type without modifiers,
	// the staging table's, so that length and domain checks happen when
	// rows reach the table, where they are located and rejected.
	typ, base  string
	kind, elem kind
	hasDefault bool
	// oid is the base type's, whose binary form COPY takes.
	oid uint32
}

// target is a column written and where its value comes from.
type target struct {
	column
	src source
	// member indexes table.members for a path source (its first element).
	member int
}

func (t *table) String() string { return t.quoted }

// convert converts a value for the target's column; the error is the
// record's, naming the column.
func (t *target) convert(v any) (any, error) {
	c, err := convert(t.kind, t.elem, v)
	if err != nil {
		return nil, &RecordError{Column: t.name, Type: t.typ, Err: err}
	}
	return c, nil
}

// lookupTable describes the table, or returns nil when it does not exist.
func (s *Sink) lookupTable(ctx context.Context, q querier) (*table, error) {
	var (
		oid          uint32
		schema, name string
		relkind      string
	)
	err := q.QueryRow(ctx, `SELECT c.oid, n.nspname, c.relname, c.relkind::text
		FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		WHERE c.oid = to_regclass($1)`, s.ident.Sanitize()).Scan(&oid, &schema, &name, &relkind)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look up table %s: %w", s.ident.Sanitize(), err)
	}
	t := &table{schema: schema, name: name, ident: pgx.Identifier{schema, name}}
	t.quoted = t.ident.Sanitize()
	if relkind != "r" && relkind != "p" {
		return nil, connector.Permanent(fmt.Errorf("%s is not a table (relkind %s)", t, relkind))
	}
	// Generated columns and identities GENERATED ALWAYS cannot be written;
	// one level of domain is resolved to its base type.
	rows, err := q.Query(ctx, `SELECT a.attname, format_type(a.atttypid, a.atttypmod), format_type(bt.oid, NULL),
			bt.oid, bt.typcategory::text, coalesce(et.oid, 0), a.atthasdef OR a.attidentity = 'd'
		FROM pg_catalog.pg_attribute a
		JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
		JOIN pg_catalog.pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
		LEFT JOIN pg_catalog.pg_type et ON et.oid = bt.typelem AND bt.typcategory = 'A'
		WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped
			AND a.attgenerated = '' AND a.attidentity <> 'a'
		ORDER BY a.attnum`, oid)
	if err != nil {
		return nil, fmt.Errorf("describe table %s: %w", t, err)
	}
	var cols []column
	for rows.Next() {
		var (
			c        column
			oid, eid uint32
			category string
		)
		if err := rows.Scan(&c.name, &c.typ, &c.base, &oid, &category, &eid, &c.hasDefault); err != nil {
			rows.Close()
			return nil, fmt.Errorf("describe table %s: %w", t, err)
		}
		c.kind, c.oid = kindOf(oid), oid
		if category == "A" {
			if e := kindOf(eid); e != kindOther {
				c.kind, c.elem = kindArray, e
			}
		}
		if c.kind == kindOther {
			c.base = "text"
		}
		cols = append(cols, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("describe table %s: %w", t, err)
	}
	if err := s.plan(t, cols); err != nil {
		return nil, err
	}
	return t, nil
}

// plan decides which columns are written, from where.
func (s *Sink) plan(t *table, cols []column) error {
	byName := make(map[string]column, len(cols))
	for _, c := range cols {
		byName[c.name] = c
	}
	if s.cfg.Columns == nil {
		for _, c := range cols {
			t.targets = append(t.targets, target{column: c, src: source{path: []string{c.name}}})
		}
	} else {
		for _, c := range cols {
			if spec, ok := s.cfg.Columns[c.name]; ok {
				src, _ := parseSource(spec) // Validate checked it
				t.targets = append(t.targets, target{column: c, src: src})
			}
		}
		for _, name := range sortedKeys(s.cfg.Columns) {
			if _, ok := byName[name]; !ok {
				return connector.Permanent(fmt.Errorf("columns: table %s has no column %s that can be written", t, name))
			}
		}
	}
	if len(t.targets) == 0 {
		return connector.Permanent(fmt.Errorf("table %s has no column that can be written", t))
	}
	t.fields = make(map[string]int)
	for j := range t.targets {
		tg := &t.targets[j]
		if tg.src.special != "" {
			continue
		}
		m, ok := t.fields[tg.src.path[0]]
		if !ok {
			m = len(t.members)
			t.fields[tg.src.path[0]] = m
			t.members = append(t.members, tg.src.path[0])
		}
		tg.member = m
	}
	for _, k := range s.cfg.Key {
		i := -1
		for j := range t.targets {
			if t.targets[j].name == k {
				i = j
			}
		}
		if i < 0 {
			return connector.Permanent(fmt.Errorf("key: table %s has no column %s that can be written", t, k))
		}
		t.key = append(t.key, i)
	}
	return nil
}

// querier is what the catalog queries need: a pool, a connection or a
// transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// createTable creates the missing table with columns from the schema, or
// else from the first batch's records.
func (s *Sink) createTable(ctx context.Context, q querier, records []*connector.Record) error {
	cols, err := s.columnsToCreate(records)
	if err != nil {
		return connector.Permanent(fmt.Errorf("create table %s: %w", s.ident.Sanitize(), err))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "CREATE TABLE IF NOT EXISTS %s (", s.ident.Sanitize())
	for i, c := range cols {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %s", pgx.Identifier{c.name}.Sanitize(), c.typ)
		if c.notNull {
			b.WriteString(" NOT NULL")
		}
	}
	if len(s.cfg.Key) > 0 {
		fmt.Fprintf(&b, ", PRIMARY KEY (%s)", quoteList(s.cfg.Key))
	}
	b.WriteString(")")
	if _, err := q.Exec(ctx, b.String()); err != nil {
		var pe *pgconn.PgError
		// Two writers creating the table at once: one wins, the other
		// finds its type taken.
		if !errors.As(err, &pe) || (pe.Code != "23505" && pe.Code != "42P07") {
			return fmt.Errorf("create table %s: %w", s.ident.Sanitize(), err)
		}
	}
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.name + " " + c.typ
	}
	s.log.Info("created table", "table", s.ident.Sanitize(), "columns", strings.Join(names, ", "))
	return nil
}

type newColumn struct {
	name, typ string
	notNull   bool
}

// columnsToCreate lists the columns of a new table: Columns' when set
// (typed by their source, or by the schema or the records at their path),
// else the schema's properties, else the records' top-level fields. Key
// columns come first, the rest by name.
func (s *Sink) columnsToCreate(records []*connector.Record) ([]newColumn, error) {
	props, required := schemaProperties(s.schema)
	var cols []newColumn
	if s.cfg.Columns != nil {
		for name, spec := range s.cfg.Columns {
			src, _ := parseSource(spec)
			c := newColumn{name: name}
			switch src.special {
			case SourceKey, SourceTopic:
				c.typ = "text"
			case SourceTimestamp:
				c.typ = "timestamptz"
			case SourcePartition:
				c.typ = "integer"
			case SourceOffset:
				c.typ = "bigint"
			default:
				if prop, req, ok := schemaAt(s.schema, src.path); ok {
					c.typ, c.notNull = schemaType(prop, req)
				} else {
					c.typ = inferAt(records, src.path)
				}
			}
			cols = append(cols, c)
		}
	} else if props != nil {
		for name, p := range props {
			if name == "" || len(name) > maxIdentifier || strings.IndexByte(name, 0) >= 0 {
				s.log.Warn("not creating a column for a property whose name PostgreSQL cannot hold", "property", name)
				continue
			}
			prop, _ := p.(map[string]any)
			c := newColumn{name: name}
			c.typ, c.notNull = schemaType(prop, required[name])
			cols = append(cols, c)
		}
	} else {
		types := map[string]string{}
		for _, r := range records {
			doc, err := r.Doc()
			if err != nil {
				continue
			}
			obj, ok := doc.(map[string]any)
			if !ok {
				continue
			}
			for k, v := range obj {
				if k == "" || len(k) > maxIdentifier || strings.IndexByte(k, 0) >= 0 {
					continue
				}
				types[k] = mergeType(types[k], valueType(v))
			}
		}
		for name, typ := range types {
			cols = append(cols, newColumn{name: name, typ: finalType(typ)})
		}
	}
	if len(cols) == 0 {
		return nil, errors.New("no columns: the schema has no properties and the records no fields")
	}
	keyPos := map[string]int{}
	for i, k := range s.cfg.Key {
		keyPos[k] = i
	}
	sort.Slice(cols, func(i, j int) bool {
		ki, iok := keyPos[cols[i].name]
		kj, jok := keyPos[cols[j].name]
		switch {
		case iok && jok:
			return ki < kj
		case iok != jok:
			return iok
		}
		return cols[i].name < cols[j].name
	})
	have := map[string]bool{}
	for _, c := range cols {
		have[c.name] = true
	}
	for _, k := range s.cfg.Key {
		if !have[k] {
			return nil, fmt.Errorf("key column %s is not among the columns to create (from the schema or the first batch)", k)
		}
	}
	return cols, nil
}

// schemaProperties returns a JSON Schema's top-level properties and the
// names it requires.
func schemaProperties(schema map[string]any) (map[string]any, map[string]bool) {
	if schema == nil {
		return nil, nil
	}
	props, _ := schema["properties"].(map[string]any)
	if len(props) == 0 {
		return nil, nil
	}
	required := map[string]bool{}
	if req, ok := schema["required"].([]any); ok {
		for _, r := range req {
			if name, ok := r.(string); ok {
				required[name] = true
			}
		}
	}
	return props, required
}

// schemaAt finds the property at path, and whether it is required.
func schemaAt(schema map[string]any, path []string) (map[string]any, bool, bool) {
	cur, req := schema, true
	for _, p := range path {
		props, required := schemaProperties(cur)
		next, ok := props[p].(map[string]any)
		if !ok {
			return nil, false, false
		}
		cur, req = next, req && required[p]
	}
	return cur, req, true
}

// schemaType maps a JSON Schema property to a column type; a required
// property that does not allow null is NOT NULL.
func schemaType(prop map[string]any, required bool) (string, bool) {
	var types []string
	switch t := prop["type"].(type) {
	case string:
		types = []string{t}
	case []any:
		for _, e := range t {
			if s, ok := e.(string); ok {
				types = append(types, s)
			}
		}
	}
	nullable := false
	var typ string
	for _, t := range types {
		if t == "null" {
			nullable = true
			continue
		}
		if typ != "" && typ != t {
			// Several types ("integer" or "string"): JSON holds either.
			if !(typ == "integer" && t == "number" || typ == "number" && t == "integer") {
				return "jsonb", required && !nullable
			}
			t = "number"
		}
		typ = t
	}
	format, _ := prop["format"].(string)
	notNull := required && !nullable
	switch typ {
	case "integer":
		return "bigint", notNull
	case "number":
		return "double precision", notNull
	case "boolean":
		return "boolean", notNull
	case "string":
		switch format {
		case "date-time":
			return "timestamptz", notNull
		case "date":
			return "date", notNull
		case "uuid":
			return "uuid", notNull
		}
		return "text", notNull
	}
	return "jsonb", notNull // object, array, or no type: anything JSON
}

// The types inference distinguishes, merged over a batch's values.
const (
	inferNone   = ""
	inferBigint = "bigint"
	inferDouble = "double precision"
	inferText   = "text"
	inferBool   = "boolean"
	inferJSON   = "jsonb"
)

func valueType(v any) string {
	switch v.(type) {
	case nil:
		return inferNone
	case int64, int, uint64:
		return inferBigint
	case float64:
		return inferDouble
	case string:
		return inferText
	case bool:
		return inferBool
	}
	return inferJSON
}

func mergeType(a, b string) string {
	switch {
	case a == inferNone:
		return b
	case b == inferNone, a == b:
		return a
	case a == inferBigint && b == inferDouble, a == inferDouble && b == inferBigint:
		return inferDouble
	}
	return inferJSON
}

// finalType types a field seen only as null as jsonb, which takes any
// value that comes later.
func finalType(t string) string {
	if t == inferNone {
		return inferJSON
	}
	return t
}

func inferAt(records []*connector.Record, path []string) string {
	t := inferNone
	for _, r := range records {
		doc, err := r.Doc()
		if err != nil {
			continue
		}
		if v, ok := lookup(doc, path); ok {
			t = mergeType(t, valueType(v))
		}
	}
	return finalType(t)
}

// lookup follows path into a document; false when a step is missing.
func lookup(doc any, path []string) (any, bool) {
	cur := doc
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[p]; !ok {
			return nil, false
		}
	}
	return cur, true
}

func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = pgx.Identifier{n}.Sanitize()
	}
	return strings.Join(q, ", ")
}

// offsetsTable is where the checkpoints are stored, beside the target.
const offsetsTable = "sluice_offsets"

// ensureOffsets creates the checkpoint table in schema when it is missing.
// Existence is checked first: creating needs the CREATE privilege, which a
// sink writing to an existing table need not have.
func ensureOffsets(ctx context.Context, q querier, schema string) error {
	ident := pgx.Identifier{schema, offsetsTable}.Sanitize()
	var exists bool
	if err := q.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", ident).Scan(&exists); err != nil {
		return fmt.Errorf("look up %s: %w", ident, err)
	}
	if exists {
		return nil
	}
	_, err := q.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+ident+` (
		pipeline text NOT NULL,
		topic text NOT NULL,
		partition integer NOT NULL,
		next_offset bigint NOT NULL,
		updated_at timestamptz NOT NULL DEFAULT now(),
		PRIMARY KEY (pipeline, topic, partition))`)
	var pe *pgconn.PgError
	if err != nil && !(errors.As(err, &pe) && (pe.Code == "23505" || pe.Code == "42P07")) {
		return fmt.Errorf("create %s: %w", ident, err)
	}
	return nil
}

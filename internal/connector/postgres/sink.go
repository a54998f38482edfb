// Package postgres is the PostgreSQL sink: it writes a pipeline's records
// into a table with binary COPY (insert mode) or INSERT ... ON CONFLICT
// (upsert mode), and stores the pipeline's source positions in the same
// transaction, so that delivery can be exactly once. Records PostgreSQL
// refuses are located inside the transaction and rejected one by one while
// the rest of their batch is written.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sluice-dev/sluice/internal/connector"
)

// Defaults.
const (
	DefaultMaxConnections = 4
	// DefaultConnectTimeout bounds a connection attempt (per host) when
	// the DSN sets no connect_timeout: a host that drops packets must not
	// hold a Write until the caller's deadline.
	DefaultConnectTimeout = 10 * time.Second
)

// Options configure a Sink.
type Options struct {
	Config Config
	// Pipeline names the pipeline, whose positions are stored in the rows
	// of sluice_offsets with this name. Required.
	Pipeline string
	// Schema is the JSON Schema of the records' values, if known: the
	// columns of a table that createTable creates.
	Schema map[string]any
	// Logger receives the sink's rare events (a table created, the
	// connections dropped after a failover); nil discards them.
	Logger *slog.Logger
}

// Sink writes batches into one PostgreSQL table. It implements
// connector.TransactionalSink: every Write stores the batch's checkpoint
// in the table sluice_offsets (in the target table's schema) in the same
// transaction as its rows, in either delivery mode, and LoadCheckpoint
// reads it back, so a pipeline can use it exactly once (through that
// interface) or at least once (ignoring it) and be switched between the
// two.
type Sink struct {
	cfg      Config
	pipeline string
	schema   map[string]any
	log      *slog.Logger
	pool     *pgxpool.Pool
	ident    pgx.Identifier // Config.Table
	upsert   bool
	secrets  []string

	mu sync.Mutex
	// tbl is the table as last described; nil until the first Write that
	// has records, and again after a statement found it changed.
	tbl *table
	// offsets is the schema where sluice_offsets is known to exist.
	offsets string
	// expect holds the positions stored in sluice_offsets as this sink
	// last saw them: read by LoadCheckpoint, then those its Writes
	// committed. nil until LoadCheckpoint, which only an exactly-once
	// caller calls; see storeCheckpoint.
	expect map[partitionKey]int64
}

// partitionKey names a source partition.
type partitionKey struct {
	topic     string
	partition int32
}

var _ connector.TransactionalSink = (*Sink)(nil)

// New validates the configuration and prepares a connection pool. It does
// not connect: PostgreSQL being down when a pipeline starts is an error
// of its first Write, which the runtime retries. Configuration errors
// wrap connector.ErrPermanent.
func New(ctx context.Context, opts Options) (*Sink, error) {
	if err := opts.Config.Validate(); err != nil {
		return nil, connector.Permanent(fmt.Errorf("postgres: invalid config: %w", err))
	}
	if opts.Pipeline == "" {
		return nil, connector.Permanent(errors.New("postgres: pipeline: required (it names the checkpoint rows in sluice_offsets)"))
	}
	pcfg, err := pgxpool.ParseConfig(opts.Config.DSN)
	if err != nil {
		return nil, connector.Permanent(fmt.Errorf("postgres: invalid config: dsn: %s", dsnError(opts.Config.DSN, err)))
	}
	pcfg.MaxConns = DefaultMaxConnections
	if n := opts.Config.MaxConnections; n > 0 {
		pcfg.MaxConns = int32(n)
	}
	if pcfg.ConnConfig.ConnectTimeout == 0 {
		pcfg.ConnConfig.ConnectTimeout = DefaultConnectTimeout
	}
	if _, ok := pcfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		pcfg.ConnConfig.RuntimeParams["application_name"] = "sluice"
	}
	tn, _ := parseTable(opts.Config.Table)
	ident := pgx.Identifier{tn.name}
	if tn.schema != "" {
		ident = pgx.Identifier{tn.schema, tn.name}
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Sink{
		cfg:      opts.Config,
		pipeline: opts.Pipeline,
		schema:   opts.Schema,
		log:      log,
		ident:    ident,
		upsert:   opts.Config.Mode == ModeUpsert,
		secrets:  secrets(opts.Config.DSN, &pcfg.ConnConfig.Config),
	}
	// MinConns is 0: NewWithConfig connects to nothing.
	s.pool, err = pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, connector.Permanent(redact(fmt.Errorf("postgres: %w", err), s.secrets))
	}
	return s, nil
}

// Write writes b's records into the table and b.Checkpoint into
// sluice_offsets, in one transaction: when Write returns nil both are
// committed; when it returns an error, normally neither is.
//
// Records are rejected (handed to b.Reject, which is called once, before
// the commit) when their value cannot be converted to a column's type, is
// not a JSON object when columns are mapped by name, or when PostgreSQL
// refuses the row for its content: SQLSTATE class 22 (data exception), 23
// (a NOT NULL, CHECK, unique or foreign key constraint), 54000 (a row too
// large for an index) and P0001 (raised by a trigger). The other rows of
// the batch are written. In upsert mode the batch keeps only the last
// record of each key, and the other records of that key are neither
// written nor rejected: the last one overwrites them. A field missing from
// a record leaves its column to its default (NULL when it has none) when
// the row is inserted, and as it is when upsert mode updates the row; a
// field that is null writes NULL.
//
// Errors wrap connector.ErrPermanent when retrying cannot help (the table
// is missing and createTable is off, a column is missing, authentication
// or privileges fail); the others (connection refused or lost, timeouts,
// serialization failures, deadlocks, a server shutting down, a standby
// reached after a failover) are transient and the caller retries. After a
// transient error every connection of the pool is discarded, so the retry
// connects again, to the host of the DSN that is writable now.
//
// After LoadCheckpoint, a Write stores its checkpoint only over the
// positions LoadCheckpoint returned, or that the Writes since committed:
// when another writer moved them in the meantime (a commit that was in
// flight when its connection broke and completed after the caller loaded
// the checkpoint again, or a second instance of the pipeline), the Write
// writes nothing and fails with ErrCheckpointMoved, a transient error
// after which the caller loads the checkpoint again.
//
// What a caller must do after an error: when the error wraps
// ErrCommitUnknown, the connection broke while COMMIT was in flight and
// the batch may have been committed. An exactly-once caller must then, and
// after any other error may, call LoadCheckpoint and resume from the
// positions it returns before writing again, instead of retrying the same
// batch: the stored checkpoint says whether the batch made it. An
// at-least-once caller may retry the batch, which in insert mode writes its
// rows twice when the lost commit had in fact succeeded (upsert mode
// overwrites them). Rejected records of a failed Write may have reached
// b.Reject already and reach it again on the retry.
func (s *Sink) Write(ctx context.Context, b *connector.Batch) error {
	if len(b.Records) == 0 && len(b.Checkpoint) == 0 {
		return nil
	}
	err := s.write(ctx, b)
	if err != nil && staleCatalog(err) && ctx.Err() == nil {
		// The table changed since it was described (ALTER TABLE, DROP and
		// createTable): describe it again, once.
		s.forget()
		err = s.write(ctx, b)
	}
	return s.fail(ctx, err)
}

// staleCatalog reports errors that a cached description of the table can
// cause after the table changed.
func staleCatalog(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	switch pe.Code {
	case "42P01", "42703", "42804", "0A000":
		return true
	}
	return false
}

func (s *Sink) forget() {
	s.mu.Lock()
	s.tbl, s.offsets = nil, ""
	s.mu.Unlock()
}

// fail classifies an error and makes sure it names no secret.
func (s *Sink) fail(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	err = fmt.Errorf("postgres: %w", err)
	if connectionLost(err) && ctx.Err() == nil {
		s.log.Warn("dropping the connections to PostgreSQL", "err", redact(err, s.secrets).Error())
		s.pool.Reset()
	}
	if permanent(err) {
		err = connector.Permanent(err)
	}
	return redact(err, s.secrets)
}

func (s *Sink) write(ctx context.Context, b *connector.Batch) error {
	var (
		tbl *table
		err error
	)
	if len(b.Records) > 0 {
		if tbl, err = s.table(ctx, b.Records); err != nil {
			return err
		}
	}
	schema, err := s.offsetsSchema(ctx, tbl)
	if err != nil {
		return err
	}
	stream := tbl != nil && s.streams(tbl)
	err = s.writeTx(ctx, b, tbl, schema, stream)
	if stream && errors.Is(err, errRowRefused) {
		// Written again the way that locates the rows refused.
		err = s.writeTx(ctx, b, tbl, schema, false)
	}
	return err
}

// writeTx writes the batch in one transaction, streaming its rows with
// copyStream or not.
func (s *Sink) writeTx(ctx context.Context, b *connector.Batch, tbl *table, schema string, stream bool) error {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{})
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	// Rolling back after a commit does nothing; after an error it ends the
	// transaction, even when ctx is done.
	defer tx.Rollback(context.WithoutCancel(ctx))
	var rejected []connector.Rejection
	var groups []*group
	if tbl != nil {
		records := b.Records
		if stream {
			if rejected, records, err = s.copyStream(ctx, tx, tbl, records); err != nil {
				return err
			}
		}
		var rej []connector.Rejection
		groups, rej = s.prepare(tbl, records)
		rejected = append(rejected, rej...)
	}
	for gi, g := range groups {
		rej, err := s.writeGroup(ctx, tx, tbl, gi, g)
		if err != nil {
			return err
		}
		rejected = append(rejected, rej...)
	}
	if len(rejected) > 0 {
		sortRejections(rejected, b.Records)
		if b.Reject == nil {
			return connector.Permanent(fmt.Errorf("%d records rejected but the batch has no Reject: first: %w", len(rejected), rejected[0].Err))
		}
		// Before the commit: a record rejected must be in the dead-letter
		// topic before the rest of its batch is durable.
		if err := b.Reject(ctx, rejected); err != nil {
			return fmt.Errorf("reject %d records: %w", len(rejected), err)
		}
	}
	s.mu.Lock()
	expect := s.expect
	s.mu.Unlock()
	stored, err := storeCheckpoint(ctx, tx, schema, s.pipeline, b.Checkpoint, expect)
	if err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) || errors.Is(err, pgx.ErrTxCommitRollback) {
			return fmt.Errorf("commit: %w", err) // answered: rolled back
		}
		return fmt.Errorf("commit: %w: %w", ErrCommitUnknown, err)
	}
	if expect != nil && len(stored) > 0 {
		next := maps.Clone(expect)
		maps.Copy(next, stored)
		s.mu.Lock()
		s.expect = next
		s.mu.Unlock()
	}
	if len(rejected) > 0 {
		s.log.Debug("rejected records", "table", tbl.quoted, "rejected", len(rejected), "records", len(b.Records))
	}
	return nil
}

// table returns the described table, creating it first when it is
// missing and createTable is on.
func (s *Sink) table(ctx context.Context, records []*connector.Record) (*table, error) {
	s.mu.Lock()
	tbl := s.tbl
	s.mu.Unlock()
	if tbl != nil {
		return tbl, nil
	}
	tbl, err := s.lookupTable(ctx, s.pool)
	if err != nil {
		return nil, err
	}
	if tbl == nil {
		if !s.cfg.CreateTable {
			return nil, connector.Permanent(fmt.Errorf("table %s does not exist (createTable is off)", s.ident.Sanitize()))
		}
		if err := s.createTable(ctx, s.pool, records); err != nil {
			return nil, err
		}
		if tbl, err = s.lookupTable(ctx, s.pool); err != nil {
			return nil, err
		}
		if tbl == nil {
			return nil, fmt.Errorf("table %s: created but not found", s.ident.Sanitize())
		}
	}
	s.mu.Lock()
	s.tbl = tbl
	s.mu.Unlock()
	return tbl, nil
}

// offsetsSchema returns the schema of sluice_offsets, creating the table
// when it is missing: the target table's schema, or the one it would be
// created in.
func (s *Sink) offsetsSchema(ctx context.Context, tbl *table) (string, error) {
	s.mu.Lock()
	schema := s.offsets
	s.mu.Unlock()
	if schema != "" {
		return schema, nil
	}
	schema, err := s.targetSchema(ctx, tbl)
	if err != nil {
		return "", err
	}
	if err := ensureOffsets(ctx, s.pool, schema); err != nil {
		return "", err
	}
	s.mu.Lock()
	s.offsets = schema
	s.mu.Unlock()
	return schema, nil
}

// targetSchema is the schema of the target table, or of the one
// createTable would make.
func (s *Sink) targetSchema(ctx context.Context, tbl *table) (string, error) {
	if tbl != nil {
		return tbl.schema, nil
	}
	if len(s.ident) == 2 {
		return s.ident[0], nil
	}
	tbl, err := s.lookupTable(ctx, s.pool)
	if err != nil {
		return "", err
	}
	if tbl != nil {
		return tbl.schema, nil
	}
	var schema *string
	if err := s.pool.QueryRow(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
		return "", fmt.Errorf("find the current schema: %w", err)
	}
	if schema == nil {
		return "public", nil
	}
	return *schema, nil
}

// storeCheckpoint stores cp in tx and returns the positions stored, one
// per partition. Without expect (LoadCheckpoint was never called) each
// position replaces the stored one. With it, a position is stored only
// where sluice_offsets still holds the expected one (or, for a partition
// expect lacks, nothing): an UPDATE waits for a transaction that changed
// the row and then checks the row it committed, so a batch whose records
// another writer already committed with these positions is never written
// twice; it fails with ErrCheckpointMoved instead.
func storeCheckpoint(ctx context.Context, tx pgx.Tx, schema, pipeline string, cp connector.Checkpoint, expect map[partitionKey]int64) (map[partitionKey]int64, error) {
	if len(cp) == 0 {
		return nil, nil
	}
	// One row per partition, the last position given winning: one
	// statement cannot update a row twice.
	last := make(map[partitionKey]int, len(cp))
	for i, p := range cp {
		last[partitionKey{p.Topic, p.Partition}] = i
	}
	stored := make(map[partitionKey]int64, len(last))
	var topics, newTopics []string
	var parts, newParts []int32
	var offs, olds, newOffs []int64
	for i, p := range cp {
		k := partitionKey{p.Topic, p.Partition}
		if last[k] != i {
			continue
		}
		stored[k] = p.Offset
		old, ok := expect[k]
		if expect != nil && !ok {
			newTopics, newParts, newOffs = append(newTopics, p.Topic), append(newParts, p.Partition), append(newOffs, p.Offset)
			continue
		}
		topics, parts, offs, olds = append(topics, p.Topic), append(parts, p.Partition), append(offs, p.Offset), append(olds, old)
	}
	ident := pgx.Identifier{schema, offsetsTable}.Sanitize()
	if expect == nil {
		_, err := tx.Exec(ctx, `INSERT INTO `+ident+` (pipeline, topic, partition, next_offset, updated_at)
			SELECT $1, u.topic, u.partition, u.next_offset, now()
			FROM unnest($2::text[], $3::integer[], $4::bigint[]) AS u(topic, partition, next_offset)
			ON CONFLICT (pipeline, topic, partition)
			DO UPDATE SET next_offset = EXCLUDED.next_offset, updated_at = EXCLUDED.updated_at`,
			pipeline, topics, parts, offs)
		if err != nil {
			return nil, fmt.Errorf("store the checkpoint in %s: %w", ident, err)
		}
		return stored, nil
	}
	if len(topics) > 0 {
		tag, err := tx.Exec(ctx, `UPDATE `+ident+` AS o SET next_offset = u.next_offset, updated_at = now()
			FROM unnest($2::text[], $3::integer[], $4::bigint[], $5::bigint[]) AS u(topic, partition, next_offset, expected)
			WHERE o.pipeline = $1 AND o.topic = u.topic AND o.partition = u.partition AND o.next_offset = u.expected`,
			pipeline, topics, parts, offs, olds)
		if err != nil {
			return nil, fmt.Errorf("store the checkpoint in %s: %w", ident, err)
		}
		if tag.RowsAffected() != int64(len(topics)) {
			return nil, fmt.Errorf("store the checkpoint in %s: %w", ident, ErrCheckpointMoved)
		}
	}
	if len(newTopics) > 0 {
		tag, err := tx.Exec(ctx, `INSERT INTO `+ident+` (pipeline, topic, partition, next_offset, updated_at)
			SELECT $1, u.topic, u.partition, u.next_offset, now()
			FROM unnest($2::text[], $3::integer[], $4::bigint[]) AS u(topic, partition, next_offset)
			ON CONFLICT (pipeline, topic, partition) DO NOTHING`,
			pipeline, newTopics, newParts, newOffs)
		if err != nil {
			return nil, fmt.Errorf("store the checkpoint in %s: %w", ident, err)
		}
		if tag.RowsAffected() != int64(len(newTopics)) {
			return nil, fmt.Errorf("store the checkpoint in %s: %w", ident, ErrCheckpointMoved)
		}
	}
	return stored, nil
}

// LoadCheckpoint returns the positions the last successful Write stored
// for the pipeline, ordered by topic and partition; none when it has
// written nothing (or sluice_offsets does not exist yet).
func (s *Sink) LoadCheckpoint(ctx context.Context) (connector.Checkpoint, error) {
	cp, err := s.loadCheckpoint(ctx)
	return cp, s.fail(ctx, err)
}

func (s *Sink) loadCheckpoint(ctx context.Context) (connector.Checkpoint, error) {
	s.mu.Lock()
	tbl := s.tbl
	s.mu.Unlock()
	schema, err := s.targetSchema(ctx, tbl)
	if err != nil {
		return nil, err
	}
	ident := pgx.Identifier{schema, offsetsTable}.Sanitize()
	var exists bool
	if err := s.pool.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", ident).Scan(&exists); err != nil {
		return nil, fmt.Errorf("look up %s: %w", ident, err)
	}
	if !exists {
		s.setExpect(nil)
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT topic, partition, next_offset FROM `+ident+`
		WHERE pipeline = $1 ORDER BY topic, partition`, s.pipeline)
	if err != nil {
		return nil, fmt.Errorf("load the checkpoint from %s: %w", ident, err)
	}
	var cp connector.Checkpoint
	for rows.Next() {
		var p connector.Position
		if err := rows.Scan(&p.Topic, &p.Partition, &p.Offset); err != nil {
			rows.Close()
			return nil, fmt.Errorf("load the checkpoint from %s: %w", ident, err)
		}
		cp = append(cp, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load the checkpoint from %s: %w", ident, err)
	}
	s.setExpect(cp)
	return cp, nil
}

// setExpect makes cp the positions the next Write expects to find stored.
func (s *Sink) setExpect(cp connector.Checkpoint) {
	expect := make(map[partitionKey]int64, len(cp))
	for _, p := range cp {
		expect[partitionKey{p.Topic, p.Partition}] = p.Offset
	}
	s.mu.Lock()
	s.expect = expect
	s.mu.Unlock()
}

// Close closes the pool's connections. Write must have returned: the
// contract of Sink says so, and pgxpool waits for connections in use.
func (s *Sink) Close(context.Context) error {
	s.pool.Close()
	return nil
}

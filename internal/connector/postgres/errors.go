package postgres

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sluice-dev/sluice/internal/connector"
)

// ErrCommitUnknown marks a Write whose COMMIT was sent but not answered
// (the connection broke): the batch may or may not be durable. See Write.
var ErrCommitUnknown = errors.New("outcome of the commit unknown")

// ErrCheckpointMoved marks a Write that found the positions stored in
// sluice_offsets moved since the caller loaded them: another writer
// committed them, so this batch's records are written already (or are
// another writer's to write). Nothing was written; the caller loads the
// checkpoint again and resumes from there. See Write.
var ErrCheckpointMoved = errors.New("the stored checkpoint moved since it was loaded")

// RecordError is why PostgreSQL, or the conversion to a column's type,
// refused one record: the Err of its connector.Rejection.
type RecordError struct {
	// Column is the column concerned, when known.
	Column string
	// Type is the column's type, for conversion errors.
	Type string
	// Err is the cause; a *pgconn.PgError when the server refused the row.
	Err error
}

func (e *RecordError) Error() string {
	var pe *pgconn.PgError
	if errors.As(e.Err, &pe) {
		var b strings.Builder
		fmt.Fprintf(&b, "postgres: %s (SQLSTATE %s", pe.Message, pe.Code)
		if pe.ConstraintName != "" {
			fmt.Fprintf(&b, ", constraint %s", pe.ConstraintName)
		}
		if e.Column != "" {
			fmt.Fprintf(&b, ", column %s", e.Column)
		}
		b.WriteString(")")
		if pe.Detail != "" {
			fmt.Fprintf(&b, ": %s", pe.Detail)
		}
		return b.String()
	}
	switch {
	case e.Column != "" && e.Type != "":
		return fmt.Sprintf("postgres: column %s (%s): %v", e.Column, e.Type, e.Err)
	case e.Column != "":
		return fmt.Sprintf("postgres: column %s: %v", e.Column, e.Err)
	}
	return "postgres: " + e.Err.Error()
}

func (e *RecordError) Unwrap() error { return e.Err }

// whereColumn finds the column of a data exception in COPY's context
// ("COPY orders, line 3, column amount").
var whereColumn = regexp.MustCompile(`, column (.+)$`)

// whereLine finds the row of a COPY error ("COPY orders, line 3").
var whereLine = regexp.MustCompile(`^COPY [^\n]*, line (\d+)`)

// pgRecordError is the rejection for a row the server refused.
func pgRecordError(pe *pgconn.PgError) *RecordError {
	col := pe.ColumnName
	if col == "" {
		if m := whereColumn.FindStringSubmatch(pe.Where); m != nil {
			col = m[1]
		}
	}
	return &RecordError{Column: col, Err: pe}
}

// copyLine returns the 1-based row of a COPY error, or 0.
func copyLine(pe *pgconn.PgError) int {
	m := whereLine.FindStringSubmatch(pe.Where)
	if m == nil {
		return 0
	}
	n, err := strconv.Atoi(m[1])
	if err != nil {
		return 0
	}
	return n
}

// recordFault reports whether the server refused a statement for the
// content of one of its rows, so that the rows are worth locating and
// rejecting one by one: data exceptions (22), integrity constraint
// violations (23), a row too large for an index (54000), and exceptions
// raised by triggers (P0001), which is how validation triggers refuse rows,
// and a COPY that pgx aborted because it could not encode a value.
func recordFault(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	switch {
	case strings.HasPrefix(pe.Code, "22"), strings.HasPrefix(pe.Code, "23"):
		return true
	case pe.Code == "54000", pe.Code == "P0001":
		return true
	case pe.Code == "57014" && strings.HasPrefix(pe.Message, "COPY from stdin failed"):
		// pgx could not encode a value and ended the COPY itself.
		return true
	}
	return false
}

// cardinalityFault is ON CONFLICT DO UPDATE meeting one key twice: rows
// that the batch's deduplication did not see as equal (1.0 and 1 in a
// numeric key, case in a citext key). Writing them in separate statements
// works, and keeps the last.
func cardinalityFault(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "21000"
}

// permanent reports whether retrying cannot fix err.
func permanent(err error) bool {
	if errors.Is(err, connector.ErrPermanent) {
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case strings.HasPrefix(pe.Code, "28"): // invalid authorization
			return true
		case pe.Code == "3D000", pe.Code == "3F000": // no such database, schema
			return true
		case pe.Code == "42P01", pe.Code == "42703", pe.Code == "42501", pe.Code == "42P10":
			// missing table, undefined column, insufficient privilege, no
			// unique constraint for ON CONFLICT
			return true
		case strings.HasPrefix(pe.Code, "42"): // syntax error or access rule violation
			return true
		}
		// 40001, 40P01, 57P0x, 25006, 08xxx, 53xxx, 55P03, ...: transient.
		return false
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		// Refused, reset, timed out, a host that is a standby: all of them
		// may pass. Authentication failures are PgErrors, above.
		return false
	}
	return false
}

// connectionLost reports whether err leaves the pool's connections
// suspect: the server shut down, the network failed, or the server is a
// standby now (25006 after a failover). The pool is reset then, so that
// every connection is made anew, and pgx tries the hosts of the DSN in
// order again, checking target_session_attrs.
func connectionLost(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "25006" || strings.HasPrefix(pe.Code, "08") || strings.HasPrefix(pe.Code, "57P")
	}
	if errors.Is(err, context.Canceled) {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	var ce *pgconn.ConnectError
	return errors.As(err, &ce) || pgconn.Timeout(err) || errors.Is(err, net.ErrClosed)
}

// redactedError hides secrets from an error's text while keeping its chain
// for errors.Is and errors.As.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// redact returns err with every occurrence of the secrets replaced.
// Defence in depth: pgx names host, user and database in its errors but no
// password, and this package never formats the DSN into one.
func redact(err error, secrets []string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	clean := scrub(msg, secrets)
	if clean == msg {
		return err
	}
	if errors.Is(err, connector.ErrPermanent) {
		return connector.Permanent(&redactedError{msg: clean, err: err})
	}
	return &redactedError{msg: clean, err: err}
}

func scrub(s string, secrets []string) string {
	for _, sec := range secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, "xxxxx")
		}
	}
	return s
}

// secrets returns the strings of a DSN that must not appear in errors: the
// DSN itself, and its passwords, as written and URL-decoded.
func secrets(dsn string, cfg *pgconn.Config) []string {
	out := []string{dsn}
	if cfg != nil && cfg.Password != "" {
		out = append(out, cfg.Password, url.QueryEscape(cfg.Password), url.PathEscape(cfg.Password))
	}
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		if pw, ok := u.User.Password(); ok && pw != "" {
			out = append(out, pw)
		}
	}
	// Longest first, so that a password inside the DSN does not break the
	// DSN's replacement.
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

// dsnError describes why a DSN does not parse without quoting it: pgx's
// message quotes the DSN with the password masked, best effort only.
func dsnError(dsn string, err error) string {
	msg := err.Error()
	var pce *pgconn.ParseConfigError
	if errors.As(err, &pce) {
		if i := strings.LastIndex(msg, "`: "); i >= 0 {
			msg = msg[i+len("`: "):]
		} else {
			msg = "invalid connection string"
		}
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		msg = ue.Err.Error()
	}
	sec := []string{dsn}
	if u, perr := url.Parse(dsn); perr == nil && u.User != nil {
		if pw, ok := u.User.Password(); ok {
			sec = append(sec, pw)
		}
	}
	if i := strings.Index(dsn, "password="); i >= 0 {
		pw := dsn[i+len("password="):]
		if j := strings.IndexAny(pw, " &"); j >= 0 {
			pw = pw[:j]
		}
		sec = append(sec, strings.Trim(pw, "'"))
	}
	return "cannot parse the connection string: " + scrub(msg, sec)
}

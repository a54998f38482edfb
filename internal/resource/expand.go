package resource

import (
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/internal/units"
)

// Defaults of pipeline specs.
const (
	DefaultBatchRecords   = 5000
	DefaultBatchBytes     = 4 << 20
	DefaultBatchWait      = 200 * time.Millisecond
	DefaultInitialBackoff = 100 * time.Millisecond
	DefaultMaxBackoff     = 30 * time.Second
	DefaultMaxAttempts    = 10
)

// WithDefaults returns the spec with every unset setting at its default:
// stream mode, start from the earliest record (as Kafka Connect sinks
// do), at-least-once delivery, batches of 5000 records, 4 MiB or 200 ms,
// retries from 100 ms to 30 s, 10 attempts. Source.Group stays as it is: its default is the
// pipeline's name, which the spec does not hold (Pipeline.WithDefaults
// fills it). Processors and sink are shared with s, not copied.
func (s PipelineSpec) WithDefaults() PipelineSpec {
	if s.Mode == "" {
		s.Mode = ModeStream
	}
	if s.Source.StartFrom == "" {
		s.Source.StartFrom = "earliest"
	}
	if s.Delivery == "" {
		s.Delivery = AtLeastOnce
	}
	if s.Batch.MaxRecords == 0 {
		s.Batch.MaxRecords = DefaultBatchRecords
	}
	if s.Batch.MaxBytes == 0 {
		s.Batch.MaxBytes = DefaultBatchBytes
	}
	if s.Batch.MaxWait == 0 {
		s.Batch.MaxWait = units.Duration(DefaultBatchWait)
	}
	if s.Retry.InitialBackoff == 0 {
		s.Retry.InitialBackoff = units.Duration(DefaultInitialBackoff)
	}
	if s.Retry.MaxBackoff == 0 {
		s.Retry.MaxBackoff = units.Duration(max(DefaultMaxBackoff, s.Retry.InitialBackoff.D()))
	}
	if s.Retry.MaxAttempts == 0 {
		s.Retry.MaxAttempts = DefaultMaxAttempts
	}
	return s
}

// WithDefaults returns p's spec with every default filled in, the
// consumer group (the pipeline's name) included.
func (p *Pipeline) WithDefaults() PipelineSpec {
	s := p.Spec.WithDefaults()
	if s.Source.Group == "" {
		s.Source.Group = p.Metadata.Name
	}
	return s
}

// Expand returns a copy of p with every ${VAR} and ${VAR:-default} in its
// string values resolved through lookup; $${ is a literal ${. An unset
// variable without a default is an error naming it and the field, never
// a value. The server expands a spec when it starts the pipeline, from its
// own environment, so that secrets stay out of the stored specs.
func Expand(p *Pipeline, lookup func(string) (string, bool)) (*Pipeline, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	var doc any
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	// Only the spec is expanded: the name and labels are the pipeline's
	// identity, the same wherever it runs.
	var errs Errors
	root := doc.(map[string]any)
	root["spec"] = expandValue(root["spec"], "spec", lookup, &errs)
	if len(errs) > 0 {
		return nil, fmt.Errorf("pipeline %s: %w", p.Metadata.Name, errs)
	}
	if b, err = json.Marshal(doc); err != nil {
		return nil, err
	}
	out := &Pipeline{}
	if err := json.Unmarshal(b, out); err != nil {
		return nil, fmt.Errorf("pipeline %s: after expanding variables: %w", p.Metadata.Name, err)
	}
	return out, nil
}

// expandValue expands the strings of v in place, in the order of their
// paths, adding an error for every unset variable.
func expandValue(v any, path string, lookup func(string) (string, bool), errs *Errors) any {
	switch t := v.(type) {
	case string:
		s, err := expandString(t, path, lookup)
		if err != nil {
			*errs = append(*errs, &Error{Msg: err.Error()})
		}
		return s
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(t)) {
			t[k] = expandValue(t[k], join(path, k), lookup, errs)
		}
	case []any:
		for i, e := range t {
			t[i] = expandValue(e, fmt.Sprintf("%s[%d]", path, i), lookup, errs)
		}
	}
	return v
}

var varRef = regexp.MustCompile(`\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}`)

func expandString(s, path string, lookup func(string) (string, bool)) (string, error) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	var missing []string
	out := varRef.ReplaceAllStringFunc(s, func(m string) string {
		if m == "$${" {
			return "${"
		}
		sub := varRef.FindStringSubmatch(m)
		if v, ok := lookup(sub[1]); ok {
			return v
		}
		if sub[2] != "" {
			return sub[3]
		}
		missing = append(missing, "${"+sub[1]+"}")
		return ""
	})
	switch len(missing) {
	case 0:
	case 1:
		return out, fmt.Errorf("%s: %s is not set in the server's environment", path, missing[0])
	default:
		return out, fmt.Errorf("%s: %s are not set in the server's environment", path, strings.Join(missing, ", "))
	}
	return out, nil
}

// Redact returns a copy of p for display, with literal secrets masked: a
// password in a postgres DSN becomes ****. ${VAR} references stay as
// written; they hold no secret.
func Redact(p *Pipeline) *Pipeline {
	c := *p
	if pg := p.Spec.Sink.Postgres; pg != nil {
		cp := *pg
		cp.DSN = RedactDSN(pg.DSN)
		c.Spec.Sink.Postgres = &cp
	}
	return &c
}

// onlyRefs matches values that are nothing but ${VAR} references: no
// literal character, so nothing secret, and a default (${VAR:-x}) would
// be a literal.
var onlyRefs = regexp.MustCompile(`^(\$\{[A-Za-z_][A-Za-z0-9_]*\})+$`)

const mask = "****"

// secretParam reports whether a DSN parameter holds a secret (password,
// sslpassword, ...).
func secretParam(key string) bool {
	k := strings.ToLower(key)
	return strings.Contains(k, "password") || strings.Contains(k, "secret") || strings.Contains(k, "token")
}

func maskValue(v string) string {
	if v == "" || onlyRefs.MatchString(v) {
		return v
	}
	return mask
}

// RedactDSN masks the secrets of a libpq URL or key=value DSN: the
// password of the URL's user information and every password, sslpassword
// (or other secret-named) parameter. A value that is only ${VAR}
// references stays, as it holds no secret; one mixing literal text with
// references is masked whole. A key=value DSN that does not parse is
// masked whole: what cannot be read cannot be shown safely.
func RedactDSN(dsn string) string {
	if dsn == "" || onlyRefs.MatchString(dsn) {
		return dsn
	}
	if i := strings.Index(dsn, "://"); i >= 0 && !strings.ContainsAny(dsn[:i], " =") {
		return redactURL(dsn, i+3)
	}
	return redactKeywords(dsn)
}

// redactURL masks the password of scheme://user:password@host/db?k=v.
// The user information ends at the last "@" before the query, not at the
// first "/": an unencoded "/" in a password must not leave the rest of it
// readable.
func redactURL(dsn string, from int) string {
	head, query, hasQuery := strings.Cut(dsn[from:], "?")
	head, frag, hasFrag := strings.Cut(head, "#")
	if at := strings.LastIndexByte(head, '@'); at >= 0 {
		if c := strings.IndexByte(head[:at], ':'); c >= 0 {
			head = head[:c+1] + maskValue(head[c+1:at]) + head[at:]
		}
	}
	out := dsn[:from] + head
	if hasFrag {
		out += "#" + frag
	}
	if hasQuery {
		params := strings.Split(query, "&")
		for i, kv := range params {
			if k, v, ok := strings.Cut(kv, "="); ok && secretParam(k) {
				params[i] = k + "=" + maskValue(v)
			}
		}
		out += "?" + strings.Join(params, "&")
	}
	return out
}

// redactKeywords masks the secret values of "host=db password='x y'",
// with libpq's syntax: spaces around "=", values bare or single-quoted
// with backslash escapes.
func redactKeywords(dsn string) string {
	var b strings.Builder
	isSpace := func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v' }
	i := 0
	for i < len(dsn) {
		j := i
		for j < len(dsn) && isSpace(dsn[j]) {
			j++
		}
		b.WriteString(dsn[i:j])
		if i = j; i == len(dsn) {
			break
		}
		for j < len(dsn) && dsn[j] != '=' && !isSpace(dsn[j]) {
			j++
		}
		key := dsn[i:j]
		for j < len(dsn) && isSpace(dsn[j]) {
			j++
		}
		if j == len(dsn) || dsn[j] != '=' {
			return mask
		}
		j++
		for j < len(dsn) && isSpace(dsn[j]) {
			j++
		}
		b.WriteString(dsn[i:j])
		start := j
		var val strings.Builder
		if j < len(dsn) && dsn[j] == '\'' {
			j++
			for j < len(dsn) && dsn[j] != '\'' {
				if dsn[j] == '\\' && j+1 < len(dsn) {
					j++
				}
				val.WriteByte(dsn[j])
				j++
			}
			if j == len(dsn) {
				return mask
			}
			j++
		} else {
			for j < len(dsn) && !isSpace(dsn[j]) {
				if dsn[j] == '\\' && j+1 < len(dsn) {
					j++
				}
				val.WriteByte(dsn[j])
				j++
			}
		}
		if secretParam(key) && maskValue(val.String()) == mask {
			b.WriteString(mask)
		} else {
			b.WriteString(dsn[start:j])
		}
		i = j
	}
	return b.String()
}

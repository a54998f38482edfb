package resource

import (
	"encoding/json"
	"fmt"
	"regexp"
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
// start from the earliest record (as Kafka Connect sinks do), the group
// named after the pipeline, at-least-once delivery, batches of 5000
// records, 4 MiB or 200 ms, retries from 100 ms to 30 s, 10 attempts.
func (p *Pipeline) WithDefaults() PipelineSpec {
	s := p.Spec
	if s.Source.StartFrom == "" {
		s.Source.StartFrom = "earliest"
	}
	if s.Source.Group == "" {
		s.Source.Group = p.Metadata.Name
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
	doc, err = expandValue(doc, "", lookup)
	if err != nil {
		return nil, fmt.Errorf("pipeline %s: %w", p.Metadata.Name, err)
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

func expandValue(v any, path string, lookup func(string) (string, bool)) (any, error) {
	switch t := v.(type) {
	case string:
		return expandString(t, path, lookup)
	case map[string]any:
		for k, e := range t {
			x, err := expandValue(e, join(path, k), lookup)
			if err != nil {
				return nil, err
			}
			t[k] = x
		}
	case []any:
		for i, e := range t {
			x, err := expandValue(e, fmt.Sprintf("%s[%d]", path, i), lookup)
			if err != nil {
				return nil, err
			}
			t[i] = x
		}
	}
	return v, nil
}

var varRef = regexp.MustCompile(`\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}`)

func expandString(s, path string, lookup func(string) (string, bool)) (string, error) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	var err error
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
		if err == nil {
			err = fmt.Errorf("%s: ${%s} is not set in the server's environment", path, sub[1])
		}
		return ""
	})
	return out, err
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

var (
	urlPassword   = regexp.MustCompile(`^(postgres(?:ql)?://[^:/@?]*:)([^@/]*)(@)`)
	queryPassword = regexp.MustCompile(`([?&]password=)([^&]*)`)
	kvPassword    = regexp.MustCompile(`(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)`)
)

// RedactDSN masks the password of a libpq URL or key=value DSN; a
// ${VAR} in its place stays.
func RedactDSN(dsn string) string {
	mask := func(re *regexp.Regexp, s string) string {
		return re.ReplaceAllStringFunc(s, func(m string) string {
			sub := re.FindStringSubmatch(m)
			if strings.Contains(sub[2], "${") || sub[2] == "" {
				return m
			}
			end := ""
			if len(sub) > 3 {
				end = sub[3]
			}
			return sub[1] + "****" + end
		})
	}
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		return mask(queryPassword, mask(urlPassword, dsn))
	}
	return mask(kvPassword, dsn)
}

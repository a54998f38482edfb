package resource

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/goccy/go-yaml/ast"

	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/process"
	"github.com/sluice-dev/sluice/internal/topic"
)

var (
	topicName    = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)
	pipelineName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`)
)

// Bounds of pipeline settings.
const (
	// maxPipelineName leaves room in a topic name (at most 249) for the
	// prefix of the topics named after a pipeline (its window state's).
	maxPipelineName = 200
	maxBatchRecords = 1_000_000
	minBatchBytes   = 1 << 10
	maxBatchBytes   = 256 << 20
	maxBatchWait    = time.Hour
	maxPartitions   = topic.MaxPartitions
)

// ValidTopicName reports whether name is a Kafka topic name.
func ValidTopicName(name string) bool {
	return topicName.MatchString(name) && name != "." && name != ".."
}

func (p *fileParser) header(body ast.Node, apiVersion string, md Metadata, kind string) {
	if apiVersion != APIVersion {
		p.add(nodeAt(body, "apiVersion"), "apiVersion", fmt.Sprintf("%q: want %s", apiVersion, APIVersion), "")
	}
	name := md.Name
	switch {
	case name == "":
		p.add(nodeAt(body, "metadata"), "metadata.name", "required", "")
	case kind == KindTopic && !ValidTopicName(name):
		p.add(nodeAt(body, "metadata", "name"), "metadata.name", fmt.Sprintf("%q is not a topic name", name),
			"1 to 249 of a-z, A-Z, 0-9, '.', '_' and '-'")
	case kind == KindPipeline && (len(name) > maxPipelineName || !pipelineName.MatchString(name)):
		p.add(nodeAt(body, "metadata", "name"), "metadata.name", fmt.Sprintf("%q is not a pipeline name", name),
			"at most 200 lowercase letters, digits, '-' and '.', starting and ending with a letter or digit")
	}
}

func (p *fileParser) validateTopic(t *Topic, body ast.Node) {
	p.header(body, t.APIVersion, t.Metadata, KindTopic)
	if n := t.Spec.Partitions; n < 1 || n > maxPartitions {
		p.add(nodeAt(body, "spec", "partitions"), "spec.partitions", fmt.Sprintf("%d: want 1 to %d", n, maxPartitions), "")
	}
	p.topicConfig(t, body)
}

func (p *fileParser) enum(body ast.Node, path []string, v string, allowed ...string) {
	if v == "" || slices.Contains(allowed, v) {
		return
	}
	p.add(nodeAt(body, path...), strings.Join(path, "."), fmt.Sprintf("%q is not one of %s", v, strings.Join(allowed, ", ")), suggest(v, allowed))
}

func (p *fileParser) validatePipeline(pl *Pipeline, body ast.Node) {
	p.header(body, pl.APIVersion, pl.Metadata, KindPipeline)
	s := &pl.Spec
	at := func(path ...string) ast.Node { return nodeAt(body, append([]string{"spec"}, path...)...) }
	p.references(pl, body)
	switch {
	case s.Source.Topic == "":
		p.add(at("source"), "spec.source.topic", "required", "")
	case hasRef(s.Source.Topic):
		// Checked when the server has expanded it.
	case !ValidTopicName(s.Source.Topic):
		p.add(at("source", "topic"), "spec.source.topic", fmt.Sprintf("%q is not a topic name", s.Source.Topic), "")
	}
	p.enum(body, []string{"spec", "source", "startFrom"}, s.Source.StartFrom, "earliest", "latest")
	p.enum(body, []string{"spec", "delivery"}, s.Delivery, AtLeastOnce, ExactlyOnce)
	p.validateMode(pl, body)

	// Processors: one kind each, then compiled for CEL and schema errors.
	kindsOK := true
	for i, c := range s.Processors {
		if kinds := processorKinds(c); len(kinds) != 1 {
			kindsOK = false
			msg := "names no processor: want one of filter, map, validate, drop, rename, set, dedupe, window"
			if len(kinds) > 1 {
				msg = "names " + strings.Join(kinds, " and ") + ": one processor per list entry"
			}
			p.add(at("processors", fmt.Sprintf("[%d]", i)), fmt.Sprintf("spec.processors[%d]", i), msg, "")
		}
	}
	if kindsOK {
		p.inlineSchemas(s, body)
		if _, err := process.NewChain(s.Processors, process.Options{}); err != nil {
			var ce *process.ConfigError
			if errors.As(err, &ce) {
				path := []string{"processors", fmt.Sprintf("[%d]", ce.Index)}
				if ce.Field != "" {
					path = append(path, fieldPath(ce.Field)...)
				}
				p.add(at(path...), "spec."+path[0]+path[1]+dotted(ce.Field), ce.Err.Error(), "")
			} else {
				p.add(at("processors"), "spec.processors", err.Error(), "")
			}
		}
	}

	p.validateSink(pl, body)
	if s.Delivery == ExactlyOnce {
		for i, c := range s.Processors {
			if c.Window != nil {
				p.add(nodeAt(body, "spec", "delivery"), "spec.delivery",
					fmt.Sprintf("exactly-once cannot be kept with the window of processors[%d]: its state is checkpointed in Sluice, not in the sink's transaction", i),
					"use at-least-once with an upsert sink: window results are keyed, so a replay rewrites the same rows")
				break
			}
		}
	}

	if dl := s.DeadLetter; dl != nil {
		switch {
		case dl.Topic == "":
			p.add(at("deadLetter"), "spec.deadLetter.topic", "required", "")
		case hasRef(dl.Topic):
		case !ValidTopicName(dl.Topic):
			p.add(at("deadLetter", "topic"), "spec.deadLetter.topic", fmt.Sprintf("%q is not a topic name", dl.Topic), "")
		case dl.Topic == s.Source.Topic:
			p.add(at("deadLetter", "topic"), "spec.deadLetter.topic", "is the source topic", "a failed record would be read again and fail again")
		case s.Sink.Topic != nil && dl.Topic == s.Sink.Topic.Name:
			p.add(at("deadLetter", "topic"), "spec.deadLetter.topic", "is the sink topic", "refused records would be mixed with the output")
		}
	}
	b := s.Batch
	if b.MaxRecords < 0 || b.MaxRecords > maxBatchRecords {
		p.add(at("batch", "maxRecords"), "spec.batch.maxRecords", fmt.Sprintf("%d: want 1 to %d", b.MaxRecords, maxBatchRecords), "")
	}
	if b.MaxBytes != 0 && (b.MaxBytes < minBatchBytes || b.MaxBytes > maxBatchBytes) {
		p.add(at("batch", "maxBytes"), "spec.batch.maxBytes", fmt.Sprintf("%s: want 1KiB to 256MiB", b.MaxBytes), "")
	}
	if b.MaxWait.D() > maxBatchWait {
		p.add(at("batch", "maxWait"), "spec.batch.maxWait", fmt.Sprintf("%s: want at most 1h", b.MaxWait), "")
	}
	r := s.Retry
	if r.MaxAttempts < 0 {
		p.add(at("retry", "maxAttempts"), "spec.retry.maxAttempts", fmt.Sprintf("%d: want 1 or more (0: the default, 10)", r.MaxAttempts), "")
	}
	if r.InitialBackoff != 0 && r.MaxBackoff != 0 && r.InitialBackoff > r.MaxBackoff {
		p.add(at("retry", "initialBackoff"), "spec.retry.initialBackoff", fmt.Sprintf("%s is above maxBackoff %s", r.InitialBackoff, r.MaxBackoff), "")
	}
}

// fieldPath splits a ConfigError field ("map.value", "drop[1]") into
// node path steps.
func fieldPath(f string) []string {
	var out []string
	for _, part := range strings.Split(f, ".") {
		if i := strings.Index(part, "["); i > 0 {
			out = append(out, part[:i], part[i:])
			continue
		}
		out = append(out, part)
	}
	return out
}

func dotted(f string) string {
	if f == "" {
		return ""
	}
	return "." + f
}

func processorKinds(c process.Config) []string {
	var k []string
	for _, x := range []struct {
		name string
		set  bool
	}{
		{"filter", c.Filter != ""}, {"map", c.Map != nil}, {"validate", c.Validate != nil},
		{"drop", c.Drop != nil}, {"rename", c.Rename != nil}, {"set", c.Set != nil}, {"dedupe", c.Dedupe != nil},
		{"window", c.Window != nil},
	} {
		if x.set {
			k = append(k, x.name)
		}
	}
	return k
}

// inlineSchemas reads the schemaFile of each validate processor, relative
// to the file's directory, and puts the schema inline.
func (p *fileParser) inlineSchemas(s *PipelineSpec, body ast.Node) {
	for i := range s.Processors {
		v := s.Processors[i].Validate
		if v == nil || v.SchemaFile == "" {
			continue
		}
		node := nodeAt(body, "spec", "processors", fmt.Sprintf("[%d]", i), "validate", "schemaFile")
		path := fmt.Sprintf("spec.processors[%d].validate.schemaFile", i)
		if v.JSONSchema != nil {
			p.add(node, path, "set together with jsonSchema", "name the schema once")
			continue
		}
		if p.opts.BaseDir == "" {
			p.add(node, path, "schema files are read by sluice apply", "send the schema inline as jsonSchema")
			continue
		}
		file := v.SchemaFile
		if !filepath.IsAbs(file) {
			file = filepath.Join(p.opts.BaseDir, file)
		}
		b, err := readLimited(file)
		if err != nil {
			p.add(node, path, err.Error(), "")
			continue
		}
		doc, err := connector.DecodeJSON(b)
		if err != nil {
			p.add(node, path, fmt.Sprintf("%s: %v", v.SchemaFile, err), "")
			continue
		}
		s.Processors[i].Validate = &process.ValidateConfig{JSONSchema: doc}
	}
}

func (p *fileParser) validateSink(pl *Pipeline, body ast.Node) {
	s := &pl.Spec
	sk := s.Sink
	at := func(path ...string) ast.Node { return nodeAt(body, append([]string{"spec", "sink"}, path...)...) }
	var kinds []string
	for _, x := range []struct {
		name string
		set  bool
	}{{"postgres", sk.Postgres != nil}, {"parquet", sk.Parquet != nil}, {"file", sk.File != nil}, {"topic", sk.Topic != nil}, {"stdout", sk.Stdout != nil}} {
		if x.set {
			kinds = append(kinds, x.name)
		}
	}
	switch len(kinds) {
	case 0:
		p.add(at(), "spec.sink", "required: one of postgres, parquet, file, topic, stdout", "")
		return
	case 1:
	default:
		p.add(at(), "spec.sink", "names "+strings.Join(kinds, " and ")+": a pipeline has one sink", "")
		return
	}
	// Enumerations first, with suggestions; a connector's own check would
	// report the same value without one.
	before := len(p.errs)
	switch {
	case sk.Postgres != nil:
		p.enum(body, []string{"spec", "sink", "postgres", "mode"}, sk.Postgres.Mode, "insert", "upsert")
	case sk.Parquet != nil:
		p.enum(body, []string{"spec", "sink", "parquet", "compression"}, sk.Parquet.Compression, "snappy", "zstd", "gzip", "none")
	case sk.File != nil:
		p.enum(body, []string{"spec", "sink", "file", "format"}, sk.File.Format, "value", "record")
	}
	if len(p.errs) > before {
		return
	}
	var err error
	switch {
	case sk.Postgres != nil:
		c := *sk.Postgres
		if strings.Contains(c.DSN, "${") {
			// Resolved by the server at start: check the rest.
			c.DSN = "postgres://localhost/placeholder"
		}
		err = c.Validate()
	case sk.Parquet != nil:
		err = sk.Parquet.Validate()
		if err == nil && sk.Parquet.PartitionBy != "" {
			if _, cerr := process.CompileExpr(sk.Parquet.PartitionBy, process.Options{}); cerr != nil {
				p.add(at("parquet", "partitionBy"), "spec.sink.parquet.partitionBy", cerr.Error(), "")
			}
		}
	case sk.File != nil:
		err = sk.File.Validate()
	case sk.Topic != nil:
		switch n := sk.Topic.Name; {
		case n == "":
			err = errors.New("name: required")
		case hasRef(n):
		case !ValidTopicName(n):
			err = fmt.Errorf("name: %q is not a topic name", n)
		case n == s.Source.Topic:
			err = errors.New("name: is the source topic: the pipeline would read its own output")
		}
	case sk.Stdout != nil:
		p.enum(body, []string{"spec", "sink", "stdout", "format"}, sk.Stdout.Format, "value", "record")
	}
	if err != nil {
		// The connectors' own checks name the field first ("mode: ...").
		msg := err.Error()
		for _, prefix := range []string{"parquet: ", "file sink: ", "postgres: "} {
			msg = strings.TrimPrefix(msg, prefix)
		}
		for _, line := range strings.Split(msg, "\n") {
			field, rest, ok := strings.Cut(line, ": ")
			field, _, _ = strings.Cut(field, "=")
			node := at(kinds[0])
			path := "spec.sink." + kinds[0]
			if ok && !strings.ContainsAny(field, " \"") {
				node = nodeAt(node, field)
				path += "." + field
				line = rest
			}
			p.add(node, path, line, "")
		}
	}
	if s.Delivery == ExactlyOnce && sk.Postgres == nil && s.Mode != ModeBatch {
		p.add(nodeAt(body, "spec", "delivery"), "spec.delivery", "exactly-once needs a sink that stores offsets with the data",
			"only the postgres sink can; use at-least-once with "+kinds[0])
	}
}

package resource

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml/ast"
	"github.com/robfig/cron/v3"
)

// Modes of a pipeline.
const (
	// ModeStream pipelines read their source as it grows, for ever.
	ModeStream = "stream"
	// ModeBatch pipelines read a bounded range of offsets per run, on a
	// schedule or on demand, and remember where the last run ended.
	ModeBatch = "batch"
)

// Kinds of Bound: the words a spec or a run request writes for one end of
// a batch run's range.
const (
	// BoundLastRun (a start): where the last completed run ended, or the
	// earliest offset for the first run.
	BoundLastRun = "lastRun"
	// BoundEarliest (a start): the log start of each partition.
	BoundEarliest = "earliest"
	// BoundLatest (an end): the end of each partition when the run starts.
	BoundLatest = "latest"
	// BoundTime: the first offset whose record timestamp is at or after
	// a time, in each partition.
	BoundTime = "time"
	// BoundOffsets: explicit offsets of the partitions named; the run
	// reads only those partitions.
	BoundOffsets = "offsets"
)

// Bound is one end of a batch run's range, parsed.
type Bound struct {
	Kind    string
	Time    time.Time       // BoundTime
	Offsets map[int32]int64 // BoundOffsets: partition -> offset
}

// String is the bound as ParseFrom and ParseTo read it back.
func (b Bound) String() string {
	switch b.Kind {
	case BoundTime:
		return b.Time.UTC().Format(time.RFC3339Nano)
	case BoundOffsets:
		parts := make([]string, 0, len(b.Offsets))
		for _, p := range slices.Sorted(maps.Keys(b.Offsets)) {
			parts = append(parts, fmt.Sprintf("%d=%d", p, b.Offsets[p]))
		}
		return strings.Join(parts, ",")
	}
	return b.Kind
}

// ParseFrom reads the start of a range: lastRun, earliest, an RFC 3339
// time, or partition=offset pairs separated by commas ("0=100,1=250").
func ParseFrom(s string) (Bound, error) {
	switch s {
	case BoundLastRun, BoundEarliest:
		return Bound{Kind: s}, nil
	}
	return parseBound(s, "lastRun, earliest", []string{BoundLastRun, BoundEarliest})
}

// ParseTo reads the end of a range: latest, an RFC 3339 time, or
// partition=offset pairs.
func ParseTo(s string) (Bound, error) {
	if s == BoundLatest {
		return Bound{Kind: s}, nil
	}
	return parseBound(s, "latest", []string{BoundLatest})
}

func parseBound(s, words string, known []string) (Bound, error) {
	want := "want " + words + ", an RFC 3339 time or partition=offset,..."
	if s == "" {
		return Bound{}, errors.New("empty: " + want)
	}
	if strings.Contains(s, "=") {
		offs, err := ParseOffsets(s)
		if err != nil {
			return Bound{}, err
		}
		return Bound{Kind: BoundOffsets, Offsets: offs}, nil
	}
	if len(s) >= 10 && s[0] >= '0' && s[0] <= '9' {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return Bound{}, fmt.Errorf("%q is not an RFC 3339 time such as 2026-12-02T15:00:00Z", s)
		}
		return Bound{Kind: BoundTime, Time: t}, nil
	}
	msg := fmt.Sprintf("%q: %s", s, want)
	if hint := suggest(s, known); hint != "" {
		msg += " (" + hint + ")"
	}
	return Bound{}, errors.New(msg)
}

// ParseOffsets reads "0=100,1=250": partition numbers and offsets, each
// partition once.
func ParseOffsets(s string) (map[int32]int64, error) {
	out := map[int32]int64{}
	for _, pair := range strings.Split(s, ",") {
		ps, os, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if !ok {
			return nil, fmt.Errorf("%q: want partition=offset", pair)
		}
		p, err := parsePartition(ps)
		if err != nil {
			return nil, err
		}
		off, err := strconv.ParseInt(os, 10, 64)
		if err != nil || off < 0 {
			return nil, fmt.Errorf("%q: the offset of partition %d is not a whole number of 0 or more", pair, p)
		}
		if _, dup := out[p]; dup {
			return nil, fmt.Errorf("partition %d is named twice", p)
		}
		out[p] = off
	}
	return out, nil
}

func parsePartition(s string) (int32, error) {
	p, err := strconv.ParseInt(s, 10, 32)
	if err != nil || p < 0 || p >= maxPartitions {
		return 0, fmt.Errorf("%q is not a partition number (0 to %d)", s, maxPartitions-1)
	}
	return int32(p), nil
}

// FromBound is where the source's batch runs start: FromOffsets, else
// From, else lastRun. The spec must have been validated.
func (s Source) FromBound() (Bound, error) {
	if s.FromOffsets != nil {
		return offsetsBound(s.FromOffsets)
	}
	if s.From == "" {
		return Bound{Kind: BoundLastRun}, nil
	}
	return ParseFrom(s.From)
}

// ToBound is where the source's batch runs end: ToOffsets, else To, else
// latest.
func (s Source) ToBound() (Bound, error) {
	if s.ToOffsets != nil {
		return offsetsBound(s.ToOffsets)
	}
	if s.To == "" {
		return Bound{Kind: BoundLatest}, nil
	}
	return ParseTo(s.To)
}

func offsetsBound(m map[string]int64) (Bound, error) {
	b := Bound{Kind: BoundOffsets, Offsets: make(map[int32]int64, len(m))}
	for k, off := range m {
		p, err := parsePartition(k)
		if err != nil {
			return Bound{}, err
		}
		if off < 0 {
			return Bound{}, fmt.Errorf("partition %d: offset %d is negative", p, off)
		}
		b.Offsets[p] = off
	}
	return b, nil
}

// CheckRange checks that a start and an end make a range: explicit
// offsets on both sides name the same partitions, each start at or
// before its end; a start time before an end time. It returns the field
// at fault ("from" or "to") with the error.
func CheckRange(from, to Bound) (string, error) {
	switch {
	case from.Kind == BoundOffsets && to.Kind == BoundOffsets:
		fp, tp := slices.Sorted(maps.Keys(from.Offsets)), slices.Sorted(maps.Keys(to.Offsets))
		if !slices.Equal(fp, tp) {
			return "to", fmt.Errorf("names partitions %s, the start names %s: both ends name the same partitions", partitionList(tp), partitionList(fp))
		}
		for _, p := range fp {
			if from.Offsets[p] > to.Offsets[p] {
				return "to", fmt.Errorf("partition %d ends at %d, before its start %d", p, to.Offsets[p], from.Offsets[p])
			}
		}
	case from.Kind == BoundTime && to.Kind == BoundTime && to.Time.Before(from.Time):
		return "to", fmt.Errorf("%s is before the start %s", to, from)
	}
	return "", nil
}

func partitionList(ps []int32) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = strconv.Itoa(int(p))
	}
	return strings.Join(s, ", ")
}

// cronParser reads 5-field cron lines and the descriptors (@hourly,
// @daily, @every 15m); CRON_TZ=Area/City in front picks a time zone.
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ParseSchedule reads a batch pipeline's schedule: a cron line of five
// fields (minute hour day-of-month month day-of-week) or a descriptor
// (@hourly, @daily, @weekly, @monthly, @yearly, @every 15m). Times are in
// UTC unless the line starts with CRON_TZ=Zone. @every intervals are at
// least a second.
func ParseSchedule(s string) (cron.Schedule, error) {
	body := strings.TrimSpace(s)
	if strings.HasPrefix(body, "CRON_TZ=") || strings.HasPrefix(body, "TZ=") {
		_, body, _ = strings.Cut(body, " ")
	} else {
		s = "CRON_TZ=UTC " + s
	}
	if d, ok := strings.CutPrefix(strings.TrimSpace(body), "@every "); ok {
		if iv, err := time.ParseDuration(strings.TrimSpace(d)); err == nil && iv < time.Second {
			return nil, fmt.Errorf("@every %s: want an interval of 1s or more", iv)
		}
	}
	sched, err := cronParser.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", strings.TrimSpace(body), err)
	}
	return sched, nil
}

// validateMode checks mode and the settings that only one mode has.
func (p *fileParser) validateMode(pl *Pipeline, body ast.Node) {
	s := &pl.Spec
	at := func(path ...string) ast.Node { return nodeAt(body, append([]string{"spec"}, path...)...) }
	p.enum(body, []string{"spec", "mode"}, s.Mode, ModeStream, ModeBatch)
	if s.Mode != ModeBatch {
		if s.Mode != "" && s.Mode != ModeStream {
			return
		}
		for _, f := range []struct {
			path []string
			set  bool
		}{
			{[]string{"schedule"}, s.Schedule != ""},
			{[]string{"source", "from"}, s.Source.From != ""},
			{[]string{"source", "to"}, s.Source.To != ""},
			{[]string{"source", "fromOffsets"}, s.Source.FromOffsets != nil},
			{[]string{"source", "toOffsets"}, s.Source.ToOffsets != nil},
		} {
			if f.set {
				p.add(at(f.path...), "spec."+strings.Join(f.path, "."), "only batch pipelines read a range",
					"set mode: batch, or remove it: a stream pipeline starts from startFrom and never ends")
			}
		}
		return
	}

	if s.Schedule != "" && !hasRef(s.Schedule) {
		if _, err := ParseSchedule(s.Schedule); err != nil {
			p.add(at("schedule"), "spec.schedule", err.Error(),
				"five fields (minute hour day-of-month month day-of-week) such as '0 * * * *', or @hourly, @daily, @every 15m")
		}
	}
	from, fromOK := p.bound(body, s.Source.From, s.Source.FromOffsets, "from", ParseFrom)
	to, toOK := p.bound(body, s.Source.To, s.Source.ToOffsets, "to", ParseTo)
	if fromOK && toOK {
		if field, err := CheckRange(from, to); err != nil {
			name := field
			if (field == "to" && s.Source.ToOffsets != nil) || (field == "from" && s.Source.FromOffsets != nil) {
				name += "Offsets"
			}
			p.add(at("source", name), "spec.source."+name, err.Error(), "")
		}
	}

	// What a run cannot honour.
	if s.Source.StartFrom != "" {
		p.add(at("source", "startFrom"), "spec.source.startFrom", "is for stream pipelines",
			"a batch run starts where from says: lastRun (the default), earliest, a time or fromOffsets")
	}
	if s.Delivery == ExactlyOnce {
		p.add(at("delivery"), "spec.delivery", "exactly-once is for stream pipelines",
			"a batch run publishes its Parquet files once, when it completes; into postgres use mode: upsert, which a retried run rewrites in place")
	}
	if s.Batch.MaxWait != 0 {
		p.add(at("batch", "maxWait"), "spec.batch.maxWait", "a batch run does not wait for records",
			"its batches are cut by maxRecords and maxBytes only, so that a run cuts them alike every time")
	}
	if pq := s.Sink.Parquet; pq != nil && pq.RollInterval != 0 {
		p.add(at("sink", "parquet", "rollInterval"), "spec.sink.parquet.rollInterval", "a batch run's files are published when the run completes",
			"remove it; rollBytes still bounds the size of a file")
	}
	// A run's windows close when it has read its range: the settings of
	// watermarks, updates and checkpoints have nothing to act on.
	for i, c := range s.Processors {
		w := c.Window
		if w == nil {
			continue
		}
		for _, f := range []struct {
			name string
			set  bool
		}{
			{"allowedLateness", w.AllowedLateness != 0}, {"emit", w.Emit != "" && w.Emit != "onClose"}, {"every", w.Every != 0},
			{"late", w.Late != ""}, {"idleTimeout", w.IdleTimeout != 0}, {"checkpointEvery", w.CheckpointEvery != 0},
		} {
			if f.set {
				idx := fmt.Sprintf("[%d]", i)
				p.add(at("processors", idx, "window", f.name), "spec.processors"+idx+".window."+f.name, "is for stream pipelines",
					"a batch run has all of its range: its windows close when it has read it, and none of its events is late")
			}
		}
	}
}

// bound checks one end of a batch range: the word or time of field, or
// the offsets of field+"Offsets", not both.
func (p *fileParser) bound(body ast.Node, word string, offsets map[string]int64, field string, parse func(string) (Bound, error)) (Bound, bool) {
	at := func(path ...string) ast.Node { return nodeAt(body, append([]string{"spec", "source"}, path...)...) }
	offField := field + "Offsets"
	if word != "" && offsets != nil {
		p.add(at(offField), "spec.source."+offField, "set together with "+field, "give one "+map[string]string{"from": "start", "to": "end"}[field])
		return Bound{}, false
	}
	if offsets != nil {
		if len(offsets) == 0 {
			p.add(at(offField), "spec.source."+offField, "names no partition", "")
			return Bound{}, false
		}
		ok := true
		for _, k := range slices.Sorted(maps.Keys(offsets)) {
			if _, err := parsePartition(k); err != nil {
				p.add(offsetKey(at(offField), k), "spec.source."+offField+"."+k, err.Error(), "")
				ok = false
			} else if offsets[k] < 0 {
				p.add(at(offField, k), "spec.source."+offField+"."+k, fmt.Sprintf("%d: want an offset of 0 or more", offsets[k]), "")
				ok = false
			}
		}
		if !ok {
			return Bound{}, false
		}
		b, _ := offsetsBound(offsets)
		return b, true
	}
	if word == "" {
		if field == "from" {
			return Bound{Kind: BoundLastRun}, true
		}
		return Bound{Kind: BoundLatest}, true
	}
	if hasRef(word) {
		return Bound{}, false // checked once expanded
	}
	b, err := parse(word)
	if err != nil {
		p.add(at(field), "spec.source."+field, err.Error(), "")
		return Bound{}, false
	}
	if b.Kind == BoundOffsets {
		p.add(at(field), "spec.source."+field, "offsets go in "+offField, fmt.Sprintf("%s: {\"0\": 100, \"1\": 250}", offField))
		return Bound{}, false
	}
	return b, true
}

// offsetKey is the key node of an offsets entry: the error is about the
// partition, not its offset.
func offsetKey(m ast.Node, k string) ast.Node {
	for _, mv := range mappingValues(m) {
		if keyText(mv) == k {
			return mv.Key
		}
	}
	return m
}

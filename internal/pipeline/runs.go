package pipeline

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sluice-dev/sluice/internal/record"
	"github.com/sluice-dev/sluice/internal/stream"
)

// RunsTopic holds the runs of batch pipelines: one record per change of a
// run's state (started, retrying, succeeded, failed), keyed by the
// pipeline's name, the value the Run as JSON. Like the specs it lives
// wherever the log is, in --data-dir or in the Kafka cluster. It is kept
// whole (no retention, no compaction): the last succeeded run is where the
// next one starts, however long ago it ran.
const RunsTopic = "_sluice_runs"

// Kinds of run.
const (
	// RunScheduled runs were started by the pipeline's schedule.
	RunScheduled = "scheduled"
	// RunManual runs were asked for without a range of their own: they
	// read the spec's range and move lastRun as a scheduled run does.
	RunManual = "manual"
	// RunBackfill runs were asked for with from or to: they read that
	// range and leave lastRun where it is.
	RunBackfill = "backfill"
)

// States of a run.
const (
	RunRunning   = "running"
	RunRetrying  = "retrying" // an attempt failed; the next one starts after a backoff
	RunSucceeded = "succeeded"
	RunFailed    = "failed" // the retry budget is spent or the error is permanent; it is attempted again when the pipeline restarts
)

// Run is one run of a batch pipeline, as the last change of its state
// left it.
type Run struct {
	Pipeline string `json:"pipeline"`
	// ID numbers the pipeline's runs from 1.
	ID   int64  `json:"id"`
	Kind string `json:"kind"`
	// State is running, retrying, succeeded or failed.
	State string `json:"state"`
	// From and To are the range as asked for (lastRun, a time,
	// offsets), Ranges as resolved when the run started: [from, to) of
	// every partition it reads. A retried run reads its Ranges again.
	From   string           `json:"from"`
	To     string           `json:"to"`
	Topic  string           `json:"topic"`
	Ranges []PartitionRange `json:"ranges"`
	// Output names the run's output in sinks that name files for it
	// (parquet): a digest of the topic and the ranges that hold records,
	// so that running a range again writes the same names.
	Output string `json:"output"`
	// Attempt counts the attempts, the one running included.
	Attempt   int       `json:"attempt"`
	StartedAt time.Time `json:"started_at"`
	EndedAt   time.Time `json:"ended_at,omitzero"`
	// Counts of the last attempt.
	RecordsRead         int64 `json:"records_read"`
	RecordsWritten      int64 `json:"records_written"`
	RecordsDeadLettered int64 `json:"records_dead_lettered"`
	// Error is why the last attempt failed.
	Error string `json:"error,omitempty"`
}

// PartitionRange is the offsets [From, To) of one partition that a run
// reads.
type PartitionRange struct {
	Partition int32 `json:"partition"`
	From      int64 `json:"from"`
	To        int64 `json:"to"`
}

// Done says whether the run completed: nothing of it is left to do.
func (r *Run) Done() bool { return r.State == RunSucceeded }

// Duration is how long the run took, or has taken so far at now.
func (r *Run) Duration(now time.Time) time.Duration {
	if !r.EndedAt.IsZero() {
		return r.EndedAt.Sub(r.StartedAt)
	}
	return now.Sub(r.StartedAt)
}

// outputName digests a run's topic and non-empty ranges into the name of
// its output: two runs over the same records share it.
func outputName(topic string, ranges []PartitionRange) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n", topic)
	for _, r := range ranges {
		if r.From < r.To {
			fmt.Fprintf(h, "%d:%d-%d\n", r.Partition, r.From, r.To)
		}
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// maxRunsKept bounds the runs of a pipeline kept in memory for listing;
// the topic keeps them all.
const maxRunsKept = 1000

// runStore reads and writes RunsTopic and keeps each pipeline's runs in
// memory. Its methods are safe for concurrent use.
type runStore struct {
	log    stream.Log
	codecs record.Codecs

	mu         sync.Mutex
	byPipeline map[string]*runHistory
}

// runHistory is what the store knows of one pipeline's runs.
type runHistory struct {
	runs   []Run // by ID, the last maxRunsKept
	lastID int64
	// lastEnd is, for each partition, the To of the last succeeded run
	// that was not a backfill and read it (lastRun), of lastTopic; nil
	// before the first.
	lastEnd     map[int32]int64
	lastTopic   string
	lastSuccess time.Time
}

// find returns where the run with id is, or would be, in h.runs (in ID
// order).
func (h *runHistory) find(id int64) (int, bool) {
	return slices.BinarySearchFunc(h.runs, id, func(r Run, id int64) int { return cmp.Compare(r.ID, id) })
}

func newRunStore(log stream.Log) *runStore {
	return &runStore{log: log, byPipeline: map[string]*runHistory{}}
}

// load reads the topic whole. A log without it has no runs.
func (s *runStore) load(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := scanTopic(ctx, s.log, &s.codecs, RunsTopic, func(r record.Record) error {
		var run Run
		if err := json.Unmarshal(r.Value, &run); err != nil || run.Pipeline == "" || run.ID <= 0 {
			// Not one of ours; skipping it loses nothing that a run needs.
			return nil
		}
		s.applyLocked(run)
		return nil
	})
	if err != nil {
		return fmt.Errorf("batch runs: %w", err)
	}
	return nil
}

func (s *runStore) history(pipeline string) *runHistory {
	h := s.byPipeline[pipeline]
	if h == nil {
		h = &runHistory{}
		s.byPipeline[pipeline] = h
	}
	return h
}

// applyLocked records a run's new state in memory.
func (s *runStore) applyLocked(run Run) {
	h := s.history(run.Pipeline)
	run.Ranges = slices.Clone(run.Ranges)
	i, found := h.find(run.ID)
	if found {
		h.runs[i] = run
	} else {
		h.runs = slices.Insert(h.runs, i, run)
		if len(h.runs) > maxRunsKept {
			h.runs = slices.Delete(h.runs, 0, len(h.runs)-maxRunsKept)
		}
	}
	h.lastID = max(h.lastID, run.ID)
	if run.State == RunSucceeded && run.Kind != RunBackfill {
		// A run that read some partitions (toOffsets naming them) moves
		// their ends only: the others keep theirs, as a group commit of
		// some partitions keeps the rest, so the next run does not read
		// them again from the earliest offset.
		if h.lastEnd == nil || h.lastTopic != run.Topic {
			h.lastEnd = make(map[int32]int64, len(run.Ranges))
		}
		for _, r := range run.Ranges {
			h.lastEnd[r.Partition] = r.To
		}
		h.lastTopic = run.Topic
		h.lastSuccess = run.EndedAt
	}
}

// ensure creates the topic when it does not exist, asking to keep its
// records for ever.
func (s *runStore) ensure(ctx context.Context) error {
	if err := ensureTopic(ctx, s.log, RunsTopic, map[string]string{"retention.ms": "-1"}); err != nil {
		return fmt.Errorf("batch runs: %w", err)
	}
	return nil
}

// put stores a run's state and returns once the log acknowledged it.
func (s *runStore) put(ctx context.Context, run *Run) error {
	if err := s.ensure(ctx); err != nil {
		return err
	}
	v, err := json.Marshal(run)
	if err != nil {
		return fmt.Errorf("store run %d of %s: %w", run.ID, run.Pipeline, err)
	}
	batch, err := s.codecs.AppendBatch(nil, []record.Record{{Key: []byte(run.Pipeline), Value: v, Timestamp: time.Now().UnixMilli()}}, record.BatchOptions{})
	if err != nil {
		return fmt.Errorf("store run %d of %s: %w", run.ID, run.Pipeline, err)
	}
	if _, err := s.log.Produce(ctx, RunsTopic, 0, batch); err != nil {
		return fmt.Errorf("store run %d of %s: %w", run.ID, run.Pipeline, err)
	}
	s.mu.Lock()
	s.applyLocked(*run)
	s.mu.Unlock()
	return nil
}

// list returns a pipeline's runs, newest first.
func (s *runStore) list(pipeline string) []Run {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.byPipeline[pipeline]
	if h == nil {
		return []Run{}
	}
	out := make([]Run, len(h.runs))
	for i, r := range h.runs {
		r.Ranges = slices.Clone(r.Ranges)
		out[len(out)-1-i] = r
	}
	return out
}

// get returns one run.
func (s *runStore) get(pipeline string, id int64) (Run, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.byPipeline[pipeline]
	if h == nil {
		return Run{}, false
	}
	i, found := h.find(id)
	if !found {
		return Run{}, false
	}
	r := h.runs[i]
	r.Ranges = slices.Clone(r.Ranges)
	return r, true
}

// unfinished returns the pipeline's run that has not succeeded, if any:
// runs are one at a time, so it can only be the last.
func (s *runStore) unfinished(pipeline string) (Run, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.byPipeline[pipeline]
	if h == nil || len(h.runs) == 0 {
		return Run{}, false
	}
	r := h.runs[len(h.runs)-1]
	if r.Done() {
		return Run{}, false
	}
	r.Ranges = slices.Clone(r.Ranges)
	return r, true
}

// lastRun returns where the pipeline's last completed run ended in topic
// (nil before the first, or when that run read another topic: the spec's
// source changed since), the time it ended, and the next run's ID.
func (s *runStore) lastRun(pipeline, topic string) (end map[int32]int64, at time.Time, nextID int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.history(pipeline)
	if h.lastEnd != nil && h.lastTopic == topic {
		end = maps.Clone(h.lastEnd)
	}
	return end, h.lastSuccess, h.lastID + 1
}

// formatRanges writes ranges as "0:100..250 1:250..300".
func formatRanges(ranges []PartitionRange) string {
	parts := make([]string, len(ranges))
	for i, r := range ranges {
		parts[i] = strconv.Itoa(int(r.Partition)) + ":" + strconv.FormatInt(r.From, 10) + ".." + strconv.FormatInt(r.To, 10)
	}
	return strings.Join(parts, " ")
}

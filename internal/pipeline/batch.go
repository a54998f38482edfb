package pipeline

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/process"
	"github.com/sluice-dev/sluice/internal/resource"
	"github.com/sluice-dev/sluice/internal/stream"
)

// Errors of StartRun.
var (
	// ErrRunConflict: a run of the pipeline is in progress or has not
	// completed. Runs are one at a time, and each starts where the last
	// completed one ended.
	ErrRunConflict = errors.New("cannot start a run")
	// ErrBadRun: the pipeline takes no runs (stream mode), or the range
	// asked for does not parse or lies outside the topic.
	ErrBadRun = errors.New("invalid run")
	// ErrRunNotFound: GetRun knows no run of that number.
	ErrRunNotFound = errors.New("run not found")
)

// RunRequest asks for a run of a batch pipeline. From and To take the
// forms of the spec's (lastRun, earliest, latest, an RFC 3339 time,
// "0=100,1=250"); both empty run the spec's range as a scheduled run does
// (a manual run), either set makes a backfill of that range, the other end
// the spec's.
type RunRequest struct {
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
}

// StartRun starts a run of a batch pipeline and returns it as recorded:
// its range resolved now (the end of every partition snapshotted) and its
// state running. The run executes in the pipeline's goroutine; Runs and
// GetRun follow it. Errors: ErrNotFound, ErrBadRun, ErrRunConflict.
func (m *Manager) StartRun(ctx context.Context, name string, req RunRequest) (Run, error) {
	m.mu.Lock()
	mp := m.pipelines[name]
	var br *batchRunner
	var startErr error
	if mp != nil {
		br, startErr = mp.batch, mp.startEr
	}
	m.mu.Unlock()
	switch {
	case mp == nil:
		return Run{}, fmt.Errorf("%w: %s", ErrNotFound, name)
	case mp.spec.Spec.Mode != resource.ModeBatch:
		return Run{}, fmt.Errorf("%w: %s is a stream pipeline: runs are for pipelines of mode: batch", ErrBadRun, name)
	case startErr != nil:
		return Run{}, fmt.Errorf("%w: pipeline %s cannot start: %v", ErrRunConflict, name, startErr)
	case br == nil:
		return Run{}, fmt.Errorf("%w: pipeline %s is not running (the server is stopping)", ErrRunConflict, name)
	}
	kind := RunManual
	var from, to *resource.Bound
	if req.From != "" {
		b, err := resource.ParseFrom(req.From)
		if err != nil {
			return Run{}, fmt.Errorf("%w: from: %v", ErrBadRun, err)
		}
		from, kind = &b, RunBackfill
	}
	if req.To != "" {
		b, err := resource.ParseTo(req.To)
		if err != nil {
			return Run{}, fmt.Errorf("%w: to: %v", ErrBadRun, err)
		}
		to, kind = &b, RunBackfill
	}
	run, err := br.begin(ctx, kind, from, to)
	if err != nil {
		return Run{}, err
	}
	out := *run
	out.Ranges = slices.Clone(run.Ranges)
	// begin admitted this run alone, so the slot is free.
	br.requests <- run
	return out, nil
}

// Runs returns the runs of a pipeline, newest first (the last thousand).
func (m *Manager) Runs(name string) ([]Run, error) {
	if _, err := m.Get(name); err != nil {
		return nil, err
	}
	return m.runs.list(name), nil
}

// GetRun returns one run of a pipeline.
func (m *Manager) GetRun(name string, id int64) (Run, error) {
	if _, err := m.Get(name); err != nil {
		return Run{}, err
	}
	run, ok := m.runs.get(name, id)
	if !ok {
		return Run{}, fmt.Errorf("%w: run %d of %s", ErrRunNotFound, id, name)
	}
	return run, nil
}

// BatchStatus is what a batch pipeline's runs are doing.
type BatchStatus struct {
	// Run is the run in progress (or waiting to be completed), if any.
	Run int64 `json:"run,omitempty"`
	// NextRunAt is when the schedule starts the next run.
	NextRunAt time.Time `json:"next_run_at,omitzero"`
	// LastSuccessAt is when the last run that moved lastRun succeeded.
	LastSuccessAt time.Time `json:"last_success_at,omitzero"`
}

type runOutputKey struct{}

func withRunOutput(ctx context.Context, output string) context.Context {
	return context.WithValue(ctx, runOutputKey{}, output)
}

// RunOutput returns the output name (Run.Output) of the batch run that a
// sink is being opened for, or "" outside a run: a SinkOpener passes it to
// sinks that name their files for a run (parquet.Options.Run).
func RunOutput(ctx context.Context) string {
	s, _ := ctx.Value(runOutputKey{}).(string)
	return s
}

// batchRunner runs the runs of one batch pipeline, one at a time: the
// scheduled ones, the ones asked for (StartRun), and first of all one that
// did not complete before (a crash, a restart, a failure), which it
// attempts again over the range it recorded. Its loop (schedule.go) is the
// only goroutine that executes runs; StartRun only records one and hands it
// over.
type batchRunner struct {
	r      *runner
	runs   *runStore
	sched  cron.Schedule // nil: runs only when asked
	paused bool
	// requests carries a run that StartRun recorded to the loop; begin
	// admits one run at a time, so it never holds more than one.
	requests chan *Run
	// leftBehind is the run that did not complete before this runner
	// started (a crash, a restart, a failure), which the loop attempts
	// again first; set before the runner is shared, read by the loop only.
	leftBehind *Run

	// startMu orders the starts of runs; begin holds it while it resolves
	// and records a run, so status reads activeID instead.
	startMu  sync.Mutex
	active   *Run // started and not completed: running, retrying, failed, or left by a crash
	closed   bool // the loop returned: no run starts here any more
	activeID atomic.Int64

	mu     sync.Mutex
	nextAt time.Time
}

func newBatchRunner(r *runner, runs *runStore) (*batchRunner, error) {
	b := &batchRunner{r: r, runs: runs, paused: r.spec.Spec.Paused, requests: make(chan *Run, 1)}
	if s := r.spec.Spec.Schedule; s != "" {
		sched, err := resource.ParseSchedule(s)
		if err != nil {
			return nil, fmt.Errorf("%w: schedule: %v", ErrInvalid, err)
		}
		b.sched = sched
	}
	// The run left behind is taken now, before StartRun can reach this
	// runner: looked up by the loop, it could be a run that a StartRun
	// had just recorded and handed to requests, executed twice.
	if run, ok := runs.unfinished(r.name); ok {
		b.leftBehind = &run
		b.setActiveLocked(b.leftBehind)
	}
	return b, nil
}

// status is the batch part of the pipeline's Status.
func (b *batchRunner) status() *BatchStatus {
	st := &BatchStatus{Run: b.activeID.Load()}
	b.mu.Lock()
	st.NextRunAt = b.nextAt
	b.mu.Unlock()
	_, st.LastSuccessAt, _ = b.runs.lastRun(b.r.name, b.r.spec.Spec.Source.Topic)
	return st
}

// setActiveLocked sets the active run; startMu is held.
func (b *batchRunner) setActiveLocked(run *Run) {
	b.active = run
	if run == nil {
		b.activeID.Store(0)
	} else {
		b.activeID.Store(run.ID)
	}
}

// conflictLocked says why no run can start: the loop returned, or a run
// is active. The active run's state is read as last recorded: the loop
// changes the run itself without startMu.
func (b *batchRunner) conflictLocked() error {
	name := b.r.name
	if b.closed {
		return fmt.Errorf("%w: pipeline %s is stopping or restarting; ask again", ErrRunConflict, name)
	}
	a, _ := b.runs.get(name, b.active.ID)
	switch {
	case a.State == RunFailed:
		return fmt.Errorf("%w: run %d of %s failed (%s); it is attempted again when the pipeline resumes (sluice pipeline resume %s)", ErrRunConflict, a.ID, name, a.Error, name)
	case b.paused:
		return fmt.Errorf("%w: run %d of %s has not completed; it resumes when the pipeline is resumed", ErrRunConflict, a.ID, name)
	}
	return fmt.Errorf("%w: run %d of %s is %s (started %s); one run of a pipeline at a time", ErrRunConflict, a.ID, name, a.State, a.StartedAt.UTC().Format(time.RFC3339))
}

// begin starts a run: it resolves the range at this moment (the end of
// every partition is snapshotted now) and records the run as running. nil
// bounds are the spec's.
func (b *batchRunner) begin(ctx context.Context, kind string, from, to *resource.Bound) (*Run, error) {
	r := b.r
	src := r.spec.Spec.Source
	if from == nil {
		f, err := src.FromBound()
		if err != nil {
			return nil, fmt.Errorf("%w: spec.source: %v", ErrBadRun, err)
		}
		from = &f
	}
	if to == nil {
		t, err := src.ToBound()
		if err != nil {
			return nil, fmt.Errorf("%w: spec.source: %v", ErrBadRun, err)
		}
		to = &t
	}
	if field, err := resource.CheckRange(*from, *to); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadRun, field, err)
	}

	b.startMu.Lock()
	defer b.startMu.Unlock()
	if b.active != nil || b.closed {
		return nil, b.conflictLocked()
	}
	lastEnd, _, id := b.runs.lastRun(r.name, src.Topic)
	ranges, err := b.resolve(ctx, *from, *to, lastEnd)
	if err != nil {
		return nil, err
	}
	run := &Run{Pipeline: r.name, ID: id, Kind: kind, State: RunRunning, From: from.String(), To: to.String(),
		Topic: src.Topic, Ranges: ranges, Output: outputName(src.Topic, ranges), Attempt: 1, StartedAt: r.env.now()}
	if err := b.runs.put(ctx, run); err != nil {
		return nil, err
	}
	b.setActiveLocked(run)
	r.log.Info("batch run started", "run", run.ID, "kind", kind, "ranges", formatRanges(ranges))
	return run, nil
}

// resolve turns bounds into offsets, partition by partition in order.
// Explicit offsets name the partitions read and must lie within them;
// other bounds read every partition, clamped to what it holds.
func (b *batchRunner) resolve(ctx context.Context, from, to resource.Bound, lastEnd map[int32]int64) ([]PartitionRange, error) {
	r := b.r
	topic := r.spec.Spec.Source.Topic
	log := r.env.log
	info, err := log.DescribeTopic(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("source topic %s: %w", topic, err)
	}
	parts := map[int32]stream.PartitionInfo{}
	for _, p := range info.Partitions {
		parts[p.Partition] = p
	}
	for _, bd := range []resource.Bound{from, to} {
		for p := range bd.Offsets {
			if _, ok := parts[p]; !ok {
				return nil, fmt.Errorf("%w: partition %d: %s has %d partitions", ErrBadRun, p, topic, len(parts))
			}
		}
	}
	offsetAt := func(p int32, bd resource.Bound, lastEnd map[int32]int64) (int64, error) {
		switch bd.Kind {
		case resource.BoundOffsets:
			return bd.Offsets[p], nil
		case resource.BoundLastRun:
			if off, ok := lastEnd[p]; ok {
				return off, nil
			}
			return log.ListOffset(ctx, topic, p, stream.Earliest)
		case resource.BoundEarliest:
			return log.ListOffset(ctx, topic, p, stream.Earliest)
		case resource.BoundLatest:
			return log.ListOffset(ctx, topic, p, stream.Latest)
		case resource.BoundTime:
			return log.ListOffset(ctx, topic, p, bd.Time.UnixMilli())
		}
		return 0, fmt.Errorf("%w: bound %q", ErrBadRun, bd.Kind)
	}
	var out []PartitionRange
	for _, p := range slices.Sorted(maps.Keys(parts)) {
		if (from.Kind == resource.BoundOffsets && !hasKey(from.Offsets, p)) || (to.Kind == resource.BoundOffsets && !hasKey(to.Offsets, p)) {
			continue
		}
		start, err := offsetAt(p, from, lastEnd)
		if err != nil {
			return nil, fmt.Errorf("find the start of %s/%d: %w", topic, p, err)
		}
		end, err := offsetAt(p, to, lastEnd)
		if err != nil {
			return nil, fmt.Errorf("find the end of %s/%d: %w", topic, p, err)
		}
		// The snapshot: what the partition holds now.
		logStart, err := log.ListOffset(ctx, topic, p, stream.Earliest)
		if err != nil {
			return nil, fmt.Errorf("find the start of %s/%d: %w", topic, p, err)
		}
		hwm, err := log.ListOffset(ctx, topic, p, stream.Latest)
		if err != nil {
			return nil, fmt.Errorf("find the end of %s/%d: %w", topic, p, err)
		}
		if to.Kind == resource.BoundOffsets && end > hwm {
			return nil, fmt.Errorf("%w: partition %d ends at %d, and %s/%d holds offsets up to %d", ErrBadRun, p, end, topic, p, hwm)
		}
		if from.Kind == resource.BoundOffsets && start > end {
			return nil, fmt.Errorf("%w: partition %d starts at %d, after its end %d", ErrBadRun, p, start, end)
		}
		switch {
		case start > hwm:
			// lastRun past the end: the topic was recreated.
			r.log.Warn("the last run ended past the end of the partition; reading it from its start", "partition", p, "last_run_end", start, "log_end", hwm)
			start = logStart
		case start < logStart:
			r.log.Warn("records were deleted before a run read them; the run starts at the oldest left",
				"partition", p, "start", start, "log_start", logStart, "skipped", logStart-start)
			start = logStart
		}
		end = min(max(end, start), hwm)
		out = append(out, PartitionRange{Partition: p, From: start, To: end})
	}
	return out, nil
}

func hasKey(m map[int32]int64, k int32) bool {
	_, ok := m[k]
	return ok
}

// cutEvery is how many source records a run reads between looks at the
// size of its batch. Its batches therefore end at the same records
// however the log's fetches happened to cut the range, and a run over the
// same range writes the same batches, which a sink that names its files
// for the run (parquet) turns into the same files.
const cutEvery = 256

// runInput is the position of a run's reading within its current batch.
type runInput struct {
	seen int // source records since the last delivery
}

// attempt executes a run once: it reads the run's ranges, partition after
// partition in partition order, through the processors into the sink,
// delivering full batches as it goes, and completes the sink's output
// (Flush) at the end. It commits nothing: the caller records the run and
// commits its end once attempt returned nil.
func (b *batchRunner) attempt(ctx context.Context, run *Run) error {
	r := b.r
	spec := &r.spec.Spec
	// The processors start afresh: state kept from an earlier run or
	// attempt (dedupe's keys) would drop records of this one.
	chain, err := process.NewChain(spec.Processors, process.Options{})
	if err != nil {
		return connector.Permanent(err)
	}
	r.chain = chain
	info, err := r.env.log.DescribeTopic(ctx, run.Topic)
	if err != nil {
		return fmt.Errorf("source topic %s: %w", run.Topic, err)
	}
	sink, err := r.env.openSink(withRunOutput(ctx, run.Output), &r.spec, chain)
	if err != nil {
		return err
	}
	defer func() {
		// Anything not flushed is discarded, never made visible.
		if cerr := sink.Close(context.WithoutCancel(ctx)); cerr != nil {
			r.log.Warn("close sink", "err", cerr)
		}
	}()
	var dlq *deadLetter
	if spec.DeadLetter != nil {
		if dlq, err = newDeadLetter(ctx, r.env.log, r.name, spec.DeadLetter.Topic, len(info.Partitions)); err != nil {
			return err
		}
	}

	src := newSource(r.env.log, run.Topic, spec, r.log)
	bud := src.budget
	srcCtx, stopSource := context.WithCancel(ctx)
	defer func() {
		stopSource()
		src.drain()
		r.env.metrics.inFlight.WithLabelValues(r.name).Set(0)
	}()

	start := make(map[int32]int64, len(run.Ranges))
	for _, rg := range run.Ranges {
		start[rg.Partition] = rg.From
	}
	d := &delivery{r: r, sink: sink, dlq: dlq, topic: run.Topic, group: spec.Source.Group, budget: bud,
		committed: maps.Clone(start), hwm: make(map[int32]int64), holdCommits: true}
	if w := chain.Window(); w != nil {
		parts := make([]int32, 0, len(run.Ranges))
		for _, rg := range run.Ranges {
			parts = append(parts, rg.Partition)
		}
		d.win = newBatchWindower(w, parts)
	}
	bt := &batch{positions: maps.Clone(start)}
	before := r.snapshot()
	in := &runInput{}
	for _, rg := range run.Ranges {
		if rg.From >= rg.To {
			continue
		}
		pctx, stop := context.WithCancel(srcCtx)
		src.start(pctx, rg.Partition, rg.From)
		err := b.readRange(ctx, src, rg, bt, d, in)
		stop()
		if err != nil {
			return err
		}
	}
	if err := b.endOfInput(ctx, bt, d); err != nil {
		return err
	}
	if err := d.deliver(ctx, bt); err != nil {
		return err
	}
	if st, ok := sink.(connector.StagingSink); ok {
		if err := st.Flush(ctx); err != nil {
			return fmt.Errorf("sink: flush: %w", err)
		}
	}
	after := r.snapshot()
	run.RecordsRead = after.RecordsRead - before.RecordsRead
	run.RecordsDeadLettered = after.RecordsDeadLettered - before.RecordsDeadLettered
	run.RecordsWritten = int64(d.heldWritten)
	return nil
}

// readRange reads one partition's range into bt.
func (b *batchRunner) readRange(ctx context.Context, src *source, rg PartitionRange, bt *batch, d *delivery, in *runInput) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-src.errc:
			return err
		case c := <-src.out:
			if c.partition != rg.Partition {
				// Fetched ahead for a partition that is done.
				d.budget.release(c.cost)
				continue
			}
			done := c.next >= rg.To
			if !done && len(c.records) == 0 && c.next >= c.hwm && c.hwm < rg.To && b.endsBefore(ctx, src.topic, rg) {
				// Caught up with a partition that now ends before the
				// range does: the topic was created again. Nothing more
				// will come.
				b.r.log.Warn("a partition ends before the run's range; the run reads what it holds",
					"partition", rg.Partition, "range_end", rg.To, "log_end", c.hwm)
				done = true
			}
			if done {
				c.next = rg.To
				n := len(c.records)
				for n > 0 && c.records[n-1].Offset >= rg.To {
					n--
				}
				c.records = c.records[:n]
			}
			if err := b.feed(ctx, bt, c, d, in); err != nil {
				return err
			}
			if done {
				return nil
			}
		}
	}
}

// endsBefore asks the log whether a partition now ends before the range.
func (b *batchRunner) endsBefore(ctx context.Context, topic string, rg PartitionRange) bool {
	end, err := b.r.env.log.ListOffset(ctx, topic, rg.Partition, stream.Latest)
	return err == nil && end < rg.To
}

// feed takes a chunk into bt in pieces that end where a batch may end (see
// cutEvery), delivering bt whenever it is full there.
//
// The chunk's budget is released as its records are taken, not when they
// are delivered as in a stream: a run has no timer that delivers a batch
// short of its limits, so a fetcher waiting for budget that bt held would
// wait for ever. bt is bounded by the batch limits instead.
func (b *batchRunner) feed(ctx context.Context, bt *batch, c chunk, d *delivery, in *runInput) error {
	r := b.r
	lim := r.spec.Spec.Batch
	defer d.budget.release(c.cost)
	c.cost = 0
	if len(c.records) == 0 {
		_, err := r.take(ctx, bt, c, d)
		return err
	}
	recs := c.records
	for len(recs) > 0 {
		n := min(len(recs), cutEvery-in.seen%cutEvery, lim.MaxRecords-in.seen)
		piece := chunk{partition: c.partition, records: recs[:n], next: c.next, hwm: c.hwm}
		if n < len(recs) {
			piece.next = recs[n].Offset
		}
		if _, err := r.take(ctx, bt, piece, d); err != nil {
			return err
		}
		recs = recs[n:]
		in.seen += n
		if in.seen >= lim.MaxRecords || (in.seen%cutEvery == 0 && bt.bytes >= int64(lim.MaxBytes)) {
			if err := d.deliver(ctx, bt); err != nil {
				return err
			}
			in.seen = 0
		}
	}
	return nil
}

// endOfInput is where a run's input ends, before its last delivery: the
// windows of a window processor, which hold their events until the run
// has read all of them, close into bt.
func (b *batchRunner) endOfInput(ctx context.Context, bt *batch, d *delivery) error {
	if d.win == nil {
		return nil
	}
	return b.r.flushWindows(ctx, bt, d)
}

// execute attempts a run until it succeeds, waiting the retry policy's
// backoff between attempts, each from the run's start. fresh says begin
// just recorded the run's first attempt. It returns false when the
// pipeline must stop: ctx ended (the run stays unfinished in the store and
// the next runner resumes it) or the retry budget is spent (the run and
// the pipeline are failed).
func (b *batchRunner) execute(ctx context.Context, run *Run, fresh bool) bool {
	r := b.r
	m := r.env.metrics
	retry := r.spec.Spec.Retry
	for tries := 1; ; tries++ {
		var err error
		if !fresh || tries > 1 {
			run.Attempt++
			run.State, run.Error, run.EndedAt = RunRunning, "", time.Time{}
			err = b.runs.put(ctx, run)
			r.log.Info("batch run attempted again", "run", run.ID, "attempt", run.Attempt, "ranges", formatRanges(run.Ranges))
		}
		r.setState(StateRunning)
		if err == nil {
			err = b.attempt(ctx, run)
		}
		if ctx.Err() != nil {
			return false
		}
		if err == nil {
			if err = b.succeed(ctx, run); err == nil {
				return true
			}
		}
		run.Error = err.Error()
		if ctx.Err() != nil {
			return false
		}
		if errors.Is(err, connector.ErrPermanent) || tries >= retry.MaxAttempts {
			if !errors.Is(err, connector.ErrPermanent) {
				err = fmt.Errorf("gave up after %d attempts: %w", tries, err)
			}
			run.State, run.Error, run.EndedAt = RunFailed, err.Error(), r.env.now()
			if perr := b.runs.put(ctx, run); perr != nil {
				r.log.Warn("record the failed run", "run", run.ID, "err", perr)
			}
			m.batchRuns.WithLabelValues(r.name, runOutcomeFailed).Inc()
			err = fmt.Errorf("run %d: %w", run.ID, err)
			r.log.Error("batch run failed; the pipeline attempts it again when it resumes or its spec changes", "run", run.ID, "err", err)
			r.setError(StateFailed, err, tries, time.Time{})
			return false
		}
		run.State = RunRetrying
		if perr := b.runs.put(ctx, run); perr != nil {
			r.log.Warn("record the failed attempt", "run", run.ID, "err", perr)
		}
		m.batchRuns.WithLabelValues(r.name, runOutcomeRetried).Inc()
		d := backoff(retry.InitialBackoff.D(), retry.MaxBackoff.D(), tries)
		r.log.Warn("batch run attempt failed; retrying from the run's start", "run", run.ID, "err", err, "attempt", run.Attempt, "backoff", d)
		r.setError(StateRetrying, fmt.Errorf("run %d: %w", run.ID, err), tries, r.env.now().Add(d))
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
	}
}

// succeed records a run whose output is complete as succeeded, which makes
// its end the next run's lastRun (unless it is a backfill), and commits
// that end to the pipeline's group, for lag in the groups API.
func (b *batchRunner) succeed(ctx context.Context, run *Run) error {
	r := b.r
	m := r.env.metrics
	run.State, run.Error, run.EndedAt = RunSucceeded, "", r.env.now()
	if err := b.runs.put(ctx, run); err != nil {
		run.State, run.EndedAt = RunRunning, time.Time{}
		return err
	}
	b.startMu.Lock()
	b.setActiveLocked(nil)
	b.startMu.Unlock()
	m.batchRuns.WithLabelValues(r.name, runOutcomeSucceeded).Inc()
	m.batchDuration.WithLabelValues(r.name).Observe(run.Duration(run.EndedAt).Seconds())
	r.log.Info("batch run succeeded", "run", run.ID, "kind", run.Kind, "ranges", formatRanges(run.Ranges),
		"read", run.RecordsRead, "written", run.RecordsWritten, "duration", run.Duration(run.EndedAt))
	lastEnd, at, _ := b.runs.lastRun(r.name, run.Topic)
	if !at.IsZero() {
		m.batchLastSuccess.WithLabelValues(r.name).Set(float64(at.UnixNano()) / 1e9)
	}
	r.setCommitted(lastEnd, int(run.RecordsWritten))
	if run.Kind != RunBackfill {
		if err := r.env.log.CommitOffsets(ctx, r.spec.Spec.Source.Group, groupOffsets(checkpointOf(run.Topic, lastEnd))); err != nil {
			r.log.Warn("commit the group offsets after a batch run", "run", run.ID, "err", err)
		}
	}
	return nil
}

// syncGroup commits lastRun to the pipeline's group when the group lags
// behind it (a crash between a run's success and its commit), and sets the
// pipeline's positions and last success.
func (b *batchRunner) syncGroup(ctx context.Context) {
	r := b.r
	lastEnd, at, _ := b.runs.lastRun(r.name, r.spec.Spec.Source.Topic)
	if !at.IsZero() {
		r.env.metrics.batchLastSuccess.WithLabelValues(r.name).Set(float64(at.UnixNano()) / 1e9)
	}
	if lastEnd == nil {
		return
	}
	r.setCommitted(lastEnd, 0)
	group, topic := r.spec.Spec.Source.Group, r.spec.Spec.Source.Topic
	offs, err := r.env.log.FetchOffsets(ctx, group)
	if err != nil {
		return
	}
	have := map[int32]int64{}
	for _, o := range offs {
		if o.Topic == topic {
			have[o.Partition] = o.Offset
		}
	}
	if maps.Equal(have, lastEnd) {
		return
	}
	if err := r.env.log.CommitOffsets(ctx, group, groupOffsets(checkpointOf(topic, lastEnd))); err != nil {
		r.log.Warn("commit the group offsets of the last batch run", "err", err)
	}
}

// updateLag sets the pipeline's lag: the records of the source that no
// completed run has covered yet.
func (b *batchRunner) updateLag(ctx context.Context) {
	r := b.r
	info, err := r.env.log.DescribeTopic(ctx, r.spec.Spec.Source.Topic)
	if err != nil {
		return
	}
	lastEnd, _, _ := b.runs.lastRun(r.name, r.spec.Spec.Source.Topic)
	var lag int64
	for _, p := range info.Partitions {
		from := p.LogStartOffset
		if off, ok := lastEnd[p.Partition]; ok {
			from = max(off, from)
		}
		lag += max(p.HighWatermark-from, 0)
	}
	r.env.metrics.lag.WithLabelValues(r.name).Set(float64(lag))
	r.mu.Lock()
	r.status.Lag = lag
	r.mu.Unlock()
}

package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/process"
	"github.com/sluice-dev/sluice/internal/resource"
	"github.com/sluice-dev/sluice/internal/stream"
)

// States of a pipeline.
const (
	StateStarting = "starting" // opening the sink, loading checkpoints
	StateRunning  = "running"
	StateRetrying = "retrying" // a delivery failed; waiting to try again
	StatePaused   = "paused"
	StateFailed   = "failed" // the retry budget is spent or the error is permanent; resume restarts it
	StateIdle     = "idle"   // a batch pipeline between runs
)

func allStates() []string {
	return []string{StateStarting, StateRunning, StateRetrying, StatePaused, StateFailed, StateIdle}
}

// Status is what a pipeline is doing, for describe and the HTTP API.
type Status struct {
	State string `json:"state"`
	// Error is the last delivery error, kept while retrying and once
	// failed; ErrorTime when it happened; Attempt how many consecutive
	// attempts have failed; RetryAt when the next one starts.
	Error     string    `json:"error,omitempty"`
	ErrorTime time.Time `json:"error_time,omitzero"`
	Attempt   int       `json:"attempt,omitempty"`
	RetryAt   time.Time `json:"retry_at,omitzero"`
	// Positions are the committed checkpoints: the next offset of each
	// source partition.
	Positions []connector.Position `json:"positions"`
	// Lag is the records of the source not committed yet.
	Lag int64 `json:"lag"`
	// Counters since the server started.
	RecordsRead         int64     `json:"records_read"`
	RecordsWritten      int64     `json:"records_written"`
	RecordsDropped      int64     `json:"records_dropped"`
	RecordsDeadLettered int64     `json:"records_dead_lettered"`
	InFlightBytes       int64     `json:"in_flight_bytes"`
	StartedAt           time.Time `json:"started_at,omitzero"`
	// Window is the state of a windowed pipeline's window.
	Window *WindowStatus `json:"window,omitempty"`
	// Batch is what a batch pipeline's runs are doing; nil for a stream
	// pipeline.
	Batch *BatchStatus `json:"batch,omitempty"`
}

// WindowStatus is what a windowed pipeline holds.
type WindowStatus struct {
	// Watermark closes the windows that end at or before it; zero before
	// the first event.
	Watermark   time.Time `json:"watermark,omitzero"`
	OpenWindows int       `json:"open_windows"`
	StateBytes  int64     `json:"state_bytes"`
	// LateRecords counts late events dropped (late: drop) since the
	// server started; dead-lettered ones count as dead-lettered.
	LateRecords    int64     `json:"late_records"`
	LastCheckpoint time.Time `json:"last_checkpoint,omitzero"`
}

// Limits of a running pipeline that specs do not set.
const (
	// fetchBytes is how much one partition fetch asks for.
	fetchBytes = 1 << 20
	// minInFlight is the least in-flight budget a pipeline gets.
	minInFlight = 16 << 20
	// discoverEvery is how often a running pipeline looks for partitions
	// added to its source topic.
	discoverEvery = 10 * time.Second
	// stopTimeout bounds the last delivery of a pipeline being stopped.
	stopTimeout = 30 * time.Second
)

// Header keys of dead-letter records.
const (
	HeaderPipeline        = "sluice.pipeline"
	HeaderStage           = "sluice.stage"
	HeaderError           = "sluice.error"
	HeaderSourceTopic     = "sluice.source.topic"
	HeaderSourcePartition = "sluice.source.partition"
	HeaderSourceOffset    = "sluice.source.offset"
)

// errNoDeadLetter stops a pipeline that has no dead-letter topic when a
// record fails: dropping it silently is not an option.
var errNoDeadLetter = errors.New("the pipeline has no deadLetter topic, so it stops rather than drop the record")

// runner runs one pipeline until its context ends or it fails.
type runner struct {
	spec  resource.Pipeline // expanded, with defaults
	name  string
	env   *env
	chain *process.Chain
	log   *slog.Logger

	mu     sync.Mutex
	status Status
}

// env is what runners share: the log, metrics and how sinks are opened.
type env struct {
	log      stream.Log
	metrics  *metrics
	openSink SinkOpener
	now      func() time.Time
}

// SinkOpener opens the sink of a pipeline spec. chain is the pipeline's
// compiled processors (sinks take its JSON Schema).
type SinkOpener func(ctx context.Context, p *resource.Pipeline, chain *process.Chain) (connector.Sink, error)

func (r *runner) snapshot() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.status
	s.Positions = slices.Clone(s.Positions)
	return s
}

func (r *runner) setState(state string) {
	r.mu.Lock()
	r.status.State = state
	if state == StateRunning {
		r.status.RetryAt = time.Time{}
	}
	r.mu.Unlock()
	r.env.metrics.setState(r.name, state)
}

func (r *runner) setError(state string, err error, attempt int, retryAt time.Time) {
	r.mu.Lock()
	r.status.State = state
	r.status.Error = err.Error()
	r.status.ErrorTime = r.env.now()
	r.status.Attempt = attempt
	r.status.RetryAt = retryAt
	r.mu.Unlock()
	r.env.metrics.setState(r.name, state)
}

// run runs the pipeline, restarting it from its last checkpoint after a
// failed delivery, with exponential backoff and jitter, until the retry
// budget of consecutive failures is spent or an error is permanent.
// Attempts count from the last delivery that committed.
func (r *runner) run(ctx context.Context) {
	retry := r.spec.Spec.Retry
	attempt := 0
	for {
		r.setState(StateStarting)
		progressed, err := r.runOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = errors.New("pipeline stopped without an error")
		}
		if progressed {
			attempt = 0
		}
		attempt++
		if errors.Is(err, connector.ErrPermanent) || attempt >= retry.MaxAttempts {
			if !errors.Is(err, connector.ErrPermanent) {
				err = fmt.Errorf("gave up after %d attempts: %w", attempt, err)
			}
			r.log.Error("pipeline failed; it restarts on resume or when its spec changes", "err", err)
			r.setError(StateFailed, err, attempt, time.Time{})
			return
		}
		d := backoff(retry.InitialBackoff.D(), retry.MaxBackoff.D(), attempt)
		r.log.Warn("pipeline delivery failed; retrying", "err", err, "attempt", attempt, "backoff", d)
		r.setError(StateRetrying, err, attempt, r.env.now().Add(d))
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// backoff is the wait before attempt n+1: initial doubled per attempt,
// capped at max, plus up to a fifth more at random so that pipelines
// failing together do not retry together. The jitter only adds, so the
// retry budget lasts at least the sum of the backoffs: with the defaults
// (100ms to 30s, 10 attempts), 51 s of outage before the pipeline fails.
func backoff(initial, max time.Duration, n int) time.Duration {
	d := initial
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	d = min(d, max)
	return d + rand.N(d/5+1)
}

// batch is the records a pipeline holds between its source and its sink.
type batch struct {
	records []*connector.Record
	failed  []connector.Rejection // failed in a processor
	bytes   int64
	cost    int64
	// positions are where the source has got to (records dropped or
	// failed included); dirty says they moved since the last commit.
	positions map[int32]int64
	dirty     bool
	started   time.Time
}

func (b *batch) reset() {
	clear(b.records)
	b.records = b.records[:0]
	clear(b.failed)
	b.failed = b.failed[:0]
	b.bytes, b.cost, b.dirty = 0, 0, false
}

func (b *batch) checkpoint(topic string) connector.Checkpoint {
	return checkpointOf(topic, b.positions)
}

// checkpointOf lists positions of topic's partitions, sorted by partition.
func checkpointOf(topic string, positions map[int32]int64) connector.Checkpoint {
	cp := make(connector.Checkpoint, 0, len(positions))
	for p, off := range positions {
		cp = append(cp, connector.Position{Topic: topic, Partition: p, Offset: off})
	}
	slices.SortFunc(cp, func(a, b connector.Position) int { return int(a.Partition - b.Partition) })
	return cp
}

// runOnce opens the sink, loads the checkpoints and moves records until
// ctx ends (then it delivers what it holds and returns nil) or something
// fails. progressed says whether it committed anything.
func (r *runner) runOnce(ctx context.Context) (progressed bool, err error) {
	spec := &r.spec.Spec
	topic := spec.Source.Topic
	info, err := r.env.log.DescribeTopic(ctx, topic)
	if err != nil {
		return false, fmt.Errorf("source topic %s: %w", topic, err)
	}
	sink, err := r.env.openSink(ctx, &r.spec, r.chain)
	if err != nil {
		return false, err
	}
	defer func() {
		if cerr := sink.Close(context.WithoutCancel(ctx)); cerr != nil {
			r.log.Warn("close sink", "err", cerr)
		}
	}()
	var dlq *deadLetter
	if spec.DeadLetter != nil {
		if dlq, err = newDeadLetter(ctx, r.env.log, r.name, spec.DeadLetter.Topic, len(info.Partitions)); err != nil {
			return false, err
		}
	}
	var wd *windower
	if r.chain.Window() != nil {
		wd = newWindower(r)
	}
	positions, err := r.loadPositions(ctx, sink, info, wd)
	if err != nil {
		return false, err
	}

	srcCtx, stopSource := context.WithCancel(ctx)
	src := newSource(r.env.log, topic, spec, r.log)
	bud := src.budget
	for p, off := range positions {
		if wd != nil {
			wd.op.AddPartition(p)
		}
		src.start(srcCtx, p, off)
	}
	defer func() {
		stopSource()
		src.drain()
		r.env.metrics.inFlight.WithLabelValues(r.name).Set(0)
	}()

	d := &delivery{r: r, sink: sink, dlq: dlq, topic: topic, group: spec.Source.Group, budget: bud,
		committed: maps.Clone(positions), hwm: make(map[int32]int64), win: wd}
	defer func() {
		// A commit in flight does not outlive the run; a failed one only
		// means records read again.
		if d.pending != nil {
			<-d.pending.done
		}
	}()
	if ts, ok := sink.(connector.TransactionalSink); ok && spec.Delivery == resource.ExactlyOnce {
		d.tx = ts
	}
	d.staging, _ = sink.(connector.StagingSink)
	b := &batch{positions: maps.Clone(positions)}
	r.setCommitted(d.committed, 0)
	r.mu.Lock()
	r.status.StartedAt = r.env.now()
	r.mu.Unlock()
	r.setState(StateRunning)

	maxWait := spec.Batch.MaxWait.D()
	waitTimer := time.NewTimer(time.Hour)
	waitTimer.Stop()
	defer waitTimer.Stop()
	stageTimer := time.NewTimer(time.Hour)
	stageTimer.Stop()
	defer stageTimer.Stop()
	discover := time.NewTicker(discoverEvery)
	defer discover.Stop()
	// A windowed pipeline looks at the clock without records too: idle
	// partitions, updates and checkpoints come due.
	var tick <-chan time.Time
	if wd != nil {
		t := time.NewTicker(wd.tickEvery())
		defer t.Stop()
		tick = t.C
		r.showWindow(wd)
	}

	deliver := func(ctx context.Context) error {
		waitTimer.Stop()
		if err := d.deliver(ctx, b); err != nil {
			return err
		}
		progressed = true
		if d.staging != nil {
			if due, ok := d.staging.FlushDue(); ok {
				stageTimer.Reset(max(due.Sub(r.env.now()), 0))
			}
		}
		return nil
	}
	for {
		select {
		case <-ctx.Done():
			// A graceful stop: deliver what is held, so that a restart
			// (a spec change, a shutdown) re-reads nothing.
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopTimeout)
			defer cancel()
			if wd != nil {
				wd.force = true
			}
			if err := deliver(sctx); err != nil {
				r.log.Warn("last delivery before stopping failed; the records will be read again", "err", err)
			} else if err := d.flushStaged(sctx); err != nil {
				r.log.Warn("last flush before stopping failed; the records will be read again", "err", err)
			} else if err := d.settle(); err != nil {
				r.log.Warn("last commit before stopping failed; the records will be read again", "err", err)
			}
			return progressed, nil
		case <-d.settled():
			if err := d.settle(); err != nil {
				return progressed, err
			}
		case err := <-src.errc:
			return progressed, err
		case c := <-src.out:
			full, err := r.take(ctx, b, c, d)
			if err != nil {
				return progressed, err
			}
			if full {
				if err := deliver(ctx); err != nil {
					return progressed, err
				}
			} else if (len(b.records) > 0 || b.dirty || len(b.failed) > 0) && b.started.IsZero() {
				b.started = r.env.now()
				waitTimer.Reset(maxWait)
			}
		case <-waitTimer.C:
			if err := deliver(ctx); err != nil {
				return progressed, err
			}
		case <-stageTimer.C:
			if wd != nil {
				// A windowed pipeline's checkpoint goes with the flush:
				// the state must not be saved before the outputs it
				// implies are visible.
				wd.force = true
				if err := deliver(ctx); err != nil {
					return progressed, err
				}
				continue
			}
			if err := d.flushStaged(ctx); err != nil {
				return progressed, err
			}
			progressed = true
		case <-tick:
			if err := r.emitWindows(ctx, b, d); err != nil {
				return progressed, err
			}
			r.showWindow(wd)
			if len(b.records) > 0 || len(b.failed) > 0 || wd.due(r.env.now(), d.stagingPending()) {
				if err := deliver(ctx); err != nil {
					return progressed, err
				}
			}
		case <-discover.C:
			info, err := r.env.log.DescribeTopic(ctx, topic)
			if err != nil {
				continue
			}
			if len(info.Partitions) > src.partitions() {
				for _, p := range info.Partitions {
					if _, ok := b.positions[p.Partition]; !ok {
						// A partition added while running: everything in it
						// is new to the pipeline.
						b.positions[p.Partition] = p.LogStartOffset
						if wd != nil {
							wd.op.AddPartition(p.Partition)
						}
						src.start(srcCtx, p.Partition, p.LogStartOffset)
					}
				}
			}
		}
	}
}

// take runs a chunk's records through the processors into b. It reports
// whether b is full.
func (r *runner) take(ctx context.Context, b *batch, c chunk, d *delivery) (bool, error) {
	d.hwm[c.partition] = c.hwm
	wd := d.win
	if wd != nil {
		// The window consumes the records: what it keeps of them is its
		// state, bounded by its own limit, so their budget is free once
		// they are taken.
		defer func() {
			d.budget.release(c.cost)
			r.showInFlight(d)
		}()
		wd.op.CaughtUp(c.partition, len(c.records) == 0 && c.next >= c.hwm, r.env.now())
	} else {
		b.cost += c.cost
	}
	if len(c.records) == 0 {
		if c.next > b.positions[c.partition] {
			b.positions[c.partition], b.dirty = c.next, true
			if wd != nil {
				wd.changed = true
			}
		}
		d.updateLag()
		return false, nil
	}
	m := r.env.metrics
	kept, dropped, late := 0, 0, 0
	for _, rec := range c.records {
		key, headers := rec.Key, rec.Headers
		orig, _ := rec.Value()
		ok, err := r.chain.Process(ctx, rec)
		if ok && err == nil && wd != nil {
			var isLate bool
			if isLate, err = wd.add(ctx, r.chain, rec); err == nil {
				if isLate {
					late++
				} else {
					kept++
				}
				// The watermark moves with every event, so that whether
				// a later one is late does not depend on how the
				// partition's records were fetched.
				if err := r.emitWindows(ctx, b, d); err != nil {
					return false, err
				}
				continue
			}
		}
		if _, recordFault := errors.AsType[*process.RecordError](err); err != nil && !recordFault {
			// Not the record's fault (the pipeline is stopping): it is
			// read again on the next start, never dead-lettered.
			return false, err
		}
		switch {
		case err != nil:
			// The dead-letter record is the record as it arrived.
			rec.Key, rec.Headers = key, headers
			rec.SetValue(orig)
			b.failed = append(b.failed, connector.Rejection{Record: rec, Err: err})
		case ok:
			v, verr := rec.Value()
			if verr != nil {
				rec.Key, rec.Headers = key, headers
				rec.SetValue(orig)
				b.failed = append(b.failed, connector.Rejection{Record: rec, Err: verr})
				continue
			}
			b.records = append(b.records, rec)
			b.bytes += int64(len(v) + len(rec.Key))
			kept++
		default:
			dropped++
		}
	}
	b.positions[c.partition] = max(b.positions[c.partition], c.next)
	b.dirty = true
	m.records.WithLabelValues(r.name, "source", outcomeRead).Add(float64(len(c.records)))
	m.records.WithLabelValues(r.name, "process", outcomeKept).Add(float64(kept))
	if dropped > 0 {
		m.records.WithLabelValues(r.name, "process", outcomeDropped).Add(float64(dropped))
	}
	if wd != nil {
		wd.changed = true
		if late > 0 {
			m.records.WithLabelValues(r.name, "window", outcomeLate).Add(float64(late))
		}
	}
	r.mu.Lock()
	if wd != nil && r.status.Window != nil {
		r.status.Window.LateRecords += int64(late)
	}
	r.status.RecordsRead += int64(len(c.records))
	r.status.RecordsDropped += int64(dropped + late)
	r.mu.Unlock()
	if wd == nil {
		r.showInFlight(d)
	}
	bl := r.spec.Spec.Batch
	return len(b.records) >= bl.MaxRecords || b.bytes >= int64(bl.MaxBytes), nil
}

// showInFlight puts the bytes in flight in the status and metrics.
func (r *runner) showInFlight(d *delivery) {
	n := d.budget.inUse()
	r.mu.Lock()
	r.status.InFlightBytes = n
	r.mu.Unlock()
	r.env.metrics.inFlight.WithLabelValues(r.name).Set(float64(n))
}

// setCommitted records committed positions in the status.
func (r *runner) setCommitted(pos map[int32]int64, written int) {
	cp := checkpointOf(r.spec.Spec.Source.Topic, pos)
	r.mu.Lock()
	r.status.Positions = cp
	r.status.RecordsWritten += int64(written)
	r.status.Error, r.status.Attempt = "", 0
	r.mu.Unlock()
}

// loadPositions finds where each partition starts: the sink's checkpoint
// for exactly-once delivery, else the pipeline group's committed offsets;
// partitions without either start from startFrom.
//
// A windowed pipeline starts from its window checkpoint, which the
// group's offsets follow.
func (r *runner) loadPositions(ctx context.Context, sink connector.Sink, info stream.TopicInfo, wd *windower) (map[int32]int64, error) {
	spec := &r.spec.Spec
	topic := spec.Source.Topic
	pos := make(map[int32]int64, len(info.Partitions))
	offs, err := r.env.log.FetchOffsets(ctx, spec.Source.Group)
	if err != nil {
		return nil, fmt.Errorf("load the offsets of group %s: %w", spec.Source.Group, err)
	}
	for _, o := range offs {
		if o.Topic == topic {
			pos[o.Partition] = o.Offset
		}
	}
	if ts, ok := sink.(connector.TransactionalSink); ok && spec.Delivery == resource.ExactlyOnce {
		// The sink's checkpoint is the truth: the group's offsets are
		// committed after it and may lag behind.
		cp, err := ts.LoadCheckpoint(ctx)
		if err != nil {
			return nil, fmt.Errorf("load the checkpoint: %w", err)
		}
		for _, p := range cp {
			if p.Topic == topic {
				pos[p.Partition] = p.Offset
			}
		}
	}
	if wd != nil {
		saved, err := wd.restore(ctx, r.env.now())
		if err != nil {
			return nil, err
		}
		for p, off := range saved {
			pos[p] = off
		}
	}
	at := stream.Latest
	if spec.Source.StartFrom == "earliest" {
		at = stream.Earliest
	}
	for _, p := range info.Partitions {
		if _, ok := pos[p.Partition]; ok {
			continue
		}
		off, err := r.env.log.ListOffset(ctx, topic, p.Partition, at)
		if err != nil {
			return nil, fmt.Errorf("find the start of %s/%d: %w", topic, p.Partition, err)
		}
		pos[p.Partition] = off
	}
	return pos, nil
}

// delivery writes batches to the sink and commits their checkpoints.
type delivery struct {
	r       *runner
	sink    connector.Sink
	tx      connector.TransactionalSink // exactly-once: checkpoints in the sink
	staging connector.StagingSink
	dlq     *deadLetter
	topic   string
	group   string
	budget  *budget

	committed map[int32]int64
	hwm       map[int32]int64
	// holdCommits is a batch run's delivery: it commits nothing, since the
	// run's end commits the whole range once its output is complete, and
	// only counts what it wrote in heldWritten.
	holdCommits bool
	heldWritten int
	// staged is the checkpoint of the batches a staging sink holds, and
	// stagedWritten their records. Their budget is released once they are
	// staged: they are in the sink's files by then, not in memory.
	staged        connector.Checkpoint
	stagedWritten int
	// win is the window of a windowed pipeline, whose checkpoints are
	// its state's; unwritten counts the records written since the last.
	win       *windower
	unwritten int
	// pending is the group commit in flight (see commitAsync).
	pending *pendingCommit
}

// pendingCommit is a commit of the group's offsets running beside the
// next batch's write.
type pendingCommit struct {
	done    chan struct{}
	err     error
	cp      connector.Checkpoint
	written int
	// lagOnly marks the commit that follows an exactly-once write, which
	// is already committed with the rows: it only shows the group's lag,
	// and its failure is a warning.
	lagOnly bool
}

// commitAsync commits the group's offsets of a written batch in the
// background, so that the commit (a metadata-store transaction with its
// fsync, or a round trip to Kafka) overlaps the next batch's write
// instead of preceding it. Commits run one at a time, in order: this one
// starts once the one before is settled. Until it is settled the status
// shows the positions before it, and a crash re-reads its records, which
// at-least-once allows.
func (d *delivery) commitAsync(ctx context.Context, cp connector.Checkpoint, written int, lagOnly bool) error {
	if err := d.settle(); err != nil {
		return err
	}
	pc := &pendingCommit{done: make(chan struct{}), cp: cp, written: written, lagOnly: lagOnly}
	offsets := groupOffsets(cp)
	// The commit outlives a stop that comes while it runs: the stop
	// commits what the sink acknowledged, and a commit cut short there
	// would have the next start deliver the batch again. stopTimeout
	// bounds it instead.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopTimeout)
	go func() {
		defer close(pc.done)
		defer cancel()
		pc.err = d.r.env.log.CommitOffsets(cctx, d.group, offsets)
	}()
	d.pending = pc
	return nil
}

// settled is closed when the commit in flight is done (nil without one).
func (d *delivery) settled() <-chan struct{} {
	if d.pending == nil {
		return nil
	}
	return d.pending.done
}

// settle waits for the commit in flight, if any, and shows its positions.
func (d *delivery) settle() error {
	pc := d.pending
	if pc == nil {
		return nil
	}
	<-pc.done
	d.pending = nil
	switch {
	case pc.lagOnly:
		if pc.err != nil {
			d.r.log.Warn("commit the group offsets after an exactly-once write", "err", pc.err)
		}
	case pc.err != nil:
		return fmt.Errorf("commit offsets of group %s: %w", d.group, pc.err)
	default:
		d.markCommitted(pc.cp, pc.written)
	}
	return nil
}

func (d *delivery) updateLag() {
	var lag int64
	for p, h := range d.hwm {
		if c, ok := d.committed[p]; ok && h > c {
			lag += h - c
		}
	}
	d.r.env.metrics.lag.WithLabelValues(d.r.name).Set(float64(lag))
	d.r.mu.Lock()
	d.r.status.Lag = lag
	d.r.mu.Unlock()
}

// deliver writes b: its failed records to the dead-letter topic, then its
// records with their checkpoint to the sink, then commits the checkpoint
// (unless the sink stored it). On success b is reset and its budget
// released.
func (d *delivery) deliver(ctx context.Context, b *batch) error {
	if len(b.records) == 0 && len(b.failed) == 0 && !b.dirty && (d.win == nil || !d.win.due(d.r.env.now(), d.stagingPending())) {
		b.started = time.Time{}
		return nil
	}
	r := d.r
	m := r.env.metrics
	start := r.env.now()
	if len(b.failed) > 0 {
		if err := d.deadLetter(ctx, "process", b.failed); err != nil {
			return err
		}
	}
	cp := b.checkpoint(d.topic)
	rejected := 0
	cb := &connector.Batch{Records: b.records, Checkpoint: cp, Reject: func(ctx context.Context, rej []connector.Rejection) error {
		if err := d.deadLetter(ctx, "sink", rej); err != nil {
			return err
		}
		rejected += len(rej)
		return nil
	}}
	if len(b.records) > 0 || d.tx != nil {
		if err := d.sink.Write(ctx, cb); err != nil {
			return fmt.Errorf("sink: %w", err)
		}
	}
	written := len(b.records) - rejected
	switch {
	case d.holdCommits:
		d.heldWritten += written
	case d.win != nil:
		if err := d.checkpointWindow(ctx, b, cp, written); err != nil {
			return err
		}
	case d.staging != nil:
		d.staged = cp
		d.stagedWritten += written
		if _, pending := d.staging.FlushDue(); !pending {
			// Nothing of this batch is held in the sink (every record
			// was dropped or rejected): its checkpoint need not wait for
			// a flush.
			if err := d.flushStaged(ctx); err != nil {
				return err
			}
		}
	case d.tx != nil:
		d.markCommitted(cp, written)
		// The group's offsets follow, for lag in the groups API; the
		// sink's checkpoint is what a restart reads.
		if err := d.commitAsync(ctx, cp, written, true); err != nil {
			return err
		}
	default:
		if err := d.commitAsync(ctx, cp, written, false); err != nil {
			return err
		}
	}
	now := r.env.now()
	m.batch.WithLabelValues(r.name).Observe(now.Sub(start).Seconds())
	if d.staging == nil && d.win == nil && !d.holdCommits {
		obs := m.endToEnd.WithLabelValues(r.name)
		for _, rec := range b.records {
			obs.Observe(now.Sub(rec.Timestamp).Seconds())
		}
	}
	m.records.WithLabelValues(r.name, "sink", outcomeWritten).Add(float64(written))
	if rejected > 0 {
		m.records.WithLabelValues(r.name, "sink", outcomeFailed).Add(float64(rejected))
	}
	d.budget.release(b.cost)
	b.reset()
	b.started = time.Time{}
	return nil
}

// stagingPending says whether a staging sink holds records not flushed.
func (d *delivery) stagingPending() bool {
	if d.staging == nil {
		return false
	}
	_, pending := d.staging.FlushDue()
	return pending
}

// checkpointWindow ends a windowed pipeline's delivery: when a checkpoint
// is due, it makes the outputs written so far visible (a staging sink's
// flush), saves the window state at the batch's positions, and then
// commits the group's offsets, which only follow the saved state.
func (d *delivery) checkpointWindow(ctx context.Context, b *batch, cp connector.Checkpoint, written int) error {
	r := d.r
	d.unwritten += written
	now := r.env.now()
	if !d.win.due(now, d.stagingPending()) {
		return nil
	}
	st := d.win.checkpoint(b.positions)
	if d.staging != nil {
		if err := d.staging.Flush(ctx); err != nil {
			return fmt.Errorf("sink: flush: %w", err)
		}
	}
	if err := d.win.store.save(ctx, st, now); err != nil {
		return err
	}
	d.win.saved(now)
	if err := r.env.log.CommitOffsets(ctx, d.group, groupOffsets(cp)); err != nil {
		r.log.Warn("commit the group offsets after a window checkpoint", "err", err)
	}
	d.markCommitted(cp, d.unwritten)
	d.unwritten = 0
	r.showWindow(d.win)
	return nil
}

// flushStaged completes what a staging sink holds and commits its
// checkpoint.
func (d *delivery) flushStaged(ctx context.Context) error {
	if d.staging == nil || d.staged == nil {
		return nil
	}
	if err := d.staging.Flush(ctx); err != nil {
		return fmt.Errorf("sink: flush: %w", err)
	}
	if err := d.r.env.log.CommitOffsets(ctx, d.group, groupOffsets(d.staged)); err != nil {
		return fmt.Errorf("commit offsets of group %s: %w", d.group, err)
	}
	d.markCommitted(d.staged, d.stagedWritten)
	d.staged, d.stagedWritten = nil, 0
	return nil
}

func (d *delivery) markCommitted(cp connector.Checkpoint, written int) {
	for _, p := range cp {
		d.committed[p.Partition] = p.Offset
	}
	d.r.setCommitted(d.committed, written)
	d.updateLag()
}

func groupOffsets(cp connector.Checkpoint) []stream.GroupOffset {
	out := make([]stream.GroupOffset, len(cp))
	for i, p := range cp {
		out[i] = stream.GroupOffset{Topic: p.Topic, Partition: p.Partition, Offset: p.Offset, LeaderEpoch: -1}
	}
	return out
}

// deadLetter stores failed records in the dead-letter topic, or fails the
// pipeline when it has none.
func (d *delivery) deadLetter(ctx context.Context, stage string, rej []connector.Rejection) error {
	r := d.r
	if d.dlq == nil {
		first := rej[0]
		return connector.Permanent(fmt.Errorf("record %s/%d@%d failed in %s: %v; %w",
			first.Record.Topic, first.Record.Partition, first.Record.Offset, stageOf(stage, first.Err), first.Err, errNoDeadLetter))
	}
	if err := d.dlq.write(ctx, stage, rej); err != nil {
		return err
	}
	r.env.metrics.deadLetter.WithLabelValues(r.name).Add(float64(len(rej)))
	r.env.metrics.records.WithLabelValues(r.name, stage, outcomeDeadLetter).Add(float64(len(rej)))
	r.mu.Lock()
	r.status.RecordsDeadLettered += int64(len(rej))
	r.mu.Unlock()
	return nil
}

// stageOf names where a record failed: the processor, or the sink.
func stageOf(stage string, err error) string {
	if re, ok := errors.AsType[*process.RecordError](err); ok {
		return re.Stage
	}
	return stage
}

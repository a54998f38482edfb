package pipeline

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"time"

	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/process"
	"github.com/sluice-dev/sluice/internal/resource"
	"github.com/sluice-dev/sluice/internal/window"
)

// windower drives the window of a pipeline that has one: records become
// events of its operator, closed (and, on update, changed) windows become
// the records the sink gets, and the operator's state is checkpointed
// with the source positions.
//
// Checkpoints are what make results exact across a crash. The state saved
// is the state after every record before the saved positions, and every
// window output it implies has reached the sink before it is saved. A
// restart restores it and reads from those positions: each event is in
// the state exactly once, and windows that had been emitted are emitted
// again with the same values, which an upsert on the output key absorbs.
type windower struct {
	w  *process.Window
	op *window.Operator
	// store keeps the checkpoints of a stream pipeline; a batch run has
	// none (it is attempted again from its start) and closes its windows
	// only when its input ends.
	store *stateStore
	// changed says the state or the positions moved since the last
	// checkpoint; lastCheckpoint is when that was.
	changed        bool
	lastCheckpoint time.Time
	// savedAt is when the checkpoint restored or last saved was taken,
	// for the status; zero before there is one.
	savedAt    time.Time
	nextUpdate time.Time
	// force makes the next delivery checkpoint: a graceful stop.
	force bool
}

// windowed says whether a pipeline has a window processor.
func windowed(p *resource.Pipeline) bool {
	for _, c := range p.Spec.Processors {
		if c.Window != nil {
			return true
		}
	}
	return false
}

// errStateIncompatible stops a pipeline whose saved state was made by
// another window definition.
var errStateIncompatible = errors.New("the saved window state was made by another window definition (type, size, advance, gap or aggregates); delete the pipeline and apply it again to start over from its startFrom")

func newWindower(r *runner) *windower {
	w := r.chain.Window()
	return &windower{
		w:  w,
		op: window.New(w.Config),
		store: &stateStore{log: r.env.log, topic: StateTopic(r.name),
			maxBytes: cmp.Or(w.Config.MaxBytes, window.DefaultMaxBytes)},
	}
}

// restore loads the last checkpoint into the operator and returns its
// positions, nil when there is none.
func (wd *windower) restore(ctx context.Context, now time.Time) (map[int32]int64, error) {
	st, err := wd.store.load(ctx)
	if err != nil {
		return nil, err
	}
	wd.lastCheckpoint = now
	if st == nil {
		return nil, nil
	}
	wd.savedAt = st.Time
	if err := wd.op.Restore(st.Snapshot); err != nil {
		if errors.Is(err, window.ErrIncompatible) {
			return nil, connector.Permanent(errStateIncompatible)
		}
		return nil, connector.Permanent(fmt.Errorf("the saved window state is unreadable: %w", err))
	}
	return st.Positions, nil
}

// add makes rec an event of the window. A late event is dropped (dropped
// true) or, like an event whose expressions fail, a *process.RecordError
// for the dead-letter topic. A full state fails the pipeline.
func (wd *windower) add(ctx context.Context, chain *process.Chain, rec *connector.Record) (dropped bool, err error) {
	ev, err := chain.Event(ctx, rec)
	if err != nil {
		return false, err
	}
	err = wd.op.Add(rec.Partition, ev.Key, ev.Time, ev.In)
	switch {
	case err == nil:
		wd.changed = true
		return false, nil
	case errors.Is(err, window.ErrLate) && wd.w.DropLate:
		return true, nil
	case errors.Is(err, window.ErrStateFull):
		return false, connector.Permanent(fmt.Errorf("%s: %w; raise maxStateBytes, or shorten the windows or allowedLateness", wd.w.Stage(), err))
	}
	return false, &process.RecordError{Stage: wd.w.Stage(), Err: err}
}

// emit returns the results due at now: the windows the watermark closed,
// and on update the windows that changed since the last update.
func (wd *windower) emit(now time.Time) []window.Result {
	if wd.store == nil {
		return nil
	}
	out := wd.op.Advance(now)
	if len(out) > 0 {
		wd.changed = true
	}
	if wd.w.OnUpdate && !now.Before(wd.nextUpdate) {
		wd.nextUpdate = now.Add(wd.w.Every)
		out = append(out, wd.op.Updates()...)
	}
	return out
}

// due says whether a delivery at now should checkpoint. Outputs held by a
// staging sink wait for the sink's own flush time (which forces one),
// so that the files roll as the sink is configured to.
func (wd *windower) due(now time.Time, stagingPending bool) bool {
	switch {
	case !wd.changed || wd.store == nil:
		return false
	case wd.force:
		return true
	case stagingPending:
		return false
	}
	return now.Sub(wd.lastCheckpoint) >= wd.w.CheckpointEvery
}

// tickEvery is how often a windowed pipeline looks at the clock: idle
// partitions, updates and checkpoints come due without records.
func (wd *windower) tickEvery() time.Duration {
	d := min(time.Second, wd.w.CheckpointEvery, wd.w.Config.IdleTimeout/2)
	if wd.w.OnUpdate {
		d = min(d, wd.w.Every)
	}
	return max(d, 10*time.Millisecond)
}

// checkpoint returns the checkpoint of the state at positions.
func (wd *windower) checkpoint(positions map[int32]int64) savedState {
	return savedState{Positions: maps.Clone(positions), Snapshot: wd.op.AppendSnapshot(nil)}
}

// saved records that a checkpoint taken at now is stored.
func (wd *windower) saved(now time.Time) {
	wd.changed, wd.force, wd.lastCheckpoint, wd.savedAt = false, false, now, now
}

// watermarkSeconds is the watermark for the metric, NaN before there is
// one.
func (wd *windower) watermarkSeconds() float64 {
	wm := wd.op.Watermark()
	if wm == math.MinInt64 {
		return math.NaN()
	}
	return float64(wm) / 1000
}

// emitWindows moves the window's results that are due into b, through
// the processors after the window.
func (r *runner) emitWindows(ctx context.Context, b *batch, d *delivery) error {
	return r.emitResults(ctx, b, d, d.win.emit(r.env.now()))
}

// newBatchWindower returns the window of a batch run: no checkpoints, no
// watermark. A run has all of its input, so no event in it is late; its
// windows close when the input ends (flushWindows). Every partition of
// the run is known from the start.
func newBatchWindower(w *process.Window, partitions []int32) *windower {
	wd := &windower{w: w, op: window.New(w.Config)}
	for _, p := range partitions {
		wd.op.AddPartition(p)
	}
	return wd
}

// flushWindows closes every window of a batch run into b.
func (r *runner) flushWindows(ctx context.Context, b *batch, d *delivery) error {
	return r.emitResults(ctx, b, d, d.win.op.Flush())
}

// emitResults turns window results into b's records, through the
// processors after the window.
func (r *runner) emitResults(ctx context.Context, b *batch, d *delivery, results []window.Result) error {
	if len(results) == 0 {
		return nil
	}
	emitted, dropped := 0, 0
	for _, res := range results {
		rec := r.chain.Output(d.topic, res)
		ok, err := r.chain.ProcessOutput(ctx, rec)
		if _, recordFault := errors.AsType[*process.RecordError](err); err != nil && !recordFault {
			return err
		}
		var v []byte
		if err == nil && ok {
			v, err = rec.Value()
		}
		switch {
		case err != nil:
			b.failed = append(b.failed, connector.Rejection{Record: rec, Err: err})
		case ok:
			b.records = append(b.records, rec)
			b.bytes += int64(len(v) + len(rec.Key))
			emitted++
		default:
			dropped++
		}
	}
	m := r.env.metrics
	m.records.WithLabelValues(r.name, "window", outcomeEmitted).Add(float64(emitted))
	if dropped > 0 {
		m.records.WithLabelValues(r.name, "window", outcomeDropped).Add(float64(dropped))
	}
	b.dirty = true
	return nil
}

// showWindow puts the window's figures in the status and metrics.
func (r *runner) showWindow(wd *windower) {
	ws := WindowStatus{OpenWindows: wd.op.Windows(), StateBytes: wd.op.Bytes(), LastCheckpoint: wd.savedAt}
	if wm := wd.op.Watermark(); wm != math.MinInt64 {
		ws.Watermark = time.UnixMilli(wm).UTC()
	}
	r.mu.Lock()
	if r.status.Window != nil {
		ws.LateRecords = r.status.Window.LateRecords
	}
	r.status.Window = &ws
	r.mu.Unlock()
	m := r.env.metrics
	m.stateBytes.WithLabelValues(r.name).Set(float64(ws.StateBytes))
	m.watermark.WithLabelValues(r.name).Set(wd.watermarkSeconds())
}

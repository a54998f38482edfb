package pipeline

import (
	"context"
	"errors"
	"time"
)

// loop is a batch pipeline's goroutine: it completes a run left
// unfinished first, then waits for the schedule's next time or a run
// asked for, and executes each run in turn, until ctx ends or a run fails
// for good (the pipeline is then failed; resume starts a new loop, which
// attempts that run again).
//
// A schedule's times come from the manager's clock: the next time is the
// first after the previous run ended (or the loop started), so runs never
// pile up behind a slow one, and times missed while the server was down
// are not made up for one by one; the next run's range covers them,
// since it starts where the last completed run ended.
func (b *batchRunner) loop(ctx context.Context) {
	r := b.r
	defer func() {
		b.startMu.Lock()
		b.closed = true
		b.startMu.Unlock()
		b.setNext(time.Time{})
	}()
	r.mu.Lock()
	r.status.StartedAt = r.env.now()
	r.mu.Unlock()
	b.syncGroup(ctx)

	if run := b.leftBehind; run != nil && !b.paused {
		r.log.Info("resuming a batch run that did not complete", "run", run.ID, "state", run.State, "attempt", run.Attempt)
		if !b.execute(ctx, run, false) {
			return
		}
	}

	lagEvery := time.NewTicker(discoverEvery)
	defer lagEvery.Stop()
	var next time.Time
	for {
		now := r.env.now()
		if b.sched != nil && !b.paused && !next.After(now) {
			next = b.sched.Next(now)
		}
		b.setNext(next)
		b.updateLag(ctx)
		if b.paused {
			r.setState(StatePaused)
		} else {
			r.setState(StateIdle)
		}
		var due <-chan time.Time
		var timer *time.Timer
		if !next.IsZero() {
			timer = time.NewTimer(max(next.Sub(now), 0))
			due = timer.C
		}
		var run *Run
		select {
		case <-ctx.Done():
		case run = <-b.requests:
		case <-due:
			var err error
			run, err = b.begin(ctx, RunScheduled, nil, nil)
			switch {
			case errors.Is(err, ErrRunConflict):
				// A run asked for at the same moment took the slot; it
				// is waiting in requests.
				r.log.Info("a run is in progress; skipping the scheduled one", "err", err)
			case err != nil && ctx.Err() == nil:
				r.log.Warn("scheduled batch run could not start; trying at the next time", "err", err)
				r.setError(StateIdle, err, 0, time.Time{})
			}
			next = time.Time{}
		case <-lagEvery.C:
		}
		if timer != nil {
			timer.Stop()
		}
		if ctx.Err() != nil {
			return
		}
		if run != nil && !b.execute(ctx, run, true) {
			return
		}
	}
}

func (b *batchRunner) setNext(t time.Time) {
	b.mu.Lock()
	b.nextAt = t
	b.mu.Unlock()
}

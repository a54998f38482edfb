// Package pipeline is the pipeline runtime: each pipeline consumes its
// source topic, runs the records through its processors and delivers them
// to its sink in batches, committing the source positions only after the
// sink acknowledged every record up to them. A Manager keeps the specs,
// runs one goroutine per pipeline and restarts a pipeline, and only that
// one, when its spec changes.
//
// A batch pipeline (mode: batch) reads bounded ranges instead, one run at
// a time, on its schedule or when asked (StartRun): a run snapshots the end
// of every partition when it starts, reads exactly its range, completes
// its sink's output, and only then is recorded as succeeded in RunsTopic;
// the next run starts where the last succeeded one ended. A run that did
// not complete is attempted again over its own recorded range.
package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-dev/sluice/internal/process"
	"github.com/sluice-dev/sluice/internal/resource"
	"github.com/sluice-dev/sluice/internal/stream"
)

// Errors of Manager methods.
var (
	ErrNotFound = errors.New("pipeline not found")
	ErrInvalid  = errors.New("invalid pipeline")
)

// Options configures a Manager.
type Options struct {
	Log        stream.Log
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	// Env resolves ${VAR} references of specs when a pipeline starts
	// (default os.LookupEnv): secrets live in the server's environment,
	// not in the specs.
	Env func(string) (string, bool)
	// Stdout is where stdout sinks write (default os.Stdout).
	Stdout io.Writer
	// OpenSink opens sinks (default: the connectors of this repository).
	OpenSink SinkOpener
	Now      func() time.Time
}

// Manager runs pipelines. Its methods are safe for concurrent use.
type Manager struct {
	opts  Options
	env   *env
	store *specStore
	runs  *runStore

	mu        sync.Mutex
	pipelines map[string]*managed
	// changing holds a lock per pipeline being changed (see lockName).
	changing map[string]*nameLock
	ctx      context.Context // the runners' parent, set by Start
	closed   bool
}

// nameLock serializes the changes of one pipeline; refs counts who holds
// or waits for it, so that it is forgotten once nobody does.
type nameLock struct {
	mu   sync.Mutex
	refs int
}

// lockName takes the lock of the changes of the pipeline name, and
// returns its unlock. A change reads the pipeline's entry, stops its
// runner, then installs the next one: two at once (two clients of the
// API, a delete during an apply) would each stop the same runner and
// each install one, leaving a runner that no entry holds, which nothing
// can stop. Pipelines are locked one by one, so that a pipeline slow to
// stop does not hold back changes of the others.
func (m *Manager) lockName(name string) (unlock func()) {
	m.mu.Lock()
	l := m.changing[name]
	if l == nil {
		l = &nameLock{}
		m.changing[name] = l
	}
	l.refs++
	m.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		m.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(m.changing, name)
		}
		m.mu.Unlock()
	}
}

// managed is one pipeline: its stored spec and, while it runs, its runner.
type managed struct {
	spec    resource.Pipeline // as stored
	stored  []byte
	runner  *runner
	batch   *batchRunner // a batch pipeline's runs; nil for a stream pipeline
	cancel  context.CancelFunc
	done    chan struct{}
	startEr error // why it could not start (bad ${VAR}, processors)
}

// New returns a Manager; Start loads the specs and starts the pipelines.
func New(opts Options) (*Manager, error) {
	if opts.Log == nil {
		return nil, errors.New("pipeline: a log is required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Env == nil {
		opts.Env = os.LookupEnv
	}
	if opts.Stdout == nil {
		opts.Stdout = os.Stdout
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("pipeline metrics: %w", err)
	}
	mgr := &Manager{opts: opts, store: &specStore{log: opts.Log}, runs: newRunStore(opts.Log), pipelines: make(map[string]*managed),
		changing: make(map[string]*nameLock)}
	mgr.env = &env{log: opts.Log, metrics: m, now: opts.Now, openSink: opts.OpenSink}
	if mgr.env.openSink == nil {
		mgr.env.openSink = mgr.openSink
	}
	return mgr, nil
}

// Start loads the stored specs and runs and starts every pipeline that is
// not paused (and every batch pipeline: paused ones take runs asked for).
// The pipelines run until ctx ends or Close.
func (m *Manager) Start(ctx context.Context) error {
	specs, err := m.store.load(ctx)
	if err != nil {
		return err
	}
	if err := m.runs.load(ctx); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ctx = ctx
	for key, raw := range specs {
		name, ok := cutKind(key, resource.KindPipeline)
		if !ok {
			continue
		}
		var p resource.Pipeline
		if err := json.Unmarshal(raw, &p); err != nil {
			m.opts.Logger.Error("stored pipeline spec does not decode; skipping it", "pipeline", name, "err", err)
			continue
		}
		mp := &managed{spec: p, stored: raw}
		m.pipelines[name] = mp
		m.startLocked(mp)
	}
	return nil
}

// Close stops every pipeline, each delivering what it holds first.
func (m *Manager) Close(ctx context.Context) error {
	m.mu.Lock()
	m.closed = true
	var all []*managed
	for _, mp := range m.pipelines {
		all = append(all, mp)
	}
	m.mu.Unlock()
	for _, mp := range all {
		if err := m.stop(ctx, mp); err != nil {
			return err
		}
	}
	return nil
}

// startLocked starts mp's runner unless it is a paused stream pipeline
// (a paused batch pipeline's runner only takes runs asked for). Errors
// that keep it from starting are kept for describe.
func (m *Manager) startLocked(mp *managed) {
	name := mp.spec.Metadata.Name
	m.env.metrics.setState(name, StatePaused)
	mp.startEr = nil
	isBatch := mp.spec.Spec.Mode == resource.ModeBatch
	if (mp.spec.Spec.Paused && !isBatch) || m.ctx == nil || m.closed {
		return
	}
	r, err := m.newRunner(&mp.spec)
	var br *batchRunner
	if err == nil && isBatch {
		br, err = newBatchRunner(r, m.runs)
	}
	if err != nil {
		mp.startEr = err
		m.env.metrics.setState(name, StateFailed)
		m.opts.Logger.Error("pipeline cannot start", "pipeline", name, "err", err)
		return
	}
	ctx, cancel := context.WithCancel(m.ctx)
	mp.runner, mp.batch, mp.cancel, mp.done = r, br, cancel, make(chan struct{})
	go func(done chan struct{}) {
		defer close(done)
		if br != nil {
			br.loop(ctx)
			return
		}
		r.run(ctx)
	}(mp.done)
}

// stop stops mp's runner and waits for it.
func (m *Manager) stop(ctx context.Context, mp *managed) error {
	m.mu.Lock()
	cancel, done := mp.cancel, mp.done
	m.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("stop pipeline %s: %w", mp.spec.Metadata.Name, ctx.Err())
	}
	m.mu.Lock()
	if mp.done == done {
		mp.runner, mp.batch, mp.cancel, mp.done = nil, nil, nil, nil
	}
	m.mu.Unlock()
	return nil
}

// newRunner expands the spec, fills in defaults and compiles the
// processors.
func (m *Manager) newRunner(stored *resource.Pipeline) (*runner, error) {
	p, err := resource.Expand(stored, m.opts.Env)
	if err != nil {
		return nil, err
	}
	// Values that came from the environment are checked only now.
	if err := resource.Validate(p); err != nil {
		return nil, err
	}
	p.Spec = p.WithDefaults()
	chain, err := process.NewChain(p.Spec.Processors, process.Options{})
	if err != nil {
		return nil, err
	}
	name := p.Metadata.Name
	return &runner{spec: *p, name: name, env: m.env, chain: chain,
		log:    m.opts.Logger.With("pipeline", name),
		status: Status{State: StateStarting}}, nil
}

// Put creates or replaces a pipeline, stores it, and restarts it when its
// spec changed. It reports whether anything changed. The spec must have
// been validated (resource.Parse or resource.Validate).
func (m *Manager) Put(ctx context.Context, p *resource.Pipeline) (changed bool, err error) {
	defer m.lockName(p.Metadata.Name)()
	return m.put(ctx, p)
}

// put is Put with the pipeline's lock held.
func (m *Manager) put(ctx context.Context, p *resource.Pipeline) (changed bool, err error) {
	name := p.Metadata.Name
	raw, err := json.Marshal(p)
	if err != nil {
		return false, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	m.mu.Lock()
	old := m.pipelines[name]
	m.mu.Unlock()
	if old != nil && bytes.Equal(old.stored, raw) {
		return false, nil
	}
	if err := m.store.put(ctx, pipelineKey(name), raw); err != nil {
		return false, err
	}
	if old != nil {
		// A graceful restart of this pipeline only: it delivers what it
		// holds, then the new spec starts from the committed positions.
		if err := m.stop(ctx, old); err != nil {
			return true, err
		}
	}
	mp := &managed{spec: *p, stored: raw}
	m.mu.Lock()
	m.pipelines[name] = mp
	m.startLocked(mp)
	m.mu.Unlock()
	return true, nil
}

// Delete stops a pipeline and forgets its spec. Its committed offsets stay
// (as a consumer group) until the group is deleted, and so do a batch
// pipeline's runs: one created again under its name goes on from its last
// run. A windowed pipeline's window state and offsets are deleted with it:
// they mean nothing apart.
func (m *Manager) Delete(ctx context.Context, name string) error {
	defer m.lockName(name)()
	m.mu.Lock()
	mp := m.pipelines[name]
	m.mu.Unlock()
	if mp == nil {
		return fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	if err := m.stop(ctx, mp); err != nil {
		return err
	}
	if err := m.store.put(ctx, pipelineKey(name), nil); err != nil {
		return err
	}
	if windowed(&mp.spec) {
		// A window's state and the offsets it is the state at mean
		// nothing apart: both go, so that the pipeline applied again
		// starts over from its startFrom with empty windows.
		if err := (&stateStore{log: m.env.log, topic: StateTopic(name)}).drop(ctx); err != nil {
			return err
		}
		group := mp.spec.WithDefaults().Source.Group
		if err := m.env.log.DeleteGroup(ctx, group); err != nil {
			return fmt.Errorf("delete the offsets of group %s: %w", group, err)
		}
	}
	m.mu.Lock()
	delete(m.pipelines, name)
	m.mu.Unlock()
	m.env.metrics.forget(name)
	return nil
}

// Pause stops a pipeline, keeping its checkpoints; Resume starts it again,
// and restarts a failed one.
func (m *Manager) Pause(ctx context.Context, name string) error {
	return m.setPaused(ctx, name, true)
}

// Resume starts a paused or failed pipeline.
func (m *Manager) Resume(ctx context.Context, name string) error {
	return m.setPaused(ctx, name, false)
}

func (m *Manager) setPaused(ctx context.Context, name string, paused bool) error {
	defer m.lockName(name)()
	m.mu.Lock()
	mp := m.pipelines[name]
	m.mu.Unlock()
	if mp == nil {
		return fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	p := mp.spec
	p.Spec.Paused = paused
	changed, err := m.put(ctx, &p)
	if err != nil || changed || paused {
		return err
	}
	// Unchanged and not paused: restart it if it failed or could not start.
	st := m.describe(mp)
	if st.State != StateFailed {
		return nil
	}
	if err := m.stop(ctx, mp); err != nil {
		return err
	}
	m.mu.Lock()
	m.startLocked(mp)
	m.mu.Unlock()
	return nil
}

// Pipeline is a pipeline's spec, as stored, and its status.
type Pipeline struct {
	Spec   resource.Pipeline
	Status Status
}

// Get returns one pipeline.
func (m *Manager) Get(name string) (Pipeline, error) {
	m.mu.Lock()
	mp := m.pipelines[name]
	m.mu.Unlock()
	if mp == nil {
		return Pipeline{}, fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	return Pipeline{Spec: mp.spec, Status: m.describe(mp)}, nil
}

// List returns every pipeline, sorted by name.
func (m *Manager) List() []Pipeline {
	m.mu.Lock()
	all := make([]*managed, 0, len(m.pipelines))
	for _, mp := range m.pipelines {
		all = append(all, mp)
	}
	m.mu.Unlock()
	out := make([]Pipeline, len(all))
	for i, mp := range all {
		out[i] = Pipeline{Spec: mp.spec, Status: m.describe(mp)}
	}
	slices.SortFunc(out, func(a, b Pipeline) int {
		return strings.Compare(a.Spec.Metadata.Name, b.Spec.Metadata.Name)
	})
	return out
}

func (m *Manager) describe(mp *managed) Status {
	m.mu.Lock()
	r, br, startErr, paused := mp.runner, mp.batch, mp.startEr, mp.spec.Spec.Paused
	m.mu.Unlock()
	switch {
	case startErr != nil:
		return Status{State: StateFailed, Error: startErr.Error()}
	case r == nil && paused:
		return Status{State: StatePaused}
	case r == nil:
		return Status{State: StateStarting}
	}
	st := r.snapshot()
	if br != nil {
		st.Batch = br.status()
	}
	return st
}

package logstore

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sluice-dev/sluice/internal/record"
	"github.com/sluice-dev/sluice/internal/topic"
)

// Directory layout under Options.Dir.
const (
	formatFile    = "FORMAT"
	formatLine    = "sluice-log 1\n"
	topicsDir     = "topics"
	trashDir      = "trash"
	orphanedDir   = "orphaned"
	formatVersion = 1
)

// Log is the embedded, partitioned log: topics of partitions of segment
// files. Its methods are safe for concurrent use.
type Log struct {
	opts    Options
	fs      FS
	dir     string
	metrics *metrics
	codecs  record.Codecs

	mu     sync.RWMutex
	topics map[string]*topicState
	closed bool

	cpMu   sync.Mutex // serialises checkpoint writes
	lastCP []byte
	lastPS []byte // the producer state snapshot last written

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type topicState struct {
	spec  topic.Spec
	cfg   *topic.Config
	parts []*Partition
	stats *topicStats
}

// Open opens the log in opts.Dir, creating it if needed, and recovers every
// topic the catalog lists. It returns once every partition is readable and
// writable (or has failed to open, which fails Open). Close releases it.
func Open(ctx context.Context, opts Options) (*Log, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	start := time.Now()
	l := &Log{opts: opts, fs: opts.FS, dir: opts.Dir, metrics: newMetrics(), topics: map[string]*topicState{}}
	if err := l.prepareDir(); err != nil {
		return nil, err
	}
	cp, err := readCheckpoint(l.fs, l.dir)
	if err != nil {
		l.opts.Logger.Warn("recovery checkpoint unreadable; recovering every partition in full", "err", err)
		cp = checkpoint{entries: map[partKey]checkpointEntry{}}
	}
	ps, err := readProducerSnapshot(l.fs, l.dir)
	if err != nil {
		l.opts.Logger.Warn("producer state snapshot unreadable; rebuilding it from the active segments", "err", err)
		ps = map[partKey]partProducers{}
	}
	specs, err := opts.Catalog.Topics()
	if err != nil {
		return nil, fmt.Errorf("open log: list topics: %w", err)
	}
	if err := l.openTopics(ctx, specs, cp, ps); err != nil {
		l.closeAll(false)
		return nil, err
	}
	if err := l.moveOrphans(specs); err != nil {
		l.closeAll(false)
		return nil, err
	}
	// The checkpoint on disk may say "clean"; from now on it must not.
	// This also rewrites the producer snapshot before any append, so that
	// one that saw batches recovery cut off is never read again.
	if err := l.writeCheckpoint(false); err != nil {
		l.closeAll(false)
		return nil, fmt.Errorf("open log: %w", err)
	}
	l.metrics.recoveryDuration.Set(time.Since(start).Seconds())
	if opts.Registerer != nil {
		for _, c := range append(l.metrics.collectors(), logCollector{l}) {
			if err := opts.Registerer.Register(c); err != nil {
				l.closeAll(false)
				return nil, fmt.Errorf("open log: register metrics: %w", err)
			}
		}
	}
	bg, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	l.wg.Add(2)
	go l.flushLoop(bg)
	go l.retentionLoop(bg)
	l.opts.Logger.Info("log open", "dir", l.dir, "topics", len(specs), "fsync", opts.Sync.String(),
		"recovery_seconds", time.Since(start).Seconds())
	return l, nil
}

func (l *Log) prepareDir() error {
	for _, d := range []string{l.dir, filepath.Join(l.dir, topicsDir)} {
		if err := l.fs.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("open log: %w", err)
		}
	}
	if err := l.fs.RemoveAll(filepath.Join(l.dir, trashDir)); err != nil {
		return fmt.Errorf("open log: empty trash: %w", err)
	}
	b, err := readFile(l.fs, filepath.Join(l.dir, formatFile))
	switch {
	case errors.Is(err, os.ErrNotExist):
		return writeFileAtomic(l.fs, l.dir, formatFile, []byte(formatLine))
	case err != nil:
		return fmt.Errorf("open log: %w", err)
	case string(b) != formatLine:
		return fmt.Errorf("open log: %s holds %q; this build reads format %q", filepath.Join(l.dir, formatFile), strings.TrimSpace(string(b)), strings.TrimSpace(formatLine))
	}
	// Probe writability now, so a read-only volume fails Open with a clear
	// error instead of the first append.
	return writeFileAtomic(l.fs, l.dir, formatFile, []byte(formatLine))
}

func (l *Log) openTopics(ctx context.Context, specs []topic.Spec, cp checkpoint, ps map[partKey]partProducers) error {
	type job struct {
		t  *topicState
		id int32
	}
	var jobs []job
	for _, spec := range specs {
		cfg, err := spec.Resolved()
		if err != nil {
			return fmt.Errorf("open log: topic %s: %w", spec.Name, err)
		}
		t := &topicState{spec: spec, cfg: &cfg, parts: make([]*Partition, spec.Partitions), stats: l.metrics.forTopic(spec.Name)}
		l.topics[spec.Name] = t
		for i := int32(0); i < spec.Partitions; i++ {
			jobs = append(jobs, job{t, i})
		}
	}
	sem := make(chan struct{}, l.opts.RecoveryParallelism)
	errs := make([]error, len(jobs))
	var wg sync.WaitGroup
	for i, j := range jobs {
		if err := ctx.Err(); err != nil {
			errs[i] = err
			break
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			var e *checkpointEntry
			if v, ok := cp.entries[partKey{j.t.spec.Name, j.id}]; ok {
				e = &v
			}
			var snap *partProducers
			if v, ok := ps[partKey{j.t.spec.Name, j.id}]; ok {
				snap = &v
			}
			p, err := l.openPartition(j.t, j.id, e, cp.clean, snap)
			errs[i] = err
			j.t.parts[j.id] = p
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// moveOrphans moves topic directories the catalog does not list (left by a
// crash during topic creation or deletion) aside rather than deleting data.
func (l *Log) moveOrphans(specs []topic.Spec) error {
	known := map[string]bool{}
	for _, s := range specs {
		known[s.Name] = true
	}
	entries, err := l.fs.ReadDir(filepath.Join(l.dir, topicsDir))
	if err != nil {
		return fmt.Errorf("open log: %w", err)
	}
	for _, e := range entries {
		if known[e.Name()] {
			continue
		}
		if err := l.moveOrphan(e.Name()); err != nil {
			return fmt.Errorf("open log: %w", err)
		}
	}
	return nil
}

// moveOrphan moves the directory of a topic the catalog does not list
// aside.
func (l *Log) moveOrphan(name string) error {
	dst := filepath.Join(l.dir, orphanedDir, fmt.Sprintf("%s-%d", name, l.opts.Now().UnixMilli()))
	if err := l.fs.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if err := l.fs.Rename(filepath.Join(l.dir, topicsDir, name), dst); err != nil {
		return fmt.Errorf("move orphaned topic directory: %w", err)
	}
	l.opts.Logger.Warn("moved topic directory the catalog does not list", "dir", name, "to", dst)
	return nil
}

// Close flushes every partition, writes index files and a clean recovery
// checkpoint, and closes all files. Appends and reads in flight fail with
// ErrClosed or complete; long polls return ErrClosed.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.mu.Unlock()
	l.cancel()
	l.wg.Wait()
	err := l.closeAll(true)
	if l.opts.Registerer != nil {
		for _, c := range append(l.metrics.collectors(), logCollector{l}) {
			l.opts.Registerer.Unregister(c)
		}
	}
	return err
}

func (l *Log) closeAll(clean bool) error {
	var errs []error
	allClean := clean
	for _, t := range l.topicList() {
		for _, p := range t.parts {
			if p == nil {
				continue
			}
			if err := p.close(clean); err != nil {
				errs = append(errs, err)
				allClean = false
			}
		}
	}
	if clean {
		if err := l.writeCheckpoint(allClean); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Health returns nil when every partition accepts writes, or an error naming
// each that does not and why.
func (l *Log) Health() error {
	var errs []error
	for _, t := range l.topicList() {
		for _, p := range t.parts {
			p.mu.RLock()
			if p.failed != nil {
				errs = append(errs, p.failed)
			}
			p.mu.RUnlock()
		}
	}
	return errors.Join(errs...)
}

// topicList returns a snapshot of every topic, sorted by name. Topic
// states are copied under the lock because AlterTopicConfig and
// AddPartitions replace their fields.
func (l *Log) topicList() []topicState {
	l.mu.RLock()
	defer l.mu.RUnlock()
	ts := make([]topicState, 0, len(l.topics))
	for _, t := range l.topics {
		ts = append(ts, *t)
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i].spec.Name < ts[j].spec.Name })
	return ts
}

// Partition returns a handle on one partition.
func (l *Log) Partition(topicName string, id int32) (*Partition, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return nil, ErrClosed
	}
	t, ok := l.topics[topicName]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownTopic, topicName)
	}
	if id < 0 || int(id) >= len(t.parts) {
		return nil, fmt.Errorf("%w: %s has %d partitions, no partition %d", ErrUnknownPartition, topicName, len(t.parts), id)
	}
	return t.parts[id], nil
}

// TopicInfo describes a topic and its partitions.
type TopicInfo struct {
	Spec       topic.Spec
	Config     topic.Config
	Partitions []PartitionInfo
}

// Topic returns one topic's description.
func (l *Log) Topic(name string) (TopicInfo, error) {
	l.mu.RLock()
	t, ok := l.topics[name]
	var snap topicState
	if ok {
		snap = *t
	}
	l.mu.RUnlock()
	if !ok {
		return TopicInfo{}, fmt.Errorf("%w: %q", ErrUnknownTopic, name)
	}
	return snap.info(), nil
}

// Topics describes every topic, sorted by name.
func (l *Log) Topics() []TopicInfo {
	ts := l.topicList()
	out := make([]TopicInfo, len(ts))
	for i, t := range ts {
		out[i] = t.info()
	}
	return out
}

func (t topicState) info() TopicInfo {
	ti := TopicInfo{Spec: t.spec, Config: *t.cfg}
	for _, p := range t.parts {
		ti.Partitions = append(ti.Partitions, p.Info())
	}
	return ti
}

// CreateTopic creates a topic with the given partition count and config
// overrides (Kafka-style keys). It returns ErrTopicExists for a name in use
// and an error wrapping topic.ErrInvalid for a bad name, count or config.
func (l *Log) CreateTopic(ctx context.Context, name string, partitions int32, config map[string]string) (topic.Spec, error) {
	spec := topic.Spec{Name: name, Partitions: partitions, Config: config, CreatedAt: l.opts.Now().UTC()}
	if err := spec.Validate(); err != nil {
		return spec, fmt.Errorf("create topic %q: %w", name, err)
	}
	cfg, _ := spec.Resolved()
	spec.Config = cfg.Explicit(config)
	if _, err := rand.Read(spec.ID[:]); err != nil {
		return spec, fmt.Errorf("create topic %q: %w", name, err)
	}
	spec.ID[6] = spec.ID[6]&0x0f | 0x40 // UUID version 4
	spec.ID[8] = spec.ID[8]&0x3f | 0x80

	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return spec, ErrClosed
	}
	if _, ok := l.topics[name]; ok {
		return spec, fmt.Errorf("create topic %q: %w", name, ErrTopicExists)
	}
	// A directory under the name is an orphan (a deletion whose rename
	// failed): the new topic must not open its segments as its own.
	if _, err := l.fs.Stat(filepath.Join(l.dir, topicsDir, name)); err == nil {
		if err := l.moveOrphan(name); err != nil {
			return spec, fmt.Errorf("create topic %q: %w", name, err)
		}
	}
	t := &topicState{spec: spec, cfg: &cfg, stats: l.metrics.forTopic(name)}
	// Directories first: a crash before the catalog records the topic
	// leaves an orphan that the next open moves aside.
	for i := int32(0); i < partitions; i++ {
		p, err := l.openPartition(t, i, nil, false, nil)
		if err != nil {
			for _, q := range t.parts {
				_ = q.close(false)
			}
			_ = l.fs.RemoveAll(filepath.Join(l.dir, topicsDir, name))
			return spec, fmt.Errorf("create topic %q: %w", name, err)
		}
		t.parts = append(t.parts, p)
	}
	err := l.syncTopicDirs(name)
	if err == nil {
		err = l.opts.Catalog.PutTopic(spec)
	}
	if err != nil {
		for _, q := range t.parts {
			_ = q.close(false)
		}
		_ = l.fs.RemoveAll(filepath.Join(l.dir, topicsDir, name))
		return spec, fmt.Errorf("create topic %q: %w", name, err)
	}
	l.topics[name] = t
	return spec, nil
}

func (l *Log) syncTopicDirs(name string) error {
	for _, d := range []string{filepath.Join(l.dir, topicsDir, name), filepath.Join(l.dir, topicsDir)} {
		if err := l.fs.SyncDir(d); err != nil {
			return err
		}
	}
	return nil
}

// DeleteTopic removes a topic and its data. Partition handles held by
// callers return ErrClosed from then on.
func (l *Log) DeleteTopic(ctx context.Context, name string) error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	t, ok := l.topics[name]
	if !ok {
		l.mu.Unlock()
		return fmt.Errorf("delete topic %q: %w", name, ErrUnknownTopic)
	}
	// The catalog is the commit point: once it forgets the topic, a crash
	// leaves at most an orphaned directory.
	if err := l.opts.Catalog.DeleteTopic(name); err != nil {
		l.mu.Unlock()
		return fmt.Errorf("delete topic %q: %w", name, err)
	}
	delete(l.topics, name)
	// The directory leaves topics/ before the name is free again: a topic
	// created under it meanwhile would open the old partitions' segments
	// as its own, and the rename would then take its files away.
	for _, p := range t.parts {
		_ = p.close(false)
	}
	l.metrics.dropTopic(name)
	trash := filepath.Join(l.dir, trashDir)
	dst := filepath.Join(trash, fmt.Sprintf("%s-%x", name, t.spec.ID))
	err := l.fs.MkdirAll(trash, 0o755)
	if err == nil {
		err = l.fs.Rename(filepath.Join(l.dir, topicsDir, name), dst)
	}
	l.mu.Unlock()
	if err != nil {
		return fmt.Errorf("delete topic %q: %w", name, err)
	}
	if err := l.fs.RemoveAll(dst); err != nil {
		l.opts.Logger.Warn("removing deleted topic's files", "topic", name, "err", err)
	}
	return nil
}

// AlterTopicConfig replaces the topic's config overrides. Segment and
// retention settings apply from the next append and retention pass.
func (l *Log) AlterTopicConfig(ctx context.Context, name string, config map[string]string) (topic.Spec, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return topic.Spec{}, ErrClosed
	}
	t, ok := l.topics[name]
	if !ok {
		return topic.Spec{}, fmt.Errorf("alter topic %q: %w", name, ErrUnknownTopic)
	}
	spec := t.spec
	spec.Config = config
	cfg, err := spec.Resolved()
	if err != nil {
		return t.spec, fmt.Errorf("alter topic %q: %w", name, err)
	}
	spec.Config = cfg.Explicit(config)
	if err := l.opts.Catalog.PutTopic(spec); err != nil {
		return t.spec, fmt.Errorf("alter topic %q: %w", name, err)
	}
	t.spec, t.cfg = spec, &cfg
	for _, p := range t.parts {
		p.cfg.Store(&cfg)
	}
	return spec, nil
}

// AddPartitions grows a topic to total partitions. Existing partitions and
// their data are untouched; keyed records may map to new partitions.
func (l *Log) AddPartitions(ctx context.Context, name string, total int32) (topic.Spec, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return topic.Spec{}, ErrClosed
	}
	t, ok := l.topics[name]
	if !ok {
		return topic.Spec{}, fmt.Errorf("add partitions to %q: %w", name, ErrUnknownTopic)
	}
	if total <= t.spec.Partitions || total > topic.MaxPartitions {
		return t.spec, fmt.Errorf("add partitions to %q: %w: %d, want more than %d and at most %d",
			name, ErrInvalidPartitions, total, t.spec.Partitions, topic.MaxPartitions)
	}
	var added []*Partition
	for i := t.spec.Partitions; i < total; i++ {
		p, err := l.openPartition(t, i, nil, false, nil)
		if err != nil {
			for _, q := range added {
				_ = q.close(false)
			}
			return t.spec, fmt.Errorf("add partitions to %q: %w", name, err)
		}
		added = append(added, p)
	}
	spec := t.spec
	spec.Partitions = total
	err := l.syncTopicDirs(name)
	if err == nil {
		err = l.opts.Catalog.PutTopic(spec)
	}
	if err != nil {
		for _, q := range added {
			_ = q.close(false)
		}
		return t.spec, fmt.Errorf("add partitions to %q: %w", name, err)
	}
	t.spec = spec
	t.parts = append(t.parts[:len(t.parts):len(t.parts)], added...)
	return spec, nil
}

// flushLoop flushes rolled segments, runs the interval sync policy and
// rewrites the recovery checkpoint.
func (l *Log) flushLoop(ctx context.Context) {
	defer l.wg.Done()
	tick := l.opts.CheckpointInterval
	if l.opts.Sync.Mode == SyncInterval && l.opts.Sync.Interval < tick {
		tick = l.opts.Sync.Interval
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	lastCP := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, ts := range l.topicList() {
			for _, p := range ts.parts {
				if l.opts.Sync.Mode == SyncInterval {
					p.mu.RLock()
					dirty := len(p.unsynced) > 0
					p.mu.RUnlock()
					if dirty {
						_ = p.syncNow() // a failure marks the partition failed and is logged there
					}
				}
				p.flushSealed()
			}
		}
		if time.Since(lastCP) >= l.opts.CheckpointInterval {
			lastCP = time.Now()
			if err := l.writeCheckpoint(false); err != nil {
				l.metrics.checkpointErrors.Inc()
				l.opts.Logger.Error("writing recovery checkpoint", "err", err)
			}
		}
	}
}

// writeCheckpoint records every partition's durable point and then its
// producer state, each if it changed. The two files need not agree: the
// producer snapshot says which offset its state covers, and recovery
// replays from there (producers.go).
func (l *Log) writeCheckpoint(clean bool) error {
	l.cpMu.Lock()
	defer l.cpMu.Unlock()
	cp := checkpoint{clean: clean, entries: map[partKey]checkpointEntry{}}
	ps := map[partKey]partProducers{}
	for _, t := range l.topicList() {
		for _, p := range t.parts {
			if p != nil {
				k := partKey{p.topic, p.id}
				cp.entries[k], ps[k] = p.checkpointAndProducers()
			}
		}
	}
	b := encodeCheckpoint(cp)
	if string(b) != string(l.lastCP) {
		if err := writeFileAtomic(l.fs, l.dir, checkpointFile, b); err != nil {
			return err
		}
		l.lastCP = b
	}
	b = encodeProducerSnapshot(ps)
	if string(b) != string(l.lastPS) {
		if err := writeFileAtomic(l.fs, l.dir, producerSnapshotFile, b); err != nil {
			return err
		}
		l.lastPS = b
	}
	return nil
}

func (l *Log) retentionLoop(ctx context.Context) {
	defer l.wg.Done()
	t := time.NewTicker(l.opts.RetentionCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		l.EnforceRetention()
	}
}

// EnforceRetention deletes, in every partition, the oldest segments that
// retention.ms or retention.bytes no longer keep. It runs in the background
// every RetentionCheckInterval; calling it directly is for tests and tools.
func (l *Log) EnforceRetention() {
	now := l.opts.Now().UnixMilli()
	for _, t := range l.topicList() {
		for _, p := range t.parts {
			p.enforceRetention(now)
		}
	}
}

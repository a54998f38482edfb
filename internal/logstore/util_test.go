package logstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/record"
	"github.com/sluice-dev/sluice/internal/topic"
)

// memCatalog keeps topic specs in memory; the bbolt-backed catalog is tested
// in package meta.
type memCatalog struct {
	mu    sync.Mutex
	specs map[string]topic.Spec
}

func newMemCatalog() *memCatalog { return &memCatalog{specs: map[string]topic.Spec{}} }

func (c *memCatalog) Topics() ([]topic.Spec, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []topic.Spec
	for _, s := range c.specs {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (c *memCatalog) PutTopic(s topic.Spec) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.specs[s.Name] = s
	return nil
}

func (c *memCatalog) DeleteTopic(name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.specs, name)
	return nil
}

// makeBatch builds an uncompressed batch of n records with values of
// valueSize bytes, tagged with seq so tests can tell batches apart.
func makeBatch(n, valueSize int, ts int64, seq int) []byte {
	var c record.Codecs
	recs := make([]record.Record, n)
	for i := range recs {
		v := make([]byte, valueSize)
		copy(v, fmt.Sprintf("batch %d record %d ", seq, i))
		recs[i] = record.Record{Key: []byte(fmt.Sprintf("k%d", i)), Value: v, Timestamp: ts}
	}
	b, err := c.AppendBatch(nil, recs, record.BatchOptions{})
	if err != nil {
		panic(err)
	}
	return b
}

type testLog struct {
	*Log
	t    testing.TB
	opts Options
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func openTestLog(t testing.TB, opts Options) *testLog {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	if opts.Catalog == nil {
		opts.Catalog = newMemCatalog()
	}
	if opts.Logger == nil {
		opts.Logger = quietLogger()
	}
	l, err := Open(context.Background(), opts)
	if err != nil {
		t.Fatalf("open log: %v", err)
	}
	tl := &testLog{Log: l, t: t, opts: opts}
	t.Cleanup(func() { _ = l.Close() })
	return tl
}

func (tl *testLog) reopen() *testLog {
	tl.t.Helper()
	if err := tl.Close(); err != nil {
		tl.t.Fatalf("close: %v", err)
	}
	return openTestLog(tl.t, tl.opts)
}

func (tl *testLog) part(name string, id int32) *Partition {
	tl.t.Helper()
	p, err := tl.Partition(name, id)
	if err != nil {
		tl.t.Fatalf("partition %s/%d: %v", name, id, err)
	}
	return p
}

func (tl *testLog) create(name string, parts int32, cfg map[string]string) {
	tl.t.Helper()
	if _, err := tl.CreateTopic(context.Background(), name, parts, cfg); err != nil {
		tl.t.Fatalf("create topic: %v", err)
	}
}

// readAllBatches reads every batch from offset to the high watermark.
func readAllBatches(t testing.TB, p *Partition, from int64) [][]byte {
	t.Helper()
	var out [][]byte
	for {
		res, err := p.Read(context.Background(), from, 1<<20, nil)
		if err != nil {
			t.Fatalf("read %s/%d at %d: %v", p.topic, p.id, from, err)
		}
		if len(res.Batches) == 0 {
			return out
		}
		b := res.Batches
		for len(b) > 0 {
			h, err := record.Check(b[:record.LengthPrefix+int(int32(beUint32(b[8:])))])
			if err != nil {
				t.Fatalf("read returned a bad batch: %v", err)
			}
			out = append(out, append([]byte(nil), b[:h.Size()]...))
			b = b[h.Size():]
		}
		from = res.NextOffset
	}
}

func beUint32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// fakeClock is a settable clock for retention and roll tests.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// fileCatalog persists specs in a JSON file so a log can be reopened by
// another process, as in crash tests.
type fileCatalog struct {
	mu   sync.Mutex
	path string
}

func (c *fileCatalog) load() (map[string]topic.Spec, error) {
	m := map[string]topic.Spec{}
	b, err := os.ReadFile(c.path)
	if errors.Is(err, os.ErrNotExist) {
		return m, nil
	}
	if err != nil {
		return nil, err
	}
	return m, json.Unmarshal(b, &m)
}

func (c *fileCatalog) store(m map[string]topic.Spec) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return writeFileAtomic(OSFS{}, filepath.Dir(c.path), filepath.Base(c.path), b)
}

func (c *fileCatalog) Topics() ([]topic.Spec, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m, err := c.load()
	var out []topic.Spec
	for _, s := range m {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, err
}

func (c *fileCatalog) PutTopic(s topic.Spec) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	m, err := c.load()
	if err != nil {
		return err
	}
	m[s.Name] = s
	return c.store(m)
}

func (c *fileCatalog) DeleteTopic(name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	m, err := c.load()
	if err != nil {
		return err
	}
	delete(m, name)
	return c.store(m)
}

// crash abandons the log as a killed process would: background work stops
// and files close, but nothing is flushed and no checkpoint is written.
func (tl *testLog) crash() {
	tl.Log.mu.Lock()
	tl.Log.closed = true
	tl.Log.mu.Unlock()
	tl.cancel()
	tl.wg.Wait()
	for _, t := range tl.topicList() {
		for _, p := range t.parts {
			p.mu.Lock()
			p.closed = true
			for _, s := range p.segs {
				s.release()
			}
			p.mu.Unlock()
		}
	}
}

// reopenAfterCrash opens the log again after crash.
func (tl *testLog) reopenAfterCrash() *testLog {
	tl.t.Helper()
	return openTestLog(tl.t, tl.opts)
}

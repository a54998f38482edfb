package kafkawire

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/logstore"
	"github.com/sluice-dev/sluice/internal/meta"
	"github.com/sluice-dev/sluice/internal/stream"
	"github.com/sluice-dev/sluice/internal/stream/embedded"
)

// testEnv is a Server on 127.0.0.1:0 over the embedded log in a temporary
// directory.
type testEnv struct {
	t    testing.TB
	dir  string
	meta *meta.Store
	ls   *logstore.Log
	log  stream.Log
	srv  *Server
	addr string
	done chan error
	// fsyncAlways opens the log with fsync=always instead of never.
	fsyncAlways bool
}

// testLogger logs to stderr when KAFKAWIRE_DEBUG is set, else nowhere.
func testLogger() *slog.Logger {
	if os.Getenv("KAFKAWIRE_DEBUG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// openLog opens the embedded log in dir.
func openLog(t testing.TB, dir string, sync logstore.SyncPolicy) (*meta.Store, *logstore.Log, stream.Log) {
	t.Helper()
	m, err := meta.Open(filepath.Join(dir, "meta.db"), meta.Options{})
	if err != nil {
		t.Fatal(err)
	}
	l, err := logstore.Open(context.Background(), logstore.Options{Dir: filepath.Join(dir, "log"), Catalog: m,
		Sync: sync, Logger: testLogger()})
	if err != nil {
		_ = m.Close()
		t.Fatal(err)
	}
	return m, l, embedded.New(l, m)
}

// newTestEnv starts a server; opts.Store and opts.Logger are filled in.
func newTestEnv(t testing.TB, opts Options) *testEnv {
	t.Helper()
	e := &testEnv{t: t, dir: t.TempDir()}
	e.start(opts)
	t.Cleanup(e.stop)
	return e
}

// newDurableTestEnv is newTestEnv on a log that fsyncs every append.
func newDurableTestEnv(t testing.TB, opts Options) *testEnv {
	t.Helper()
	e := &testEnv{t: t, dir: t.TempDir(), fsyncAlways: true}
	e.start(opts)
	t.Cleanup(e.stop)
	return e
}

func (e *testEnv) start(opts Options) {
	e.t.Helper()
	policy := syncNever()
	if e.fsyncAlways {
		policy = logstore.SyncPolicy{Mode: logstore.SyncAlways}
	}
	e.meta, e.ls, e.log = openLog(e.t, e.dir, policy)
	opts.Store = e.meta
	if opts.Logger == nil {
		opts.Logger = testLogger()
	}
	srv, err := New(e.log, opts)
	if err != nil {
		e.t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	e.srv, e.addr, e.done = srv, ln.Addr().String(), make(chan error, 1)
	go func() { e.done <- srv.Serve(context.Background(), ln) }()
}

func (e *testEnv) stop() {
	if e.srv == nil {
		return
	}
	_ = e.srv.Close()
	if err := <-e.done; !errors.Is(err, ErrServerClosed) {
		e.t.Errorf("Serve returned %v, want ErrServerClosed", err)
	}
	_ = e.ls.Close()
	_ = e.meta.Close()
	e.srv = nil
}

// restart stops the server and the log and opens both again on the same
// directory.
func (e *testEnv) restart(opts Options) {
	e.stop()
	e.start(opts)
}

// client returns a franz-go client for the server, closed at cleanup.
func (e *testEnv) client(opts ...kgo.Opt) *kgo.Client {
	e.t.Helper()
	opts = append([]kgo.Opt{kgo.SeedBrokers(e.addr), kgo.RetryTimeout(10 * time.Second)}, opts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(cl.Close)
	return cl
}

// admin returns a kadm client for the server.
func (e *testEnv) admin(opts ...kgo.Opt) *kadm.Client {
	return kadm.NewClient(e.client(opts...))
}

// createTopic creates a topic directly in the log.
func (e *testEnv) createTopic(name string, partitions int32, config map[string]string) {
	e.t.Helper()
	if _, err := e.log.CreateTopic(context.Background(), name, partitions, config); err != nil {
		e.t.Fatal(err)
	}
}

// memStore is a Store in memory, for tests that need no durability.
type memStore map[string][]byte

func (m memStore) Get(ns, key string) ([]byte, bool, error) {
	v, ok := m[ns+"/"+key]
	return v, ok, nil
}

func (m memStore) Put(ns, key string, value []byte) error {
	m[ns+"/"+key] = append([]byte(nil), value...)
	return nil
}

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func syncNever() logstore.SyncPolicy { return logstore.SyncPolicy{Mode: logstore.SyncNever} }

func listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

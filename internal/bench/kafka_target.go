package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sluice-dev/sluice/internal/logstore"
	"github.com/sluice-dev/sluice/internal/server"
)

// KafkaTarget says which broker the Kafka benchmarks load.
type KafkaTarget struct {
	// Brokers are the seed brokers (host:port) of a running Sluice or
	// Kafka; none starts a Sluice Kafka listener in this process, on
	// 127.0.0.1:0 over a fresh data directory under Dir.
	Brokers []string
	// Dir is the scratch directory: the embedded server's data and the
	// raw fsync baseline's file [a new temporary directory]. For the
	// baseline to mean anything it must be on the disk the broker writes.
	Dir string
	// Fsync is the embedded server's durability policy [always]. Against
	// Brokers it is not applied; it is only reported.
	Fsync logstore.SyncPolicy
	// Exec, when Brokers is empty, is a sluice binary to run the broker
	// from: `Exec serve` in a process of its own, as it is deployed, with
	// its own Go runtime (heap, collector, scheduler) rather than the
	// generator's. Empty runs the server in this process, where one CPU
	// profile covers both sides.
	Exec string
}

// Profile labels that split one CPU profile of the process between the
// broker started in process and the load generator: every goroutine
// inherits the labels of the one that started it, so franz-go's
// goroutines carry the generator's and the listener's, log's and
// connections' carry the server's. Select with
// `go tool pprof -tagfocus sluice_bench=server`.
const (
	ProfileLabel          = "sluice_bench"
	ProfileLabelServer    = "server"
	ProfileLabelGenerator = "generator"
)

// kafkaBroker is a target once started: the addresses to seed clients
// with, a description for the report, and how to stop what was started.
type kafkaBroker struct {
	brokers []string
	desc    string
	dir     string // scratch directory, for the raw fsync baseline
	stop    func() error
}

// startKafkaTarget resolves t: it makes the scratch directory and, when
// t names no brokers, starts a broker in this process. The caller calls
// stop.
func startKafkaTarget(ctx context.Context, t KafkaTarget) (*kafkaBroker, error) {
	var cleanups []func() error
	b := &kafkaBroker{stop: func() error {
		var errs []error
		for i := len(cleanups) - 1; i >= 0; i-- {
			errs = append(errs, cleanups[i]())
		}
		return errors.Join(errs...)
	}}
	b.dir = t.Dir
	if b.dir == "" {
		d, err := os.MkdirTemp("", "sluice-bench-kafka-*")
		if err != nil {
			return nil, err
		}
		cleanups = append(cleanups, func() error { return os.RemoveAll(d) })
		b.dir = d
	} else if err := os.MkdirAll(b.dir, 0o755); err != nil {
		return nil, err
	}
	if len(t.Brokers) > 0 {
		b.brokers = t.Brokers
		b.desc = strings.Join(t.Brokers, ",") + " (a running broker, with its own durability policy)"
		return b, nil
	}
	if t.Exec != "" {
		stop, err := startChildKafka(ctx, t.Exec, filepath.Join(b.dir, "server"), t.Fsync, b)
		if err != nil {
			_ = b.stop()
			return nil, err
		}
		cleanups = append(cleanups, stop)
		return b, nil
	}
	var err error
	pprof.Do(ctx, pprof.Labels(ProfileLabel, ProfileLabelServer), func(ctx context.Context) {
		var stop func() error
		stop, err = startEmbeddedKafka(ctx, filepath.Join(b.dir, "server"), t.Fsync, b)
		if stop != nil {
			cleanups = append(cleanups, stop)
		}
	})
	if err != nil {
		_ = b.stop()
		return nil, err
	}
	return b, nil
}

// startEmbeddedKafka starts a Sluice server (internal/server, what
// `sluice serve` runs) on a fresh data directory dir, with its HTTP and
// Kafka listeners on 127.0.0.1:0, and fills in b's addresses.
func startEmbeddedKafka(ctx context.Context, dir string, fsync logstore.SyncPolicy, b *kafkaBroker) (func() error, error) {
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	srv, err := server.New(server.Options{
		DataDir:   dir,
		HTTPAddr:  "127.0.0.1:0",
		KafkaAddr: "127.0.0.1:0",
		Fsync:     fsync,
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		return nil, err
	}
	if err := srv.Start(ctx); err != nil {
		return nil, fmt.Errorf("start server: %w", err)
	}
	addr := srv.KafkaAddr()
	if addr == nil {
		_ = srv.Shutdown(context.WithoutCancel(ctx))
		return nil, errors.New("start server: no Kafka listener")
	}
	b.brokers = []string{addr.String()}
	b.desc = fmt.Sprintf("Sluice in this process (internal/server, as sluice serve runs it), Kafka listener %s, fsync=%s", addr, fsync)
	return func() error {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			return fmt.Errorf("shut down server: %w", err)
		}
		return nil
	}, nil
}

// startChildKafka runs `exe serve` on a fresh data directory dir, with its
// HTTP and Kafka listeners on 127.0.0.1:0 and JSON logs, waits for the
// server's "ready" line and fills in b's addresses from it. The returned
// stop sends SIGTERM and waits for a clean exit.
func startChildKafka(ctx context.Context, exe, dir string, fsync logstore.SyncPolicy, b *kafkaBroker) (func() error, error) {
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, "serve", "--data-dir", dir, "--http-addr", "127.0.0.1:0", "--kafka-addr", "127.0.0.1:0",
		"--fsync", fsync.String(), "--log-format", "json")
	// The child takes no setting from the environment but these flags.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SLUICE_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s serve: %w", exe, err)
	}
	exited := make(chan error, 1)
	ready := make(chan string, 1)
	var tail tailLines // the last lines, for an error message
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			tail.add(sc.Text())
			var line struct {
				Msg       string `json:"msg"`
				KafkaAddr string `json:"kafka_addr"`
			}
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "ready" {
				// Only the first is waited for; a second must not stop
				// this loop, or the child's exit would never be seen.
				select {
				case ready <- line.KafkaAddr:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
		exited <- cmd.Wait()
	}()
	stop := func() error {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				return fmt.Errorf("%s serve: %w: %s", exe, err, tail.String())
			}
			return nil
		case <-time.After(time.Minute):
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("%s serve: still running a minute after SIGTERM, killed", exe)
		}
	}
	select {
	case addr := <-ready:
		if addr == "" {
			_ = stop()
			return nil, fmt.Errorf("%s serve: ready without a Kafka listener", exe)
		}
		b.brokers = []string{addr}
		b.desc = fmt.Sprintf("sluice serve in its own process (pid %d), Kafka listener %s, fsync=%s", cmd.Process.Pid, addr, fsync)
		return stop, nil
	case err := <-exited:
		return nil, fmt.Errorf("%s serve exited before it was ready (%v): %s", exe, err, tail.String())
	case <-time.After(time.Minute):
		_ = stop()
		return nil, fmt.Errorf("%s serve: not ready after a minute: %s", exe, tail.String())
	case <-ctx.Done():
		_ = stop()
		return nil, ctx.Err()
	}
}

// tailLines keeps the last few lines written to it, safe for concurrent use.
type tailLines struct {
	mu    sync.Mutex
	lines []string
}

func (t *tailLines) add(line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.lines) == 5 {
		t.lines = append(t.lines[:0], t.lines[1:]...)
	}
	t.lines = append(t.lines, line)
}

func (t *tailLines) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.lines) == 0 {
		return "no output"
	}
	return strings.Join(t.lines, " | ")
}

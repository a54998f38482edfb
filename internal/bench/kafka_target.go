package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/internal/kafkawire"
	"github.com/sluice-dev/sluice/internal/logstore"
	"github.com/sluice-dev/sluice/internal/stream/embedded"
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

// startEmbeddedKafka serves the Kafka protocol on 127.0.0.1:0 over an
// embedded log in a fresh directory dir, and fills in b's addresses.
//
// It builds the listener from kafkawire and the embedded log directly, as
// internal/server does not serve Kafka yet; once it does, this should
// start an internal/server.Server instead, so that the benchmark measures
// what `sluice serve` runs.
func startEmbeddedKafka(ctx context.Context, dir string, fsync logstore.SyncPolicy, b *kafkaBroker) (func() error, error) {
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	env, err := OpenEnv(ctx, dir, fsync)
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := kafkawire.New(embedded.New(env.Log, env.Meta), kafkawire.Options{Store: env.Meta, Logger: discard})
	if err != nil {
		env.Close()
		return nil, fmt.Errorf("kafka listener: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		env.Close()
		return nil, fmt.Errorf("kafka listener: %w", err)
	}
	// Serve's context is not ctx: the server must outlive start-up, and
	// stop ends it.
	done := make(chan error, 1)
	go func() { done <- srv.Serve(context.WithoutCancel(ctx), ln) }()
	b.brokers = []string{ln.Addr().String()}
	b.desc = fmt.Sprintf("Sluice in this process (kafkawire over the embedded log), %s, fsync=%s", ln.Addr(), fsync)
	return func() error {
		_ = srv.Close()
		var errs []error
		select {
		case err := <-done:
			if !errors.Is(err, kafkawire.ErrServerClosed) {
				errs = append(errs, fmt.Errorf("kafka listener: %w", err))
			}
		case <-time.After(time.Minute):
			errs = append(errs, errors.New("kafka listener: Serve did not return a minute after Close"))
		}
		if err := env.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close log: %w", err))
		}
		return errors.Join(errs...)
	}, nil
}

// Package server composes Sluice's components into one running process. It
// owns start-up (lock the data directory, open the metadata store and the
// log, listen) and graceful shutdown (the same in reverse), and builds the
// HTTP routing that the API, the console and /metrics share.
//
// In embedded mode (the default) the log is Sluice's own, in the data
// directory, and the server also serves the Kafka protocol over it. In
// cluster mode (Options.Cluster.Brokers set) the log is a Kafka cluster
// reached through internal/stream/kafka: there is no data directory, no
// metadata store and no Kafka listener, since the cluster's brokers are the
// Kafka endpoint.
//
// A data directory looks like this:
//
//	<data-dir>/LOCK      held by the running server (internal/dirlock)
//	<data-dir>/meta.db   metadata store: topics, offsets, pipeline state
//	<data-dir>/log/      the embedded log (internal/logstore)
package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/dirlock"
	"github.com/sluice-dev/sluice/internal/group"
	"github.com/sluice-dev/sluice/internal/httpapi"
	"github.com/sluice-dev/sluice/internal/kafkawire"
	"github.com/sluice-dev/sluice/internal/logstore"
	"github.com/sluice-dev/sluice/internal/meta"
	"github.com/sluice-dev/sluice/internal/pipeline"
	"github.com/sluice-dev/sluice/internal/stream"
	"github.com/sluice-dev/sluice/internal/stream/embedded"
	"github.com/sluice-dev/sluice/internal/stream/kafka"
)

// Defaults for Options.
const (
	DefaultHTTPAddr          = "127.0.0.1:8080"
	DefaultKafkaAddr         = "127.0.0.1:9092"
	DefaultShutdownTimeout   = 10 * time.Second
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = time.Minute
	DefaultIdleTimeout       = 2 * time.Minute

	DefaultClusterConnectTimeout = 10 * time.Second
)

// Names of the files and directories the server keeps in Options.DataDir.
const (
	MetaFile = "meta.db"
	LogDir   = "log"
)

// Options configures a Server. DataDir is required in embedded mode; every
// other field has a default. Flags, environment variables and configuration
// files are read by cmd/sluice, never here.
type Options struct {
	// DataDir holds everything the server stores in embedded mode. It is
	// created if missing and locked for as long as the server runs. It must
	// be empty in cluster mode, where nothing is stored locally.
	DataDir string
	// HTTPAddr is the host:port of the HTTP listener (API, health checks,
	// /metrics). Port 0 picks a free port; Addr reports it. Default
	// DefaultHTTPAddr.
	HTTPAddr string
	// KafkaAddr is the host:port of the Kafka protocol listener (embedded
	// mode only). Port 0 picks a free port; KafkaAddr reports it. Default
	// DefaultKafkaAddr.
	KafkaAddr string
	// KafkaAdvertisedAddr is the host:port Kafka clients are told to
	// connect to. Default: the listener's address.
	KafkaAdvertisedAddr string
	// KafkaNoAutoCreateTopics stops the listener from creating topics that
	// clients ask for in Metadata requests. The zero value auto-creates, as
	// Kafka does by default (auto.create.topics.enable=true).
	KafkaNoAutoCreateTopics bool
	// KafkaDefaultPartitions is the partition count of auto-created topics
	// and of CreateTopics requests that ask for the default (-1). Default
	// kafkawire.DefaultDefaultPartitions (1).
	KafkaDefaultPartitions int32
	// KafkaMaxRequestBytes bounds a Kafka request's size. Default
	// kafkawire.DefaultMaxRequestBytes (100 MiB).
	KafkaMaxRequestBytes int
	// KafkaMaxConnections bounds open Kafka connections. Default
	// kafkawire.DefaultMaxConnections.
	KafkaMaxConnections int

	// Cluster selects cluster mode when Cluster.Brokers is set: the log is
	// that Kafka cluster (see internal/stream/kafka; TLS and SASL go in
	// Cluster.ClientOpts). The Kafka listener settings above must then be
	// left zero.
	Cluster kafka.Options
	// ClusterConnectTimeout bounds each attempt to reach the cluster at
	// start-up; Start retries until its context ends. Default
	// DefaultClusterConnectTimeout.
	ClusterConnectTimeout time.Duration

	// Fsync is the log's durability policy. The zero value is
	// logstore.SyncAlways.
	Fsync logstore.SyncPolicy
	// LogCacheWindow is how much of each partition's end stays in the page
	// cache (logstore.Options.CacheWindow): 0 is the log's default,
	// negative leaves the page cache to the kernel.
	LogCacheWindow int64
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// ShutdownTimeout bounds how long Run lets in-flight HTTP requests finish
	// before closing their connections. Default DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// HTTP server timeouts; see net/http.Server. There is deliberately no
	// write timeout: long-polling fetches will hold responses open.
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	IdleTimeout       time.Duration
	// HTTPMaxBodyBytes bounds a request body of the HTTP API; larger
	// bodies get 413 without being read past the limit. Default
	// httpapi.DefaultMaxBodyBytes (64 MiB).
	HTTPMaxBodyBytes int64
	// PipelineEnv resolves the ${VAR} references of pipeline specs.
	// Default os.LookupEnv.
	PipelineEnv func(string) (string, bool)
	// Stdout is where pipelines with a stdout sink write. Default
	// os.Stdout.
	Stdout io.Writer
}

// clusterMode reports whether the log is an external Kafka cluster.
func (o *Options) clusterMode() bool { return len(o.Cluster.Brokers) > 0 }

func (o *Options) setDefaults() error {
	if o.HTTPAddr == "" {
		o.HTTPAddr = DefaultHTTPAddr
	}
	if err := ValidateAddr(o.HTTPAddr); err != nil {
		return fmt.Errorf("http address: %w", err)
	}
	if o.clusterMode() {
		if err := o.clusterDefaults(); err != nil {
			return err
		}
	} else if err := o.embeddedDefaults(); err != nil {
		return err
	}
	if o.Fsync.Mode == logstore.SyncInterval && o.Fsync.Interval <= 0 {
		return errors.New("fsync policy: interval needs a positive duration")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = DefaultShutdownTimeout
	}
	if o.ReadHeaderTimeout <= 0 {
		o.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = DefaultReadTimeout
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.HTTPMaxBodyBytes <= 0 {
		o.HTTPMaxBodyBytes = httpapi.DefaultMaxBodyBytes
	}
	return nil
}

// ValidateAddr checks that addr is a listen address of the form host:port
// (the host may be empty, meaning every interface) with a port from 0 to
// 65535.
func ValidateAddr(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q: want host:port, such as 127.0.0.1:8080", addr)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || (n == 0 && port != "0") {
		return fmt.Errorf("%q: port must be a number from 0 to 65535", addr)
	}
	return nil
}

type phase int

const (
	phaseNew phase = iota
	phaseStarting
	phaseRunning
	phaseStopping
	phaseStopped
)

// check is one condition for readiness; see handleReadyz.
type check struct {
	name string
	fn   func() error
}

// Server is one Sluice process: the metadata store, the log and the
// listeners over one data directory. Create it with New, then either call
// Run, or Start and later Shutdown.
type Server struct {
	opts   Options
	logger *slog.Logger
	reg    *prometheus.Registry

	// lifecycle serialises Start and Shutdown; the fields below it are
	// written only while it is held.
	lifecycle sync.Mutex
	lock      *dirlock.Lock
	meta      *meta.Store
	log       *logstore.Log // embedded mode only
	cluster   *kafka.Log    // cluster mode only
	stream    stream.Log    // what the API and the Kafka listener serve
	api       *httpapi.API
	ln        net.Listener
	http      *http.Server
	serveDone chan struct{} // closed when the HTTP server's Serve returns
	serveErr  error         // what Serve returned, once serveDone is closed
	kafka     *kafkawire.Server
	groups    *group.Coordinator // embedded mode: shared by the Kafka listener and the log
	kafkaLn   net.Listener
	kafkaDone chan struct{} // closed when the Kafka listener's Serve returns
	kafkaErr  error         // what Serve returned, once kafkaDone is closed
	pinger    *kgo.Client   // cluster mode: the readiness probe's client
	pipelines *pipeline.Manager
	// stopPipelines ends the pipelines' context, after they were closed.
	stopPipelines context.CancelFunc
	stopErr       error

	// mu guards the state that HTTP handlers read.
	mu     sync.Mutex
	phase  phase
	checks []check

	// mux is the HTTP routing (see Handler); the API's routes join it once
	// the log is open, and apiServing says they have.
	muxOnce    sync.Once
	mux        *http.ServeMux
	apiServing atomic.Bool
}

// New validates opts and returns a Server that has not yet touched the data
// directory or the network.
func New(opts Options) (*Server, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return &Server{opts: opts, logger: opts.Logger, reg: reg}, nil
}

// Registry returns the registry /metrics serves, for components the server
// does not create itself.
func (s *Server) Registry() *prometheus.Registry { return s.reg }

// Addr returns the HTTP listener's address once Start has bound it, or nil.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

func (s *Server) setPhase(p phase) {
	s.mu.Lock()
	s.phase = p
	s.mu.Unlock()
}

// addCheck makes readiness depend on fn returning nil.
func (s *Server) addCheck(name string, fn func() error) {
	s.mu.Lock()
	s.checks = append(s.checks, check{name, fn})
	s.mu.Unlock()
}

// KafkaAddr returns the Kafka listener's address once Start has bound it,
// or nil (always nil in cluster mode).
func (s *Server) KafkaAddr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.kafkaLn == nil {
		return nil
	}
	return s.kafkaLn.Addr()
}

// Start, in embedded mode, locks the data directory, starts serving HTTP
// (healthy, but not ready; the API answers 503), opens the metadata store
// and the log (recovering it if the last run did not shut down cleanly),
// adds the API's routes, starts the Kafka listener, and then reports ready.
// In cluster mode it serves HTTP, connects to the cluster (retrying until
// ctx ends), adds the API's routes and reports ready. ctx bounds start-up
// only. If Start fails it undoes whatever it did and the Server cannot be
// started again.
func (s *Server) Start(ctx context.Context) (err error) {
	s.lifecycle.Lock()
	defer s.lifecycle.Unlock()
	s.mu.Lock()
	if s.phase != phaseNew {
		s.mu.Unlock()
		return errors.New("server: Start called more than once")
	}
	s.phase = phaseStarting
	s.mu.Unlock()
	defer func() {
		if err != nil {
			s.stop(context.Background())
		}
	}()

	if s.opts.clusterMode() {
		return s.startCluster(ctx)
	}
	dataDir := s.opts.DataDir
	if abs, err := filepath.Abs(dataDir); err == nil {
		dataDir = abs
	}
	s.logger.Info("starting", "data_dir", dataDir, "fsync", s.opts.Fsync.String())
	// The lock comes first: nothing may touch the directory's contents, nor
	// take the listener's port, while another process owns them.
	if s.lock, err = dirlock.Acquire(dataDir); err != nil {
		return err
	}
	if err := s.listenHTTP(); err != nil {
		return err
	}

	if s.meta, err = meta.Open(filepath.Join(dataDir, MetaFile), meta.Options{}); err != nil {
		return err
	}
	if s.log, err = logstore.Open(ctx, logstore.Options{
		Dir:         filepath.Join(dataDir, LogDir),
		Catalog:     s.meta,
		Sync:        s.opts.Fsync,
		CacheWindow: s.opts.LogCacheWindow,
		Logger:      s.logger,
		Registerer:  s.reg,
	}); err != nil {
		return err
	}
	s.addCheck("log", s.log.Health)
	if s.groups, err = group.New(group.Options{Logger: s.logger.With("component", "groups")}); err != nil {
		return err
	}
	s.stream = embedded.New(s.log, s.meta, embedded.WithGroups(s.groups))

	if err := s.serveAPI(); err != nil {
		return err
	}
	// The Kafka listener binds before the server reports ready, so that a
	// ready server accepts Kafka clients too.
	if err := s.startKafkaListener(); err != nil {
		return err
	}
	if err := s.startPipelines(ctx); err != nil {
		return err
	}
	s.setPhase(phaseRunning)
	s.logger.Info("ready", "http_addr", s.ln.Addr().String(), "kafka_addr", s.kafkaLn.Addr().String())
	return nil
}

// listenHTTP binds the HTTP listener and starts serving: health checks at
// once, the API once serveAPI has added its routes.
func (s *Server) listenHTTP() error {
	ln, err := net.Listen("tcp", s.opts.HTTPAddr)
	if err != nil {
		return fmt.Errorf("http listener: %w", err)
	}
	s.mu.Lock()
	s.ln = ln
	s.mu.Unlock()
	s.serveHTTP(ln)
	s.logger.Info("http listening", "addr", ln.Addr().String())
	return nil
}

// serveAPI creates the pipeline manager and the HTTP API over s.stream
// and adds the API's routes. The pipelines start later, in startPipelines.
func (s *Server) serveAPI() error {
	pm, err := pipeline.New(pipeline.Options{
		Log:        s.stream,
		Registerer: s.reg,
		Logger:     s.logger.With("component", "pipelines"),
		Env:        s.opts.PipelineEnv,
		Stdout:     s.opts.Stdout,
	})
	if err != nil {
		return err
	}
	s.pipelines = pm
	api, err := httpapi.New(s.stream, httpapi.Options{
		MaxBodyBytes: s.opts.HTTPMaxBodyBytes,
		Logger:       s.logger,
		Registerer:   s.reg,
		Pipelines:    pm,
	})
	if err != nil {
		return fmt.Errorf("http api: %w", err)
	}
	s.api = api
	s.routes() // the mux Handler built before the listener started
	api.Register(s.mux)
	s.apiServing.Store(true)
	return nil
}

// startPipelines loads the stored pipeline specs and starts the
// pipelines, which run until the server stops.
func (s *Server) startPipelines(ctx context.Context) error {
	pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	if err := s.pipelines.Start(pctx); err != nil {
		cancel()
		return fmt.Errorf("pipelines: %w", err)
	}
	s.stopPipelines = cancel
	return nil
}

func (s *Server) serveHTTP(ln net.Listener) {
	s.http = &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: s.opts.ReadHeaderTimeout,
		ReadTimeout:       s.opts.ReadTimeout,
		IdleTimeout:       s.opts.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
	}
	s.serveDone = make(chan struct{})
	go func() {
		defer close(s.serveDone)
		if err := s.http.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			s.serveErr = err
		}
	}()
}

// Run starts the server, serves until ctx is done, then shuts down within
// Options.ShutdownTimeout. It returns nil after a clean shutdown, including
// when ctx is cancelled during start-up, and otherwise the error that
// stopped or failed it.
func (s *Server) Run(ctx context.Context) error {
	if err := s.Start(ctx); err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			s.logger.Info("start-up interrupted")
			return nil
		}
		return err
	}
	var serveErr error
	select {
	case <-ctx.Done():
		s.logger.Info("shutting down")
	case <-s.serveDone:
		serveErr = fmt.Errorf("http server: %w", s.serveErr)
		s.logger.Error("http server failed; shutting down", "err", s.serveErr)
	case <-s.kafkaDoneChan():
		serveErr = s.kafkaErr
		s.logger.Error("kafka listener failed; shutting down", "err", s.kafkaErr)
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.ShutdownTimeout)
	defer cancel()
	return errors.Join(serveErr, s.Shutdown(sctx))
}

// Shutdown stops the server: it reports not ready, ends the API's long
// polls, stops accepting Kafka connections and lets those open finish the
// request they are serving (fetches stop waiting), stops accepting HTTP
// requests and waits for those in flight, both until ctx is done (then
// closes their connections), closes the log (flushing it and writing a
// clean recovery checkpoint; in cluster mode, closing the connections to
// the cluster), closes the metadata store and releases the data directory,
// in that order. It waits for a Start in progress to return
// first; cancel Start's context to cut that short. Calls after the first
// return the first call's result.
func (s *Server) Shutdown(ctx context.Context) error {
	s.lifecycle.Lock()
	defer s.lifecycle.Unlock()
	s.mu.Lock()
	p := s.phase
	s.mu.Unlock()
	switch p {
	case phaseNew:
		s.setPhase(phaseStopped)
		return nil
	case phaseStopped:
		return s.stopErr
	}
	return s.stop(ctx)
}

// stop releases whatever Start acquired. The caller holds s.lifecycle.
func (s *Server) stop(ctx context.Context) error {
	s.setPhase(phaseStopping)
	var errs []error
	if s.api != nil {
		// End the API's long polls, so that they do not hold up the
		// HTTP shutdown below.
		s.api.Close()
	}
	if s.kafka != nil {
		if err := s.kafka.Shutdown(ctx); err != nil {
			s.logger.Warn("kafka requests still in flight at the shutdown deadline; closed their connections", "err", err)
		}
		<-s.kafkaDone
	}
	if s.groups != nil {
		_ = s.groups.Close()
	}
	if s.http != nil {
		if err := s.http.Shutdown(ctx); err != nil {
			s.logger.Warn("http requests still in flight at the shutdown deadline; closing their connections", "err", err)
			s.http.Close()
		}
		<-s.serveDone
	} else if s.ln != nil {
		s.ln.Close()
	}
	if s.pipelines != nil {
		// Pipelines deliver what they hold and commit before the log
		// they read and commit to closes.
		if err := s.pipelines.Close(ctx); err != nil {
			s.logger.Warn("pipelines still delivering at the shutdown deadline", "err", err)
		}
	}
	if s.stopPipelines != nil {
		s.stopPipelines()
	}
	if s.log != nil {
		if err := s.log.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close log: %w", err))
		}
	}
	if s.pinger != nil {
		s.pinger.Close()
	}
	if s.cluster != nil {
		s.cluster.Close()
	}
	if s.meta != nil {
		if err := s.meta.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close metadata store: %w", err))
		}
	}
	if s.lock != nil {
		if err := s.lock.Release(); err != nil {
			errs = append(errs, err)
		}
	}
	s.stopErr = errors.Join(errs...)
	s.setPhase(phaseStopped)
	if s.lock != nil || s.cluster != nil {
		if s.stopErr != nil {
			s.logger.Error("stopped with errors", "err", oneLine(s.stopErr))
		} else {
			s.logger.Info("stopped")
		}
	}
	return s.stopErr
}

// oneLine joins the lines of a multi-line error (errors.Join) with "; ".
func oneLine(err error) string {
	return strings.ReplaceAll(err.Error(), "\n", "; ")
}

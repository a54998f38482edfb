// Package server composes Sluice's components into one running process. It
// owns start-up (lock the data directory, open the metadata store and the
// log, listen) and graceful shutdown (the same in reverse), and builds the
// HTTP routing that the API, the console and /metrics share.
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

	"github.com/sluice-dev/sluice/internal/dirlock"
	"github.com/sluice-dev/sluice/internal/httpapi"
	"github.com/sluice-dev/sluice/internal/logstore"
	"github.com/sluice-dev/sluice/internal/meta"
	"github.com/sluice-dev/sluice/internal/stream/embedded"
)

// Defaults for Options.
const (
	DefaultHTTPAddr          = "127.0.0.1:8080"
	DefaultKafkaAddr         = "127.0.0.1:9092"
	DefaultShutdownTimeout   = 10 * time.Second
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = time.Minute
	DefaultIdleTimeout       = 2 * time.Minute
)

// Names of the files and directories the server keeps in Options.DataDir.
const (
	MetaFile = "meta.db"
	LogDir   = "log"
)

// Options configures a Server. DataDir is required; every other field has a
// default. Flags, environment variables and configuration files are read by
// cmd/sluice, never here.
type Options struct {
	// DataDir holds everything the server stores. It is created if missing
	// and locked for as long as the server runs.
	DataDir string
	// HTTPAddr is the host:port of the HTTP listener (API, health checks,
	// /metrics). Port 0 picks a free port; Addr reports it. Default
	// DefaultHTTPAddr.
	HTTPAddr string
	// KafkaAddr is the host:port the Kafka protocol listener will use. It is
	// validated but not yet listened on. Default DefaultKafkaAddr.
	KafkaAddr string
	// Fsync is the log's durability policy. The zero value is
	// logstore.SyncAlways.
	Fsync logstore.SyncPolicy
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
}

func (o *Options) setDefaults() error {
	if o.DataDir == "" {
		return errors.New("server: Options.DataDir is required")
	}
	if o.HTTPAddr == "" {
		o.HTTPAddr = DefaultHTTPAddr
	}
	if o.KafkaAddr == "" {
		o.KafkaAddr = DefaultKafkaAddr
	}
	if err := ValidateAddr(o.HTTPAddr); err != nil {
		return fmt.Errorf("http address: %w", err)
	}
	if err := ValidateAddr(o.KafkaAddr); err != nil {
		return fmt.Errorf("kafka address: %w", err)
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
	log       *logstore.Log
	api       *httpapi.API
	ln        net.Listener
	http      *http.Server
	serveDone chan struct{} // closed when the HTTP server's Serve returns
	serveErr  error         // what Serve returned, once serveDone is closed
	stopErr   error

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

// Start locks the data directory, starts serving HTTP (healthy, but not
// ready; the API answers 503), opens the metadata store and the log
// (recovering it if the last run did not shut down cleanly), adds the API's
// routes, and then reports ready. ctx bounds
// start-up only. If Start fails it undoes whatever it did and the Server
// cannot be started again.
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
	ln, err := net.Listen("tcp", s.opts.HTTPAddr)
	if err != nil {
		return fmt.Errorf("http listener: %w", err)
	}
	s.mu.Lock()
	s.ln = ln
	s.mu.Unlock()
	s.serveHTTP(ln)
	s.logger.Info("http listening", "addr", ln.Addr().String())

	if s.meta, err = meta.Open(filepath.Join(dataDir, MetaFile), meta.Options{}); err != nil {
		return err
	}
	if s.log, err = logstore.Open(ctx, logstore.Options{
		Dir:        filepath.Join(dataDir, LogDir),
		Catalog:    s.meta,
		Sync:       s.opts.Fsync,
		Logger:     s.logger,
		Registerer: s.reg,
	}); err != nil {
		return err
	}
	s.addCheck("log", s.log.Health)

	api, err := httpapi.New(embedded.New(s.log, s.meta), httpapi.Options{
		MaxBodyBytes: s.opts.HTTPMaxBodyBytes,
		Logger:       s.logger,
		Registerer:   s.reg,
	})
	if err != nil {
		return fmt.Errorf("http api: %w", err)
	}
	s.api = api
	s.routes() // the mux Handler built before the listener started
	api.Register(s.mux)
	s.apiServing.Store(true)

	s.logger.Info("kafka protocol listener not implemented yet; kafka address ignored", "kafka_addr", s.opts.KafkaAddr)
	s.setPhase(phaseRunning)
	s.logger.Info("ready", "http_addr", ln.Addr().String())
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
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.ShutdownTimeout)
	defer cancel()
	return errors.Join(serveErr, s.Shutdown(sctx))
}

// Shutdown stops the server: it reports not ready, ends the API's long
// polls, stops accepting HTTP requests and waits for those in flight until
// ctx is done (then closes
// their connections), closes the log (flushing it and writing a clean
// recovery checkpoint), closes the metadata store and releases the data
// directory, in that order. It waits for a Start in progress to return
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
	if s.http != nil {
		if err := s.http.Shutdown(ctx); err != nil {
			s.logger.Warn("http requests still in flight at the shutdown deadline; closing their connections", "err", err)
			s.http.Close()
		}
		<-s.serveDone
	} else if s.ln != nil {
		s.ln.Close()
	}
	if s.log != nil {
		if err := s.log.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close log: %w", err))
		}
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
	if s.lock != nil {
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

package kafkawire

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-dev/sluice/internal/group"
	"github.com/sluice-dev/sluice/internal/record"
	"github.com/sluice-dev/sluice/internal/stream"
)

// Defaults for Options.
const (
	DefaultMaxRequestBytes   = 100 << 20
	DefaultMaxConnections    = 10000
	DefaultIdleTimeout       = 10 * time.Minute
	DefaultFetchMaxBytes     = 55 << 20
	DefaultDefaultPartitions = 1
)

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = errors.New("kafka listener closed")

// Store is durable key/value state: the server keeps its cluster ID and
// its producer-ID counter there. Put must be durable when it returns.
// *meta.Store implements it.
type Store interface {
	Get(namespace, key string) ([]byte, bool, error)
	Put(namespace, key string, value []byte) error
}

// storeNamespace is the Store namespace the server's state lives in.
const storeNamespace = "kafkawire"

// Options configures a Server. Store is required; every other field has a
// default. Flags and configuration are read in cmd, never here.
type Options struct {
	// NodeID is the broker ID the server reports in Metadata and
	// FindCoordinator. Default 0.
	NodeID int32
	// AdvertisedAddr is the host:port clients are told to connect to.
	// Default: the listener's address, or, for a listener on an
	// unspecified address (0.0.0.0, [::]), the local address of each
	// connection.
	AdvertisedAddr string
	// ClusterID is reported in Metadata. Default: a random ID generated
	// once and kept in Store.
	ClusterID string
	// MaxRequestBytes bounds a request's size; a larger size prefix closes
	// the connection before anything is allocated for it. Kafka's
	// socket.request.max.bytes. Default DefaultMaxRequestBytes (100 MiB).
	MaxRequestBytes int
	// MaxConnections bounds open connections; connections above it are
	// closed as soon as they are accepted. Default DefaultMaxConnections.
	MaxConnections int
	// IdleTimeout closes a connection that sends no request for this long
	// (Kafka's connections.max.idle.ms) and bounds how long reading one
	// request or writing one response may take. Default DefaultIdleTimeout
	// (10 minutes).
	IdleTimeout time.Duration
	// FetchMaxBytes caps a Fetch response whatever the client asks for
	// (Kafka's fetch.max.bytes), except that the first batch is returned
	// whole. Default DefaultFetchMaxBytes (55 MiB).
	FetchMaxBytes int
	// AutoCreateTopics lets Metadata create the topics it is asked about,
	// with DefaultPartitions partitions, when the client allows it.
	AutoCreateTopics bool
	// DefaultPartitions is the partition count of auto-created topics and
	// of CreateTopics requests that ask for the default (-1). Default 1.
	DefaultPartitions int32
	// Store keeps the cluster ID and the producer-ID counter. Required.
	Store Store
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Registerer receives the server's metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Groups coordinates consumer groups (JoinGroup, SyncGroup, ...). The
	// caller shares it with the embedded log so that the HTTP API sees the
	// members, and closes it after the server. Default: a coordinator with
	// group.Options defaults, owned and closed by the server.
	Groups *group.Coordinator
}

func (o *Options) setDefaults() error {
	if o.Store == nil {
		return errors.New("kafkawire: Options.Store is required")
	}
	if o.MaxRequestBytes <= 0 {
		o.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if o.MaxRequestBytes > 1<<31-1 {
		return fmt.Errorf("kafkawire: MaxRequestBytes %d exceeds the protocol's 2 GiB limit", o.MaxRequestBytes)
	}
	if o.MaxConnections <= 0 {
		o.MaxConnections = DefaultMaxConnections
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.FetchMaxBytes <= 0 {
		o.FetchMaxBytes = DefaultFetchMaxBytes
	}
	if o.DefaultPartitions <= 0 {
		o.DefaultPartitions = DefaultDefaultPartitions
	}
	if o.NodeID < 0 {
		return fmt.Errorf("kafkawire: NodeID %d is negative", o.NodeID)
	}
	if o.AdvertisedAddr != "" {
		if _, _, err := splitHostPort(o.AdvertisedAddr); err != nil {
			return fmt.Errorf("kafkawire: advertised address: %w", err)
		}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return nil
}

// splitHostPort parses host:port with a port from 1 to 65535.
func splitHostPort(addr string) (string, int32, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("%q: want host:port", addr)
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return "", 0, fmt.Errorf("%q: port must be a number from 1 to 65535", addr)
	}
	return host, int32(n), nil
}

// Server serves the Kafka protocol over a stream.Log. Create it with New,
// call Serve for each listener, and stop it with Shutdown or Close.
type Server struct {
	log       stream.Log
	opts      Options
	logger    *slog.Logger
	metrics   *metrics
	apis      []*api // indexed by API key; nil for keys not served
	shapes    map[int16]*shape
	pids      *producerIDs
	codecs    record.Codecs
	clusterID string
	groups    *group.Coordinator
	ownGroups bool // groups was created by New, and is closed with the server

	// drain ends when Shutdown starts: connections finish the request
	// they are serving and close; fetches stop waiting for data.
	drain       context.Context
	cancelDrain context.CancelFunc

	mu           sync.Mutex
	closed       bool
	listeners    map[net.Listener]struct{}
	conns        map[*conn]struct{}
	serveCancels []context.CancelFunc
	wg           sync.WaitGroup // connection goroutines
	nconns       atomic.Int64
}

// New returns a Server for log. It reads (and on first use creates) the
// cluster ID and the producer-ID counter in opts.Store and registers the
// metrics; it does not touch the network.
func New(log stream.Log, opts Options) (*Server, error) {
	if log == nil {
		return nil, errors.New("kafkawire: log is nil")
	}
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	s := &Server{
		log:       log,
		opts:      opts,
		logger:    opts.Logger,
		shapes:    requestShapes(),
		listeners: map[net.Listener]struct{}{},
		conns:     map[*conn]struct{}{},
	}
	for _, a := range apiTable() {
		for int(a.key) >= len(s.apis) {
			s.apis = append(s.apis, nil)
		}
		a.name = apiName(a.key)
		if s.shapes[a.key] == nil {
			return nil, fmt.Errorf("kafkawire: no request shape for API key %d", a.key)
		}
		s.apis[a.key] = &a
	}
	var err error
	if s.clusterID, err = clusterID(opts); err != nil {
		return nil, err
	}
	if s.pids, err = newProducerIDs(opts.Store); err != nil {
		return nil, err
	}
	s.groups = opts.Groups
	if s.groups == nil {
		if s.groups, err = group.New(group.Options{Logger: opts.Logger}); err != nil {
			return nil, fmt.Errorf("kafkawire: %w", err)
		}
		s.ownGroups = true
	}
	if s.metrics, err = newMetrics(opts.Registerer, s.apis, s.groups); err != nil {
		return nil, err
	}
	s.drain, s.cancelDrain = context.WithCancel(context.Background())
	return s, nil
}

// clusterID returns the configured cluster ID or the one kept in the store,
// creating it on first use: 16 random bytes in unpadded URL-safe base64, the
// form Kafka's cluster IDs take.
func clusterID(opts Options) (string, error) {
	if opts.ClusterID != "" {
		return opts.ClusterID, nil
	}
	v, ok, err := opts.Store.Get(storeNamespace, "cluster_id")
	if err != nil {
		return "", fmt.Errorf("kafkawire: read cluster id: %w", err)
	}
	if ok && len(v) > 0 {
		return string(v), nil
	}
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	id := base64.RawURLEncoding.EncodeToString(b[:])
	if err := opts.Store.Put(storeNamespace, "cluster_id", []byte(id)); err != nil {
		return "", fmt.Errorf("kafkawire: store cluster id: %w", err)
	}
	return id, nil
}

// Serve accepts connections on ln and serves each on its own goroutine
// until Shutdown or Close, after which it returns ErrServerClosed, or until
// ctx ends, after which it closes the connections it accepted, waits for
// them and returns ctx.Err(). Serve closes ln before returning. It may be
// called for several listeners at once.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = ln.Close()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	connCtx, cancelConns := context.WithCancel(ctx)
	s.serveCancels = append(s.serveCancels, cancelConns)
	s.mu.Unlock()

	var conns sync.WaitGroup
	stop := context.AfterFunc(ctx, func() { _ = ln.Close() })
	defer func() {
		stop()
		_ = ln.Close()
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
	}()

	adv, err := s.advertised(ln.Addr())
	if err != nil {
		return err
	}
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.isClosed() {
				return ErrServerClosed
			}
			if ctx.Err() != nil {
				cancelConns()
				conns.Wait()
				return ctx.Err()
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.logger.Warn("kafka listener: accept failed; retrying", "err", err, "delay", backoff)
				select {
				case <-time.After(backoff):
				case <-ctx.Done():
				}
				continue
			}
			return fmt.Errorf("kafka listener: accept: %w", err)
		}
		backoff = 0
		if n := s.nconns.Load(); n >= int64(s.opts.MaxConnections) {
			s.metrics.rejected.Inc()
			s.logger.Warn("kafka listener: too many connections; closing new connection",
				"remote", nc.RemoteAddr().String(), "max_connections", s.opts.MaxConnections)
			_ = nc.Close()
			continue
		}
		c := newConn(s, nc, adv)
		if !s.track(c) {
			_ = nc.Close()
			return ErrServerClosed
		}
		conns.Add(1)
		go func() {
			defer s.wg.Done()
			defer conns.Done()
			defer s.untrack(c)
			c.serve(connCtx)
		}()
	}
}

// isTemporary reports accept errors worth retrying, such as running out of
// file descriptors.
func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

// advertised returns the address Metadata and FindCoordinator report for
// connections accepted on a listener at addr; an empty host means "the
// connection's local address".
func (s *Server) advertised(addr net.Addr) (hostPort, error) {
	if s.opts.AdvertisedAddr != "" {
		h, p, err := splitHostPort(s.opts.AdvertisedAddr)
		return hostPort{h, p}, err
	}
	h, p, err := splitHostPort(addr.String())
	if err != nil {
		return hostPort{}, fmt.Errorf("kafka listener: address %s: %w", addr, err)
	}
	if ip := net.ParseIP(h); ip != nil && ip.IsUnspecified() {
		h = ""
	}
	return hostPort{h, p}, nil
}

type hostPort struct {
	host string
	port int32
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// track registers a new connection; it returns false once the server is
// closed.
func (s *Server) track(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.nconns.Add(1)
	s.metrics.connections.Inc()
	return true
}

func (s *Server) untrack(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.nconns.Add(-1)
	s.metrics.connections.Dec()
}

// Shutdown stops accepting connections, lets every connection finish the
// request it is serving (fetches stop waiting for data), and closes them.
// If ctx ends first, it closes what remains as Close does and returns
// ctx.Err().
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	for ln := range s.listeners {
		_ = ln.Close()
	}
	s.mu.Unlock()
	// Connections check drain after arming their read deadline, so every
	// idle connection either sees drain or has its read cut short here.
	s.cancelDrain()
	s.mu.Lock()
	for c := range s.conns {
		_ = c.nc.SetReadDeadline(time.Now())
	}
	s.mu.Unlock()

	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		s.cancelServes()
		s.closeGroups()
		return nil
	case <-ctx.Done():
		_ = s.Close()
		<-done
		return ctx.Err()
	}
}

// Close closes the listeners and every connection at once, cancelling the
// requests in flight, and waits for the connection goroutines to end.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	for ln := range s.listeners {
		_ = ln.Close()
	}
	s.mu.Unlock()
	s.cancelDrain()
	s.cancelServes()
	s.wg.Wait()
	s.closeGroups()
	return nil
}

// Groups returns the group coordinator the server uses.
func (s *Server) Groups() *group.Coordinator { return s.groups }

// closeGroups closes the coordinator if the server created it.
func (s *Server) closeGroups() {
	if s.ownGroups {
		_ = s.groups.Close()
	}
}

func (s *Server) cancelServes() {
	s.mu.Lock()
	cancels := s.serveCancels
	s.serveCancels = nil
	s.mu.Unlock()
	for _, cancel := range cancels {
		cancel()
	}
}

package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/kafkawire"
	"github.com/sluice-dev/sluice/internal/stream/kafka"
)

// embeddedDefaults validates and defaults the options of embedded mode.
func (o *Options) embeddedDefaults() error {
	if o.DataDir == "" {
		return errors.New("server: Options.DataDir is required")
	}
	if o.KafkaAddr == "" {
		o.KafkaAddr = DefaultKafkaAddr
	}
	if err := ValidateAddr(o.KafkaAddr); err != nil {
		return fmt.Errorf("kafka address: %w", err)
	}
	if o.KafkaAdvertisedAddr != "" {
		if err := validateAdvertisedAddr(o.KafkaAdvertisedAddr); err != nil {
			return fmt.Errorf("kafka advertised address: %w", err)
		}
	}
	if o.KafkaDefaultPartitions < 0 {
		return fmt.Errorf("kafka default partitions: %d is negative", o.KafkaDefaultPartitions)
	}
	if o.KafkaMaxRequestBytes > 1<<31-1 {
		return fmt.Errorf("kafka max request bytes: %d exceeds the protocol's 2 GiB limit", o.KafkaMaxRequestBytes)
	}
	return nil
}

// clusterDefaults validates the options of cluster mode, which has no data
// directory and no Kafka listener: settings for those would silently do
// nothing, so they are refused.
func (o *Options) clusterDefaults() error {
	var set []string
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"DataDir", o.DataDir != ""},
		{"KafkaAddr", o.KafkaAddr != ""},
		{"KafkaAdvertisedAddr", o.KafkaAdvertisedAddr != ""},
		{"KafkaNoAutoCreateTopics", o.KafkaNoAutoCreateTopics},
		{"KafkaDefaultPartitions", o.KafkaDefaultPartitions != 0},
		{"KafkaMaxRequestBytes", o.KafkaMaxRequestBytes != 0},
		{"KafkaMaxConnections", o.KafkaMaxConnections != 0},
	} {
		if f.set {
			set = append(set, f.name)
		}
	}
	if len(set) > 0 {
		return fmt.Errorf("server: cluster mode (Options.Cluster.Brokers set) has no data directory and no Kafka listener; leave %s unset", strings.Join(set, ", "))
	}
	for _, b := range o.Cluster.Brokers {
		if err := validateAdvertisedAddr(b); err != nil {
			return fmt.Errorf("kafka broker: %w", err)
		}
	}
	if o.ClusterConnectTimeout <= 0 {
		o.ClusterConnectTimeout = DefaultClusterConnectTimeout
	}
	return nil
}

// validateAdvertisedAddr checks an address clients connect to: host:port
// with a host and a port from 1 to 65535.
func validateAdvertisedAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return fmt.Errorf("%q: want host:port, such as 127.0.0.1:9092", addr)
	}
	if err := ValidateAddr(addr); err != nil || port == "0" {
		return fmt.Errorf("%q: port must be a number from 1 to 65535", addr)
	}
	return nil
}

// kafkaOptions are the Kafka listener's options. Components the listener
// shares with the rest of the server (a group coordinator, say) are added
// here.
func (s *Server) kafkaOptions() kafkawire.Options {
	return kafkawire.Options{
		AdvertisedAddr:    s.opts.KafkaAdvertisedAddr,
		MaxRequestBytes:   s.opts.KafkaMaxRequestBytes,
		MaxConnections:    s.opts.KafkaMaxConnections,
		AutoCreateTopics:  !s.opts.KafkaNoAutoCreateTopics,
		DefaultPartitions: s.opts.KafkaDefaultPartitions,
		Store:             s.meta,
		Logger:            s.logger.With("component", "kafka"),
		Registerer:        s.reg,
		Groups:            s.groups, // nil in cluster mode: the listener makes its own
	}
}

// startKafkaListener binds the Kafka listener and serves the protocol on it
// over s.stream. The caller holds s.lifecycle.
func (s *Server) startKafkaListener() error {
	srv, err := kafkawire.New(s.stream, s.kafkaOptions())
	if err != nil {
		return fmt.Errorf("kafka listener: %w", err)
	}
	ln, err := net.Listen("tcp", s.opts.KafkaAddr)
	if err != nil {
		_ = srv.Close()
		return fmt.Errorf("kafka listener: %w", err)
	}
	s.mu.Lock()
	s.kafka, s.kafkaLn = srv, ln
	s.mu.Unlock()
	s.kafkaDone = make(chan struct{})
	go func() {
		defer close(s.kafkaDone)
		// Serve's context is never cancelled: Shutdown drains through
		// kafkawire.Shutdown instead, which lets requests finish.
		if err := srv.Serve(context.Background(), ln); !errors.Is(err, kafkawire.ErrServerClosed) {
			s.kafkaErr = fmt.Errorf("kafka listener: %w", err)
		}
	}()
	adv := s.opts.KafkaAdvertisedAddr
	if adv == "" {
		adv = ln.Addr().String()
	}
	s.logger.Info("kafka listening", "addr", ln.Addr().String(), "advertised_addr", adv)
	return nil
}

// kafkaDoneChan returns a channel closed when the Kafka listener stops
// serving, or nil (never ready) when there is none.
func (s *Server) kafkaDoneChan() <-chan struct{} {
	if s.kafkaDone == nil {
		return nil
	}
	return s.kafkaDone
}

// startCluster is Start in cluster mode. The caller holds s.lifecycle.
func (s *Server) startCluster(ctx context.Context) error {
	s.logger.Info("starting in cluster mode", "brokers", strings.Join(s.opts.Cluster.Brokers, ","))
	if err := s.listenHTTP(); err != nil {
		return err
	}
	if err := s.connectCluster(ctx); err != nil {
		return err
	}
	s.stream = s.cluster
	// The probe uses a client of its own, so that it never waits behind
	// the Log's requests.
	popts := append([]kgo.Opt{kgo.SeedBrokers(s.opts.Cluster.Brokers...), kgo.ClientID("sluice-readyz")}, s.opts.Cluster.ClientOpts...)
	pinger, err := kgo.NewClient(popts...)
	if err != nil {
		return fmt.Errorf("kafka readiness client: %w", err)
	}
	s.pinger = pinger
	s.addCheck("kafka", s.pingCluster)
	if err := s.serveAPI(); err != nil {
		return err
	}
	if err := s.startPipelines(ctx); err != nil {
		return err
	}
	s.setPhase(phaseRunning)
	s.logger.Info("ready", "http_addr", s.ln.Addr().String())
	return nil
}

// connectCluster connects to the cluster, retrying with backoff until ctx
// ends: the brokers may start after Sluice does (say, in one Kubernetes
// deployment), and meanwhile /readyz says why Sluice is not ready.
func (s *Server) connectCluster(ctx context.Context) error {
	var backoff time.Duration
	for {
		actx, cancel := context.WithTimeout(ctx, s.opts.ClusterConnectTimeout)
		l, err := kafka.New(actx, s.opts.Cluster)
		cancel()
		if err == nil {
			s.cluster = l
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("connect to kafka: %w", ctx.Err())
		}
		backoff = min(max(2*backoff, 250*time.Millisecond), 10*time.Second)
		s.logger.Warn("kafka cluster unreachable; retrying", "err", err, "delay", backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return fmt.Errorf("connect to kafka: %w", ctx.Err())
		}
	}
}

// pingTimeout bounds the readiness probe's request to the cluster; probes
// come every few seconds and must answer before the prober gives up.
const pingTimeout = 2 * time.Second

// pingCluster is the readiness check of cluster mode: some broker answers.
func (s *Server) pingCluster() error {
	ctx, cancel := context.WithTimeout(context.Background(), pingTimeout)
	defer cancel()
	if err := s.pinger.Ping(ctx); err != nil {
		return fmt.Errorf("no broker of %s answered: %w", strings.Join(s.opts.Cluster.Brokers, ","), err)
	}
	return nil
}

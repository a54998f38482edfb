package main

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/sluice-dev/sluice/internal/kafkawire"
	"github.com/sluice-dev/sluice/internal/logstore"
	"github.com/sluice-dev/sluice/internal/server"
	"github.com/sluice-dev/sluice/internal/stream/kafka"
	"github.com/sluice-dev/sluice/internal/units"
)

// serveConfig is sluice serve's configuration as resolved from flags,
// environment, configuration file and defaults, before validation.
type serveConfig struct {
	DataDir     string
	HTTPAddr    string
	HTTPMaxBody string
	KafkaAddr   string
	KafkaAdv    string
	AutoCreate  string
	DefaultPart string
	KafkaMaxReq string
	KafkaMaxCon string
	Brokers     string
	Fsync       string
	CacheWindow string
	LogLevel    string
	LogFormat   string

	settings settings
}

func newServeConfig() *serveConfig {
	c := &serveConfig{}
	c.settings = settings{
		{key: "data_dir", def: "./sluice-data", dst: &c.DataDir,
			usage: "directory for the log and metadata; created if missing, locked while serving"},
		{key: "http_addr", def: server.DefaultHTTPAddr, dst: &c.HTTPAddr,
			usage: "host:port for the HTTP API, /healthz, /readyz and /metrics (port 0 picks a free port)"},
		{key: "http_max_body", def: "64MiB", dst: &c.HTTPMaxBody,
			usage: "largest HTTP request body accepted (a produce request, say); larger ones get 413: bytes, or a number with KiB, MiB or GiB, at most 1GiB"},
		{key: "kafka_addr", def: server.DefaultKafkaAddr, dst: &c.KafkaAddr,
			usage: "host:port for the Kafka protocol listener (port 0 picks a free port); embedded mode only"},
		{key: "kafka_advertised_addr", def: "", dst: &c.KafkaAdv,
			usage: "host:port Kafka clients are told to connect to (default: the listener's address)"},
		{key: "auto_create_topics", def: "true", dst: &c.AutoCreate, boolean: true,
			usage: "create topics Kafka clients ask for that do not exist, with --default-partitions partitions (true or false)"},
		{key: "default_partitions", def: "1", dst: &c.DefaultPart,
			usage: "partitions of auto-created topics and of Kafka CreateTopics requests that ask for the default (-1)"},
		{key: "kafka_max_request_bytes", def: "100MiB", dst: &c.KafkaMaxReq,
			usage: "largest Kafka request accepted; a larger one closes the connection: bytes, or a number with KiB, MiB or GiB, at most 1GiB"},
		{key: "kafka_max_connections", def: strconv.Itoa(kafkawire.DefaultMaxConnections), dst: &c.KafkaMaxCon,
			usage: "most Kafka connections open at once; more are closed as soon as they are accepted"},
		{key: "kafka_brokers", def: "", dst: &c.Brokers,
			usage: "cluster mode: comma-separated host:port seed brokers of the Kafka cluster to run on, instead of the embedded log (no data directory, no Kafka listener)"},
		{key: "fsync", def: "always", dst: &c.Fsync,
			usage: "when appends are made durable: always (ack after fsync), interval:<duration> (e.g. interval:100ms) or never"},
		{key: "log_cache_window", def: "64MiB", dst: &c.CacheWindow,
			usage: "how much of the end of each partition stays in the page cache once durable; older data is handed back to the kernel and read from disk: bytes, or a number with KiB, MiB or GiB, or off to leave the page cache to the kernel"},
		{key: "log_level", def: "info", dst: &c.LogLevel,
			usage: "log level: debug, info, warn or error"},
		{key: "log_format", def: "text", dst: &c.LogFormat,
			usage: "log format: text or json"},
	}
	return c
}

func newServeCommand() *cobra.Command {
	cfg := newServeConfig()
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the Sluice server (embedded mode: no external services; or on a Kafka cluster)",
		Long: `Run the Sluice server on one data directory: the HTTP API and the Kafka
protocol over Sluice's own log (embedded mode). With --kafka-brokers it runs
the HTTP API on that Kafka cluster instead (cluster mode): nothing is stored
locally and there is no Kafka listener, since the brokers are the Kafka
endpoint.

Every setting can also come from a SLUICE_* environment variable or a YAML
configuration file (--config); flags win over the environment, which wins
over the file, which wins over the defaults. Logs go to stderr.
SIGINT or SIGTERM shuts the server down gracefully; a second signal exits at once.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := cfg.settings.resolve(cmd.Flags(), os.LookupEnv); err != nil {
				return err
			}
			opts, err := cfg.serverOptions(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			srv, err := server.New(opts)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			go func() {
				// After the first signal, restore the default handling so
				// that a second one kills a shutdown that hangs.
				<-ctx.Done()
				stop()
			}()
			b := currentBuild()
			opts.Logger.Info("sluice", "version", b.Version, "commit", b.Commit, "go", b.GoVersion, "pid", os.Getpid())
			return srv.Run(ctx)
		},
	}
	cfg.settings.addFlags(cmd.Flags())
	return cmd
}

// serverOptions validates the configuration and turns it into
// server.Options, with a logger writing to logOut.
func (c *serveConfig) serverOptions(logOut io.Writer) (server.Options, error) {
	bad := func(dst *string, err error) error {
		return fmt.Errorf("%w (set by %s)", err, c.settings.source(dst))
	}
	if err := server.ValidateAddr(c.HTTPAddr); err != nil {
		return server.Options{}, bad(&c.HTTPAddr, fmt.Errorf("http address %w", err))
	}
	maxBody, err := units.ParseByteSize(c.HTTPMaxBody, 1<<10, 1<<30)
	if err != nil {
		return server.Options{}, bad(&c.HTTPMaxBody, fmt.Errorf("http max body %w", err))
	}
	var opts server.Options
	if strings.TrimSpace(c.Brokers) != "" {
		opts, err = c.clusterOptions(bad)
	} else {
		opts, err = c.embeddedOptions(bad)
	}
	if err != nil {
		return server.Options{}, err
	}
	level, err := parseLogLevel(c.LogLevel)
	if err != nil {
		return server.Options{}, bad(&c.LogLevel, err)
	}
	logger, err := newLogger(logOut, level, c.LogFormat)
	if err != nil {
		return server.Options{}, bad(&c.LogFormat, err)
	}
	opts.HTTPAddr, opts.HTTPMaxBodyBytes, opts.Logger = c.HTTPAddr, maxBody, logger
	return opts, nil
}

// embeddedOptions validates the settings of embedded mode.
func (c *serveConfig) embeddedOptions(bad func(*string, error) error) (server.Options, error) {
	if c.DataDir == "" {
		return server.Options{}, bad(&c.DataDir, fmt.Errorf("data directory: empty path"))
	}
	if err := server.ValidateAddr(c.KafkaAddr); err != nil {
		return server.Options{}, bad(&c.KafkaAddr, fmt.Errorf("kafka address %w", err))
	}
	if c.KafkaAdv != "" {
		if err := validateHostPort(c.KafkaAdv); err != nil {
			return server.Options{}, bad(&c.KafkaAdv, fmt.Errorf("kafka advertised address %w", err))
		}
	}
	autoCreate, err := strconv.ParseBool(c.AutoCreate)
	if err != nil {
		return server.Options{}, bad(&c.AutoCreate, fmt.Errorf("auto create topics %q: want true or false", c.AutoCreate))
	}
	parts, err := strconv.ParseInt(c.DefaultPart, 10, 32)
	if err != nil || parts < 1 {
		return server.Options{}, bad(&c.DefaultPart, fmt.Errorf("default partitions %q: want a whole number from 1", c.DefaultPart))
	}
	maxReq, err := units.ParseByteSize(c.KafkaMaxReq, 1<<10, 1<<30)
	if err != nil {
		return server.Options{}, bad(&c.KafkaMaxReq, fmt.Errorf("kafka max request bytes %w", err))
	}
	maxConns, err := strconv.Atoi(c.KafkaMaxCon)
	if err != nil || maxConns < 1 {
		return server.Options{}, bad(&c.KafkaMaxCon, fmt.Errorf("kafka max connections %q: want a whole number from 1", c.KafkaMaxCon))
	}
	fsync, err := logstore.ParseSyncPolicy(c.Fsync)
	if err != nil {
		return server.Options{}, bad(&c.Fsync, err)
	}
	var window int64 = -1
	if c.CacheWindow != "off" {
		if window, err = units.ParseByteSize(c.CacheWindow, 1<<20, 1<<40); err != nil {
			return server.Options{}, bad(&c.CacheWindow, fmt.Errorf("log cache window %w, or off", err))
		}
	}
	return server.Options{
		DataDir:                 c.DataDir,
		KafkaAddr:               c.KafkaAddr,
		KafkaAdvertisedAddr:     c.KafkaAdv,
		KafkaNoAutoCreateTopics: !autoCreate,
		KafkaDefaultPartitions:  int32(parts),
		KafkaMaxRequestBytes:    int(maxReq),
		KafkaMaxConnections:     maxConns,
		Fsync:                   fsync,
		LogCacheWindow:          window,
	}, nil
}

// clusterOptions validates the settings of cluster mode. Settings of
// embedded mode are refused when set explicitly rather than ignored: a
// Kafka listener address that silently listens nowhere, or a data
// directory that silently stays empty, would be found out only in
// production.
func (c *serveConfig) clusterOptions(bad func(*string, error) error) (server.Options, error) {
	for _, dst := range []*string{&c.KafkaAddr, &c.KafkaAdv, &c.AutoCreate, &c.DefaultPart, &c.KafkaMaxReq, &c.KafkaMaxCon, &c.DataDir, &c.Fsync, &c.CacheWindow} {
		if c.settings.explicit(dst) {
			return server.Options{}, fmt.Errorf("%s applies only to embedded mode, not with %s: cluster mode keeps no data directory and has no Kafka listener (Kafka clients connect to the brokers)",
				c.settings.describe(dst), c.settings.describe(&c.Brokers))
		}
	}
	var brokers []string
	for _, b := range strings.Split(c.Brokers, ",") {
		b = strings.TrimSpace(b)
		if b == "" {
			continue
		}
		if err := validateHostPort(b); err != nil {
			return server.Options{}, bad(&c.Brokers, fmt.Errorf("kafka broker %w", err))
		}
		brokers = append(brokers, b)
	}
	return server.Options{Cluster: kafka.Options{Brokers: brokers}}, nil
}

// validateHostPort checks an address to connect to: host:port with a host
// and a port from 1 to 65535.
func validateHostPort(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return fmt.Errorf("%q: want host:port, such as 127.0.0.1:9092", addr)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return fmt.Errorf("%q: port must be a number from 1 to 65535", addr)
	}
	return nil
}

func parseLogLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("log level %q: want debug, info, warn or error", s)
}

func newLogger(w io.Writer, level slog.Level, format string) (*slog.Logger, error) {
	hopts := &slog.HandlerOptions{Level: level}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, hopts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, hopts)), nil
	}
	return nil, fmt.Errorf("log format %q: want text or json", format)
}

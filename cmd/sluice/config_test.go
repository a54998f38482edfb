package main

import (
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/sluice-dev/sluice/internal/kafkawire"
	"github.com/sluice-dev/sluice/internal/logstore"
	"github.com/sluice-dev/sluice/internal/server"
	"github.com/sluice-dev/sluice/internal/stream/kafka"
)

func TestServeConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	writeFile := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	full := writeFile("full.yaml", `
data_dir: /from/yaml
http_addr: 127.0.0.1:1001
kafka_addr: 127.0.0.1:2001
fsync: never
log_level: debug
log_format: json
http_max_body: 1GiB
`)
	partial := writeFile("partial.yaml", "fsync: interval:250ms\n")
	empty := writeFile("empty.yaml", "")
	unknown := writeFile("unknown.yaml", "data_dir: /x\nhttp_adress: 127.0.0.1:1\n")
	badFsync := writeFile("badfsync.yaml", "fsync: sometimes\n")
	nested := writeFile("nested.yaml", "http_addr:\n  host: x\n")
	notMapping := writeFile("list.yaml", "- a\n- b\n")

	kafkaYAML := writeFile("kafka.yaml", `
kafka_advertised_addr: kafka.example.com:9093
auto_create_topics: false
default_partitions: 6
kafka_max_request_bytes: 10MiB
kafka_max_connections: 50
`)
	clusterYAML := writeFile("cluster.yaml", "kafka_brokers: b1:9092, b2:9092\n")
	clusterWithAddr := writeFile("cluster-addr.yaml", "kafka_brokers: b1:9092\nkafka_addr: 127.0.0.1:9092\n")

	defaults := server.Options{
		DataDir:                "./sluice-data",
		HTTPAddr:               "127.0.0.1:8080",
		KafkaAddr:              "127.0.0.1:9092",
		KafkaDefaultPartitions: 1,
		KafkaMaxRequestBytes:   100 << 20,
		KafkaMaxConnections:    kafkawire.DefaultMaxConnections,
		Fsync:                  logstore.SyncPolicy{Mode: logstore.SyncAlways},
		LogCacheWindow:         64 << 20,
		HTTPMaxBodyBytes:       64 << 20,
	}
	cluster := func(brokers ...string) server.Options {
		return server.Options{HTTPAddr: "127.0.0.1:8080", HTTPMaxBodyBytes: 64 << 20, Cluster: kafka.Options{Brokers: brokers}}
	}
	with := func(f func(o *server.Options)) server.Options {
		o := defaults
		f(&o)
		return o
	}

	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    server.Options
		wantErr string
	}{
		{name: "defaults", want: defaults},
		{name: "yaml over defaults", args: []string{"--config", full},
			want: with(func(o *server.Options) {
				o.DataDir, o.HTTPAddr, o.KafkaAddr = "/from/yaml", "127.0.0.1:1001", "127.0.0.1:2001"
				o.Fsync, o.HTTPMaxBodyBytes = logstore.SyncPolicy{Mode: logstore.SyncNever}, 1<<30
			})},
		{name: "config file from env", env: map[string]string{"SLUICE_CONFIG": partial},
			want: with(func(o *server.Options) {
				o.Fsync = logstore.SyncPolicy{Mode: logstore.SyncInterval, Interval: 250 * time.Millisecond}
			})},
		{name: "--config over SLUICE_CONFIG", args: []string{"--config", partial}, env: map[string]string{"SLUICE_CONFIG": unknown},
			want: with(func(o *server.Options) {
				o.Fsync = logstore.SyncPolicy{Mode: logstore.SyncInterval, Interval: 250 * time.Millisecond}
			})},
		{name: "empty file", args: []string{"--config", empty}, want: defaults},
		{name: "env over yaml", args: []string{"--config", full},
			env: map[string]string{"SLUICE_DATA_DIR": "/from/env", "SLUICE_FSYNC": "always"},
			want: with(func(o *server.Options) {
				o.DataDir, o.HTTPAddr, o.KafkaAddr = "/from/env", "127.0.0.1:1001", "127.0.0.1:2001"
				o.HTTPMaxBodyBytes = 1 << 30
			})},
		{name: "flag over env over yaml", args: []string{"--config", full, "--data-dir", "/from/flag", "--http-addr", ":0"},
			env: map[string]string{"SLUICE_DATA_DIR": "/from/env", "SLUICE_KAFKA_ADDR": "127.0.0.1:3001"},
			want: with(func(o *server.Options) {
				o.DataDir, o.HTTPAddr, o.KafkaAddr = "/from/flag", ":0", "127.0.0.1:3001"
				o.Fsync, o.HTTPMaxBodyBytes = logstore.SyncPolicy{Mode: logstore.SyncNever}, 1<<30
			})},
		{name: "flag equal to default still wins", args: []string{"--fsync", "always"}, env: map[string]string{"SLUICE_FSYNC": "never"},
			want: defaults},
		{name: "empty env var is unset", env: map[string]string{"SLUICE_HTTP_ADDR": ""}, want: defaults},
		{name: "fsync interval flag", args: []string{"--fsync=interval:2s"},
			want: with(func(o *server.Options) {
				o.Fsync = logstore.SyncPolicy{Mode: logstore.SyncInterval, Interval: 2 * time.Second}
			})},

		{name: "http max body in bytes", args: []string{"--http-max-body", "1048576"},
			want: with(func(o *server.Options) { o.HTTPMaxBodyBytes = 1 << 20 })},
		{name: "http max body from env", env: map[string]string{"SLUICE_HTTP_MAX_BODY": "512kib"},
			want: with(func(o *server.Options) { o.HTTPMaxBodyBytes = 512 << 10 })},
		{name: "http max body too large", args: []string{"--http-max-body", "2GiB"},
			wantErr: `http max body "2GiB": want 1KiB to 1GiB (set by --http-max-body)`},
		{name: "http max body too small", args: []string{"--http-max-body", "100"}, wantErr: `want 1KiB to 1GiB`},
		{name: "http max body not a size", args: []string{"--http-max-body", "lots"},
			wantErr: `http max body "lots": want a number of bytes, optionally with KiB, MiB or GiB`},
		{name: "unknown yaml key", args: []string{"--config", unknown},
			wantErr: `config file ` + unknown + `: unknown key "http_adress" (known keys: auto_create_topics, data_dir, default_partitions, fsync, http_addr, http_max_body, kafka_addr, kafka_advertised_addr, kafka_brokers, kafka_max_connections, kafka_max_request_bytes, log_cache_window, log_format, log_level)`},

		{name: "kafka listener settings in yaml", args: []string{"--config", kafkaYAML},
			want: with(func(o *server.Options) {
				o.KafkaAdvertisedAddr, o.KafkaNoAutoCreateTopics, o.KafkaDefaultPartitions = "kafka.example.com:9093", true, 6
				o.KafkaMaxRequestBytes, o.KafkaMaxConnections = 10<<20, 50
			})},
		{name: "kafka listener flags over env", args: []string{"--auto-create-topics", "--default-partitions", "3", "--kafka-max-request-bytes", "1048576"},
			env: map[string]string{"SLUICE_AUTO_CREATE_TOPICS": "false", "SLUICE_KAFKA_MAX_CONNECTIONS": "7", "SLUICE_KAFKA_ADVERTISED_ADDR": "h:1"},
			want: with(func(o *server.Options) {
				o.KafkaDefaultPartitions, o.KafkaMaxRequestBytes, o.KafkaMaxConnections, o.KafkaAdvertisedAddr = 3, 1<<20, 7, "h:1"
			})},
		{name: "--auto-create-topics=false", args: []string{"--auto-create-topics=false"},
			want: with(func(o *server.Options) { o.KafkaNoAutoCreateTopics = true })},
		{name: "bad auto create", env: map[string]string{"SLUICE_AUTO_CREATE_TOPICS": "maybe"},
			wantErr: `auto create topics "maybe": want true or false (set by SLUICE_AUTO_CREATE_TOPICS)`},
		{name: "bad default partitions", args: []string{"--default-partitions", "-1"},
			wantErr: `default partitions "-1": want a whole number from 1 (set by --default-partitions)`},
		{name: "bad kafka max request", args: []string{"--kafka-max-request-bytes", "2GiB"},
			wantErr: `kafka max request bytes "2GiB": want 1KiB to 1GiB (set by --kafka-max-request-bytes)`},
		{name: "bad kafka max connections", args: []string{"--kafka-max-connections", "none"},
			wantErr: `kafka max connections "none": want a whole number from 1`},
		{name: "advertised addr without host", args: []string{"--kafka-advertised-addr", ":9092"},
			wantErr: `kafka advertised address ":9092": want host:port`},
		{name: "advertised addr port 0", args: []string{"--kafka-advertised-addr", "h:0"},
			wantErr: `kafka advertised address "h:0": port must be a number from 1 to 65535`},

		{name: "cluster mode", args: []string{"--kafka-brokers", "b1:9092,b2:9093"}, want: cluster("b1:9092", "b2:9093")},
		{name: "cluster mode from yaml", args: []string{"--config", clusterYAML}, want: cluster("b1:9092", "b2:9092")},
		{name: "cluster mode from env", env: map[string]string{"SLUICE_KAFKA_BROKERS": "b:1"}, want: cluster("b:1")},
		{name: "cluster mode with --kafka-addr", args: []string{"--kafka-brokers", "b:1", "--kafka-addr", "127.0.0.1:9092"},
			wantErr: `--kafka-addr applies only to embedded mode, not with --kafka-brokers`},
		{name: "cluster mode with kafka_addr in yaml", args: []string{"--config", clusterWithAddr},
			wantErr: `kafka_addr (config file ` + clusterWithAddr + `) applies only to embedded mode, not with kafka_brokers (config file`},
		{name: "cluster mode with SLUICE_DATA_DIR", env: map[string]string{"SLUICE_KAFKA_BROKERS": "b:1", "SLUICE_DATA_DIR": "/d"},
			wantErr: `SLUICE_DATA_DIR applies only to embedded mode, not with SLUICE_KAFKA_BROKERS`},
		{name: "cluster mode with --fsync", args: []string{"--kafka-brokers", "b:1", "--fsync", "never"},
			wantErr: `--fsync applies only to embedded mode`},
		{name: "bad broker", args: []string{"--kafka-brokers", "b1:9092,b2"},
			wantErr: `kafka broker "b2": want host:port, such as 127.0.0.1:9092 (set by --kafka-brokers)`},
		{name: "nested yaml value", args: []string{"--config", nested}, wantErr: `key "http_addr": want a single value`},
		{name: "yaml not a mapping", args: []string{"--config", notMapping}, wantErr: "want a mapping of settings"},
		{name: "missing config file", args: []string{"--config", filepath.Join(dir, "nope.yaml")}, wantErr: "nope.yaml: no such file or directory"},
		{name: "bad --fsync", args: []string{"--fsync", "sometimes"},
			wantErr: `fsync policy "sometimes": want always, never or interval:<duration> (set by --fsync)`},
		{name: "bad fsync interval", args: []string{"--fsync", "interval:-1s"}, wantErr: `fsync policy "interval:-1s": want a positive duration`},
		{name: "bad SLUICE_FSYNC", env: map[string]string{"SLUICE_FSYNC": "sometimes"}, wantErr: "(set by SLUICE_FSYNC)"},
		{name: "bad fsync in yaml", args: []string{"--config", badFsync}, wantErr: "(set by config file " + badFsync + ")"},
		{name: "log cache window off", args: []string{"--log-cache-window", "off"},
			want: with(func(o *server.Options) { o.LogCacheWindow = -1 })},
		{name: "log cache window from the environment", env: map[string]string{"SLUICE_LOG_CACHE_WINDOW": "1GiB"},
			want: with(func(o *server.Options) { o.LogCacheWindow = 1 << 30 })},
		{name: "log cache window too small", args: []string{"--log-cache-window", "4KiB"},
			wantErr: `log cache window "4KiB": want 1MiB to 1024GiB, or off (set by --log-cache-window)`},
		{name: "cluster mode with --log-cache-window", args: []string{"--kafka-brokers", "b:1", "--log-cache-window", "off"},
			wantErr: `--log-cache-window applies only to embedded mode`},
		{name: "bad --http-addr", args: []string{"--http-addr", "localhost"}, wantErr: `http address "localhost": want host:port`},
		{name: "bad --kafka-addr", args: []string{"--kafka-addr", "127.0.0.1:99999"}, wantErr: `kafka address "127.0.0.1:99999": port must be a number`},
		{name: "bad --log-format", args: []string{"--log-format", "xml"}, wantErr: `log format "xml": want text or json (set by --log-format)`},
		{name: "bad SLUICE_LOG_LEVEL", env: map[string]string{"SLUICE_LOG_LEVEL": "loud"}, wantErr: `log level "loud"`},
		{name: "empty data dir", args: []string{"--data-dir", ""}, wantErr: "data directory: empty path (set by --data-dir)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := resolveServeOptions(tc.args, tc.env)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got error %v, want one containing %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "\n") {
					t.Errorf("error %q spans lines, want one", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want nil", err)
			}
			if got.Logger == nil {
				t.Error("got nil Logger")
			}
			got.Logger = nil
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// resolveServeOptions runs sluice serve's configuration steps on args and
// env, as the command does before starting the server.
func resolveServeOptions(args []string, env map[string]string) (server.Options, error) {
	cfg := newServeConfig()
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg.settings.addFlags(fs)
	if err := fs.Parse(args); err != nil {
		return server.Options{}, err
	}
	lookup := func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}
	if err := cfg.settings.resolve(fs, lookup); err != nil {
		return server.Options{}, err
	}
	return cfg.serverOptions(io.Discard)
}

func TestServeHelpMentionsEnvAndModes(t *testing.T) {
	cmd := newServeCommand()
	usage := cmd.Flags().FlagUsages()
	for _, want := range []string{"[SLUICE_DATA_DIR]", "[SLUICE_HTTP_ADDR]", "[SLUICE_KAFKA_ADDR]", "[SLUICE_FSYNC]",
		"[SLUICE_LOG_LEVEL]", "[SLUICE_LOG_FORMAT]", "[SLUICE_CONFIG]", "[SLUICE_HTTP_MAX_BODY]", `default "./sluice-data"`,
		"[SLUICE_KAFKA_ADVERTISED_ADDR]", "[SLUICE_AUTO_CREATE_TOPICS]", "[SLUICE_DEFAULT_PARTITIONS]",
		"[SLUICE_KAFKA_MAX_REQUEST_BYTES]", "[SLUICE_KAFKA_MAX_CONNECTIONS]", "[SLUICE_KAFKA_BROKERS]", "embedded mode only"} {
		if !strings.Contains(usage, want) {
			t.Errorf("serve --help lacks %q:\n%s", want, usage)
		}
	}
}

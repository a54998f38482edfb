package server

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/stream/kafka"
)

// clusterOptions are the options of a cluster-mode server on brokers.
func clusterOptions(t *testing.T, brokers ...string) Options {
	t.Helper()
	return Options{
		HTTPAddr: "127.0.0.1:0",
		Cluster:  kafka.Options{Brokers: brokers},
		Logger:   slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
}

// TestClusterMode runs a cluster-mode server on a second server's Kafka
// listener: what goes in over the first's HTTP API is in the second's log,
// and the first's readiness follows the brokers'.
func TestClusterMode(t *testing.T) {
	dir := t.TempDir()
	broker := startServer(t, testOptions(t, dir))
	cs := startServer(t, clusterOptions(t, broker.KafkaAddr().String()))
	base := "http://" + cs.Addr().String()

	if cs.KafkaAddr() != nil {
		t.Errorf("cluster mode listens for Kafka on %v, want no listener", cs.KafkaAddr())
	}
	if entries, err := os.ReadDir(dir); err != nil || len(entries) == 0 {
		t.Fatalf("the broker's data directory: got %v, %v", entries, err)
	}
	if r := get(t, "GET", base+"/readyz"); r.status != 200 {
		t.Fatalf("/readyz: got %d (%s), want 200", r.status, r.body)
	}
	if r := post(t, base+"/v1/topics", "application/json", `{"name":"orders","partitions":2}`); r.status != 201 {
		t.Fatalf("create topic: got %d (%s)", r.status, r.body)
	}
	if r := post(t, base+"/v1/topics/orders/records", "application/json", `{"records":[{"key":"a","value":1},{"key":"b","value":2}]}`); r.status != 200 {
		t.Fatalf("produce: got %d (%s)", r.status, r.body)
	}
	info, err := broker.stream.DescribeTopic(t.Context(), "orders")
	if err != nil {
		t.Fatalf("the topic in the broker's log: %v", err)
	}
	var total int64
	for _, p := range info.Partitions {
		total += p.HighWatermark
	}
	if len(info.Partitions) != 2 || total != 2 {
		t.Fatalf("the broker's log: got %d partitions holding %d records, want 2 holding 2", len(info.Partitions), total)
	}

	// The brokers go away: readiness says so.
	if err := broker.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	r := get(t, "GET", base+"/readyz")
	if r.status != 503 || !strings.Contains(r.body, "kafka: no broker of "+broker.KafkaAddr().String()+" answered") {
		t.Fatalf("/readyz with the brokers down: got %d (%s), want 503 naming the brokers", r.status, r.body)
	}
	if r := get(t, "GET", base+"/healthz"); r.status != 200 {
		t.Errorf("/healthz with the brokers down: got %d, want 200", r.status)
	}
}

// TestClusterModeWaitsForBrokers: with no broker answering, Start keeps
// HTTP up but not ready, and returns once its context ends.
func TestClusterModeWaitsForBrokers(t *testing.T) {
	var logs syncBuffer
	opts := clusterOptions(t, "127.0.0.1:1")
	opts.ClusterConnectTimeout = 200 * time.Millisecond
	opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	started := make(chan error, 1)
	go func() { started <- s.Start(ctx) }()
	// Two failed attempts logged: Start is retrying, not stuck in one.
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(logs.String(), "kafka cluster unreachable; retrying") < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no two retries logged:\n%s", logs.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if r := get(t, "GET", "http://"+s.Addr().String()+"/readyz"); r.status != 503 || !strings.Contains(r.body, "starting up") {
		t.Errorf("/readyz while the brokers are unreachable: got %d (%s), want 503 starting up", r.status, r.body)
	}
	select {
	case err := <-started:
		t.Fatalf("Start returned %v with no broker reachable, want it to keep trying", err)
	default:
	}
	cancel()
	select {
	case err := <-started:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Start after cancel: got %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Start did not return after cancel")
	}
	if err := s.Shutdown(t.Context()); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

func TestClusterOptionsValidation(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		wantErr string
	}{
		{"cluster", Options{Cluster: kafka.Options{Brokers: []string{"b:9092"}}}, ""},
		{"cluster with a data dir and a kafka addr", Options{DataDir: "d", KafkaAddr: "127.0.0.1:9092", Cluster: kafka.Options{Brokers: []string{"b:9092"}}},
			"leave DataDir, KafkaAddr unset"},
		{"cluster with listener limits", Options{KafkaMaxConnections: 5, KafkaNoAutoCreateTopics: true, Cluster: kafka.Options{Brokers: []string{"b:9092"}}},
			"leave KafkaNoAutoCreateTopics, KafkaMaxConnections unset"},
		{"bad broker", Options{Cluster: kafka.Options{Brokers: []string{"b"}}}, `kafka broker: "b": want host:port`},
		{"broker port 0", Options{Cluster: kafka.Options{Brokers: []string{"b:0"}}}, `kafka broker: "b:0": port must be a number from 1`},
		{"embedded advertised addr without host", Options{DataDir: "d", KafkaAdvertisedAddr: ":9092"}, `kafka advertised address: ":9092": want host:port`},
		{"embedded negative default partitions", Options{DataDir: "d", KafkaDefaultPartitions: -1}, "kafka default partitions: -1 is negative"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.opts)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("got %v, want nil", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("got %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}

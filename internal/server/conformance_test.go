package server

import (
	"context"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/stream"
	"github.com/sluice-dev/sluice/internal/stream/kafka"
	"github.com/sluice-dev/sluice/internal/stream/streamtest"
)

// TestClusterConformance runs the stream.Log conformance suite on
// stream/kafka (cluster mode's log) against Sluice's own Kafka listener:
// the third of the design's runs, beside the embedded log called directly
// (internal/stream/embedded) and stream/kafka against kfake
// (internal/stream/kafka). It goes through a started Server, so that the
// listener is wired as `sluice serve` wires it.
func TestClusterConformance(t *testing.T) {
	streamtest.Run(t, func(t *testing.T) stream.Log {
		s := startServer(t, testOptions(t, t.TempDir()))
		return newOwnListenerLog(t, s)
	})
}

// newOwnListenerLog returns stream/kafka connected to s's Kafka listener.
func newOwnListenerLog(t *testing.T, s *Server) *kafka.Log {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	l, err := kafka.New(ctx, kafka.Options{Brokers: []string{s.KafkaAddr().String()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close) // before the server's shutdown: cleanups run last first
	return l
}

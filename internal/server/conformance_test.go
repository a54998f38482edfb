package server

import (
	"context"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

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
		skipUnservedAPIs(t, s)
		return newOwnListenerLog(t, s)
	})
}

// neededAPIs are the Kafka APIs, beyond those every case uses, that
// stream/kafka needs for a conformance case.
var neededAPIs = map[string][]kmsg.Key{
	"TopicAdmin": {kmsg.CreatePartitions, kmsg.IncrementalAlterConfigs},
}

// skipUnservedAPIs skips a conformance case that needs a Kafka API the
// listener does not serve yet, saying which; once the API is served the
// case runs, with no change here.
func skipUnservedAPIs(t *testing.T, s *Server) {
	t.Helper()
	keys := neededAPIs[path.Base(t.Name())]
	if len(keys) == 0 {
		return
	}
	cl := newKafkaClient(t, s)
	resp, err := kmsg.NewPtrApiVersionsRequest().RequestWith(t.Context(), cl)
	if err != nil {
		t.Fatal(err)
	}
	served := map[int16]bool{}
	for _, k := range resp.ApiKeys {
		served[k.ApiKey] = true
	}
	var missing []string
	for _, k := range keys {
		if !served[int16(k)] {
			missing = append(missing, k.Name())
		}
	}
	if len(missing) > 0 {
		t.Skipf("the Kafka listener does not serve %s yet, which stream/kafka needs here", strings.Join(missing, ", "))
	}
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

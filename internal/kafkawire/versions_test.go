package kafkawire

import (
	"context"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-dev/sluice/internal/stream"
)

// TestEveryVersionAnswers sends a request of every served API at every
// served version and checks that the answer is framed for that version: a
// response header with tags exactly when flexible (never for ApiVersions),
// and a body that kmsg decodes and re-encodes to the same length.
func TestEveryVersionAnswers(t *testing.T) {
	e := newTestEnv(t, Options{AutoCreateTopics: true})
	e.createTopic("fuzz", 2, nil)
	rc := e.dial()
	samples := sampleRequests(t)
	for _, a := range apiTable() {
		req := samples[a.key]
		if req == nil {
			t.Fatalf("no sample request for %s", apiName(a.key))
		}
		for v := a.min; v <= a.max; v++ {
			req.SetVersion(v)
			corr := rc.send(req)
			b, err := rc.readFrame()
			if err != nil {
				t.Fatalf("%s v%d: %v", apiName(a.key), v, err)
			}
			if got := int32(binary.BigEndian.Uint32(b)); got != corr {
				t.Fatalf("%s v%d: correlation %d, want %d", apiName(a.key), v, got, corr)
			}
			b = b[4:]
			resp := req.ResponseKind()
			resp.SetVersion(v)
			if resp.IsFlexible() && a.key != apiVersionsKey {
				if b[0] != 0 {
					t.Fatalf("%s v%d: header tags %x", apiName(a.key), v, b[0])
				}
				b = b[1:]
			}
			if err := resp.ReadFrom(b); err != nil {
				t.Fatalf("%s v%d: decode: %v", apiName(a.key), v, err)
			}
			if n := len(resp.AppendTo(nil)); n != len(b) {
				t.Errorf("%s v%d: body of %d bytes re-encodes to %d", apiName(a.key), v, len(b), n)
			}
		}
	}
}

func TestServeContextCancel(t *testing.T) {
	sl := openTestLog(t)
	srv, err := New(sl, Options{Store: memStore{}, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ln := listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	e := &testEnv{t: t, addr: ln.Addr().String()}
	rc := e.dial()
	roundTrip[*kmsg.ApiVersionsResponse](rc, kmsg.NewPtrApiVersionsRequest())
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Serve returned %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
	rc.expectClosed(5 * time.Second)
}

func TestConnectionLimits(t *testing.T) {
	e := newTestEnv(t, Options{MaxConnections: 2, IdleTimeout: 300 * time.Millisecond})
	a, b := e.dial(), e.dial()
	roundTrip[*kmsg.ApiVersionsResponse](a, kmsg.NewPtrApiVersionsRequest())
	lastActive := time.Now()
	roundTrip[*kmsg.ApiVersionsResponse](b, kmsg.NewPtrApiVersionsRequest())
	e.dial().expectClosed(5 * time.Second) // the third
	if got := counterValue(e.srv.metrics.rejected); got != 1 {
		t.Errorf("rejected connections: %v, want 1", got)
	}
	// Idle connections close after IdleTimeout, making room.
	a.expectClosed(5 * time.Second)
	if d := time.Since(lastActive); d < 300*time.Millisecond {
		t.Errorf("idle connection closed %v after its last request, before the idle timeout", d)
	}
	b.expectClosed(5 * time.Second)
	for i := 0; i < 50 && e.srv.nconns.Load() > 0; i++ {
		time.Sleep(20 * time.Millisecond)
	}
	roundTrip[*kmsg.ApiVersionsResponse](e.dial(), kmsg.NewPtrApiVersionsRequest())
}

// panicLog panics on ListTopics.
type panicLog struct{ stream.Log }

func (panicLog) ListTopics(context.Context) ([]stream.TopicInfo, error) { panic("boom") }

func TestHandlerPanicClosesOnlyItsConnection(t *testing.T) {
	sl := openTestLog(t)
	srv, err := New(panicLog{sl}, Options{Store: memStore{}, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	ln := listen(t)
	go func() { _ = srv.Serve(context.Background(), ln) }()
	defer srv.Close()
	e := &testEnv{t: t, addr: ln.Addr().String()}
	other := e.dial()
	roundTrip[*kmsg.ApiVersionsResponse](other, kmsg.NewPtrApiVersionsRequest())

	rc := e.dial()
	rc.send(kmsg.NewPtrMetadataRequest()) // all topics: ListTopics panics
	rc.expectClosed(5 * time.Second)
	if got := counterValue(srv.metrics.requests.WithLabelValues("Metadata", "internal_error")); got != 1 {
		t.Errorf("internal_error count: %v, want 1", got)
	}
	roundTrip[*kmsg.ApiVersionsResponse](other, kmsg.NewPtrApiVersionsRequest())
}

func TestProduceLogAppendTime(t *testing.T) {
	e := newTestEnv(t, Options{})
	e.createTopic("lat", 1, map[string]string{"message.timestamp.type": "LogAppendTime"})
	e.createTopic("ct", 1, nil)
	rc := e.dial()
	before := time.Now().UnixMilli()
	resp := roundTrip[*kmsg.ProduceResponse](rc, produceRequest(t, 9, -1, "lat", 0, "x"))
	if p := resp.Topics[0].Partitions[0]; p.ErrorCode != 0 || p.LogAppendTime < before {
		t.Errorf("LogAppendTime topic: %+v", p)
	}
	resp = roundTrip[*kmsg.ProduceResponse](rc, produceRequest(t, 9, -1, "ct", 0, "x"))
	if p := resp.Topics[0].Partitions[0]; p.ErrorCode != 0 || p.LogAppendTime != -1 {
		t.Errorf("CreateTime topic: %+v", p)
	}
	// Authorization errors have messages, not log lines (sanity of the
	// message choice for client faults).
	if !clientFault(kerr.TopicAuthorizationFailed.Code) || clientFault(kerr.KafkaStorageError.Code) {
		t.Error("clientFault misclassifies")
	}
}

// openTestLog opens the embedded log in a temporary directory, closed at
// cleanup.
func openTestLog(t *testing.T) stream.Log {
	m, ls, sl := openLog(t, t.TempDir(), syncNever())
	t.Cleanup(func() {
		_ = ls.Close()
		_ = m.Close()
	})
	return sl
}

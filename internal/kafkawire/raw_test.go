package kafkawire

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-dev/sluice/internal/record"
)

// rawConn speaks the protocol by hand, to test framing and edge cases that
// clients never produce.
type rawConn struct {
	t    testing.TB
	nc   net.Conn
	corr int32
	f    *kmsg.RequestFormatter
}

func (e *testEnv) dial() *rawConn {
	e.t.Helper()
	nc, err := net.Dial("tcp", e.addr)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = nc.Close() })
	return &rawConn{t: e.t, nc: nc, f: kmsg.NewRequestFormatter(kmsg.FormatterClientID("raw-test"))}
}

// frame encodes req with the next correlation ID.
func (r *rawConn) frame(req kmsg.Request) ([]byte, int32) {
	r.corr++
	return r.f.AppendRequest(nil, req, r.corr), r.corr
}

// send writes req and returns its correlation ID.
func (r *rawConn) send(req kmsg.Request) int32 {
	r.t.Helper()
	b, corr := r.frame(req)
	r.write(b)
	return corr
}

func (r *rawConn) write(b []byte) {
	r.t.Helper()
	if _, err := r.nc.Write(b); err != nil {
		r.t.Fatal(err)
	}
}

// readFrame reads one response frame.
func (r *rawConn) readFrame() ([]byte, error) {
	_ = r.nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	var size [4]byte
	if _, err := io.ReadFull(r.nc, size[:]); err != nil {
		return nil, err
	}
	b := make([]byte, binary.BigEndian.Uint32(size[:]))
	_, err := io.ReadFull(r.nc, b)
	return b, err
}

// recv reads the response with correlation ID corr into resp, whose version
// must be set.
func (r *rawConn) recv(resp kmsg.Response, corr int32) {
	r.t.Helper()
	b, err := r.readFrame()
	if err != nil {
		r.t.Fatalf("read response: %v", err)
	}
	if got := int32(binary.BigEndian.Uint32(b)); got != corr {
		r.t.Fatalf("correlation ID: got %d, want %d", got, corr)
	}
	b = b[4:]
	if resp.IsFlexible() && resp.Key() != apiVersionsKey {
		if len(b) == 0 || b[0] != 0 {
			r.t.Fatalf("response header tags: got %x, want 00", b[:min(len(b), 1)])
		}
		b = b[1:]
	}
	if err := resp.ReadFrom(b); err != nil {
		r.t.Fatalf("decode %T v%d: %v", resp, resp.GetVersion(), err)
	}
}

// roundTrip sends req and decodes its response.
func roundTrip[R kmsg.Response](r *rawConn, req kmsg.Request) R {
	r.t.Helper()
	corr := r.send(req)
	resp := req.ResponseKind().(R)
	resp.SetVersion(req.GetVersion())
	r.recv(resp, corr)
	return resp
}

// expectClosed asserts that the server closes the connection, within d.
func (r *rawConn) expectClosed(d time.Duration) {
	r.t.Helper()
	_ = r.nc.SetReadDeadline(time.Now().Add(d))
	var b [1]byte
	for {
		_, err := r.nc.Read(b[:])
		if err == nil {
			continue // drain whatever came before the close
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			r.t.Fatalf("connection still open after %v", d)
		}
		return
	}
}

// produceRequest builds a Produce request of one batch for topic/partition.
func produceRequest(t testing.TB, version, acks int16, topic string, partition int32, values ...string) *kmsg.ProduceRequest {
	t.Helper()
	var recs []record.Record
	for _, v := range values {
		recs = append(recs, record.Record{Value: []byte(v), Timestamp: time.Now().UnixMilli()})
	}
	var codecs record.Codecs
	batch, err := codecs.AppendBatch(nil, recs, record.BatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(version)
	req.Acks = acks
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = partition, batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

package kafkawire

import (
	"fmt"
	"maps"
	"runtime"
	"testing"
	"weak"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-dev/sluice/internal/record"
	"github.com/sluice-dev/sluice/internal/stream"
)

// TestPipelinedProduce writes produce requests back to back on one
// connection, with other requests among them, before reading any response:
// the responses come back in request order, the batches are stored in that
// order, a failing partition fails only its own request, and a request that
// is not pipelined sees the effects of every produce before it.
func TestPipelinedProduce(t *testing.T) {
	e := newDurableTestEnv(t, Options{})
	e.createTopic("t", 2, nil)
	r := e.dial()

	type sent struct {
		corr int32
		resp kmsg.Response
		// for produce: the partition and the base offset it must get,
		// or an error code
		partition  int32
		wantOffset int64
		wantCode   int16
		// for ListOffsets: the high watermarks the produces before it
		// leave
		hw map[int32]int64
	}
	var out []sent
	next := map[int32]int64{}
	produce := func(partition int32, n int) {
		values := make([]string, n)
		for i := range values {
			values[i] = fmt.Sprintf("p%d-%d", partition, next[partition]+int64(i))
		}
		req := produceRequest(t, 9, -1, "t", partition, values...)
		s := sent{corr: r.send(req), resp: req.ResponseKind(), partition: partition}
		s.resp.SetVersion(req.GetVersion())
		if partition < 2 {
			s.wantOffset = next[partition]
			next[partition] += int64(n)
		} else {
			s.wantCode = kerr.UnknownTopicOrPartition.Code
		}
		out = append(out, s)
	}
	listLatest := func() {
		req := kmsg.NewPtrListOffsetsRequest()
		req.SetVersion(4)
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = "t"
		for p := range int32(2) {
			rp := kmsg.NewListOffsetsRequestTopicPartition()
			rp.Partition, rp.Timestamp = p, -1
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
		s := sent{corr: r.send(req), resp: req.ResponseKind(), partition: -1, hw: maps.Clone(next)}
		s.resp.SetVersion(req.GetVersion())
		out = append(out, s)
	}

	for i := range 30 {
		produce(int32(i%2), 1+i%4)
		switch i {
		case 9:
			listLatest() // must see the ten produces before it
		case 20:
			produce(7, 1) // a partition that does not exist
		}
	}
	listLatest()

	for i, s := range out {
		r.recv(s.resp, s.corr)
		switch resp := s.resp.(type) {
		case *kmsg.ProduceResponse:
			p := resp.Topics[0].Partitions[0]
			if p.ErrorCode != s.wantCode {
				t.Fatalf("response %d (partition %d): got error %d, want %d", i, s.partition, p.ErrorCode, s.wantCode)
			}
			if s.wantCode == 0 && p.BaseOffset != s.wantOffset {
				t.Errorf("response %d (partition %d): got base offset %d, want %d", i, s.partition, p.BaseOffset, s.wantOffset)
			}
		case *kmsg.ListOffsetsResponse:
			for _, p := range resp.Topics[0].Partitions {
				if p.ErrorCode != 0 || p.Offset != s.hw[p.Partition] {
					t.Errorf("response %d: partition %d: got latest offset %d (error %d), want %d, the end of the produces before it",
						i, p.Partition, p.Offset, p.ErrorCode, s.hw[p.Partition])
				}
			}
		}
	}
	var codecs record.Codecs
	for p, n := range next {
		res, err := e.log.Fetch(testContext(t), stream.FetchRequest{Topic: "t", Partition: p, MaxBytes: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for b := res.Batches; len(b) > 0; {
			h, err := record.ParseHeader(b)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := codecs.DecodeBatch(b[:h.Size()], record.DecodeLimits{}, func(rec record.Record) error {
				got = append(got, string(rec.Value))
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			b = b[h.Size():]
		}
		if int64(len(got)) != n {
			t.Fatalf("partition %d: got %d records, want %d", p, len(got), n)
		}
		for j, v := range got {
			if want := fmt.Sprintf("p%d-%d", p, j); v != want {
				t.Fatalf("partition %d record %d: got %q, want %q", p, j, v, want)
			}
		}
	}
}

// TestPipelinedProduceAnsweredOnShutdown checks that produce requests
// queued on a connection when the server shuts down are still answered.
func TestPipelinedProduceAnsweredOnShutdown(t *testing.T) {
	e := newDurableTestEnv(t, Options{})
	e.createTopic("t", 1, nil)
	r := e.dial()
	var corrs []int32
	for i := range 20 {
		corrs = append(corrs, r.send(produceRequest(t, 9, -1, "t", 0, fmt.Sprint("v", i))))
	}
	// Wait for the first answer, so the server has read some of them.
	first := kmsg.NewPtrProduceResponse()
	first.SetVersion(9)
	r.recv(first, corrs[0])
	if err := e.srv.Shutdown(testContext(t)); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	answered := 1
	for range corrs[1:] {
		if _, err := r.readFrame(); err != nil {
			break
		}
		answered++
	}
	// Every request the server read was answered: what it stored is what
	// it acknowledged.
	hw, err := e.log.ListOffset(testContext(t), "t", 0, stream.Latest)
	if err != nil {
		t.Fatal(err)
	}
	if int64(answered) != hw {
		t.Errorf("got %d answers for %d stored records, want one per stored record", answered, hw)
	}
}

// TestStagedProduceKeepsNoRequestBytes checks that a staged produce request
// lets go of its records once staged: they are in the connection's request
// buffer, and a pipelined request waiting for its fsync must not keep a
// buffer of up to MaxRequestBytes alive after the connection has moved on
// (doc.go: a connection holds one request being read). Both a partition
// that is staged and one that fails are checked.
func TestStagedProduceKeepsNoRequestBytes(t *testing.T) {
	e := newTestEnv(t, Options{})
	e.createTopic("t", 1, nil)
	sp := e.log.(stream.StagedProducer)
	for _, c := range []struct {
		name     string
		topic    string
		wantCode int16
	}{
		{"staged", "t", 0},
		{"failed", "missing", kerr.UnknownTopicOrPartition.Code},
	} {
		t.Run(c.name, func(t *testing.T) {
			req := produceRequest(t, 9, -1, c.topic, 0, "v")
			// The records in a buffer of their own, as a connection's
			// request buffer holds them, watched by a weak pointer.
			records := req.Topics[0].Partitions[0].Records
			buf := make([]byte, 1<<20)
			req.Topics[0].Partitions[0].Records = buf[:copy(buf, records)]
			watch := weak.Make(&buf[0])
			buf, records = nil, nil

			rc := &request{ctx: testContext(t), c: &conn{s: e.srv}, key: 0, version: req.Version, principal: anonymous}
			finish := e.srv.stageProduce(rc, req, sp)
			req = nil
			runtime.GC()
			runtime.GC()
			if watch.Value() != nil {
				t.Error("the request's records are still reachable while the response waits")
			}
			resp, err := finish()
			if err != nil {
				t.Fatal(err)
			}
			p := resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0]
			if p.ErrorCode != c.wantCode {
				t.Errorf("partition: got error %d, want %d", p.ErrorCode, c.wantCode)
			}
		})
	}
}

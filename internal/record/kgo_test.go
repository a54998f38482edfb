package record

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestFranzGoProducer produces through franz-go's real client, so the
// batches are framed and compressed by franz-go's own producer code, and
// checks that DecodeBatch returns what was produced. The client talks to a
// minimal broker in the test (ApiVersions, Metadata, Produce) over
// in-memory pipes.
func TestFranzGoProducer(t *testing.T) {
	codecs := []struct {
		name  string
		codec kgo.CompressionCodec
	}{
		{"none", kgo.NoCompression()},
		{"gzip", kgo.GzipCompression()},
		{"snappy", kgo.SnappyCompression()},
		{"lz4", kgo.Lz4Compression()},
		{"zstd", kgo.ZstdCompression()},
	}
	for _, cc := range codecs {
		t.Run(cc.name, func(t *testing.T) {
			recs := sampleRecords()
			batches := produceWithFranzGo(t, recs, cc.codec)
			var (
				c   Codecs
				got []Record
			)
			for _, b := range batches {
				h, err := CheckProduced(b, 0)
				if err != nil {
					t.Fatalf("CheckProduced: %v", err)
				}
				if want, _ := ParseCompression(cc.name); h.Compression() != want {
					t.Errorf("compression: got %s, want %s", h.Compression(), want)
				}
				SetBaseOffset(b, int64(len(got)))
				recs, _, err := decodeAll(&c, b, DecodeLimits{})
				if err != nil {
					t.Fatalf("DecodeBatch: %v", err)
				}
				got = append(got, recs...)
			}
			checkRecords(t, got, wantDecoded(recs, 0))
		})
	}
}

// produceWithFranzGo produces recs, in order, to partition 0 of topic "t"
// and returns the record batches the broker received.
func produceWithFranzGo(t *testing.T, recs []Record, codec kgo.CompressionCodec) [][]byte {
	t.Helper()
	fb := &fakeBroker{t: t}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers("fake:9092"),
		kgo.Dialer(fb.dial),
		kgo.DefaultProduceTopic("t"),
		kgo.DisableIdempotentWrite(),
		kgo.ProducerBatchCompression(codec),
		kgo.ProducerLinger(50*time.Millisecond), // let the records gather in one batch
		kgo.MaxProduceRequestsInflightPerBroker(1),
		kgo.RequestRetries(0),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer fb.wait()
	defer cl.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	krs := make([]*kgo.Record, len(recs))
	for i, r := range recs {
		kr := &kgo.Record{Key: r.Key, Value: r.Value, Timestamp: time.UnixMilli(r.Timestamp)}
		for _, h := range r.Headers {
			kr.Headers = append(kr.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
		}
		krs[i] = kr
	}
	if err := cl.ProduceSync(ctx, krs...).FirstErr(); err != nil {
		t.Fatalf("ProduceSync: %v", err)
	}
	fb.mu.Lock()
	defer fb.mu.Unlock()
	return fb.batches
}

// fakeBroker answers just enough of the Kafka protocol for a producer.
type fakeBroker struct {
	t       *testing.T
	wg      sync.WaitGroup
	mu      sync.Mutex
	conns   []net.Conn
	batches [][]byte
	next    int64 // offset of the next record
}

func (fb *fakeBroker) dial(ctx context.Context, network, host string) (net.Conn, error) {
	client, server := net.Pipe()
	fb.mu.Lock()
	fb.conns = append(fb.conns, server)
	fb.mu.Unlock()
	fb.wg.Add(1)
	go func() {
		defer fb.wg.Done()
		defer server.Close()
		if err := fb.serve(server); err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrClosedPipe) {
			fb.t.Errorf("fake broker: %v", err)
		}
	}()
	return client, nil
}

// wait closes the broker's side of every connection and waits for its
// goroutines.
func (fb *fakeBroker) wait() {
	fb.mu.Lock()
	for _, c := range fb.conns {
		c.Close()
	}
	fb.mu.Unlock()
	fb.wg.Wait()
}

func (fb *fakeBroker) serve(conn net.Conn) error {
	for {
		var size [4]byte
		if _, err := io.ReadFull(conn, size[:]); err != nil {
			return err
		}
		msg := make([]byte, binary.BigEndian.Uint32(size[:]))
		if _, err := io.ReadFull(conn, msg); err != nil {
			return err
		}
		if len(msg) < 10 {
			return fmt.Errorf("request of %d bytes", len(msg))
		}
		key := int16(binary.BigEndian.Uint16(msg))
		version := int16(binary.BigEndian.Uint16(msg[2:]))
		corr := binary.BigEndian.Uint32(msg[4:])
		body := msg[8:]
		if n := int16(binary.BigEndian.Uint16(body)); n > 0 { // client id
			body = body[2+int(n):]
		} else {
			body = body[2:]
		}
		req := kmsg.RequestForKey(key)
		if req == nil {
			return fmt.Errorf("unknown request key %d", key)
		}
		req.SetVersion(version)
		if req.IsFlexible() {
			body = body[1:] // the client sends no tagged header fields
		}
		if err := req.ReadFrom(body); err != nil {
			return fmt.Errorf("read %s v%d: %w", kmsg.NameForKey(key), version, err)
		}
		resp, err := fb.handle(req)
		if err != nil {
			return err
		}
		out := binary.BigEndian.AppendUint32(make([]byte, 4), corr)
		if req.IsFlexible() && key != kmsg.ApiVersions.Int16() {
			out = append(out, 0) // no tagged response header fields
		}
		out = resp.AppendTo(out)
		binary.BigEndian.PutUint32(out, uint32(len(out)-4))
		if _, err := conn.Write(out); err != nil {
			return err
		}
	}
}

func (fb *fakeBroker) handle(req kmsg.Request) (kmsg.Response, error) {
	switch req := req.(type) {
	case *kmsg.ApiVersionsRequest:
		resp := req.ResponseKind().(*kmsg.ApiVersionsResponse)
		for _, k := range []struct{ key, min, max int16 }{
			{kmsg.Produce.Int16(), 3, 9},
			{kmsg.Metadata.Int16(), 0, 9},
			{kmsg.ApiVersions.Int16(), 0, 3},
		} {
			resp.ApiKeys = append(resp.ApiKeys, kmsg.ApiVersionsResponseApiKey{ApiKey: k.key, MinVersion: k.min, MaxVersion: k.max})
		}
		return resp, nil
	case *kmsg.MetadataRequest:
		resp := req.ResponseKind().(*kmsg.MetadataResponse)
		resp.Brokers = []kmsg.MetadataResponseBroker{{NodeID: 0, Host: "fake", Port: 9092}}
		topic := kmsg.NewMetadataResponseTopic()
		topic.Topic = kmsg.StringPtr("t")
		p := kmsg.NewMetadataResponseTopicPartition()
		p.Partition, p.Leader, p.Replicas, p.ISR = 0, 0, []int32{0}, []int32{0}
		topic.Partitions = []kmsg.MetadataResponseTopicPartition{p}
		resp.Topics = []kmsg.MetadataResponseTopic{topic}
		return resp, nil
	case *kmsg.ProduceRequest:
		resp := req.ResponseKind().(*kmsg.ProduceResponse)
		fb.mu.Lock()
		defer fb.mu.Unlock()
		for _, rt := range req.Topics {
			st := kmsg.NewProduceResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.BaseOffset = fb.next
				for rest := rp.Records; len(rest) > 0; { // batches may be concatenated
					h, err := ParseHeader(rest)
					if err != nil || h.Size() > len(rest) {
						return nil, fmt.Errorf("produced batch: %v (%d bytes remain)", err, len(rest))
					}
					fb.next += int64(h.RecordCount)
					fb.batches = append(fb.batches, append([]byte{}, rest[:h.Size()]...))
					rest = rest[h.Size():]
				}
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil
	}
	return nil, fmt.Errorf("unexpected request %s", kmsg.NameForKey(req.Key()))
}

package clients

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// TestSarama: Sarama's sync producer sends keyed messages (each answered
// with its partition and offset), and a Sarama consumer group reads every
// one back and commits, in a child process: at the default protocol version
// with snappy, and at the newest version Sarama knows with zstd and the
// idempotent producer.
func TestSarama(t *testing.T) {
	for _, tc := range []struct {
		name, version, codec string
		idempotent           bool
	}{
		{"default", "", "snappy", false},
		{"max-idempotent", sarama.MaxVersion.String(), "zstd", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startSluice(t)
			ctx := testContext(t, 90*time.Second)
			topic, group := "sarama-"+tc.name, "sarama-group-"+tc.name
			createTopics(t, ctx, s, map[string]int32{topic: 3})
			const n = 2000
			out, err := run(t, ctx, childCmd("sarama", map[string]string{
				"BROKERS": s.kafkaAddr, "TOPIC": topic, "GROUP": group, "N": strconv.Itoa(n), "VERSION": tc.version,
				"CODEC": tc.codec, "IDEMPOTENT": strconv.FormatBool(tc.idempotent),
			}), nil)
			if err != nil {
				t.Fatal(err)
			}
			sent, got := map[string][2]int64{}, map[string][2]int64{}
			sc := bufio.NewScanner(bytes.NewReader(out))
			for sc.Scan() {
				f := strings.Fields(sc.Text())
				if len(f) != 4 {
					t.Fatalf("child output line %q: want 4 fields", sc.Text())
				}
				p, _ := strconv.ParseInt(f[1], 10, 32)
				o, _ := strconv.ParseInt(f[2], 10, 64)
				switch f[0] {
				case "sent":
					sent[f[3]] = [2]int64{p, o}
				case "got":
					if _, dup := got[f[3]]; dup {
						t.Errorf("%s read twice", f[3])
					}
					got[f[3]] = [2]int64{p, o}
				}
			}
			if len(sent) != n || len(got) != n {
				t.Fatalf("got %d sent and %d consumed, want %d of each", len(sent), len(got), n)
			}
			for v, at := range sent {
				if got[v] != at {
					t.Errorf("%s: sent to partition/offset %v, read back at %v", v, at, got[v])
				}
			}
			checkStored(t, ctx, s, topic, tc.codec, tc.idempotent)
			ends := endOffsets(t, ctx, s, topic)
			commits, err := s.groupOffsets(ctx, group)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range sortedPartitions(ends) {
				if c, ok := commits[topic][p]; !ok || c != ends[p] {
					t.Errorf("partition %d: got committed offset %d (present %v), want %d (the log end)", p, c, ok, ends[p])
				}
			}
		})
	}
}

// saramaChild sends N messages with a sync producer, printing "sent p o
// value" for each, then consumes them in a consumer group, printing "got p
// o value" for each, and commits before leaving.
func saramaChild(ctx context.Context) error {
	brokers := []string{childEnv("BROKERS")}
	topic, group := childEnv("TOPIC"), childEnv("GROUP")
	n, _ := strconv.Atoi(childEnv("N"))
	cfg := sarama.NewConfig()
	cfg.ClientID = "sluice-sarama-test"
	if v := childEnv("VERSION"); v != "" {
		var err error
		if cfg.Version, err = sarama.ParseKafkaVersion(v); err != nil {
			return err
		}
	}
	if err := cfg.Producer.Compression.UnmarshalText([]byte(childEnv("CODEC"))); err != nil {
		return err
	}
	if childEnv("IDEMPOTENT") == "true" {
		cfg.Producer.Idempotent = true
		cfg.Net.MaxOpenRequests = 1
	}
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Group.Session.Timeout = 10 * time.Second
	cfg.Consumer.Group.Heartbeat.Interval = time.Second
	cfg.Consumer.MaxWaitTime = 250 * time.Millisecond
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()

	prod, err := sarama.NewSyncProducer(brokers, cfg)
	if err != nil {
		return fmt.Errorf("new sync producer: %w", err)
	}
	msgs := make([]*sarama.ProducerMessage, 0, 100)
	for i := 0; i < n; i += cap(msgs) {
		msgs = msgs[:0]
		for j := i; j < min(i+cap(msgs), n); j++ {
			msgs = append(msgs, &sarama.ProducerMessage{Topic: topic,
				Key: sarama.StringEncoder(fmt.Sprintf("key-%d", j)), Value: sarama.StringEncoder(fmt.Sprintf("value-%d", j))})
		}
		// Half one at a time, half in batches.
		if i < n/2 {
			for _, m := range msgs {
				if _, _, err := prod.SendMessage(m); err != nil {
					return fmt.Errorf("send message: %w", err)
				}
			}
		} else if err := prod.SendMessages(msgs); err != nil {
			return fmt.Errorf("send messages: %w", err)
		}
		for _, m := range msgs {
			fmt.Fprintf(out, "sent %d %d %s\n", m.Partition, m.Offset, m.Value)
		}
	}
	if err := prod.Close(); err != nil {
		return fmt.Errorf("close producer: %w", err)
	}

	cg, err := sarama.NewConsumerGroup(brokers, group, cfg)
	if err != nil {
		return fmt.Errorf("new consumer group: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	h := &saramaHandler{n: n, out: out, done: cancel}
	go func() {
		for err := range cg.Errors() {
			fmt.Fprintf(os.Stderr, "consumer group: %v\n", err)
		}
	}()
	for ctx.Err() == nil {
		if err := cg.Consume(ctx, []string{topic}, h); err != nil && !errors.Is(err, sarama.ErrClosedConsumerGroup) {
			fmt.Fprintf(os.Stderr, "consume: %v\n", err)
			time.Sleep(100 * time.Millisecond)
		}
	}
	if err := cg.Close(); err != nil {
		return fmt.Errorf("close consumer group: %w", err)
	}
	if h.count() < n {
		return fmt.Errorf("consumed %d of %d messages before the deadline", h.count(), n)
	}
	return nil
}

type saramaHandler struct {
	n    int
	done func()
	mu   sync.Mutex
	out  *bufio.Writer
	seen int
}

func (h *saramaHandler) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.seen
}

func (*saramaHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (*saramaHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h *saramaHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for m := range claim.Messages() {
		h.mu.Lock()
		fmt.Fprintf(h.out, "got %d %d %s\n", m.Partition, m.Offset, m.Value)
		h.seen++
		all := h.seen >= h.n
		h.mu.Unlock()
		sess.MarkMessage(m, "")
		if all {
			sess.Commit() // synchronous
			h.done()
			return nil
		}
	}
	return nil
}

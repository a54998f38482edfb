package main

import (
	"context"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// crashServer is a sluice serve on a data directory that a crash test
// SIGKILLs and starts again, on the same addresses, so that its clients
// (a retrying producer, the test's HTTP calls) find it where they were.
type crashServer struct {
	t               *testing.T
	bin             string
	args            []string
	base, kafkaAddr string
	proc            *sluiceProc
}

// startCrashServer starts a server on a new data directory and waits
// until it is ready.
func startCrashServer(t *testing.T, bin string) *crashServer {
	t.Helper()
	httpAddr, kafkaAddr := freePort(t), freePort(t)
	s := &crashServer{t: t, bin: bin, base: "http://" + httpAddr, kafkaAddr: kafkaAddr,
		args: []string{"serve", "--data-dir", t.TempDir(), "--http-addr", httpAddr, "--kafka-addr", kafkaAddr, "--log-format", "json"}}
	s.start()
	return s
}

func (s *crashServer) start() {
	s.t.Helper()
	s.proc = startSluice(s.t, s.bin, s.args...)
	s.proc.waitAddr(s.t)
	waitReady(s.t, s.base)
}

// kill SIGKILLs the server and waits for it to exit.
func (s *crashServer) kill() {
	s.t.Helper()
	if err := s.proc.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		s.t.Fatal(err)
	}
	s.proc.waitExit(s.t, 10*time.Second)
}

// restart kills the server and starts it again.
func (s *crashServer) restart() {
	s.t.Helper()
	s.kill()
	s.start()
}

func (s *crashServer) createTopic(name, partitions string) {
	s.t.Helper()
	if code, body := httpPost(s.t, s.base+"/v1/topics", `{"name": "`+name+`", "partitions": `+partitions+`}`); code != http.StatusCreated {
		s.t.Fatalf("create topic %s: %d %s", name, code, body)
	}
}

// putPipeline creates a pipeline from its YAML.
func (s *crashServer) putPipeline(name, spec string) {
	s.t.Helper()
	req, err := http.NewRequest(http.MethodPut, s.base+"/v1/pipelines/"+name, strings.NewReader(spec))
	if err != nil {
		s.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		s.t.Fatalf("put pipeline %s: %s", name, resp.Status)
	}
}

// killLoop restarts the server after random pauses of pause plus up to
// jitter, at least minKills times and then until done is closed, at most
// maxKills times; after each it calls logf with the kill's number. It
// returns how many kills there were.
func (s *crashServer) killLoop(done chan struct{}, pause, jitter time.Duration, minKills, maxKills int, logf func(kill int)) int {
	s.t.Helper()
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, seed>>1))
	s.t.Logf("kill schedule seed %d", seed)
	kills := 0
	for kills < minKills || (!isClosed(done) && kills < maxKills) {
		time.Sleep(pause + time.Duration(rng.Int64N(int64(jitter)+1)))
		s.restart()
		kills++
		logf(kills)
	}
	return kills
}

// crashProducer produces to a crashServer with franz-go's idempotent
// producer, retrying across the restarts, so that the log ends with every
// record exactly once.
type crashProducer struct {
	acked, failed atomic.Int64
	firstErr      atomic.Value
	// done is closed once every record is acknowledged or failed.
	done chan struct{}
}

// produce sends total records, value(i) keyed by i, to topic, pausing
// for pause after every pauseEvery records to spread them over the kills.
func (s *crashServer) produce(topic string, total int, value func(i int) string, pauseEvery int, pause time.Duration) *crashProducer {
	s.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.kafkaAddr), kgo.DefaultProduceTopic(topic),
		kgo.RecordRetries(1_000_000), kgo.RetryTimeout(5*time.Minute), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(cl.Close)
	p := &crashProducer{done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for i := range total {
			cl.Produce(context.Background(), &kgo.Record{Key: []byte(strconv.Itoa(i)), Value: []byte(value(i))}, func(_ *kgo.Record, err error) {
				if err != nil {
					p.failed.Add(1)
					p.firstErr.CompareAndSwap(nil, err)
					return
				}
				p.acked.Add(1)
			})
			if i%pauseEvery == pauseEvery-1 {
				time.Sleep(pause)
			}
		}
		if err := cl.Flush(context.Background()); err != nil {
			p.firstErr.CompareAndSwap(nil, err)
		}
	}()
	return p
}

// wait waits for the producer and fails the test unless every one of
// total records was acknowledged.
func (p *crashProducer) wait(t *testing.T, total int) {
	t.Helper()
	<-p.done
	if err, _ := p.firstErr.Load().(error); err != nil || p.failed.Load() > 0 {
		t.Fatalf("%d records failed to produce: %v", p.failed.Load(), err)
	}
	if got := p.acked.Load(); got != int64(total) {
		t.Fatalf("got %d records acknowledged, want %d", got, total)
	}
}

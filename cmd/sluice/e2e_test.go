package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// buildSluice compiles this command into a temporary directory.
func buildSluice(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "sluice")
	cmd := exec.Command("go", "build", "-buildvcs=false", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// sluiceProc is a running sluice binary whose JSON log lines on stderr are
// collected.
type sluiceProc struct {
	cmd   *exec.Cmd
	addr  chan string   // receives the HTTP address once it is logged
	kafka chan string   // receives the Kafka listener's address once it is logged
	done  chan struct{} // closed once the process has exited

	mu     sync.Mutex
	stderr strings.Builder
}

func startSluice(t *testing.T, bin string, args ...string) *sluiceProc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SLUICE_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &sluiceProc{cmd: cmd, addr: make(chan string, 1), kafka: make(chan string, 1), done: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.stderr.WriteString(line + "\n")
			p.mu.Unlock()
			var rec struct{ Msg, Addr string }
			if json.Unmarshal([]byte(line), &rec) == nil {
				switch rec.Msg {
				case "http listening":
					p.addr <- rec.Addr
				case "kafka listening":
					p.kafka <- rec.Addr
				}
			}
		}
		io.Copy(io.Discard, stderr)
		cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("stderr of %v:\n%s", args, p.output())
		}
	})
	return p
}

func (p *sluiceProc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

func (p *sluiceProc) waitAddr(t *testing.T) string {
	t.Helper()
	select {
	case a := <-p.addr:
		return a
	case <-p.done:
		t.Fatalf("sluice exited (%v) before listening:\n%s", p.cmd.ProcessState, p.output())
	case <-time.After(15 * time.Second):
		t.Fatalf("sluice did not log its HTTP address:\n%s", p.output())
	}
	return ""
}

// waitExit waits for the process to exit and returns its exit code.
func (p *sluiceProc) waitExit(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(within):
		t.Fatalf("sluice still running after %s:\n%s", within, p.output())
	}
	return 0
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func waitReady(t *testing.T, base string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		status, body := httpGet(t, base+"/readyz")
		if status == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz: %d %s", status, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestServeEndToEnd(t *testing.T) {
	bin := buildSluice(t)
	dataDir := filepath.Join(t.TempDir(), "data")
	serve := func() *sluiceProc {
		return startSluice(t, bin, "serve", "--data-dir", dataDir, "--http-addr", "127.0.0.1:0", "--kafka-addr", "127.0.0.1:0", "--log-format", "json")
	}

	first := serve()
	base := "http://" + first.waitAddr(t)
	if status, body := httpGet(t, base+"/healthz"); status != 200 || strings.TrimSpace(body) != `{"status":"ok"}` {
		t.Errorf("/healthz: got %d %s, want 200 {\"status\":\"ok\"}", status, body)
	}
	waitReady(t, base)
	status, body := httpGet(t, base+"/metrics")
	if status != 200 {
		t.Errorf("/metrics: got status %d, want 200", status)
	}
	for _, name := range []string{"sluice_log_recovery_duration_seconds", "go_goroutines"} {
		if !strings.Contains(body, "\n"+name+" ") {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	if status, body := httpGet(t, base+"/nope"); status != 404 || !strings.Contains(body, `"error_code":404`) {
		t.Errorf("/nope: got %d %s, want a 404 JSON error", status, body)
	}

	// A second server on the same data directory must refuse at once.
	second := startSluice(t, bin, "serve", "--data-dir", dataDir, "--http-addr", "127.0.0.1:0", "--kafka-addr", "127.0.0.1:0")
	if code := second.waitExit(t, 5*time.Second); code == 0 {
		t.Errorf("second serve: got exit code 0, want non-zero")
	}
	lines := strings.Split(strings.TrimSpace(second.output()), "\n")
	last := lines[len(lines)-1]
	want := fmt.Sprintf("sluice: data directory %s is in use by another sluice (pid %d)", dataDir, first.cmd.Process.Pid)
	if last != want {
		t.Errorf("second serve's last stderr line: got %q, want %q", last, want)
	}

	// SIGTERM shuts the first down cleanly.
	if err := first.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := first.waitExit(t, 10*time.Second); code != 0 {
		t.Fatalf("after SIGTERM: got exit code %d, want 0:\n%s", code, first.output())
	}
	for _, msg := range []string{`"msg":"shutting down"`, `"msg":"stopped"`} {
		if !strings.Contains(first.output(), msg) {
			t.Errorf("log lacks %s", msg)
		}
	}

	// The lock is free again: a third server starts on the directory.
	third := serve()
	waitReady(t, "http://"+third.waitAddr(t))
	if err := third.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := third.waitExit(t, 10*time.Second); code != 0 {
		t.Fatalf("third serve after SIGINT: got exit code %d, want 0", code)
	}
}

func TestCLIErrors(t *testing.T) {
	bin := buildSluice(t)
	dir := t.TempDir()
	config := filepath.Join(dir, "sluice.yaml")
	if err := os.WriteFile(config, []byte("data_dir: "+dir+"\nlisten: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--fsync", "sometimes"}, `sluice: fsync policy "sometimes": want always, never or interval:<duration> (set by --fsync)`},
		{[]string{"serve", "--config", config}, `sluice: config file ` + config + `: unknown key "listen"`},
		{[]string{"serve", "--bogus"}, "sluice: unknown flag: --bogus"},
		{[]string{"serve", "extra"}, `sluice: unknown command "extra" for "sluice serve"`},
		{[]string{"nope"}, `sluice: unknown command "nope" for "sluice"`},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			p := startSluice(t, bin, tc.args...)
			if code := p.waitExit(t, 10*time.Second); code == 0 {
				t.Errorf("got exit code 0, want non-zero")
			}
			out := strings.TrimSpace(p.output())
			if strings.Contains(out, "\n") || !strings.HasPrefix(out, tc.want) {
				t.Errorf("got stderr %q, want one line starting %q", out, tc.want)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "sluice")
	build := exec.Command("go", "build", "-buildvcs=false", "-ldflags", "-X main.version=v1.2.3 -X main.commit=abc123", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"sluice v1.2.3\n", "commit: abc123\n", "go:     go1."} {
		if !strings.Contains(string(out), want) {
			t.Errorf("version output %q lacks %q", out, want)
		}
	}
}

func (p *sluiceProc) waitKafkaAddr(t *testing.T) string {
	t.Helper()
	select {
	case a := <-p.kafka:
		return a
	case <-p.done:
		t.Fatalf("sluice exited before its Kafka listener listened:\n%s", p.output())
	case <-time.After(30 * time.Second):
		t.Fatalf("sluice did not log its Kafka address:\n%s", p.output())
	}
	return ""
}

func httpPost(t *testing.T, url, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// consumeValues reads n records of topic from the start through the Kafka
// listener at addr.
func consumeValues(t *testing.T, addr, topic string, n int) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var got []string
	for len(got) < n {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("consume %s from %s: %v (after %v)", topic, addr, err, got)
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	slices.Sort(got)
	return got
}

// TestServeKafkaEndToEnd runs `sluice serve` and talks to its Kafka
// listener with franz-go, then runs `sluice serve --kafka-brokers` on it:
// records produced over the second's HTTP API are read over the first's
// Kafka listener.
func TestServeKafkaEndToEnd(t *testing.T) {
	bin := buildSluice(t)
	broker := startSluice(t, bin, "serve", "--data-dir", filepath.Join(t.TempDir(), "data"),
		"--http-addr", "127.0.0.1:0", "--kafka-addr", "127.0.0.1:0", "--default-partitions", "2", "--log-format", "json")
	brokerHTTP := "http://" + broker.waitAddr(t)
	waitReady(t, brokerHTTP)
	kafkaAddr := broker.waitKafkaAddr(t)

	cl, err := kgo.NewClient(kgo.SeedBrokers(kafkaAddr), kgo.AllowAutoTopicCreation(), kgo.DefaultProduceTopic("events"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("a")}, &kgo.Record{Value: []byte("b")}).FirstErr(); err != nil {
		t.Fatalf("produce over Kafka: %v", err)
	}
	cl.Close()
	if got := consumeValues(t, kafkaAddr, "events", 2); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("consumed over Kafka: got %v, want [a b]", got)
	}

	// A static member of a Kafka consumer group shows in sluice group
	// describe, with its kind and instance ID.
	member, err := kgo.NewClient(kgo.SeedBrokers(kafkaAddr), kgo.ConsumerGroup("billing"),
		kgo.ConsumeTopics("events"), kgo.InstanceID("billing-1"))
	if err != nil {
		t.Fatal(err)
	}
	defer member.Close()
	if fs := member.PollRecords(ctx, 2); fs.Err() != nil {
		t.Fatalf("group member: %v", fs.Err())
	}
	var describe string
	for deadline := time.Now().Add(15 * time.Second); ; {
		out, err := exec.Command(bin, "group", "describe", "billing", "--server", brokerHTTP).CombinedOutput()
		describe = string(out)
		if err == nil && strings.Contains(describe, "billing-1") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sluice group describe billing: %v\n%s", err, describe)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !regexp.MustCompile(`(?m)^\S+ +kafka +billing-1 +\S+ +\S+ +2 +-$`).MatchString(describe) {
		t.Errorf("sluice group describe billing: got\n%s\nwant a member row of kind kafka, instance billing-1, 2 partitions", describe)
	}
	member.Close()

	cluster := startSluice(t, bin, "serve", "--kafka-brokers", kafkaAddr, "--http-addr", "127.0.0.1:0", "--log-format", "json")
	base := "http://" + cluster.waitAddr(t)
	waitReady(t, base)
	if status, body := httpPost(t, base+"/v1/topics", `{"name":"orders","partitions":3}`); status != 201 {
		t.Fatalf("create a topic in cluster mode: got %d %s", status, body)
	}
	if status, body := httpPost(t, base+"/v1/topics/orders/records", `{"records":[{"value":"x"},{"value":"y"},{"value":"z"}]}`); status != 200 {
		t.Fatalf("produce in cluster mode: got %d %s", status, body)
	}
	if got := consumeValues(t, kafkaAddr, "orders", 3); !slices.Equal(got, []string{`"x"`, `"y"`, `"z"`}) {
		t.Errorf("consumed from the broker: got %v, want the JSON values \"x\", \"y\", \"z\"", got)
	}
	if strings.Contains(cluster.output(), "kafka listening") {
		t.Error("cluster mode logged a Kafka listener")
	}

	for _, p := range []*sluiceProc{cluster, broker} {
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if code := p.waitExit(t, 15*time.Second); code != 0 {
			t.Fatalf("after SIGTERM: got exit code %d, want 0:\n%s", code, p.output())
		}
	}
}

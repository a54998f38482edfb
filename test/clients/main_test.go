// Package clients runs real Kafka clients against the built `sluice serve`
// binary: kcat (librdkafka), franz-go, Sarama and kafkajs. Each test starts
// its own server on a temporary data directory with port-0 listeners and
// runs the client as a separate process where it has one: kcat and node are
// programs; the franz-go group members and the Sarama client run in child
// processes that re-execute this test binary (see child_test.go); the
// franz-go producer and admin checks run in the test process.
//
// TestMain builds the binary from this checkout, or uses the one
// SLUICE_TEST_BINARY names. A test skips when its client is missing, unless
// SLUICE_TEST_REQUIRE_CLIENTS is set (scripts/test sets it), in which case it
// fails. SLUICE_TEST_SERVER_LOG=1 prints the server's debug log after every
// test, not only failed ones.
package clients

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// sluiceBin is the `sluice` binary TestMain built.
var sluiceBin string

func TestMain(m *testing.M) {
	if role := os.Getenv(childRoleEnv); role != "" {
		os.Exit(runChild(role))
	}
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "sluice-clients-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if bin := os.Getenv("SLUICE_TEST_BINARY"); bin != "" {
		sluiceBin = bin
		return m.Run()
	}
	sluiceBin = filepath.Join(dir, "sluice")
	build := exec.Command("go", "build", "-o", sluiceBin, "github.com/sluice-dev/sluice/cmd/sluice")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "build sluice: %v\n", err)
		return 1
	}
	return m.Run()
}

// requireTool returns the path of a client program, or skips the test when
// it is missing and SLUICE_TEST_REQUIRE_CLIENTS is unset (fails when set).
func requireTool(t *testing.T, name, hint string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	missing(t, fmt.Sprintf("%s not found in PATH (%s)", name, hint))
	return ""
}

func missing(t *testing.T, what string) {
	t.Helper()
	if os.Getenv("SLUICE_TEST_REQUIRE_CLIENTS") != "" {
		t.Fatalf("%s, and SLUICE_TEST_REQUIRE_CLIENTS is set", what)
	}
	t.Skipf("%s; set SLUICE_TEST_REQUIRE_CLIENTS=1 to make this a failure (scripts/test installs it)", what)
}

// sluice is one running `sluice serve`.
type sluice struct {
	t         *testing.T
	kafkaAddr string
	httpAddr  string
	cmd       *exec.Cmd
	logMu     sync.Mutex
	logBuf    bytes.Buffer
	exited    chan struct{}
}

// startSluice starts `sluice serve` on a temporary data directory with
// port-0 listeners and waits until it is ready; it is stopped with SIGTERM
// (and must exit 0) at cleanup, its log printed when the test failed.
func startSluice(t *testing.T, extraArgs ...string) *sluice {
	t.Helper()
	args := append([]string{"serve",
		"--data-dir", t.TempDir(),
		"--http-addr", "127.0.0.1:0",
		"--kafka-addr", "127.0.0.1:0",
		"--fsync", "never",
		"--log-format", "json",
		"--log-level", "debug",
	}, extraArgs...)
	s := &sluice{t: t, exited: make(chan struct{})}
	s.cmd = exec.Command(sluiceBin, args...)
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	s.cmd.Stdout = io.Discard
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start sluice: %v", err)
	}
	addrs := make(chan [2]string, 1)
	go s.readLog(stderr, addrs)
	t.Cleanup(s.stop)
	select {
	case a := <-addrs:
		s.httpAddr, s.kafkaAddr = a[0], a[1]
	case <-s.exited:
		t.Fatalf("sluice serve exited before it was ready: %v\n%s", s.cmd.ProcessState, s.logText())
	case <-time.After(30 * time.Second):
		t.Fatalf("sluice serve not ready after 30s; log:\n%s", s.logText())
	}
	if s.kafkaAddr == "" {
		t.Fatalf("sluice serve is ready but logged no Kafka listener address; log:\n%s", s.logText())
	}
	return s
}

// readLog keeps the server's log and sends the listener addresses once it
// logs "ready".
func (s *sluice) readLog(r io.Reader, addrs chan<- [2]string) {
	defer close(s.exited)
	var httpAddr, kafkaAddr string
	sent := false
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Bytes()
		s.logMu.Lock()
		s.logBuf.Write(line)
		s.logBuf.WriteByte('\n')
		s.logMu.Unlock()
		if sent {
			continue
		}
		var rec struct {
			Msg       string `json:"msg"`
			Addr      string `json:"addr"`
			HTTPAddr  string `json:"http_addr"`
			KafkaAddr string `json:"kafka_addr"`
		}
		if json.Unmarshal(line, &rec) != nil {
			continue
		}
		msg := strings.ToLower(rec.Msg)
		switch {
		case strings.HasPrefix(msg, "http listening"):
			httpAddr = rec.Addr
		case strings.Contains(msg, "kafka") && strings.Contains(msg, "listening") && rec.Addr != "":
			kafkaAddr = rec.Addr
		case msg == "ready":
			if rec.HTTPAddr != "" {
				httpAddr = rec.HTTPAddr
			}
			if rec.KafkaAddr != "" {
				kafkaAddr = rec.KafkaAddr
			}
			addrs <- [2]string{httpAddr, kafkaAddr}
			sent = true
		}
	}
	_ = s.cmd.Wait()
}

func (s *sluice) logText() string {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	return s.logBuf.String()
}

func (s *sluice) stop() {
	if s.cmd.ProcessState == nil {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(20 * time.Second):
			s.t.Errorf("sluice serve did not exit 20s after SIGTERM; killing it")
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
	}
	if st := s.cmd.ProcessState; st != nil && st.ExitCode() != 0 {
		s.t.Errorf("sluice serve exited with %v after SIGTERM, want exit 0", st)
	}
	if s.t.Failed() || os.Getenv("SLUICE_TEST_SERVER_LOG") != "" {
		log := s.logText()
		if len(log) > 200<<10 && os.Getenv("SLUICE_TEST_SERVER_LOG") == "" {
			log = "...\n" + log[len(log)-200<<10:]
		}
		s.t.Logf("sluice serve log:\n%s", log)
	}
}

// httpGet GETs a path of the HTTP API and decodes the JSON answer into v.
func (s *sluice) httpGet(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.httpAddr+path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", path, resp.Status, body)
	}
	return json.Unmarshal(body, v)
}

// groupOffsets returns a group's committed offsets by topic and partition,
// from GET /v1/groups/{group}/offsets.
func (s *sluice) groupOffsets(ctx context.Context, group string) (map[string]map[int32]int64, error) {
	var out struct {
		Offsets []struct {
			Topic     string `json:"topic"`
			Partition int32  `json:"partition"`
			Offset    int64  `json:"offset"`
		} `json:"offsets"`
	}
	if err := s.httpGet(ctx, "/v1/groups/"+group+"/offsets", &out); err != nil {
		return nil, err
	}
	m := map[string]map[int32]int64{}
	for _, o := range out.Offsets {
		if m[o.Topic] == nil {
			m[o.Topic] = map[int32]int64{}
		}
		m[o.Topic][o.Partition] = o.Offset
	}
	return m, nil
}

// testContext is a context that ends with the test or after d.
func testContext(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// waitFor polls cond until it returns nil or ctx ends; then it fails the
// test with the last error.
func waitFor(t *testing.T, ctx context.Context, what string, cond func() error) {
	t.Helper()
	var err error
	for {
		if err = cond(); err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: %v", what, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// proc is a client child process whose output is kept; it is killed and
// reaped at cleanup if still running.
type proc struct {
	cmd    *exec.Cmd
	stdout lockedBuffer
	stderr lockedBuffer
	done   chan struct{}
	err    error
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) Bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Clone(l.b.Bytes())
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startProc starts cmd with stdin (nil: cmd's own, /dev/null unless set,
// e.g. by StdinPipe); the process is killed and
// reaped at cleanup.
func startProc(t *testing.T, cmd *exec.Cmd, stdin io.Reader) *proc {
	t.Helper()
	p := &proc{cmd: cmd, done: make(chan struct{})}
	if stdin != nil {
		cmd.Stdin = stdin
	}
	cmd.Stdout, cmd.Stderr = &p.stdout, &p.stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", cmd.Path, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// wait waits for the process to exit, at most until ctx ends (then kills
// it), and returns its error with its stderr.
func (p *proc) wait(ctx context.Context) error {
	select {
	case <-p.done:
	case <-ctx.Done():
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s: %w (killed); stderr:\n%s", p.name(), ctx.Err(), tail(p.stderr.String()))
	}
	if p.err != nil {
		return fmt.Errorf("%s: %w; stderr:\n%s", p.name(), p.err, tail(p.stderr.String()))
	}
	return nil
}

func (p *proc) name() string { return strings.Join(p.cmd.Args, " ") }

// run runs cmd to completion within ctx and returns its stdout.
func run(t *testing.T, ctx context.Context, cmd *exec.Cmd, stdin io.Reader) ([]byte, error) {
	t.Helper()
	p := startProc(t, cmd, stdin)
	err := p.wait(ctx)
	return p.stdout.Bytes(), err
}

// tail returns the last 8 KiB of s.
func tail(s string) string {
	if len(s) > 8<<10 {
		return "..." + s[len(s)-8<<10:]
	}
	return s
}

var errNotYet = errors.New("not yet")

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
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/sluice-dev/sluice/internal/client"
)

// TestMain lets the test binary run as the sluice command inside scripts.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){"sluice": main})
}

// TestScripts runs the scripts in testdata/script: the client commands
// end to end against a real `sluice serve`.
//
// Commands besides testscript's own:
//
//	serve                       start sluice serve on a free port in $WORK/data,
//	                            working in $WORK; sets SLUICE_SERVER and SERVER
//	                            to its URL
//	stopserve                   SIGTERM it and check that it exits 0
//	genlines N FILE             write N test lines to FILE
//	cmpsorted FILE WANT...      FILE's lines are those of the WANT files, in any order
//	countlines FILE N           FILE has N lines
//	waitcommitted GROUP TOPIC N wait until GROUP's committed offsets in TOPIC add up to N
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: filepath.Join("testdata", "script"),
		Setup: func(env *testscript.Env) error {
			// The scripts say which server they use.
			for _, kv := range os.Environ() {
				if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "SLUICE_") {
					env.Setenv(k, "")
				}
			}
			// A race-enabled binary sleeps a second at exit unless told
			// not to; the scripts run some sixty of them.
			env.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
			env.Values[serverKey{}] = new(serverSlot)
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"serve":         cmdServe,
			"stopserve":     cmdStopServe,
			"genlines":      cmdGenLines,
			"cmpsorted":     cmdCmpSorted,
			"countlines":    cmdCountLines,
			"waitcommitted": cmdWaitCommitted,
		},
		RequireExplicitExec: true,
	})
}

// scriptServer is a sluice serve started by a script.
type scriptServer struct {
	cmd  *exec.Cmd
	done chan struct{}
	log  *os.File
}

// serverKey keys the script's serverSlot in its testscript values.
type serverKey struct{}

type serverSlot struct{ s *scriptServer }

func slot(ts *testscript.TestScript) *serverSlot { return ts.Value(serverKey{}).(*serverSlot) }

func cmdServe(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) > 0 {
		ts.Fatalf("usage: serve")
	}
	if slot(ts).s != nil {
		ts.Fatalf("serve: a server is running already")
	}
	bin := lookPath(ts, "sluice")
	cmd := exec.Command(bin, "serve", "--data-dir", ts.MkAbs("data"), "--http-addr", "127.0.0.1:0", "--kafka-addr", "127.0.0.1:0", "--log-format", "json")
	cmd.Env = environ(ts)
	// Relative paths in specs (a sink's) are the server's: under $WORK.
	cmd.Dir = ts.MkAbs(".")
	stderr, err := cmd.StderrPipe()
	ts.Check(err)
	log, err := os.Create(ts.MkAbs("serve.log"))
	ts.Check(err)
	ts.Check(cmd.Start())
	s := &scriptServer{cmd: cmd, done: make(chan struct{}), log: log}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(log, line)
			var rec struct{ Msg, Addr string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "http listening" {
				select {
				case addr <- rec.Addr:
				default:
				}
			}
		}
		io.Copy(io.Discard, stderr)
		cmd.Wait()
		log.Close()
		close(s.done)
	}()
	ts.Defer(func() {
		cmd.Process.Kill()
		<-s.done
	})
	var base string
	select {
	case a := <-addr:
		base = "http://" + a
	case <-s.done:
		ts.Fatalf("sluice serve exited (%v) before listening; see serve.log", cmd.ProcessState)
	case <-time.After(30 * time.Second):
		ts.Fatalf("sluice serve did not log its HTTP address")
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			ts.Fatalf("sluice serve not ready after 30s: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	ts.Setenv("SERVER", base)
	ts.Setenv("SLUICE_SERVER", base)
	slot(ts).s = s
}

func cmdStopServe(ts *testscript.TestScript, neg bool, args []string) {
	s := slot(ts).s
	if neg || len(args) > 0 || s == nil {
		ts.Fatalf("usage: stopserve, after serve")
	}
	ts.Check(s.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		ts.Fatalf("sluice serve still running 30s after SIGTERM")
	}
	if code := s.cmd.ProcessState.ExitCode(); code != 0 {
		ts.Fatalf("sluice serve exited with code %d after SIGTERM; see serve.log", code)
	}
	slot(ts).s = nil
}

// lookPath finds name in the script's PATH, where testscript puts the
// commands of TestMain.
func lookPath(ts *testscript.TestScript, name string) string {
	for _, dir := range filepath.SplitList(ts.Getenv("PATH")) {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p
		}
	}
	ts.Fatalf("%s not in the script's PATH", name)
	return ""
}

// environ returns the script's environment: the little a server needs,
// and WORK, for ${WORK} in the specs a script applies.
func environ(ts *testscript.TestScript) []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "GOCOVERDIR", "GORACE", "WORK"} {
		if v := ts.Getenv(k); v != "" {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// testLine is line i (from 1) of genlines: plain text, compact JSON,
// JSON with spaces, and now and then an empty line.
func testLine(i int) string {
	switch {
	case i%1000 == 500:
		return ""
	case i%3 == 0:
		return fmt.Sprintf(`{"n":%d,"s":"line %05d"}`, i, i)
	case i%3 == 1:
		return fmt.Sprintf("line %05d: plain text, with \"quotes\" and a tab\there", i)
	}
	return fmt.Sprintf(`[%d, "spaced json"]`, i)
}

func cmdGenLines(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: genlines N FILE")
	}
	n, err := strconv.Atoi(args[0])
	ts.Check(err)
	var b strings.Builder
	for i := 1; i <= n; i++ {
		b.WriteString(testLine(i))
		b.WriteByte('\n')
	}
	ts.Check(os.WriteFile(ts.MkAbs(args[1]), []byte(b.String()), 0o644))
}

// scriptLines returns the lines of a file, or of stdout or stderr.
func scriptLines(ts *testscript.TestScript, name string) []string {
	s := ts.ReadFile(name)
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

func cmdCmpSorted(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: cmpsorted FILE WANT...")
	}
	got := scriptLines(ts, args[0])
	var want []string
	for _, w := range args[1:] {
		want = append(want, scriptLines(ts, w)...)
	}
	slices.Sort(got)
	slices.Sort(want)
	if len(got) != len(want) {
		ts.Fatalf("%s has %d lines, want %d", args[0], len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			ts.Fatalf("%s differs from %v: sorted line %d is %q, want %q", args[0], args[1:], i+1, got[i], want[i])
		}
	}
}

func cmdCountLines(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: countlines FILE N")
	}
	n, err := strconv.Atoi(args[1])
	ts.Check(err)
	if got := len(scriptLines(ts, args[0])); (got == n) == neg {
		ts.Fatalf("%s has %d lines; want %s%d", args[0], got, map[bool]string{true: "not ", false: ""}[neg], n)
	}
}

func cmdWaitCommitted(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: waitcommitted GROUP TOPIC N")
	}
	want, err := strconv.ParseInt(args[2], 10, 64)
	ts.Check(err)
	cl, err := client.New(ts.Getenv("SERVER"))
	ts.Check(err)
	deadline := time.Now().Add(30 * time.Second)
	var sum int64
	for time.Now().Before(deadline) {
		offs, err := cl.FetchOffsets(context.Background(), args[0])
		ts.Check(err)
		sum = 0
		for _, o := range offs {
			if o.Topic == args[1] {
				sum += o.Offset
			}
		}
		if sum == want {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	ts.Fatalf("group %s's offsets in %s add up to %d after 30s, want %d", args[0], args[1], sum, want)
}

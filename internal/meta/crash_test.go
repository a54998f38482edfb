//go:build unix

package meta

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The crash test re-executes the test binary as TestHelperCommitter, which
// commits in a loop and prints a line for every acknowledged call; the
// parent kills it with SIGKILL at a random moment and checks the file.
const (
	crashEnvPath  = "SLUICE_META_CRASH_PATH"
	crashEnvStart = "SLUICE_META_CRASH_START"
	crashEnvSeed  = "SLUICE_META_CRASH_SEED" // set to replay a failed run
	crashTopic    = "crash"
	crashParts    = 4
	crashKVNS     = "checkpoint"
	crashKVKey    = "n"
)

var crashGroups = []string{"g0", "g1", "g2"}

// TestHelperCommitter is the child process of TestCrashKeepsAcknowledged.
// Commit n goes to group n%3 and sets every partition of the topic to
// offset n with metadata "m<n>"; then the checkpoint key is set to n.
func TestHelperCommitter(t *testing.T) {
	path := os.Getenv(crashEnvPath)
	if path == "" {
		t.Skip("helper process of TestCrashKeepsAcknowledged")
	}
	start, err := strconv.ParseInt(os.Getenv(crashEnvStart), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(path, Options{Timeout: 10 * time.Second})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	commits := make([]OffsetCommit, crashParts)
	for n := start; ; n++ {
		group := crashGroups[n%int64(len(crashGroups))]
		for p := range commits {
			commits[p] = OffsetCommit{Topic: crashTopic, Partition: int32(p), Offset: n, LeaderEpoch: -1, Metadata: "m" + strconv.FormatInt(n, 10)}
		}
		if err := s.CommitOffsets(group, commits); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		fmt.Printf("ack offsets %s %d\n", group, n) // one write(2); a pipe never splits it
		if err := s.Put(crashKVNS, crashKVKey, []byte(strconv.FormatInt(n, 10))); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		fmt.Printf("ack kv %d\n", n)
	}
}

func TestCrashKeepsAcknowledged(t *testing.T) {
	if os.Getenv(crashEnvPath) != "" {
		t.Skip("in the helper process")
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv(crashEnvSeed); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("seed %d (%s=%d to replay)", seed, crashEnvSeed, seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	cycles := 20
	if testing.Short() {
		cycles = 5
	}

	path := filepath.Join(t.TempDir(), "meta.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	putTopic(t, s, crashTopic, crashParts)
	s.Close()

	lastAck := map[string]int64{} // group -> last acknowledged offset, over all cycles
	lastKV := int64(-1)
	totalAcks := 0
	for cycle := range cycles {
		start := int64(cycle) * 1_000_000 // later cycles commit larger offsets
		// Kill either after a random delay, which may land in process
		// start-up or Open, or a random moment after the k-th ack.
		var delay time.Duration
		acksBeforeKill := 0
		if rng.IntN(4) == 0 {
			delay = time.Duration(rng.Int64N(int64(30 * time.Millisecond)))
		} else {
			acksBeforeKill = 1 + rng.IntN(60)
			delay = time.Duration(rng.Int64N(int64(time.Millisecond)))
		}
		lines, stderr := runAndKill(t, path, start, acksBeforeKill, delay)
		totalAcks += len(lines)

		maxAttempted := start - 1 // the child can have committed one call beyond its last ack
		for _, l := range lines {
			f := strings.Fields(l)
			switch {
			case len(f) == 4 && f[1] == "offsets":
				n, err := strconv.ParseInt(f[3], 10, 64)
				if err != nil {
					t.Fatalf("bad line %q", l)
				}
				lastAck[f[2]] = n
				maxAttempted = max(maxAttempted, n)
			case len(f) == 3 && f[1] == "kv":
				n, err := strconv.ParseInt(f[2], 10, 64)
				if err != nil {
					t.Fatalf("bad line %q", l)
				}
				lastKV = n
				maxAttempted = max(maxAttempted, n)
			default:
				t.Fatalf("bad line %q", l)
			}
		}
		maxAttempted++

		s, err := Open(path, Options{Timeout: 5 * time.Second})
		if err != nil {
			t.Fatalf("cycle %d: reopen after SIGKILL: %v\nchild stderr:\n%s", cycle, err, stderr)
		}
		checkDB(t, s)
		verifyCrashState(t, s, cycle, lastAck, lastKV, maxAttempted)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if totalAcks == 0 {
		t.Fatal("no cycle acknowledged anything; the test checked nothing")
	}
	t.Logf("%d cycles, %d acknowledged calls", cycles, totalAcks)
}

// verifyCrashState checks that every group holds its last acknowledged
// commit or a later one the child made, on every partition alike (one
// call, one transaction), and the same for the checkpoint key.
func verifyCrashState(t *testing.T, s *Store, cycle int, lastAck map[string]int64, lastKV, maxAttempted int64) {
	t.Helper()
	for gi, g := range crashGroups {
		got, err := s.FetchOffsets(g)
		if err != nil {
			t.Fatalf("cycle %d: FetchOffsets(%s): %v", cycle, g, err)
		}
		want, acked := lastAck[g]
		if len(got) == 0 {
			if acked {
				t.Fatalf("cycle %d: group %s lost its acknowledged offset %d", cycle, g, want)
			}
			continue
		}
		if len(got) != crashParts {
			t.Fatalf("cycle %d: group %s has %d partitions committed, want %d (a half-written commit): %+v", cycle, g, len(got), crashParts, got)
		}
		n := got[0].Offset
		for p, c := range got {
			if c.Partition != int32(p) || c.Offset != n || c.Metadata != "m"+strconv.FormatInt(n, 10) || c.LeaderEpoch != -1 {
				t.Fatalf("cycle %d: group %s: partitions disagree (a half-written commit): %+v", cycle, g, got)
			}
		}
		if n%int64(len(crashGroups)) != int64(gi) || n > maxAttempted {
			t.Fatalf("cycle %d: group %s holds offset %d, which no call committed to it", cycle, g, n)
		}
		if acked && n < want {
			t.Fatalf("cycle %d: group %s holds offset %d, want its last acknowledged %d or later", cycle, g, n, want)
		}
	}
	v, ok, err := s.Get(crashKVNS, crashKVKey)
	if err != nil {
		t.Fatalf("cycle %d: Get: %v", cycle, err)
	}
	if !ok {
		if lastKV >= 0 {
			t.Fatalf("cycle %d: checkpoint %d lost", cycle, lastKV)
		}
		return
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil || n < lastKV || n > maxAttempted {
		t.Fatalf("cycle %d: checkpoint %q, want a number in [%d, %d]", cycle, v, lastKV, maxAttempted)
	}
}

// runAndKill starts the helper, waits for acksBeforeKill acknowledgements
// and then delay, kills it with SIGKILL, and returns every ack line it
// printed and its stderr.
func runAndKill(t *testing.T, path string, start int64, acksBeforeKill int, delay time.Duration) ([]string, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperCommitter$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnvPath+"="+path, crashEnvStart+"="+strconv.FormatInt(start, 10))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}

	var (
		mu    sync.Mutex
		lines []string
	)
	reached := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if !strings.HasPrefix(sc.Text(), "ack ") {
				continue // test framework output
			}
			mu.Lock()
			lines = append(lines, sc.Text())
			if len(lines) == acksBeforeKill {
				close(reached)
			}
			mu.Unlock()
		}
	}()

	if acksBeforeKill > 0 {
		select {
		case <-reached:
		case <-done:
			_ = cmd.Wait()
			t.Fatalf("helper exited before %d acks:\n%s", acksBeforeKill, stderr.String())
		case <-time.After(60 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			_ = cmd.Wait()
			t.Fatalf("helper made fewer than %d acks in 60s:\n%s", acksBeforeKill, stderr.String())
		}
	}
	time.Sleep(delay)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill helper: %v", err)
	}
	<-done // the pipe reaches EOF once the process is gone
	err = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("helper did not die of SIGKILL: %v\n%s", err, stderr.String())
	}
	mu.Lock()
	defer mu.Unlock()
	return lines, stderr.String()
}

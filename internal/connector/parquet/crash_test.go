package parquet

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/connector"
)

// crashChildEnv, set to a directory, makes TestCrashMidFile the child: it
// writes there and waits to be killed.
const crashChildEnv = "SLUICE_PARQUET_CRASH_CHILD"

// crashChild flushes one file, stages a second one far enough that row
// groups of it are on disk, says "ready" and waits for SIGKILL.
func crashChild(dir string) {
	ctx := context.Background()
	part := func(*connector.Record) (string, error) { return "dt=2026-12-02", nil }
	s, err := New(ctx, Options{Config: Config{Path: dir, RowGroupBytes: 1 << 10}, Pipeline: "crash", Partition: part})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	noReject := func(context.Context, []connector.Rejection) error { return nil }
	if err := s.Write(ctx, &connector.Batch{Records: crashRecords(0, 100), Reject: noReject}); err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	if err := s.Flush(ctx); err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	for i := range 10 {
		if err := s.Write(ctx, &connector.Batch{Records: crashRecords(int64(100+i*100), 100), Reject: noReject}); err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
	}
	fmt.Println("ready")
	time.Sleep(time.Minute) // killed long before
	os.Exit(2)
}

func crashRecords(first int64, n int) []*connector.Record {
	out := make([]*connector.Record, n)
	for i := range out {
		out[i] = rec(first+int64(i), fmt.Sprintf(`{"n":%d,"s":"%032d"}`, first+int64(i), first+int64(i)))
	}
	return out
}

// TestCrashMidFile kills a process that is writing a file with SIGKILL and
// checks that only the complete file is visible, and that New removes the
// temporary file (of this pipeline only).
func TestCrashMidFile(t *testing.T) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(dir)
		return
	}
	if testing.Short() {
		t.Skip("starts a child process")
	}
	dir := t.TempDir()
	partDir := filepath.Join(dir, "dt=2026-12-02")
	if err := os.MkdirAll(partDir, 0o755); err != nil {
		t.Fatal(err)
	}
	// Temporary files of other pipelines, one whose name has this one's
	// as a prefix: not this sink's to remove.
	others := []string{
		filepath.Join(partDir, ".crash-eu-20261202T101500-0001.parquet.tmp"),
		filepath.Join(dir, ".other-20261202T101500-0001.parquet.tmp"),
	}
	for _, f := range others {
		if err := os.WriteFile(f, []byte("someone else's"), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashMidFile$", "-test.v")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if line := sc.Text(); line == "ready" || strings.HasPrefix(line, "error:") {
				ready <- line
				return
			}
		}
		ready <- "child exited: " + fmt.Sprint(sc.Err())
	}()
	select {
	case line := <-ready:
		if line != "ready" {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("child: %s", line)
		}
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatal("child not ready after 30s")
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("got child exit %v, want killed", err)
	}

	complete, temps := listFiles(t, dir)
	if len(complete) != 1 {
		t.Fatalf("got complete files %q, want only the flushed one", complete)
	}
	var ownTemps []string
	for _, f := range temps {
		if tmpPattern("crash").MatchString(filepath.Base(f)) {
			ownTemps = append(ownTemps, f)
			st, err := os.Stat(filepath.Join(dir, f))
			if err != nil || st.Size() == 0 {
				t.Errorf("temporary file %s: got %v, size 0: want row groups written before the crash", f, err)
			}
		}
	}
	if len(ownTemps) != 1 {
		t.Fatalf("got temporary files %q of the crashed sink, want one", ownTemps)
	}
	// The visible file is whole and holds exactly the flushed batch.
	rows := readParquet(t, filepath.Join(dir, complete[0])).rows
	var want []map[string]any
	for i := range int64(100) {
		want = append(want, meta(i, map[string]any{"n": i, "s": fmt.Sprintf("%032d", i)}))
	}
	if !reflect.DeepEqual(rows, want) {
		t.Errorf("got %d rows in the complete file, want the %d flushed ones", len(rows), len(want))
	}

	// A new sink of the pipeline removes its temporary file and no other.
	s := newSink(t, Options{Config: Config{Path: dir}, Pipeline: "crash"})
	complete2, temps2 := listFiles(t, dir)
	if !slices.Equal(complete2, complete) {
		t.Errorf("got complete files %q after New, want %q", complete2, complete)
	}
	var wantTemps []string
	for _, f := range others {
		rel, _ := filepath.Rel(dir, f)
		wantTemps = append(wantTemps, rel)
	}
	slices.Sort(wantTemps)
	if !slices.Equal(temps2, wantTemps) {
		t.Errorf("got temporary files %q after New, want only the other pipelines' %q", temps2, wantTemps)
	}
	_ = s
}

package logstore

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
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

	"github.com/sluice-dev/sluice/internal/record"
)

// The crash test runs a child process (this test binary, re-executed) that
// appends with fsync=always from several goroutines and prints every
// acknowledged batch. The parent SIGKILLs it at a random moment, reopens the
// log and checks that every acknowledged batch is there, byte for byte, at
// the offsets it was given, and that offsets run on without gaps or reuse.

const (
	crashTopic      = "crash"
	crashPartitions = 6
	crashWriters    = 4
)

// crashBatch is the batch writer w sends as its seq-th; the parent rebuilds
// it to compare bytes.
func crashBatch(w, seq int) []byte {
	n := 1 + (w*7+seq)%20
	return makeBatch(n, 64+(seq%5)*100, int64(w)<<32|int64(seq), w<<20|seq)
}

func TestCrashChild(t *testing.T) {
	dir := os.Getenv("SLUICE_CRASH_CHILD_DIR")
	if dir == "" {
		t.Skip("run by TestCrashRecovery")
	}
	l, err := Open(context.Background(), Options{
		Dir: filepath.Join(dir, "log"), Catalog: &fileCatalog{path: filepath.Join(dir, "catalog.json")},
		Logger: quietLogger(), CheckpointInterval: 20 * time.Millisecond,
		// Segments roll often so kills land around rolls too.
	})
	if err != nil {
		fmt.Printf("open failed: %v\n", err)
		os.Exit(3)
	}
	out := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	fmt.Fprintln(out, "ready")
	out.Flush()
	start, _ := strconv.Atoi(os.Getenv("SLUICE_CRASH_CHILD_SEQ"))
	var wg sync.WaitGroup
	for w := 0; w < crashWriters; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := start; ; seq++ {
				part := int32((w + seq) % crashPartitions)
				p, _ := l.Partition(crashTopic, part)
				b := crashBatch(w, seq)
				res, err := p.Append(context.Background(), b)
				if err != nil {
					fmt.Printf("append failed: %v\n", err)
					os.Exit(4)
				}
				mu.Lock()
				// One write per line, flushed before the next append: an
				// acknowledged batch reaches the parent unless the kill
				// lands inside this write, which leaves at most one
				// partial line.
				fmt.Fprintf(out, "ack %d %d %d %d %d\n", part, res.BaseOffset, res.LastOffset, w, seq)
				out.Flush()
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

type ack struct {
	part       int32
	base, last int64
	w, seq     int
}

func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test skipped in -short mode")
	}
	cycles := 50
	if os.Getenv("SLUICE_TEST_LONG") != "" {
		cycles = 1000
	}
	dir, opts := newCrashLog(t, crashTopic, crashPartitions, "65536")
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	var acked []ack
	hw := make([]int64, crashPartitions)
	seq := 0
	for cycle := 0; cycle < cycles; cycle++ {
		cmd, stdout := startCrashChild(t, "TestCrashChild", "SLUICE_CRASH_CHILD_DIR="+dir, "SLUICE_CRASH_CHILD_SEQ="+strconv.Itoa(seq))
		lines := make(chan string, 1024)
		go func() {
			defer close(lines)
			r := bufio.NewReader(stdout)
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					return // a partial last line was never fully acknowledged
				}
				lines <- strings.TrimSuffix(line, "\n")
			}
		}()
		if l := <-lines; l != "ready" {
			t.Fatalf("cycle %d: child said %q", cycle, l)
		}
		killAfter := time.Duration(rng.IntN(150)) * time.Millisecond
		time.AfterFunc(killAfter, func() { _ = cmd.Process.Signal(syscall.SIGKILL) })
		var got []ack
		for l := range lines {
			var a ack
			if _, err := fmt.Sscanf(l, "ack %d %d %d %d %d", &a.part, &a.base, &a.last, &a.w, &a.seq); err != nil {
				t.Fatalf("cycle %d: child said %q", cycle, l)
			}
			got = append(got, a)
		}
		_ = cmd.Wait()
		for _, a := range got {
			if a.base < hw[a.part] {
				t.Fatalf("cycle %d: offset %d of partition %d acknowledged again (high watermark was %d)", cycle, a.base, a.part, hw[a.part])
			}
			seq = max(seq, a.seq+1)
		}
		acked = append(acked, got...)

		l, err := Open(context.Background(), opts)
		if err != nil {
			t.Fatalf("cycle %d: reopen: %v", cycle, err)
		}
		check := got
		if cycle%10 == 9 || cycle == cycles-1 {
			check = acked // every batch acknowledged so far, now and then
		}
		verifyCrashLog(t, cycle, l, check, hw)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		// Start the next child's sequence numbers past any it may have used
		// without acknowledging.
		seq += 1 << 10
	}
	t.Logf("%d cycles, %d acknowledged batches verified", cycles, len(acked))
}

// verifyCrashLog checks that each partition is a gapless run of valid
// batches holding every acknowledged one, and records its high watermark.
func verifyCrashLog(t *testing.T, cycle int, l *Log, acked []ack, hw []int64) {
	t.Helper()
	byBase := make([]map[int64][]byte, crashPartitions)
	for i := int32(0); i < crashPartitions; i++ {
		p, err := l.Partition(crashTopic, i)
		if err != nil {
			t.Fatal(err)
		}
		byBase[i] = map[int64][]byte{}
		next := int64(0)
		for _, b := range readAllBatches(t, p, 0) {
			h, _ := record.ParseHeader(b)
			if h.BaseOffset != next {
				t.Fatalf("cycle %d: partition %d: batch at %d follows offset %d: a gap or overlap", cycle, i, h.BaseOffset, next)
			}
			next = h.NextOffset()
			byBase[i][h.BaseOffset] = b
		}
		if next < hw[i] {
			t.Fatalf("cycle %d: partition %d: high watermark went back from %d to %d", cycle, i, hw[i], next)
		}
		hw[i] = next
	}
	for _, a := range acked {
		b, ok := byBase[a.part][a.base]
		if !ok {
			t.Fatalf("cycle %d: acknowledged batch at %d/%d is missing", cycle, a.part, a.base)
		}
		want := crashBatch(a.w, a.seq)
		record.SetBaseOffset(want, a.base)
		if !bytes.Equal(b, want) {
			t.Fatalf("cycle %d: acknowledged batch at %d/%d differs from what was written", cycle, a.part, a.base)
		}
		if h, _ := record.ParseHeader(b); h.LastOffset() != a.last {
			t.Fatalf("cycle %d: batch at %d/%d ends at %d, acknowledged as %d", cycle, a.part, a.base, h.LastOffset(), a.last)
		}
	}
}

// newCrashLog creates a log with one topic in a new directory for a crash
// test, closes it, and returns the directory and the options to reopen it.
func newCrashLog(t *testing.T, topicName string, partitions int32, segmentBytes string) (string, Options) {
	t.Helper()
	dir := t.TempDir()
	cat := &fileCatalog{path: filepath.Join(dir, "catalog.json")}
	opts := Options{Dir: filepath.Join(dir, "log"), Catalog: cat, Logger: quietLogger()}
	l, err := Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.CreateTopic(context.Background(), topicName, partitions, map[string]string{"segment.bytes": segmentBytes}); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, opts
}

// startCrashChild starts this test binary running only the test named run,
// with env added to its environment, and returns it with its stdout.
func startCrashChild(t *testing.T, run string, env ...string) (*exec.Cmd, io.ReadCloser) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+run+"$", "-test.v=false")
	cmd.Env = append(os.Environ(), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, stdout
}

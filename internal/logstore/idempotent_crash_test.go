package logstore

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/record"
)

// The idempotence crash test runs a child that appends idempotent batches
// with fsync=always, one producer per partition, and prints each
// acknowledgement. The parent SIGKILLs it, reopens the log and retries,
// as a producer whose acknowledgements were lost would, the last four
// acknowledged batches of every producer and the one after them, which may
// or may not have reached the disk: five in flight. The acknowledged ones must come back
// as duplicates with their original offsets; every (producer, sequence)
// must be stored exactly once.

const (
	idemCrashTopic      = "idem-crash"
	idemCrashPartitions = 3
)

// idemCrashBatch is the batch of producer pid with sequence seq; the
// parent rebuilds it to retry it.
func idemCrashBatch(t testing.TB, pid int64, seq int32) []byte {
	return idemBatch(t, pid, 0, seq, 1+int(seq%3))
}

func idemCrashPID(cycle, part int) int64 { return int64(cycle*idemCrashPartitions + part) }

func TestIdempotentCrashChild(t *testing.T) {
	dir := os.Getenv("SLUICE_IDEM_CRASH_DIR")
	if dir == "" {
		t.Skip("run by TestIdempotentCrash")
	}
	cycle, _ := strconv.Atoi(os.Getenv("SLUICE_IDEM_CRASH_CYCLE"))
	l, err := Open(context.Background(), Options{
		Dir: filepath.Join(dir, "log"), Catalog: &fileCatalog{path: filepath.Join(dir, "catalog.json")},
		Logger: quietLogger(), CheckpointInterval: 10 * time.Millisecond,
	})
	if err != nil {
		fmt.Printf("open failed: %v\n", err)
		os.Exit(3)
	}
	out := os.Stdout // unbuffered: a line printed is an acknowledgement the parent sees
	var mu sync.Mutex
	fmt.Fprintln(out, "ready")
	var wg sync.WaitGroup
	for part := 0; part < idemCrashPartitions; part++ {
		wg.Go(func() {
			p, _ := l.Partition(idemCrashTopic, int32(part))
			pid := idemCrashPID(cycle, part)
			for seq := int32(0); ; {
				b := idemCrashBatch(t, pid, seq)
				h, _ := record.ParseHeader(b)
				res, err := p.Append(context.Background(), b)
				if err != nil {
					fmt.Printf("append failed: %v\n", err)
					os.Exit(4)
				}
				mu.Lock()
				fmt.Fprintf(out, "ack %d %d %d\n", part, seq, res.BaseOffset)
				mu.Unlock()
				seq += h.LastOffsetDelta + 1
			}
		})
	}
	wg.Wait()
}

func TestIdempotentCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test skipped in -short mode")
	}
	cycles := 8
	if os.Getenv("SLUICE_TEST_LONG") != "" {
		cycles = 200
	}
	dir, opts := newCrashLog(t, idemCrashTopic, idemCrashPartitions, "16384")
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 11))
	for cycle := 0; cycle < cycles; cycle++ {
		cmd, stdout := startCrashChild(t, "TestIdempotentCrashChild", "SLUICE_IDEM_CRASH_DIR="+dir, "SLUICE_IDEM_CRASH_CYCLE="+strconv.Itoa(cycle))
		sc := bufio.NewScanner(stdout)
		if !sc.Scan() || sc.Text() != "ready" {
			t.Fatalf("cycle %d: child did not start: %q", cycle, sc.Text())
		}
		time.AfterFunc(time.Duration(20+rng.IntN(150))*time.Millisecond, func() { _ = cmd.Process.Signal(syscall.SIGKILL) })
		type acked struct{ seq, base int32 }
		acks := make([][]acked, idemCrashPartitions)
		for sc.Scan() {
			line := sc.Text()
			var part, seq int32
			var base int64
			if _, err := fmt.Sscanf(line, "ack %d %d %d", &part, &seq, &base); err != nil {
				if strings.HasPrefix(line, "ack") {
					break // a line cut by the kill
				}
				t.Fatalf("cycle %d: child said %q", cycle, line)
			}
			acks[part] = append(acks[part], acked{seq, int32(base)})
		}
		_ = cmd.Wait()

		l, err := Open(context.Background(), opts)
		if err != nil {
			t.Fatalf("cycle %d: reopen: %v", cycle, err)
		}
		for part := 0; part < idemCrashPartitions; part++ {
			p, _ := l.Partition(idemCrashTopic, int32(part))
			pid := idemCrashPID(cycle, part)
			as := acks[part]
			hw := p.HighWatermark()
			// Five in flight: the last four acknowledged and the one after,
			// which the log may hold without having acknowledged it.
			for _, a := range as[max(0, len(as)-(maxProducerBatches-1)):] {
				res, err := p.Append(context.Background(), idemCrashBatch(t, pid, a.seq))
				if err != nil || res.BaseOffset != int64(a.base) {
					t.Fatalf("cycle %d: partition %d: retry of acknowledged sequence %d: got %+v, %v; want the original at %d",
						cycle, part, a.seq, res, err, a.base)
				}
			}
			if got := p.HighWatermark(); got != hw {
				t.Fatalf("cycle %d: partition %d: retries of acknowledged batches moved the high watermark from %d to %d", cycle, part, hw, got)
			}
			next := int32(0)
			if len(as) > 0 {
				last := as[len(as)-1].seq
				next = last + 1 + last%3
			}
			if _, err := p.Append(context.Background(), idemCrashBatch(t, pid, next)); err != nil {
				t.Fatalf("cycle %d: partition %d: retry of the unacknowledged sequence %d: %v", cycle, part, next, err)
			}
			seen := map[int32]int{}
			for _, b := range readAllBatches(t, p, 0) {
				h, _ := record.ParseHeader(b)
				if h.ProducerID == pid {
					seen[h.BaseSequence]++
				}
			}
			for seq, n := range seen {
				if n != 1 {
					t.Fatalf("cycle %d: partition %d: sequence %d stored %d times", cycle, part, seq, n)
				}
			}
			if len(seen) < len(as)+1 {
				t.Fatalf("cycle %d: partition %d: %d batches stored, want at least the %d acknowledged and the retry", cycle, part, len(seen), len(as))
			}
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

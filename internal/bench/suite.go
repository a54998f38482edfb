package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/sluice-dev/sluice/internal/logstore"
)

// SuiteOptions configures Suite.
type SuiteOptions struct {
	Dir  string // scratch directory; every run works in a fresh subdirectory
	Runs int    // runs per measurement; medians are reported
	// FsyncBytes is how much each durable-append run writes (raw and log).
	FsyncBytes int64
	// InProcessBytes is how much each in-process append run writes.
	InProcessBytes int64
	// ReopenBytes is how much the reopen test fills before the SIGKILL;
	// 0 skips it.
	ReopenBytes int64
	// FillCommand runs Fill in a child process: the suite appends the
	// directory and the byte count as the last two arguments.
	FillCommand []string
	Out         io.Writer
}

const (
	mib = 1 << 20
	gib = 1 << 30
)

// Suite runs every log benchmark and prints a Markdown report.
func Suite(ctx context.Context, o SuiteOptions) error {
	if o.Runs <= 0 {
		o.Runs = 5
	}
	w := o.Out
	host, _ := os.Hostname()
	fmt.Fprintf(w, "# sluice bench log\n\nhost %s, %s/%s, %d CPUs, Go %s, %s\n\n", host, runtime.GOOS, runtime.GOARCH,
		runtime.NumCPU(), runtime.Version(), time.Now().UTC().Format(time.RFC3339))
	run := 0
	fresh := func() string {
		run++
		d := filepath.Join(o.Dir, fmt.Sprintf("run-%d", run))
		_ = os.RemoveAll(d)
		return d
	}

	// 1. Durable appends against the disk's own write+fdatasync bandwidth.
	var raw, raw4, logBW, ratio, ratio4 []float64
	for i := 0; i < o.Runs; i++ {
		d := fresh()
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		r, err := RawFsync(d, mib, o.FsyncBytes)
		if err != nil {
			return fmt.Errorf("raw fsync: %w", err)
		}
		r4, err := RawFsyncParallel(d, mib, o.FsyncBytes, 4)
		if err != nil {
			return fmt.Errorf("raw fsync: %w", err)
		}
		env, err := OpenEnv(ctx, d, logstore.SyncPolicy{Mode: logstore.SyncAlways})
		if err != nil {
			return err
		}
		res, err := Append(ctx, env, "durable", AppendConfig{Partitions: 6, Writers: 4, RecordSize: 1024, BatchRecs: 1000,
			TotalBytes: o.FsyncBytes, Sync: logstore.SyncPolicy{Mode: logstore.SyncAlways}})
		env.Close()
		os.RemoveAll(d)
		if err != nil {
			return err
		}
		bw := res.BytesPerSec()
		raw, raw4, logBW = append(raw, r), append(raw4, r4), append(logBW, bw)
		ratio, ratio4 = append(ratio, bw/r), append(ratio4, bw/r4)
		fmt.Fprintf(w, "- durable run %d: raw %.1f MB/s, raw x4 %.1f MB/s, log %.1f MB/s, log/raw %.2f, log/raw x4 %.2f\n",
			i+1, r/1e6, r4/1e6, bw/1e6, bw/r, bw/r4)
	}
	fmt.Fprintf(w, "\n| durable appends (fsync=always, 1 KiB records, ~1 MiB batches, 4 writers, 6 partitions) | median |\n|---|---|\n")
	fmt.Fprintf(w, "| raw sequential 1 MiB write+fdatasync, one file | %.1f MB/s |\n| the same on 4 files at once | %.1f MB/s |\n| log | %.1f MB/s |\n| **log / raw (one file)** | **%.2f** |\n| log / raw (4 files) | %.2f |\n\n",
		Median(raw)/1e6, Median(raw4)/1e6, Median(logBW)/1e6, Median(ratio), Median(ratio4))

	// 2 and 3. In-process appends of small records, then reads from the
	// page cache.
	var recRate, appendBW, readBW, readBW4 []float64
	for i := 0; i < o.Runs; i++ {
		d := fresh()
		pol := logstore.SyncPolicy{Mode: logstore.SyncNever}
		env, err := OpenEnv(ctx, d, pol)
		if err != nil {
			return err
		}
		res, err := Append(ctx, env, "small", AppendConfig{Partitions: 6, Writers: 4, RecordSize: 100, BatchRecs: 1000,
			TotalBytes: o.InProcessBytes, Sync: pol})
		if err != nil {
			env.Close()
			return err
		}
		r1, n1, err := ReadAll(ctx, env, "small", 1, 4*mib)
		if err != nil {
			env.Close()
			return err
		}
		r4, _, err := ReadAll(ctx, env, "small", 2, 4*mib)
		env.Close()
		os.RemoveAll(d)
		if err != nil {
			return err
		}
		if n1 != res.Bytes {
			return fmt.Errorf("read back %d bytes, appended %d", n1, res.Bytes)
		}
		recRate, appendBW = append(recRate, res.RecordsPerSec()), append(appendBW, res.BytesPerSec())
		readBW, readBW4 = append(readBW, r1), append(readBW4, r4)
		fmt.Fprintf(w, "- in-process run %d: %.2f M records/s (%.0f MB/s), read %.2f GB/s (1 reader), %.2f GB/s (2 readers)\n",
			i+1, res.RecordsPerSec()/1e6, res.BytesPerSec()/1e6, r1/1e9, r4/1e9)
	}
	fmt.Fprintf(w, "\n| in process (fsync=never, 100-byte records, batches of 1000, 4 writers, 6 partitions) | median |\n|---|---|\n")
	fmt.Fprintf(w, "| append | %.2f M records/s (%.0f MB/s) |\n| read back from the page cache, 1 reader | %.2f GB/s |\n| read back, 2 readers | %.2f GB/s |\n\n",
		Median(recRate)/1e6, Median(appendBW)/1e6, Median(readBW)/1e9, Median(readBW4)/1e9)

	// 4. Reopen after SIGKILL, and memory while filling.
	if o.ReopenBytes > 0 {
		if err := reopenSuite(ctx, o, fresh(), w); err != nil {
			return err
		}
	}
	return nil
}

func reopenSuite(ctx context.Context, o SuiteOptions, dir string, w io.Writer) error {
	defer os.RemoveAll(dir)
	var opens []float64
	var peak int64
	for i := 0; i < o.Runs; i++ {
		fill := int64(0)
		if i == 0 {
			fill = o.ReopenBytes
		}
		line, err := killChild(ctx, o.FillCommand, dir, fill)
		if err != nil {
			return err
		}
		if i == 0 {
			if _, err := fmt.Sscanf(line, "filled peak_rss %d", &peak); err != nil {
				return fmt.Errorf("fill child said %q", line)
			}
		}
		start := time.Now()
		env, err := OpenEnv(ctx, dir, logstore.SyncPolicy{Mode: logstore.SyncAlways})
		if err != nil {
			return fmt.Errorf("reopen after SIGKILL: %w", err)
		}
		took := time.Since(start)
		var size int64
		for _, t := range env.Log.Topics() {
			for _, p := range t.Partitions {
				size += p.SizeBytes
			}
		}
		env.Close()
		opens = append(opens, took.Seconds())
		fmt.Fprintf(w, "- reopen run %d: %.3f s with %.2f GiB in 6 partitions\n", i+1, took.Seconds(), float64(size)/gib)
	}
	fmt.Fprintf(w, "\n| reopen after SIGKILL (%.0f GiB in 6 partitions) | median |\n|---|---|\n| open until ready | %.3f s |\n| peak RSS of the writer while appending | %.0f MiB |\n\n",
		float64(o.ReopenBytes)/gib, Median(opens), float64(peak)/mib)
	return nil
}

// killChild starts the fill child, waits until it reports, lets it append
// a little longer, and SIGKILLs it mid-write.
func killChild(ctx context.Context, command []string, dir string, fill int64) (string, error) {
	args := append(append([]string(nil), command[1:]...), dir, fmt.Sprint(fill))
	cmd := exec.CommandContext(ctx, command[0], args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", err
	}
	if err := cmd.Start(); err != nil {
		return "", err
	}
	defer cmd.Wait()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		return "", fmt.Errorf("fill child: %w", err)
	}
	time.Sleep(500 * time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return "", err
	}
	return strings.TrimSpace(line), nil
}

// Fill is the child side of the reopen test: it opens the log in dir with
// fsync=interval:1s, appends ~1 MiB batches from 4 writers over 6 partitions
// until the topic holds fill bytes, prints "filled peak_rss <bytes>", and
// keeps appending until it is killed.
func Fill(ctx context.Context, dir string, fill int64, stdout io.Writer) error {
	pol := logstore.SyncPolicy{Mode: logstore.SyncInterval, Interval: time.Second}
	env, err := OpenEnv(ctx, dir, pol)
	if err != nil {
		return err
	}
	cfg := AppendConfig{Partitions: 6, Writers: 4, RecordSize: 1024, BatchRecs: 1000, TotalBytes: fill, Sync: pol}
	if _, err := env.Log.Topic("reopen"); err != nil {
		if _, err := Append(ctx, env, "reopen", cfg); err != nil {
			return err
		}
	}
	peak, err := PeakRSS()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "filled peak_rss %d\n", peak)
	batch, err := MakeBatch(1000, 1024)
	if err != nil {
		return err
	}
	for i := 0; ; i++ {
		p, err := env.Log.Partition("reopen", int32(i%6))
		if err != nil {
			return err
		}
		if _, err := p.Append(ctx, batch); err != nil {
			return err
		}
	}
}

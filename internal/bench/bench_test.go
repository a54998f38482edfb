package bench

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestFillChild is the reopen test's child process when the suite runs
// under go test.
func TestFillChild(t *testing.T) {
	if os.Getenv("SLUICE_BENCH_FILL_CHILD") == "" {
		t.Skip("run by TestSuite")
	}
	args := os.Args
	n, _ := strconv.ParseInt(args[len(args)-1], 10, 64)
	if err := Fill(context.Background(), args[len(args)-2], n, os.Stdout); err != nil {
		t.Fatal(err)
	}
}

// TestSuite runs the whole suite at a tiny scale: the numbers mean nothing,
// but every measurement, including the SIGKILL and reopen, must work.
func TestSuite(t *testing.T) {
	if testing.Short() {
		t.Skip("writes to disk")
	}
	t.Setenv("SLUICE_BENCH_FILL_CHILD", "1")
	var out bytes.Buffer
	err := Suite(context.Background(), SuiteOptions{
		Dir: t.TempDir(), Runs: 1, FsyncBytes: 4 << 20, InProcessBytes: 8 << 20, ReopenBytes: 24 << 20,
		FillCommand: []string{os.Args[0], "-test.run=^TestFillChild$", "--"},
		Out:         &out,
	})
	if err != nil {
		t.Fatalf("suite: %v\n%s", err, out.String())
	}
	for _, want := range []string{"log / raw", "M records/s", "GB/s", "open until ready", "peak RSS"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("report lacks %q:\n%s", want, out.String())
		}
	}
}

func TestMedian(t *testing.T) {
	for _, tt := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := Median(tt.in); got != tt.want {
			t.Fatalf("Median(%v): got %v, want %v", tt.in, got, tt.want)
		}
	}
}

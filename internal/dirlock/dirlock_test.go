package dirlock

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// helperEnv names the directory a re-executed test binary locks; see
// TestMain.
const helperEnv = "DIRLOCK_TEST_HOLD"

// TestMain lets the test binary act as a second process: with helperEnv set
// it takes the lock, says so on stdout and holds it until killed or until its
// stdin closes (so that it cannot outlive a test process that died).
func TestMain(m *testing.M) {
	if dir := os.Getenv(helperEnv); dir != "" {
		if _, err := Acquire(dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		fmt.Println("locked")
		io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestAcquireCreatesDirAndWritesPID(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	l, err := Acquire(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	b, err := os.ReadFile(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.TrimSpace(string(b)), strconv.Itoa(os.Getpid()); got != want {
		t.Fatalf("lock file holds %q, want %q", got, want)
	}
	if got := l.Dir(); got != dir {
		t.Fatalf("Dir() = %q, want %q", got, dir)
	}
}

func TestAcquireTwiceInOneProcess(t *testing.T) {
	dir := t.TempDir()
	l, err := Acquire(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Acquire(dir)
	var le *LockedError
	if !errors.As(err, &le) || !errors.Is(err, ErrLocked) {
		t.Fatalf("second Acquire: got %v, want a *LockedError", err)
	}
	if le.PID != os.Getpid() || le.Dir != dir {
		t.Fatalf("got %+v, want Dir %s PID %d", le, dir, os.Getpid())
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if err := l.Release(); err != nil {
		t.Fatalf("second Release: got %v, want nil", err)
	}
	l2, err := Acquire(dir)
	if err != nil {
		t.Fatalf("Acquire after Release: %v", err)
	}
	l2.Release()
}

func TestAcquireHeldByAnotherProcess(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+dir)
	cmd.Stderr = os.Stderr
	if _, err := cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	t.Cleanup(func() {
		if !killed {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "locked\n" {
		t.Fatalf("helper said %q, %v; want \"locked\"", line, err)
	}

	_, err = Acquire(dir)
	var le *LockedError
	if !errors.As(err, &le) {
		t.Fatalf("Acquire while the child holds the lock: got %v, want a *LockedError", err)
	}
	if le.PID != cmd.Process.Pid {
		t.Fatalf("got pid %d, want the child's %d", le.PID, cmd.Process.Pid)
	}
	want := fmt.Sprintf("data directory %s is in use by another sluice (pid %d)", dir, cmd.Process.Pid)
	if got := err.Error(); got != want {
		t.Fatalf("got error %q, want %q", got, want)
	}

	// SIGKILL gives the child no chance to clean up; the kernel must still
	// drop its lock.
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	killed = true
	deadline := time.Now().Add(5 * time.Second)
	for {
		l, err := Acquire(dir)
		if err == nil {
			l.Release()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Acquire after the holder was killed: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestAcquireUnusableDirectory(t *testing.T) {
	base := t.TempDir()
	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		dir  string
	}{
		{"path is a file", file},
		{"parent is a file", filepath.Join(file, "data")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, err := Acquire(tc.dir)
			if err == nil {
				l.Release()
				t.Fatal("got nil error, want one naming the directory")
			}
			if !strings.Contains(err.Error(), tc.dir) {
				t.Fatalf("got %q, want it to name %s", err, tc.dir)
			}
		})
	}
}

func TestAcquireReadOnlyDirectory(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root ignores directory permissions")
	}
	dir := filepath.Join(t.TempDir(), "ro")
	if err := os.Mkdir(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dir, 0o755) })
	_, err := Acquire(dir)
	want := "data directory " + dir + " is not writable: permission denied"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %q", err, want)
	}
}

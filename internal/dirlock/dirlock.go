// Package dirlock guarantees that at most one process uses a data directory
// at a time. It holds an exclusive flock(2) on <dir>/LOCK for as long as the
// process runs, and writes the holder's PID into that file so that a second
// process can say who is in the way.
//
// The kernel drops the lock when its holder exits, however it exits, so a
// crash (even SIGKILL) never leaves a stale lock behind: the LOCK file may
// remain, but its contents mean nothing unless someone holds the lock.
package dirlock

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// FileName is the name of the lock file inside the locked directory.
const FileName = "LOCK"

// ErrLocked is matched (with errors.Is) by the *LockedError that Acquire
// returns when another process holds the lock.
var ErrLocked = errors.New("data directory is in use")

// LockedError reports that another process holds a directory's lock.
type LockedError struct {
	Dir string
	// PID is the holder's process ID as written into the lock file, or 0 if
	// the file did not name one (the holder may have been between taking
	// the lock and writing its PID).
	PID int
}

func (e *LockedError) Error() string {
	if e.PID == 0 {
		return fmt.Sprintf("data directory %s is in use by another sluice (pid unknown)", e.Dir)
	}
	return fmt.Sprintf("data directory %s is in use by another sluice (pid %d)", e.Dir, e.PID)
}

// Is makes errors.Is(err, ErrLocked) true.
func (e *LockedError) Is(target error) bool { return target == ErrLocked }

// Lock is a held directory lock. Release gives it up; so does the process
// exiting.
type Lock struct {
	dir string

	mu sync.Mutex
	f  *os.File // nil once released
}

// Acquire creates dir if it is missing and takes its lock without waiting.
// If another process (or another Lock in this process) holds it, Acquire
// returns a *LockedError naming the directory and the holder's PID.
func Acquire(dir string) (*Lock, error) {
	if dir == "" {
		return nil, errors.New("data directory: no path given")
	}
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("data directory %s: cannot create it: %w", dir, err)
	}
	path := filepath.Join(dir, FileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("data directory %s is not writable: %w", dir, unwrapPath(err))
	}
	if err := flock(f); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, &LockedError{Dir: dir, PID: holderPID(path)}
		}
		return nil, fmt.Errorf("data directory %s: lock %s: %w", dir, path, err)
	}
	if err := writePID(f); err != nil {
		f.Close() // closing drops the lock
		return nil, fmt.Errorf("data directory %s is not writable: write %s: %w", dir, path, unwrapPath(err))
	}
	return &Lock{dir: dir, f: f}, nil
}

// Dir returns the absolute path of the locked directory.
func (l *Lock) Dir() string { return l.dir }

// Release gives the lock up. It is safe to call more than once; calls after
// the first return nil.
func (l *Lock) Release() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	f := l.f
	l.f = nil
	// Clear the PID first so the file never names a process that no longer
	// holds the lock; failing to is harmless, since the PID is only read
	// while the lock is held.
	_ = f.Truncate(0)
	unlockErr := unix.Flock(int(f.Fd()), unix.LOCK_UN)
	closeErr := f.Close()
	if err := errors.Join(unlockErr, closeErr); err != nil {
		return fmt.Errorf("release lock on data directory %s: %w", l.dir, err)
	}
	return nil
}

func flock(f *os.File) error {
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err != unix.EINTR {
			return err
		}
	}
}

func writePID(f *os.File) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	if _, err := f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0); err != nil {
		return err
	}
	return f.Sync()
}

// holderPID reads the PID the current holder wrote. The holder writes it
// just after taking the lock, so an empty file is retried for a moment.
func holderPID(path string) int {
	for range 20 {
		b, err := os.ReadFile(path)
		if err != nil {
			return 0
		}
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
			return pid
		}
		time.Sleep(5 * time.Millisecond)
	}
	return 0
}

// unwrapPath drops the *PathError wrapper, whose path the caller's message
// already names, keeping the operation's cause ("permission denied").
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

package logstore

import (
	"errors"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// FS is the file system the log writes through. The default is the
// operating system's; tests substitute one that injects faults (ENOSPC, EIO,
// a read-only volume) to check that the log fails safely.
//
// Implementations must be safe for concurrent use.
type FS interface {
	OpenFile(name string, flag int, perm os.FileMode) (File, error)
	Remove(name string) error
	RemoveAll(path string) error
	Rename(oldpath, newpath string) error
	// Link gives a file a second name (a hard link) on the same file
	// system.
	Link(oldname, newname string) error
	MkdirAll(path string, perm os.FileMode) error
	ReadDir(name string) ([]os.DirEntry, error)
	Stat(name string) (os.FileInfo, error)
	// SyncDir makes the directory's entries (creations, renames, removals)
	// durable.
	SyncDir(path string) error
}

// File is an open file of an FS. ReadAt and WriteAt may be called
// concurrently on disjoint ranges.
type File interface {
	io.ReaderAt
	io.WriterAt
	io.Closer
	// Sync makes the file's data durable; metadata that is not needed to
	// read the data back (such as mtime) may be left behind, as fdatasync.
	Sync() error
	Truncate(size int64) error
	Stat() (os.FileInfo, error)
	// Evict advises that the range [off, off+n), already durable, will not
	// be read soon, so that its cached pages can be reused. The data stays
	// readable; the advice may be ignored.
	Evict(off, n int64) error
}

// OSFS is the operating system's file system.
type OSFS struct{}

type osFile struct{ *os.File }

func (f osFile) Sync() error {
	for {
		err := unix.Fdatasync(int(f.Fd()))
		if !errors.Is(err, unix.EINTR) {
			if err != nil {
				return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: err}
			}
			return nil
		}
	}
}

func (f osFile) Evict(off, n int64) error {
	if err := unix.Fadvise(int(f.Fd()), off, n, unix.FADV_DONTNEED); err != nil {
		return &os.PathError{Op: "fadvise", Path: f.Name(), Err: err}
	}
	return nil
}

// OpenFile opens a file as os.OpenFile does.
func (OSFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

// Remove removes a file or empty directory.
func (OSFS) Remove(name string) error { return os.Remove(name) }

// RemoveAll removes a tree.
func (OSFS) RemoveAll(path string) error { return os.RemoveAll(path) }

// Rename renames atomically within one file system.
func (OSFS) Rename(oldpath, newpath string) error { return os.Rename(oldpath, newpath) }

// Link creates a hard link.
func (OSFS) Link(oldname, newname string) error { return os.Link(oldname, newname) }

// MkdirAll creates a directory and its parents.
func (OSFS) MkdirAll(path string, perm os.FileMode) error { return os.MkdirAll(path, perm) }

// ReadDir lists a directory sorted by name.
func (OSFS) ReadDir(name string) ([]os.DirEntry, error) { return os.ReadDir(name) }

// Stat describes a file.
func (OSFS) Stat(name string) (os.FileInfo, error) { return os.Stat(name) }

// SyncDir fsyncs a directory.
func (OSFS) SyncDir(path string) error {
	d, err := os.Open(path)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

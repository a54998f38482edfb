package connector

import (
	"errors"
	"io/fs"
	"os"
	"syscall"
)

// FileError marks the file-system errors that retrying cannot fix (no
// permission, a read-only file system) as permanent, for sinks that write
// files.
func FileError(err error) error {
	if errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EROFS) {
		return Permanent(err)
	}
	return err
}

// SyncDir fsyncs a directory, so that the names created, renamed or
// removed in it survive a crash.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

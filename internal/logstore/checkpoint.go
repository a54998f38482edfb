package logstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
)

// The recovery checkpoint records, for every partition, a point up to which
// the log is known to be durable and consistent: recovery after a crash
// scans only what follows it. It is one file for the whole log, rewritten
// atomically (temporary file, fsync, rename, fsync of the directory).
//
//	offset size field
//	     0    4 magic "SLCP"
//	     4    2 version (1)
//	     6    2 flags: bit 0 set when written by a clean close
//	     8    4 entry count N
//	    12    - N entries:
//	              2 topic name length L, L topic name bytes,
//	              4 partition, 8 segment base offset, 8 byte position in that
//	              segment, 8 next offset at that position, 8 log start offset
//	  end-4   4 CRC32C (Castagnoli) of every byte before it
const (
	checkpointFile    = "recovery-checkpoint"
	checkpointMagic   = "SLCP"
	checkpointVersion = 1
	flagClean         = 1
)

type partKey struct {
	topic string
	part  int32
}

type checkpointEntry struct {
	segBase  int64
	pos      int64
	next     int64
	logStart int64
}

type checkpoint struct {
	clean   bool
	entries map[partKey]checkpointEntry
}

func encodeCheckpoint(cp checkpoint) []byte {
	keys := make([]partKey, 0, len(cp.entries))
	for k := range cp.entries {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].topic != keys[j].topic {
			return keys[i].topic < keys[j].topic
		}
		return keys[i].part < keys[j].part
	})
	be := binary.BigEndian
	b := make([]byte, 0, 16+len(keys)*64)
	b = append(b, checkpointMagic...)
	b = be.AppendUint16(b, checkpointVersion)
	var flags uint16
	if cp.clean {
		flags |= flagClean
	}
	b = be.AppendUint16(b, flags)
	b = be.AppendUint32(b, uint32(len(keys)))
	for _, k := range keys {
		e := cp.entries[k]
		b = be.AppendUint16(b, uint16(len(k.topic)))
		b = append(b, k.topic...)
		b = be.AppendUint32(b, uint32(k.part))
		b = be.AppendUint64(b, uint64(e.segBase))
		b = be.AppendUint64(b, uint64(e.pos))
		b = be.AppendUint64(b, uint64(e.next))
		b = be.AppendUint64(b, uint64(e.logStart))
	}
	return be.AppendUint32(b, crc32.Checksum(b, crcTable))
}

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// errBadCheckpoint is wrapped by decode errors; the log then recovers every
// partition in full.
var errBadCheckpoint = errors.New("bad recovery checkpoint")

func decodeCheckpoint(b []byte) (checkpoint, error) {
	cp := checkpoint{entries: map[partKey]checkpointEntry{}}
	be := binary.BigEndian
	if len(b) < 16 || string(b[:4]) != checkpointMagic {
		return cp, fmt.Errorf("%w: no header", errBadCheckpoint)
	}
	body := b[:len(b)-4]
	if crc32.Checksum(body, crcTable) != be.Uint32(b[len(b)-4:]) {
		return cp, fmt.Errorf("%w: checksum mismatch", errBadCheckpoint)
	}
	if v := be.Uint16(b[4:]); v != checkpointVersion {
		return cp, fmt.Errorf("%w: version %d, this build reads %d", errBadCheckpoint, v, checkpointVersion)
	}
	cp.clean = be.Uint16(b[6:])&flagClean != 0
	n := be.Uint32(b[8:])
	rest := body[12:]
	for i := uint32(0); i < n; i++ {
		if len(rest) < 2 {
			return cp, fmt.Errorf("%w: entry %d truncated", errBadCheckpoint, i)
		}
		l := int(be.Uint16(rest))
		if len(rest) < 2+l+36 {
			return cp, fmt.Errorf("%w: entry %d truncated", errBadCheckpoint, i)
		}
		k := partKey{topic: string(rest[2 : 2+l]), part: int32(be.Uint32(rest[2+l:]))}
		e := rest[2+l+4:]
		cp.entries[k] = checkpointEntry{
			segBase:  int64(be.Uint64(e)),
			pos:      int64(be.Uint64(e[8:])),
			next:     int64(be.Uint64(e[16:])),
			logStart: int64(be.Uint64(e[24:])),
		}
		rest = rest[2+l+36:]
	}
	if len(rest) != 0 {
		return cp, fmt.Errorf("%w: %d trailing bytes", errBadCheckpoint, len(rest))
	}
	return cp, nil
}

// readCheckpoint returns the checkpoint, an empty one when there is none,
// or an error for a damaged one.
func readCheckpoint(fsys FS, dir string) (checkpoint, error) {
	f, err := fsys.OpenFile(filepath.Join(dir, checkpointFile), os.O_RDONLY, 0)
	if errors.Is(err, os.ErrNotExist) {
		return checkpoint{entries: map[partKey]checkpointEntry{}}, nil
	}
	if err != nil {
		return checkpoint{}, err
	}
	defer f.Close()
	b, err := readAll(f)
	if err != nil {
		return checkpoint{}, err
	}
	return decodeCheckpoint(b)
}

// writeFileAtomic replaces dir/name with data so that a crash leaves either
// the old or the new contents.
func writeFileAtomic(fsys FS, dir, name string, data []byte) error {
	tmp := filepath.Join(dir, name+tmpSuffix)
	f, err := fsys.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err = f.WriteAt(data, 0); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = fsys.Rename(tmp, filepath.Join(dir, name))
	}
	if err == nil {
		err = fsys.SyncDir(dir)
	}
	if err != nil {
		_ = fsys.Remove(tmp)
		return fmt.Errorf("write %s: %w", filepath.Join(dir, name), err)
	}
	return nil
}

func readAll(f File) ([]byte, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	b := make([]byte, st.Size())
	n, err := f.ReadAt(b, 0)
	if n == len(b) {
		return b, nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return nil, err
}

package logstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sort"
)

// The producer state snapshot holds every partition's idempotent-producer
// state (see producers.go), so that duplicates are still detected after a
// restart. It is one file for the whole log, rewritten atomically right
// after the recovery checkpoint, at the same moments. Each partition's
// state is taken under the partition lock together with the offset below
// which it covers every batch; recovery replays the batches from there on.
//
//	offset size field
//	     0    4 magic "SLPS"
//	     4    2 version (1)
//	     6    2 flags (0)
//	     8    4 partition count N
//	    12    - N partitions:
//	              2 topic name length L, L topic name bytes, 4 partition,
//	              8 next offset (the state covers every batch below it),
//	              4 producer count M, then M producers:
//	                8 producer ID, 2 epoch, 8 last seen (Unix ms),
//	                1 batch count K (0 to 5), then K batches, oldest first:
//	                  4 first sequence, 4 last sequence, 8 first offset,
//	                  8 last offset, 8 LogAppendTime (-1 for CreateTime)
//	  end-4   4 CRC32C (Castagnoli) of every byte before it
const (
	producerSnapshotFile    = "producer-state"
	producerSnapshotMagic   = "SLPS"
	producerSnapshotVersion = 1

	snapBatchSize    = 32
	snapProducerSize = 19 // without its batches
	snapPartSize     = 16 // without the topic name and producers
)

// partProducers is one partition's producer state at a point of the log.
type partProducers struct {
	next    int64
	entries map[int64]producerEntry
}

// errBadProducerSnapshot is wrapped by decode errors; the log then rebuilds
// producer state from the active segments.
var errBadProducerSnapshot = errors.New("bad producer state snapshot")

func encodeProducerSnapshot(parts map[partKey]partProducers) []byte {
	keys := make([]partKey, 0, len(parts))
	for k := range parts {
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
	b = append(b, producerSnapshotMagic...)
	b = be.AppendUint16(b, producerSnapshotVersion)
	b = be.AppendUint16(b, 0)
	b = be.AppendUint32(b, uint32(len(keys)))
	ids := []int64(nil)
	for _, k := range keys {
		pp := parts[k]
		b = be.AppendUint16(b, uint16(len(k.topic)))
		b = append(b, k.topic...)
		b = be.AppendUint32(b, uint32(k.part))
		b = be.AppendUint64(b, uint64(pp.next))
		b = be.AppendUint32(b, uint32(len(pp.entries)))
		ids = ids[:0]
		for id := range pp.entries {
			ids = append(ids, id)
		}
		sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
		for _, id := range ids {
			e := pp.entries[id]
			b = be.AppendUint64(b, uint64(id))
			b = be.AppendUint16(b, uint16(e.epoch))
			b = be.AppendUint64(b, uint64(e.lastSeen))
			b = append(b, byte(e.n))
			for i := 0; i < e.n; i++ {
				pb := e.batch(i)
				b = be.AppendUint32(b, uint32(pb.firstSeq))
				b = be.AppendUint32(b, uint32(pb.lastSeq))
				b = be.AppendUint64(b, uint64(pb.firstOffset))
				b = be.AppendUint64(b, uint64(pb.lastOffset))
				b = be.AppendUint64(b, uint64(pb.appendTime))
			}
		}
	}
	return be.AppendUint32(b, crc32.Checksum(b, crcTable))
}

// decodeProducerSnapshot decodes and checks a snapshot. The bytes come from
// disk and may be damaged: every count is checked against what remains
// before anything is allocated, and every entry against the rules the log
// keeps (offsets ascending and below the partition's next offset, sequences
// and epochs not negative).
func decodeProducerSnapshot(b []byte) (map[partKey]partProducers, error) {
	be := binary.BigEndian
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", errBadProducerSnapshot, fmt.Sprintf(format, args...))
	}
	if len(b) < 16 || string(b[:4]) != producerSnapshotMagic {
		return nil, bad("no header")
	}
	body := b[:len(b)-4]
	if crc32.Checksum(body, crcTable) != be.Uint32(b[len(b)-4:]) {
		return nil, bad("checksum mismatch")
	}
	if v := be.Uint16(b[4:]); v != producerSnapshotVersion {
		return nil, bad("version %d, this build reads %d", v, producerSnapshotVersion)
	}
	n := be.Uint32(b[8:])
	rest := body[12:]
	if uint64(n) > uint64(len(rest))/(2+snapPartSize) {
		return nil, bad("%d partitions in %d bytes", n, len(rest))
	}
	parts := make(map[partKey]partProducers, n)
	for i := uint32(0); i < n; i++ {
		if len(rest) < 2 {
			return nil, bad("partition %d truncated", i)
		}
		l := int(be.Uint16(rest))
		if len(rest) < 2+l+snapPartSize {
			return nil, bad("partition %d truncated", i)
		}
		k := partKey{topic: string(rest[2 : 2+l]), part: int32(be.Uint32(rest[2+l:]))}
		if _, dup := parts[k]; dup {
			return nil, bad("partition %s/%d twice", k.topic, k.part)
		}
		pp := partProducers{next: int64(be.Uint64(rest[2+l+4:]))}
		m := be.Uint32(rest[2+l+12:])
		rest = rest[2+l+snapPartSize:]
		if pp.next < 0 {
			return nil, bad("%s/%d: next offset %d", k.topic, k.part, pp.next)
		}
		if uint64(m) > uint64(len(rest))/snapProducerSize {
			return nil, bad("%s/%d: %d producers in %d bytes", k.topic, k.part, m, len(rest))
		}
		if m > 0 {
			pp.entries = make(map[int64]producerEntry, m)
		}
		for j := uint32(0); j < m; j++ {
			if len(rest) < snapProducerSize {
				return nil, bad("%s/%d: producer %d truncated", k.topic, k.part, j)
			}
			id := int64(be.Uint64(rest))
			e := producerEntry{epoch: int16(be.Uint16(rest[8:])), lastSeen: int64(be.Uint64(rest[10:])),
				head: maxProducerBatches - 1}
			nb := int(rest[18])
			rest = rest[snapProducerSize:]
			switch {
			case id < 0 || e.epoch < 0:
				return nil, bad("%s/%d: producer %d epoch %d", k.topic, k.part, id, e.epoch)
			case nb > maxProducerBatches:
				return nil, bad("%s/%d: producer %d has %d batches, at most %d", k.topic, k.part, id, nb, maxProducerBatches)
			case len(rest) < nb*snapBatchSize:
				return nil, bad("%s/%d: producer %d truncated", k.topic, k.part, id)
			}
			if _, dup := pp.entries[id]; dup {
				return nil, bad("%s/%d: producer %d twice", k.topic, k.part, id)
			}
			prev := int64(-1)
			for q := 0; q < nb; q++ {
				pb := producerBatch{
					firstSeq:    int32(be.Uint32(rest)),
					lastSeq:     int32(be.Uint32(rest[4:])),
					firstOffset: int64(be.Uint64(rest[8:])),
					lastOffset:  int64(be.Uint64(rest[16:])),
					appendTime:  int64(be.Uint64(rest[24:])),
				}
				rest = rest[snapBatchSize:]
				if pb.firstSeq < 0 || pb.lastSeq < 0 || pb.firstOffset <= prev || pb.lastOffset < pb.firstOffset || pb.lastOffset >= pp.next {
					return nil, bad("%s/%d: producer %d: batch [%d, %d] sequences [%d, %d] is out of place",
						k.topic, k.part, id, pb.firstOffset, pb.lastOffset, pb.firstSeq, pb.lastSeq)
				}
				prev = pb.lastOffset
				e.add(e.epoch, pb, e.lastSeen)
			}
			pp.entries[id] = e
		}
		parts[k] = pp
	}
	if len(rest) != 0 {
		return nil, bad("%d trailing bytes", len(rest))
	}
	return parts, nil
}

// readProducerSnapshot returns the snapshot, none when there is no file, or
// an error for a damaged one.
func readProducerSnapshot(fsys FS, dir string) (map[partKey]partProducers, error) {
	b, err := readFile(fsys, filepath.Join(dir, producerSnapshotFile))
	if errors.Is(err, os.ErrNotExist) {
		return map[partKey]partProducers{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", producerSnapshotFile, err)
	}
	return decodeProducerSnapshot(b)
}

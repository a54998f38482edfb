package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"strconv"
	"time"

	"github.com/sluice-dev/sluice/internal/record"
	"github.com/sluice-dev/sluice/internal/stream"
)

// StateTopicPrefix starts the name of the topic that holds a windowed
// pipeline's checkpoints: "_sluice_state.<pipeline>". Like the spec
// topic it lives wherever the log is (--data-dir, or the Kafka cluster),
// so the state is backed up, replicated and moved with everything else.
const StateTopicPrefix = "_sluice_state."

// StateTopic names a pipeline's state topic.
func StateTopic(pipeline string) string { return StateTopicPrefix + pipeline }

// Limits of state checkpoints.
const (
	// stateChunkBytes is the most of a snapshot one record carries: well
	// under the default max.message.bytes (1 MiB) of Sluice and Kafka.
	stateChunkBytes = 512 << 10
	// maxStateSlack is what a stored snapshot may hold beyond the
	// window's state limit (the encoding's overhead), when it is read.
	maxStateSlack = 64 << 20
)

// Keys of the state topic's records.
const (
	stateChunkKey  = "chunk"
	stateCommitKey = "commit"
)

// savedState is one checkpoint of a windowed pipeline: the window state
// and the source positions it is the state at.
type savedState struct {
	Positions map[int32]int64
	Snapshot  []byte
	// Time is when it was saved (set by load).
	Time time.Time
}

// stateCommit is the value of a commit record: it makes the chunks before
// it, from offset First on, one checkpoint. A checkpoint without its
// commit record (a crash while it was written) is not one.
type stateCommit struct {
	Version   int              `json:"version"`
	First     int64            `json:"first"`
	Chunks    int              `json:"chunks"`
	Size      int              `json:"size"`
	CRC32C    uint32           `json:"crc32c"`
	Positions map[string]int64 `json:"positions"`
	Time      time.Time        `json:"time"`
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// stateStore reads and writes one pipeline's state topic. Checkpoints are
// appended, never overwritten: a save writes its chunks, then a commit
// record naming them, and only once that is durable deletes the records
// before its first chunk. A crash at any point leaves the last committed
// checkpoint readable.
type stateStore struct {
	log    stream.Log
	codecs record.Codecs
	topic  string
	// maxBytes bounds a snapshot read back.
	maxBytes int64
}

// ensure creates the topic. Time-based retention would delete a
// pipeline's only checkpoint after a quiet week, so it has none: the
// store deletes what it no longer needs itself.
func (s *stateStore) ensure(ctx context.Context) error {
	if err := ensureTopic(ctx, s.log, s.topic, map[string]string{"retention.ms": "-1"}); err != nil {
		return fmt.Errorf("window state: %w", err)
	}
	return nil
}

// load returns the last committed checkpoint, or nil when there is none.
func (s *stateStore) load(ctx context.Context) (*savedState, error) {
	var (
		chunks  []stateChunk // since the last commit read
		last    *savedState
		pending int64 // bytes in chunks
	)
	limit := s.maxBytes + maxStateSlack
	err := scanTopic(ctx, s.log, &s.codecs, s.topic, func(r record.Record) error {
		switch string(r.Key) {
		case stateChunkKey:
			pending += int64(len(r.Value))
			if pending > limit {
				return fmt.Errorf("the checkpoint at offset %d is over %d bytes", r.Offset, limit)
			}
			chunks = append(chunks, stateChunk{r.Offset, append([]byte(nil), r.Value...)})
		case stateCommitKey:
			var c stateCommit
			if err := json.Unmarshal(r.Value, &c); err != nil {
				return fmt.Errorf("commit record at offset %d: %w", r.Offset, err)
			}
			st, err := c.assemble(chunks)
			if err != nil {
				return fmt.Errorf("checkpoint committed at offset %d: %w", r.Offset, err)
			}
			last, chunks, pending = st, nil, 0
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read window state: %w", err)
	}
	return last, nil
}

// stateChunk is a chunk record read back: its offset and its bytes.
type stateChunk struct {
	offset int64
	data   []byte
}

// assemble joins the commit's chunks, found among those given, and checks
// them.
func (c *stateCommit) assemble(chunks []stateChunk) (*savedState, error) {
	if c.Version != 1 {
		return nil, fmt.Errorf("version %d: this Sluice reads version 1", c.Version)
	}
	if c.Size < 0 || c.Chunks < 0 {
		return nil, errors.New("negative size")
	}
	snap := make([]byte, 0, min(c.Size, 64<<20))
	n := 0
	for _, ch := range chunks {
		if ch.offset < c.First || ch.offset >= c.First+int64(c.Chunks) {
			continue
		}
		snap = append(snap, ch.data...)
		n++
	}
	if n != c.Chunks || len(snap) != c.Size {
		return nil, fmt.Errorf("found %d chunks of %d bytes, want %d of %d", n, len(snap), c.Chunks, c.Size)
	}
	if crc32.Checksum(snap, castagnoli) != c.CRC32C {
		return nil, errors.New("checksum mismatch")
	}
	st := &savedState{Positions: make(map[int32]int64, len(c.Positions)), Snapshot: snap, Time: c.Time}
	for k, v := range c.Positions {
		p, err := strconv.ParseInt(k, 10, 32)
		if err != nil || p < 0 || v < 0 {
			return nil, fmt.Errorf("bad position %s: %d", k, v)
		}
		st.Positions[int32(p)] = v
	}
	return st, nil
}

// save appends a checkpoint and then deletes the ones before it. It
// returns once the commit record is durable.
func (s *stateStore) save(ctx context.Context, st savedState, now time.Time) error {
	if err := s.ensure(ctx); err != nil {
		return err
	}
	c := stateCommit{Version: 1, First: -1, Size: len(st.Snapshot), CRC32C: crc32.Checksum(st.Snapshot, castagnoli),
		Positions: make(map[string]int64, len(st.Positions)), Time: now.UTC()}
	for p, off := range st.Positions {
		c.Positions[strconv.Itoa(int(p))] = off
	}
	ts := now.UnixMilli()
	var buf []byte
	produce := func(key string, value []byte) (int64, error) {
		var err error
		buf, err = s.codecs.AppendBatch(buf[:0], []record.Record{{Key: []byte(key), Value: value, Timestamp: ts}}, record.BatchOptions{})
		if err != nil {
			return 0, err
		}
		res, err := s.log.Produce(ctx, s.topic, 0, buf)
		if err != nil {
			return 0, err
		}
		return res.BaseOffset, nil
	}
	// At least one chunk, so that First names where the checkpoint starts.
	for rest := st.Snapshot; c.Chunks == 0 || len(rest) > 0; {
		n := min(len(rest), stateChunkBytes)
		off, err := produce(stateChunkKey, rest[:n])
		if err != nil {
			return fmt.Errorf("save window state: %w", err)
		}
		if c.First < 0 {
			c.First = off
		}
		c.Chunks++
		rest = rest[n:]
	}
	value, err := json.Marshal(&c)
	if err != nil {
		return fmt.Errorf("save window state: %w", err)
	}
	if _, err := produce(stateCommitKey, value); err != nil {
		return fmt.Errorf("save window state: %w", err)
	}
	// What came before is no checkpoint anyone needs. If deleting it
	// fails, the next save deletes it with its own predecessor.
	_, _ = s.log.DeleteRecords(ctx, s.topic, 0, c.First)
	return nil
}

// drop deletes the topic and every checkpoint in it.
func (s *stateStore) drop(ctx context.Context) error {
	err := s.log.DeleteTopic(ctx, s.topic)
	if err != nil && !errors.Is(err, stream.ErrUnknownTopic) {
		return fmt.Errorf("delete the window state topic %s: %w", s.topic, err)
	}
	return nil
}

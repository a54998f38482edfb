package meta

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"

	"github.com/sluice-dev/sluice/internal/topic"
)

// Limits on the parts of an offset commit that a client controls.
const (
	// MaxGroupLen bounds a group name, in bytes.
	MaxGroupLen = 255
	// MaxMetadataLen bounds OffsetCommit.Metadata, in bytes; it is Kafka's
	// default offset.metadata.max.bytes.
	MaxMetadataLen = 4096
)

// OffsetCommit is a consumer group's committed position in one partition.
type OffsetCommit struct {
	Topic     string
	Partition int32
	// Offset is the offset of the next record the group will consume.
	Offset int64
	// LeaderEpoch is the leader epoch of the last consumed record, as
	// Kafka's OffsetCommit v6+ carries it; -1 when unknown.
	LeaderEpoch int32
	// Metadata is an opaque client string: UTF-8, at most MaxMetadataLen
	// bytes.
	Metadata string
	// CommitMs is the commit time in Unix milliseconds.
	CommitMs int64
}

type offsetRecord struct {
	Offset      int64  `json:"offset"`
	LeaderEpoch int32  `json:"leader_epoch"`
	Metadata    string `json:"metadata"`
	CommitMs    int64  `json:"commit_ms"`
}

// ValidateGroup checks a consumer group name: 1 to MaxGroupLen bytes of
// UTF-8. The error wraps ErrInvalid.
func ValidateGroup(group string) error {
	switch {
	case group == "":
		return fmt.Errorf("%w: group name is empty", ErrInvalid)
	case len(group) > MaxGroupLen:
		return fmt.Errorf("%w: group name is %d bytes, the limit is %d", ErrInvalid, len(group), MaxGroupLen)
	case !utf8.ValidString(group):
		return fmt.Errorf("%w: group name %q is not valid UTF-8", ErrInvalid, group)
	}
	return nil
}

func validateCommit(c OffsetCommit) error {
	where := fmt.Sprintf("topic %q partition %d", c.Topic, c.Partition)
	switch {
	case c.Partition < 0:
		return fmt.Errorf("%w: %s: negative partition", ErrInvalid, where)
	case c.Offset < 0:
		return fmt.Errorf("%w: %s: offset %d is negative", ErrInvalid, where, c.Offset)
	case c.LeaderEpoch < -1:
		return fmt.Errorf("%w: %s: leader epoch %d, want -1 or more", ErrInvalid, where, c.LeaderEpoch)
	case len(c.Metadata) > MaxMetadataLen:
		return fmt.Errorf("%w: %s: metadata is %d bytes, the limit is %d", ErrInvalid, where, len(c.Metadata), MaxMetadataLen)
	case !utf8.ValidString(c.Metadata):
		return fmt.Errorf("%w: %s: metadata is not valid UTF-8", ErrInvalid, where)
	}
	return nil
}

// offsetKey is the topic name, 0x00, and the partition in big-endian, so
// that keys sort by topic and then partition.
func offsetKey(topicName string, partition int32) []byte {
	k := make([]byte, 0, len(topicName)+5)
	k = append(k, topicName...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint32(k, uint32(partition))
}

func decodeOffset(group string, k, v []byte) (OffsetCommit, error) {
	i := bytes.IndexByte(k, 0)
	if i < 0 || len(k)-i-1 != 4 {
		return OffsetCommit{}, fmt.Errorf("%w: group %q: bad offset key %q", ErrCorrupt, group, k)
	}
	var r offsetRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return OffsetCommit{}, fmt.Errorf("%w: group %q: offset key %q: %v", ErrCorrupt, group, k, err)
	}
	return OffsetCommit{
		Topic:       string(k[:i]),
		Partition:   int32(binary.BigEndian.Uint32(k[i+1:])),
		Offset:      r.Offset,
		LeaderEpoch: r.LeaderEpoch,
		Metadata:    r.Metadata,
		CommitMs:    r.CommitMs,
	}, nil
}

// CommitOffsets stores the group's commits, all in one transaction: when it
// returns nil every commit is durable, otherwise none is. A later commit of
// the same partition, in this call or another, replaces the earlier one.
// Commits with CommitMs zero or negative are stamped with Options.Now.
//
// It fails with an error wrapping ErrInvalid for a bad group name (see
// ValidateGroup), a negative partition or offset, a leader epoch below -1,
// or metadata that is not UTF-8 or longer than MaxMetadataLen; and with an
// error wrapping ErrNotFound if a commit names a topic or partition that
// does not exist. Checking existence in the same transaction keeps a commit
// that races DeleteTopic from leaving offsets behind for a later topic of
// the same name. A call without commits stores nothing.
func (s *Store) CommitOffsets(group string, commits []OffsetCommit) error {
	op := fmt.Sprintf("commit offsets of group %q", group)
	if err := ValidateGroup(group); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if len(commits) == 0 {
		return nil
	}
	now := s.opts.Now().UnixMilli()
	keys := make([][]byte, len(commits))
	values := make([][]byte, len(commits))
	for i, c := range commits {
		if err := validateCommit(c); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		if c.CommitMs <= 0 {
			c.CommitMs = now
		}
		v, err := json.Marshal(offsetRecord{Offset: c.Offset, LeaderEpoch: c.LeaderEpoch, Metadata: c.Metadata, CommitMs: c.CommitMs})
		if err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		keys[i], values[i] = offsetKey(c.Topic, c.Partition), v
	}
	return s.update(op, func(tx *bolt.Tx) error {
		partitions := map[string]int32{}
		for _, c := range commits {
			n, ok := partitions[c.Topic]
			if !ok {
				raw := tx.Bucket(bucketTopics).Get([]byte(c.Topic))
				if raw == nil {
					return fmt.Errorf("topic %q: %w", c.Topic, ErrNotFound)
				}
				spec, err := decodeTopic([]byte(c.Topic), raw)
				if err != nil {
					return err
				}
				n = spec.Partitions
				partitions[c.Topic] = n
			}
			if c.Partition >= n {
				return fmt.Errorf("topic %q partition %d: %w (the topic has %d)", c.Topic, c.Partition, ErrNotFound, n)
			}
		}
		b, err := tx.Bucket(bucketGroups).CreateBucketIfNotExists([]byte(group))
		if err != nil {
			return err
		}
		for i := range keys {
			if err := b.Put(keys[i], values[i]); err != nil {
				return err
			}
		}
		return nil
	})
}

// FetchOffsets returns the group's committed offsets sorted by topic and
// partition. A group with no commits, including one that never existed,
// has none: the result is empty and the error nil, as Kafka's OffsetFetch.
func (s *Store) FetchOffsets(group string) ([]OffsetCommit, error) {
	var out []OffsetCommit
	err := s.view(fmt.Sprintf("fetch offsets of group %q", group), func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketGroups).Bucket([]byte(group))
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			c, err := decodeOffset(group, k, v)
			if err != nil {
				return err
			}
			out = append(out, c)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// FetchOffset returns the group's committed offset for one partition, and
// false if there is none.
func (s *Store) FetchOffset(group, topicName string, partition int32) (OffsetCommit, bool, error) {
	var (
		c     OffsetCommit
		found bool
	)
	op := fmt.Sprintf("fetch offset of group %q topic %q partition %d", group, topicName, partition)
	err := s.view(op, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketGroups).Bucket([]byte(group))
		if b == nil {
			return nil
		}
		k := offsetKey(topicName, partition)
		v := b.Get(k)
		if v == nil {
			return nil
		}
		var err error
		c, err = decodeOffset(group, k, v)
		found = err == nil
		return err
	})
	return c, found, err
}

// Groups returns the names of the groups that have committed offsets,
// sorted.
func (s *Store) Groups() ([]string, error) {
	var out []string
	err := s.view("list groups", func(tx *bolt.Tx) error {
		return tx.Bucket(bucketGroups).ForEachBucket(func(k []byte) error {
			out = append(out, string(k))
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteGroup deletes all of the group's committed offsets. It returns an
// error wrapping ErrNotFound if the group has none.
func (s *Store) DeleteGroup(group string) error {
	return s.update(fmt.Sprintf("delete group %q", group), func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketGroups)
		if b.Bucket([]byte(group)) == nil {
			return ErrNotFound
		}
		return b.DeleteBucket([]byte(group))
	})
}

// DeleteTopicOffsets deletes every group's committed offsets for the topic,
// in one transaction, and then the groups left with none. It returns nil if
// there were none. DeleteTopic already does this; the method is for
// callers that manage topics elsewhere.
func (s *Store) DeleteTopicOffsets(topicName string) error {
	return s.update(fmt.Sprintf("delete offsets of topic %q", topicName), func(tx *bolt.Tx) error {
		return deleteTopicOffsets(tx, topicName)
	})
}

func deleteTopicOffsets(tx *bolt.Tx, topicName string) error {
	if topic.ValidateName(topicName) != nil {
		return nil // no such offsets can exist, and a 0x00 in the name would match other topics' keys
	}
	groups := tx.Bucket(bucketGroups)
	var names [][]byte
	if err := groups.ForEachBucket(func(k []byte) error {
		names = append(names, bytes.Clone(k))
		return nil
	}); err != nil {
		return err
	}
	prefix := append([]byte(topicName), 0)
	for _, name := range names {
		b := groups.Bucket(name)
		var doomed [][]byte
		c := b.Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			doomed = append(doomed, bytes.Clone(k))
		}
		for _, k := range doomed {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		if k, _ := b.Cursor().First(); k == nil {
			if err := groups.DeleteBucket(name); err != nil {
				return err
			}
		}
	}
	return nil
}

package meta

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/sluice-dev/sluice/internal/topic"
)

// topicRecord is the stored form of a topic.Spec.
type topicRecord struct {
	Name       string            `json:"name"`
	ID         string            `json:"id"`
	Partitions int32             `json:"partitions"`
	Config     map[string]string `json:"config,omitempty"`
	CreatedAt  time.Time         `json:"created_at"`
}

func encodeTopic(s topic.Spec) ([]byte, error) {
	return json.Marshal(topicRecord{
		Name:       s.Name,
		ID:         hex.EncodeToString(s.ID[:]),
		Partitions: s.Partitions,
		Config:     s.Config,
		CreatedAt:  s.CreatedAt.UTC(),
	})
}

func decodeTopic(name, raw []byte) (topic.Spec, error) {
	var r topicRecord
	if err := json.Unmarshal(raw, &r); err != nil {
		return topic.Spec{}, fmt.Errorf("%w: topic %q: %v", ErrCorrupt, name, err)
	}
	s := topic.Spec{Name: r.Name, Partitions: r.Partitions, Config: r.Config, CreatedAt: r.CreatedAt}
	id, err := hex.DecodeString(r.ID)
	if err != nil || len(id) != len(s.ID) || r.Name != string(name) {
		return topic.Spec{}, fmt.Errorf("%w: topic %q: bad record %q", ErrCorrupt, name, raw)
	}
	copy(s.ID[:], id)
	if len(s.Config) == 0 {
		s.Config = nil
	}
	return s, nil
}

// Topics returns every topic, sorted by name.
func (s *Store) Topics() ([]topic.Spec, error) {
	var out []topic.Spec
	err := s.view("list topics", func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTopics).ForEach(func(k, v []byte) error {
			spec, err := decodeTopic(k, v)
			if err != nil {
				return err
			}
			out = append(out, spec)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Topic returns the topic with the given name, or an error wrapping
// ErrNotFound. An empty Config comes back nil.
func (s *Store) Topic(name string) (topic.Spec, error) {
	var spec topic.Spec
	err := s.view(fmt.Sprintf("get topic %q", name), func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketTopics).Get([]byte(name))
		if v == nil {
			return ErrNotFound
		}
		var err error
		spec, err = decodeTopic([]byte(name), v)
		return err
	})
	return spec, err
}

// PutTopic creates the topic, or replaces the stored spec of a topic with
// the same name. It refuses a spec that fails spec.Validate with an error
// wrapping both ErrInvalid and topic.ErrInvalid. It stores spec.Config as
// given (callers store overrides only, see topic.Config.Overrides) and
// CreatedAt in UTC; it does not retain spec.
//
// Replacing a spec changes nothing else: committed offsets stay, including
// those of partitions beyond a lowered partition count. Deciding whether a
// change is allowed is the caller's business.
func (s *Store) PutTopic(spec topic.Spec) error {
	op := fmt.Sprintf("put topic %q", spec.Name)
	if err := spec.Validate(); err != nil {
		return fmt.Errorf("%s: %w", op, invalidError{err})
	}
	raw, err := encodeTopic(spec)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return s.update(op, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTopics).Put([]byte(spec.Name), raw)
	})
}

// DeleteTopic deletes the topic and, in the same transaction, every group's
// committed offsets for it, so that a topic created later under the same
// name does not inherit them. It returns an error wrapping ErrNotFound if
// there is no such topic, and then changes nothing.
func (s *Store) DeleteTopic(name string) error {
	return s.update(fmt.Sprintf("delete topic %q", name), func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketTopics)
		if b.Get([]byte(name)) == nil {
			return ErrNotFound
		}
		if err := b.Delete([]byte(name)); err != nil {
			return err
		}
		return deleteTopicOffsets(tx, name)
	})
}

package meta

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// DeleteOffsets deletes the group's committed offsets for the given
// partitions of each topic, in one transaction, and the group itself if it
// is left with none. Partitions without a commit are skipped; a group
// without commits is not an error. It serves Kafka's OffsetDelete.
func (s *Store) DeleteOffsets(group string, partitions map[string][]int32) error {
	return s.update(fmt.Sprintf("delete offsets of group %q", group), func(tx *bolt.Tx) error {
		groups := tx.Bucket(bucketGroups)
		b := groups.Bucket([]byte(group))
		if b == nil {
			return nil
		}
		for topicName, ps := range partitions {
			for _, p := range ps {
				if err := b.Delete(offsetKey(topicName, p)); err != nil {
					return err
				}
			}
		}
		if k, _ := b.Cursor().First(); k == nil {
			return groups.DeleteBucket([]byte(group))
		}
		return nil
	})
}

package meta

import (
	"bytes"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Limits of the key/value namespace. State larger than MaxValueLen belongs
// in files of its own, with its name stored here.
const (
	MaxNamespaceLen = 255
	MaxKeyLen       = 1024
	MaxValueLen     = 16 << 20
)

// KV is one entry of a namespace.
type KV struct {
	Key   string
	Value []byte
}

func validateKV(namespace, key string, value []byte) error {
	switch {
	case namespace == "":
		return fmt.Errorf("%w: namespace is empty", ErrInvalid)
	case len(namespace) > MaxNamespaceLen:
		return fmt.Errorf("%w: namespace is %d bytes, the limit is %d", ErrInvalid, len(namespace), MaxNamespaceLen)
	case key == "":
		return fmt.Errorf("%w: key is empty", ErrInvalid)
	case len(key) > MaxKeyLen:
		return fmt.Errorf("%w: key is %d bytes, the limit is %d", ErrInvalid, len(key), MaxKeyLen)
	case len(value) > MaxValueLen:
		return fmt.Errorf("%w: value is %d bytes, the limit is %d", ErrInvalid, len(value), MaxValueLen)
	}
	return nil
}

// Put stores value under key in the namespace, replacing any earlier value,
// for state such as pipeline checkpoints. Namespaces and keys are opaque
// byte strings, 1 to MaxNamespaceLen and 1 to MaxKeyLen bytes; values may
// be empty and at most MaxValueLen bytes. Put does not retain value.
func (s *Store) Put(namespace, key string, value []byte) error {
	op := fmt.Sprintf("put %q in %q", key, namespace)
	if err := validateKV(namespace, key, value); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return s.update(op, func(tx *bolt.Tx) error {
		b, err := tx.Bucket(bucketKV).CreateBucketIfNotExists([]byte(namespace))
		if err != nil {
			return err
		}
		return b.Put([]byte(key), value)
	})
}

// Get returns the value stored under key in the namespace, and false if
// there is none.
func (s *Store) Get(namespace, key string) ([]byte, bool, error) {
	var (
		value []byte
		found bool
	)
	err := s.view(fmt.Sprintf("get %q in %q", key, namespace), func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketKV).Bucket([]byte(namespace))
		if b == nil {
			return nil
		}
		if v := b.Get([]byte(key)); v != nil {
			value, found = bytes.Clone(v), true
		}
		return nil
	})
	return value, found, err
}

// Delete deletes key from the namespace, and the namespace once it is
// empty. Deleting a key that does not exist is not an error.
func (s *Store) Delete(namespace, key string) error {
	return s.update(fmt.Sprintf("delete %q in %q", key, namespace), func(tx *bolt.Tx) error {
		kv := tx.Bucket(bucketKV)
		b := kv.Bucket([]byte(namespace))
		if b == nil {
			return nil
		}
		if err := b.Delete([]byte(key)); err != nil {
			return err
		}
		if k, _ := b.Cursor().First(); k == nil {
			return kv.DeleteBucket([]byte(namespace))
		}
		return nil
	})
}

// List returns the entries of the namespace whose keys start with prefix,
// sorted by key; an empty prefix lists them all.
func (s *Store) List(namespace, prefix string) ([]KV, error) {
	var out []KV
	err := s.view(fmt.Sprintf("list %q in %q", prefix, namespace), func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketKV).Bucket([]byte(namespace))
		if b == nil {
			return nil
		}
		p := []byte(prefix)
		c := b.Cursor()
		for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
			out = append(out, KV{Key: string(k), Value: bytes.Clone(v)})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

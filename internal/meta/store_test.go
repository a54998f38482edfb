package meta

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/sluice-dev/sluice/internal/topic"
)

// openStore opens a store in a fresh directory and closes it when the test
// ends.
func openStore(t *testing.T, opts Options) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "meta.db"), opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// checkDB runs bbolt's consistency check of the page structure.
func checkDB(t *testing.T, s *Store) {
	t.Helper()
	err := s.db.View(func(tx *bolt.Tx) error {
		var errs []error
		for err := range tx.Check() {
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	})
	if err != nil {
		t.Fatalf("bbolt check: %v", err)
	}
}

func putTopic(t *testing.T, s *Store, name string, partitions int32) topic.Spec {
	t.Helper()
	spec := topic.Spec{Name: name, Partitions: partitions, ID: [16]byte{1, 2, 3, byte(len(name))}, CreatedAt: time.UnixMilli(1700000000000).UTC()}
	if err := s.PutTopic(spec); err != nil {
		t.Fatalf("PutTopic(%q): %v", name, err)
	}
	return spec
}

func TestOpenReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meta.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	putTopic(t, s, "orders", 3)
	if err := s.CommitOffsets("g", []OffsetCommit{{Topic: "orders", Partition: 2, Offset: 7}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Put("ns", "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: got %v, want nil", err)
	}

	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	checkDB(t, s)
	if _, err := s.Topic("orders"); err != nil {
		t.Errorf("Topic after reopen: %v", err)
	}
	if c, ok, err := s.FetchOffset("g", "orders", 2); err != nil || !ok || c.Offset != 7 {
		t.Errorf("FetchOffset after reopen: got %+v, %v, %v; want offset 7", c, ok, err)
	}
	if v, ok, err := s.Get("ns", "k"); err != nil || !ok || string(v) != "v" {
		t.Errorf("Get after reopen: got %q, %v, %v; want \"v\"", v, ok, err)
	}
}

func TestOpenLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meta.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	s2, err := Open(path, Options{Timeout: 100 * time.Millisecond})
	if err == nil {
		s2.Close()
		t.Fatal("second Open of a held file: got nil error, want ErrLocked")
	}
	if !errors.Is(err, ErrLocked) {
		t.Errorf("got %v, want ErrLocked", err)
	}
	if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "another") {
		t.Errorf("got %q, want it to name the file and say another process holds it", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Open waited %s for a 100ms timeout", d)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err = Open(path, Options{Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	s2.Close()
}

func TestOpenRefuses(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, path string)
		want    error
		wantMsg string
	}{
		{
			name: "newer format",
			prepare: func(t *testing.T, path string) {
				s, err := Open(path, Options{})
				if err != nil {
					t.Fatal(err)
				}
				s.Close()
				rawUpdate(t, path, func(tx *bolt.Tx) error {
					return tx.Bucket(bucketMeta).Put(keyFormat, []byte("2"))
				})
			},
			want:    ErrVersion,
			wantMsg: "file has version 2, this build reads version 1",
		},
		{
			name: "garbled format",
			prepare: func(t *testing.T, path string) {
				s, err := Open(path, Options{})
				if err != nil {
					t.Fatal(err)
				}
				s.Close()
				rawUpdate(t, path, func(tx *bolt.Tx) error {
					return tx.Bucket(bucketMeta).Put(keyFormat, []byte("one"))
				})
			},
			want:    ErrCorrupt,
			wantMsg: `format version "one"`,
		},
		{
			name: "other bbolt file",
			prepare: func(t *testing.T, path string) {
				rawUpdate(t, path, func(tx *bolt.Tx) error {
					_, err := tx.CreateBucket([]byte("something"))
					return err
				})
			},
			want:    ErrCorrupt,
			wantMsg: "not a Sluice metadata file",
		},
		{
			name: "not a bbolt file",
			prepare: func(t *testing.T, path string) {
				if err := os.WriteFile(path, []byte(strings.Repeat("garbage!", 4096)), 0o600); err != nil {
					t.Fatal(err)
				}
			},
			wantMsg: "invalid",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "meta.db")
			tt.prepare(t, path)
			s, err := Open(path, Options{})
			if err == nil {
				s.Close()
				t.Fatal("got nil error")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("got %q, want it to contain %q", err, tt.wantMsg)
			}
			// A refused file must not stay locked.
			if s, err := Open(path, Options{Timeout: 100 * time.Millisecond}); errors.Is(err, ErrLocked) {
				t.Errorf("reopen after refusal: %v", err)
			} else if err == nil {
				s.Close()
			}
		})
	}
}

func rawUpdate(t *testing.T, path string, fn func(*bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
}

func TestClosed(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "meta.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	calls := map[string]func() error{
		"Topics":             func() error { _, err := s.Topics(); return err },
		"Topic":              func() error { _, err := s.Topic("t"); return err },
		"PutTopic":           func() error { return s.PutTopic(topic.Spec{Name: "t", Partitions: 1}) },
		"DeleteTopic":        func() error { return s.DeleteTopic("t") },
		"CommitOffsets":      func() error { return s.CommitOffsets("g", []OffsetCommit{{Topic: "t"}}) },
		"FetchOffsets":       func() error { _, err := s.FetchOffsets("g"); return err },
		"FetchOffset":        func() error { _, _, err := s.FetchOffset("g", "t", 0); return err },
		"Groups":             func() error { _, err := s.Groups(); return err },
		"DeleteGroup":        func() error { return s.DeleteGroup("g") },
		"DeleteTopicOffsets": func() error { return s.DeleteTopicOffsets("t") },
		"Put":                func() error { return s.Put("n", "k", nil) },
		"Get":                func() error { _, _, err := s.Get("n", "k"); return err },
		"Delete":             func() error { return s.Delete("n", "k") },
		"List":               func() error { _, err := s.List("n", ""); return err },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: got %v, want ErrClosed", name, err)
		}
	}
}

func TestOptionsDefaults(t *testing.T) {
	o := Options{}.withDefaults()
	if o.Timeout != DefaultTimeout {
		t.Errorf("Timeout: got %s, want %s", o.Timeout, DefaultTimeout)
	}
	if o.Now == nil {
		t.Error("Now: got nil, want time.Now")
	}
	o = Options{Timeout: 3 * time.Second}.withDefaults()
	if o.Timeout != 3*time.Second {
		t.Errorf("Timeout: got %s, want 3s", o.Timeout)
	}
}

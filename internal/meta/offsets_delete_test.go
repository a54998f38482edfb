package meta

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/topic"
)

func TestDeleteOffsets(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "meta.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, name := range []string{"a", "b"} {
		if err := s.PutTopic(topic.Spec{Name: name, Partitions: 2, CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	commit := []OffsetCommit{{Topic: "a", Partition: 0, Offset: 1, LeaderEpoch: -1}, {Topic: "a", Partition: 1, Offset: 2, LeaderEpoch: -1},
		{Topic: "b", Partition: 0, Offset: 3, LeaderEpoch: -1}}
	if err := s.CommitOffsets("g", commit); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteOffsets("g", map[string][]int32{"a": {1, 7}, "zzz": {0}}); err != nil {
		t.Fatal(err)
	}
	got, _ := s.FetchOffsets("g")
	if len(got) != 2 || got[0].Topic != "a" || got[0].Partition != 0 || got[1].Topic != "b" {
		t.Errorf("offsets after deleting a/1: %+v, want a/0 and b/0", got)
	}
	if err := s.DeleteOffsets("g", map[string][]int32{"a": {0}, "b": {0}}); err != nil {
		t.Fatal(err)
	}
	if gs, _ := s.Groups(); len(gs) != 0 {
		t.Errorf("groups after deleting every offset: %v, want none", gs)
	}
	if err := s.DeleteOffsets("never", map[string][]int32{"a": {0}}); err != nil {
		t.Errorf("delete offsets of a group without commits: %v, want nil", err)
	}
}

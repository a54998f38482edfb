package meta

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/topic"
)

// Compile-time check that the log package can use a *Store as its catalog.
var _ interface {
	Topics() ([]topic.Spec, error)
	PutTopic(topic.Spec) error
	DeleteTopic(name string) error
} = (*Store)(nil)

func specsEqual(a, b topic.Spec) bool {
	return a.Name == b.Name && a.ID == b.ID && a.Partitions == b.Partitions &&
		reflect.DeepEqual(a.Config, b.Config) && a.CreatedAt.Equal(b.CreatedAt)
}

func TestTopicRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		spec topic.Spec
		want topic.Spec // zero means spec
	}{
		{
			name: "full",
			spec: topic.Spec{
				Name:       "orders.v2",
				ID:         [16]byte{0xde, 0xad, 0xbe, 0xef, 15: 0xff},
				Partitions: 12,
				Config:     map[string]string{topic.KeyRetentionMs: "-1", topic.KeyTimestampType: "LogAppendTime"},
				CreatedAt:  time.Date(2025, 3, 1, 12, 30, 45, 123456789, time.FixedZone("CET", 3600)),
			},
		},
		{
			name: "minimal",
			spec: topic.Spec{Name: "t", Partitions: 1},
		},
		{
			name: "empty config comes back nil",
			spec: topic.Spec{Name: "t", Partitions: 1, Config: map[string]string{}},
			want: topic.Spec{Name: "t", Partitions: 1},
		},
		{
			name: "max name and partitions",
			spec: topic.Spec{Name: strings.Repeat("n", topic.MaxNameLen), Partitions: topic.MaxPartitions},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openStore(t, Options{})
			if err := s.PutTopic(tt.spec); err != nil {
				t.Fatalf("PutTopic: %v", err)
			}
			want := tt.want
			if want.Name == "" {
				want = tt.spec
			}
			got, err := s.Topic(tt.spec.Name)
			if err != nil {
				t.Fatalf("Topic: %v", err)
			}
			if !specsEqual(got, want) {
				t.Errorf("got %+v, want %+v", got, want)
			}
			if got.CreatedAt.Location() != time.UTC {
				t.Errorf("CreatedAt location: got %v, want UTC", got.CreatedAt.Location())
			}
			all, err := s.Topics()
			if err != nil || len(all) != 1 || !specsEqual(all[0], want) {
				t.Errorf("Topics: got %+v, %v; want [%+v]", all, err, want)
			}
		})
	}
}

func TestPutTopicInvalid(t *testing.T) {
	tests := []struct {
		name    string
		spec    topic.Spec
		wantMsg string
	}{
		{"empty name", topic.Spec{Partitions: 1}, "name is empty"},
		{"bad name", topic.Spec{Name: "a b", Partitions: 1}, "character ' '"},
		{"dot", topic.Spec{Name: ".", Partitions: 1}, "reserved"},
		{"zero partitions", topic.Spec{Name: "t"}, "0 partitions"},
		{"too many partitions", topic.Spec{Name: "t", Partitions: topic.MaxPartitions + 1}, "partitions"},
		{"unknown key", topic.Spec{Name: "t", Partitions: 1, Config: map[string]string{"nope": "1"}}, `unknown config key "nope"`},
		{"bad value", topic.Spec{Name: "t", Partitions: 1, Config: map[string]string{topic.KeySegmentMs: "0"}}, "segment.ms=0"},
	}
	s := openStore(t, Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.PutTopic(tt.spec)
			if !errors.Is(err, ErrInvalid) || !errors.Is(err, topic.ErrInvalid) {
				t.Fatalf("got %v, want an error wrapping ErrInvalid and topic.ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) || !strings.HasPrefix(err.Error(), "put topic ") {
				t.Errorf("got %q, want \"put topic ...\" containing %q", err, tt.wantMsg)
			}
		})
	}
	if got, err := s.Topics(); err != nil || len(got) != 0 {
		t.Errorf("Topics after refused puts: got %v, %v; want none", got, err)
	}
}

func TestTopicsSortedReplaceDelete(t *testing.T) {
	s := openStore(t, Options{})
	for _, name := range []string{"zeta", "Alpha", "a.b", "a", "a-b", "beta"} {
		putTopic(t, s, name, 1)
	}
	// Replace one.
	repl := topic.Spec{Name: "beta", Partitions: 8, Config: map[string]string{topic.KeyRetentionBytes: "100"}}
	if err := s.PutTopic(repl); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteTopic("zeta"); err != nil {
		t.Fatalf("DeleteTopic: %v", err)
	}
	all, err := s.Topics()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, sp := range all {
		names = append(names, sp.Name)
	}
	if want := []string{"Alpha", "a", "a-b", "a.b", "beta"}; !reflect.DeepEqual(names, want) {
		t.Errorf("Topics names: got %v, want %v", names, want)
	}
	got, err := s.Topic("beta")
	if err != nil || !specsEqual(got, repl) {
		t.Errorf("replaced topic: got %+v, %v; want %+v", got, err, repl)
	}
}

func TestTopicNotFound(t *testing.T) {
	s := openStore(t, Options{})
	putTopic(t, s, "exists", 1)
	tests := []struct {
		name string
		call func() error
		want string
	}{
		{"Topic", func() error { _, err := s.Topic("missing"); return err }, `get topic "missing": not found`},
		{"Topic empty", func() error { _, err := s.Topic(""); return err }, `get topic "": not found`},
		{"Topic prefix", func() error { _, err := s.Topic("exist"); return err }, "not found"},
		{"DeleteTopic", func() error { return s.DeleteTopic("missing") }, `delete topic "missing": not found`},
		{"DeleteTopic empty", func() error { return s.DeleteTopic("") }, "not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if !errors.Is(err, ErrNotFound) {
				t.Fatalf("got %v, want ErrNotFound", err)
			}
			if err.Error() != tt.want && !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %q, want %q", err, tt.want)
			}
		})
	}
	if _, err := s.Topic("exists"); err != nil {
		t.Errorf("existing topic: %v", err)
	}
}

func TestPutTopicDoesNotRetain(t *testing.T) {
	s := openStore(t, Options{})
	cfg := map[string]string{topic.KeyRetentionMs: "1"}
	if err := s.PutTopic(topic.Spec{Name: "t", Partitions: 1, Config: cfg}); err != nil {
		t.Fatal(err)
	}
	cfg[topic.KeyRetentionMs] = "2"
	got, _ := s.Topic("t")
	if v := got.Config[topic.KeyRetentionMs]; v != "1" {
		t.Errorf("got retention.ms %q, want \"1\"", v)
	}
	got.Config[topic.KeyRetentionMs] = "3"
	again, _ := s.Topic("t")
	if v := again.Config[topic.KeyRetentionMs]; v != "1" {
		t.Errorf("after modifying a returned spec: got %q, want \"1\"", v)
	}
}

func TestDeleteTopicDropsOffsets(t *testing.T) {
	s := openStore(t, Options{})
	putTopic(t, s, "a", 2)
	putTopic(t, s, "a.b", 2)
	for _, g := range []string{"g1", "g2"} {
		if err := s.CommitOffsets(g, []OffsetCommit{{Topic: "a", Partition: 0, Offset: 1}, {Topic: "a", Partition: 1, Offset: 2}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CommitOffsets("g2", []OffsetCommit{{Topic: "a.b", Partition: 1, Offset: 3}}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteTopic("a"); err != nil {
		t.Fatal(err)
	}
	groups, err := s.Groups()
	if err != nil || !reflect.DeepEqual(groups, []string{"g2"}) {
		t.Errorf("Groups: got %v, %v; want [g2] (g1 had only offsets of the deleted topic)", groups, err)
	}
	got, err := s.FetchOffsets("g2")
	want := []OffsetCommit{{Topic: "a.b", Partition: 1, Offset: 3}}
	if err != nil || !offsetsEqual(got, want) {
		t.Errorf("FetchOffsets(g2): got %+v, %v; want %+v", got, err, want)
	}
	// A topic created again under the same name starts without offsets.
	putTopic(t, s, "a", 2)
	if c, ok, err := s.FetchOffset("g1", "a", 0); ok || err != nil {
		t.Errorf("offset of recreated topic: got %+v, %v, %v; want none", c, ok, err)
	}
}

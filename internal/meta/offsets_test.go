package meta

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// offsetsEqual compares commits without their commit times.
func offsetsEqual(a, b []OffsetCommit) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		x.CommitMs, y.CommitMs = 0, 0
		if x != y {
			return false
		}
	}
	return true
}

func fixedNow(ms int64) func() time.Time {
	return func() time.Time { return time.UnixMilli(ms) }
}

func TestCommitOffsetsInvalid(t *testing.T) {
	s := openStore(t, Options{})
	putTopic(t, s, "t", 4)
	ok := OffsetCommit{Topic: "t", Partition: 0, Offset: 1}
	with := func(f func(*OffsetCommit)) []OffsetCommit {
		c := ok
		f(&c)
		return []OffsetCommit{ok, c}
	}
	tests := []struct {
		name     string
		group    string
		commits  []OffsetCommit
		wantErr  error
		wantMsgs []string
	}{
		{name: "empty group", group: "", commits: []OffsetCommit{ok}, wantErr: ErrInvalid, wantMsgs: []string{"group name is empty"}},
		{name: "empty group, no commits", group: "", wantErr: ErrInvalid, wantMsgs: []string{"group name is empty"}},
		{name: "long group", group: strings.Repeat("g", MaxGroupLen+1), commits: []OffsetCommit{ok}, wantErr: ErrInvalid, wantMsgs: []string{"256 bytes, the limit is 255"}},
		{name: "group not UTF-8", group: "g\xff", commits: []OffsetCommit{ok}, wantErr: ErrInvalid, wantMsgs: []string{`"g\xff" is not valid UTF-8`}},
		{name: "negative partition", group: "g", commits: with(func(c *OffsetCommit) { c.Partition = -1 }), wantErr: ErrInvalid, wantMsgs: []string{`topic "t" partition -1: negative partition`}},
		{name: "negative offset", group: "g", commits: with(func(c *OffsetCommit) { c.Offset = -1 }), wantErr: ErrInvalid, wantMsgs: []string{"offset -1 is negative"}},
		{name: "leader epoch", group: "g", commits: with(func(c *OffsetCommit) { c.LeaderEpoch = -2 }), wantErr: ErrInvalid, wantMsgs: []string{"leader epoch -2"}},
		{name: "metadata too long", group: "g", commits: with(func(c *OffsetCommit) { c.Metadata = strings.Repeat("m", MaxMetadataLen+1) }), wantErr: ErrInvalid, wantMsgs: []string{"metadata is 4097 bytes, the limit is 4096"}},
		{name: "metadata not UTF-8", group: "g", commits: with(func(c *OffsetCommit) { c.Metadata = "\xc3" }), wantErr: ErrInvalid, wantMsgs: []string{"metadata is not valid UTF-8"}},
		{name: "unknown topic", group: "g", commits: with(func(c *OffsetCommit) { c.Topic = "missing" }), wantErr: ErrNotFound, wantMsgs: []string{`topic "missing": not found`}},
		{name: "empty topic", group: "g", commits: with(func(c *OffsetCommit) { c.Topic = "" }), wantErr: ErrNotFound, wantMsgs: []string{`topic "": not found`}},
		{name: "partition beyond count", group: "g", commits: with(func(c *OffsetCommit) { c.Partition = 4 }), wantErr: ErrNotFound, wantMsgs: []string{`topic "t" partition 4: not found (the topic has 4)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.CommitOffsets(tt.group, tt.commits)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("got %v, want %v", err, tt.wantErr)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "commit offsets of group ") {
				t.Errorf("got %q, want it to start with the operation", msg)
			}
			for _, want := range tt.wantMsgs {
				if !strings.Contains(msg, want) {
					t.Errorf("got %q, want it to contain %q", msg, want)
				}
			}
		})
	}
	// Nothing of any refused call was stored, not even its valid commit.
	if groups, err := s.Groups(); err != nil || len(groups) != 0 {
		t.Errorf("Groups after refused commits: got %v, %v; want none", groups, err)
	}
}

func TestCommitOffsetsLimits(t *testing.T) {
	s := openStore(t, Options{})
	putTopic(t, s, "t", 1)
	group := strings.Repeat("g", MaxGroupLen)
	c := OffsetCommit{Topic: "t", Offset: 1<<63 - 1, LeaderEpoch: 1<<31 - 1, Metadata: strings.Repeat("é", MaxMetadataLen/2), CommitMs: 1}
	if err := s.CommitOffsets(group, []OffsetCommit{c}); err != nil {
		t.Fatalf("commit at the limits: %v", err)
	}
	got, ok, err := s.FetchOffset(group, "t", 0)
	if err != nil || !ok || got != c {
		t.Errorf("got %+v, %v, %v; want %+v", got, ok, err, c)
	}
	if err := s.CommitOffsets("g", nil); err != nil {
		t.Errorf("empty commit: got %v, want nil", err)
	}
	if groups, _ := s.Groups(); len(groups) != 1 {
		t.Errorf("empty commit created a group: %v", groups)
	}
}

func TestCommitFetchOffsets(t *testing.T) {
	s := openStore(t, Options{Now: fixedNow(5000)})
	putTopic(t, s, "b", 3)
	putTopic(t, s, "a", 300)
	putTopic(t, s, "a.x", 1)

	type call struct {
		group   string
		commits []OffsetCommit
	}
	tests := []struct {
		name  string
		calls []call
		group string
		want  []OffsetCommit
	}{
		{
			name:  "unknown group has no offsets",
			group: "nobody",
		},
		{
			name: "sorted by topic then partition",
			calls: []call{{"g", []OffsetCommit{
				{Topic: "b", Partition: 2, Offset: 1},
				{Topic: "a", Partition: 256, Offset: 2},
				{Topic: "a.x", Partition: 0, Offset: 3},
				{Topic: "a", Partition: 1, Offset: 4},
				{Topic: "a", Partition: 0, Offset: 5},
			}}},
			group: "g",
			want: []OffsetCommit{
				{Topic: "a", Partition: 0, Offset: 5, CommitMs: 5000},
				{Topic: "a", Partition: 1, Offset: 4, CommitMs: 5000},
				{Topic: "a", Partition: 256, Offset: 2, CommitMs: 5000},
				{Topic: "a.x", Partition: 0, Offset: 3, CommitMs: 5000},
				{Topic: "b", Partition: 2, Offset: 1, CommitMs: 5000},
			},
		},
		{
			name: "later commit replaces, in one call and across calls",
			calls: []call{
				{"g", []OffsetCommit{{Topic: "b", Offset: 1}, {Topic: "b", Offset: 2, Metadata: "second"}}},
				{"g", []OffsetCommit{{Topic: "b", Partition: 1, Offset: 10}}},
				{"g", []OffsetCommit{{Topic: "b", Partition: 1, Offset: 3, LeaderEpoch: 7, Metadata: "back", CommitMs: 42}}},
			},
			group: "g",
			want: []OffsetCommit{
				{Topic: "b", Partition: 0, Offset: 2, Metadata: "second", CommitMs: 5000},
				{Topic: "b", Partition: 1, Offset: 3, LeaderEpoch: 7, Metadata: "back", CommitMs: 42},
			},
		},
		{
			name: "groups are separate",
			calls: []call{
				{"g1", []OffsetCommit{{Topic: "b", Offset: 1}}},
				{"g2", []OffsetCommit{{Topic: "b", Offset: 2, LeaderEpoch: -1, CommitMs: -1}}},
			},
			group: "g2",
			want:  []OffsetCommit{{Topic: "b", Offset: 2, LeaderEpoch: -1, CommitMs: 5000}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, g := range mustGroups(t, s) {
				if err := s.DeleteGroup(g); err != nil {
					t.Fatal(err)
				}
			}
			for _, c := range tt.calls {
				if err := s.CommitOffsets(c.group, c.commits); err != nil {
					t.Fatalf("CommitOffsets(%q): %v", c.group, err)
				}
			}
			got, err := s.FetchOffsets(tt.group)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("FetchOffsets: got %+v, want %+v", got, tt.want)
			}
			for _, w := range tt.want {
				c, ok, err := s.FetchOffset(tt.group, w.Topic, w.Partition)
				if err != nil || !ok || c != w {
					t.Errorf("FetchOffset(%s/%d): got %+v, %v, %v; want %+v", w.Topic, w.Partition, c, ok, err, w)
				}
			}
		})
	}
}

func mustGroups(t *testing.T, s *Store) []string {
	t.Helper()
	g, err := s.Groups()
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestFetchOffsetMissing(t *testing.T) {
	s := openStore(t, Options{})
	putTopic(t, s, "t", 2)
	if err := s.CommitOffsets("g", []OffsetCommit{{Topic: "t", Partition: 0, Offset: 1}}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		group, topic string
		partition    int32
	}{
		{"g", "t", 1},
		{"g", "u", 0},
		{"other", "t", 0},
		{"", "t", 0},
		{"g", "", 0},
		{"g", "t", -1},
	}
	for _, tt := range tests {
		c, ok, err := s.FetchOffset(tt.group, tt.topic, tt.partition)
		if err != nil || ok || c != (OffsetCommit{}) {
			t.Errorf("FetchOffset(%q, %q, %d): got %+v, %v, %v; want none", tt.group, tt.topic, tt.partition, c, ok, err)
		}
	}
}

func TestGroupsAndDelete(t *testing.T) {
	s := openStore(t, Options{})
	putTopic(t, s, "t", 1)
	putTopic(t, s, "tt", 1)
	for _, g := range []string{"zz", "a", "Z", "mid dle", "ünï"} {
		if err := s.CommitOffsets(g, []OffsetCommit{{Topic: "t", Offset: 1}, {Topic: "tt", Offset: 1}}); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := mustGroups(t, s), []string{"Z", "a", "mid dle", "zz", "ünï"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Groups: got %v, want %v", got, want)
	}
	if err := s.DeleteGroup("zz"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteGroup("zz"); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), `delete group "zz"`) {
		t.Errorf("second DeleteGroup: got %v, want ErrNotFound naming the group", err)
	}
	if got, err := s.FetchOffsets("zz"); err != nil || len(got) != 0 {
		t.Errorf("offsets of deleted group: got %v, %v", got, err)
	}
	// Dropping one topic's offsets keeps groups that still have others.
	if err := s.DeleteTopicOffsets("t"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteTopicOffsets("t"); err != nil {
		t.Errorf("second DeleteTopicOffsets: got %v, want nil", err)
	}
	if got, want := mustGroups(t, s), []string{"Z", "a", "mid dle", "ünï"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Groups after DeleteTopicOffsets(t): got %v, want %v", got, want)
	}
	got, _ := s.FetchOffsets("a")
	if want := []OffsetCommit{{Topic: "tt", Offset: 1}}; !offsetsEqual(got, want) {
		t.Errorf("offsets of a: got %+v, want %+v", got, want)
	}
	// The topic itself is untouched.
	if _, err := s.Topic("t"); err != nil {
		t.Errorf("Topic(t) after DeleteTopicOffsets: %v", err)
	}
	if err := s.DeleteTopicOffsets("tt"); err != nil {
		t.Fatal(err)
	}
	if got := mustGroups(t, s); len(got) != 0 {
		t.Errorf("Groups after dropping every topic's offsets: got %v, want none", got)
	}
}

func TestDeleteTopicOffsetsPrefixes(t *testing.T) {
	// Topics whose names share a prefix must not lose each other's offsets.
	names := []string{"a", "a.b", "a-b", "a_b", "ab", "a0", "b"}
	for _, victim := range names {
		t.Run(victim, func(t *testing.T) {
			s := openStore(t, Options{})
			var all []OffsetCommit
			for _, n := range names {
				putTopic(t, s, n, 300)
				all = append(all, OffsetCommit{Topic: n, Partition: 0, Offset: 1}, OffsetCommit{Topic: n, Partition: 256, Offset: 2})
			}
			if err := s.CommitOffsets("g", all); err != nil {
				t.Fatal(err)
			}
			if err := s.DeleteTopicOffsets(victim); err != nil {
				t.Fatal(err)
			}
			got, err := s.FetchOffsets("g")
			if err != nil {
				t.Fatal(err)
			}
			var gotTopics []string
			for _, c := range got {
				if c.Topic == victim {
					t.Errorf("offset of %q survived: %+v", victim, c)
				}
				gotTopics = append(gotTopics, c.Topic)
			}
			if len(got) != 2*(len(names)-1) {
				t.Errorf("got offsets of %v, want two of every topic but %q", gotTopics, victim)
			}
			checkDB(t, s)
		})
	}
}

func TestCommitsAreCopies(t *testing.T) {
	s := openStore(t, Options{})
	putTopic(t, s, "t", 1)
	commits := []OffsetCommit{{Topic: "t", Offset: 1}}
	if err := s.CommitOffsets("g", commits); err != nil {
		t.Fatal(err)
	}
	commits[0].Offset = 99
	if c, _, _ := s.FetchOffset("g", "t", 0); c.Offset != 1 {
		t.Errorf("got offset %d, want 1", c.Offset)
	}
	if commits[0].CommitMs != 0 {
		t.Errorf("CommitOffsets modified its argument: CommitMs = %d", commits[0].CommitMs)
	}
}

func TestConcurrentCommits(t *testing.T) {
	s := openStore(t, Options{})
	putTopic(t, s, "t", 8)
	const writers, rounds = 8, 20
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for n := range rounds {
				c := []OffsetCommit{{Topic: "t", Partition: int32(w), Offset: int64(n)}}
				if err := s.CommitOffsets(fmt.Sprint("g", w%2), c); err != nil {
					t.Error(err)
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			for range rounds {
				if _, err := s.FetchOffsets(fmt.Sprint("g", w%2)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for w := range writers {
		c, ok, err := s.FetchOffset(fmt.Sprint("g", w%2), "t", int32(w))
		if err != nil || !ok || c.Offset != rounds-1 {
			t.Errorf("writer %d: got %+v, %v, %v; want offset %d", w, c, ok, err, rounds-1)
		}
	}
}

package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-dev/sluice/internal/stream"
)

// Consumer groups:
//
//	GET    /v1/groups                   -> 200 {"groups": [{"group", "state", "members", "lag"}, ...]}
//	GET    /v1/groups/{group}           -> 200 {"group", "state", "lag", "members": [...], "partitions": [...]}
//	DELETE /v1/groups/{group}           -> 204; 409 while it has active members
//	POST   /v1/groups/{group}/offsets   {"offsets": [{"topic", "partition", "offset", "metadata"}]} -> 204
//	GET    /v1/groups/{group}/offsets   -> 200 {"offsets": [{"topic", "partition", "offset", "metadata", "commit_time"}]}
//	POST   /v1/groups/{group}/seek      {"to", "topic", "partitions"} -> 200 {"offsets": [{"topic", "partition", "offset"}]}
//
// A group exists while it has committed offsets or active members of
// either kind: Kafka REST Proxy v2 consumer instances (members.go, "kind":
// "rest_proxy") and Kafka-protocol consumers that joined through the Kafka
// listener (stream.Log.DescribeGroups, "kind": "kafka"). Its state is
// Kafka's name for it: the Kafka group's state (Stable, PreparingRebalance,
// CompletingRebalance) while it has Kafka members, else "Stable" with REST
// Proxy instances, "Empty" without members. A committed offset
// is the next offset the group will read, as in Kafka; lag is the high
// watermark minus the committed offset (never below 0), summed over the
// partitions with a commit.
//
// GET /v1/groups/{group}/offsets answers a group with no commits with an
// empty list, not 404, so that a checkpointing worker starts the same way
// the first time and every later time (as Kafka's OffsetFetch answers); the
// describe and delete endpoints answer 404 for a group that does not exist.

// Group states, as Kafka names them.
const (
	groupStable = "Stable"
	groupEmpty  = "Empty"
)

// maxCommitOffsets bounds the offsets of one commit request.
const maxCommitOffsets = 10000

func (a *API) registerGroups(mux *http.ServeMux) {
	a.handle(mux, "GET /v1/groups", a.listGroups)
	a.handle(mux, "GET /v1/groups/{group}", a.describeGroup)
	a.handle(mux, "DELETE /v1/groups/{group}", a.deleteGroup)
	a.handle(mux, "POST /v1/groups/{group}/offsets", a.commitGroupOffsets)
	a.handle(mux, "GET /v1/groups/{group}/offsets", a.fetchGroupOffsets)
	a.handle(mux, "POST /v1/groups/{group}/seek", a.seekGroup)
}

// Limits on group names, as the metadata store and Kafka's tools keep them.
const maxGroupLen = 255

// groupName returns the {group} path value, checked: 1 to 255 bytes of
// UTF-8 (422 otherwise).
func groupName(r *http.Request) (string, error) {
	g := r.PathValue("group")
	switch {
	case g == "":
		return "", errorf(http.StatusUnprocessableEntity, "the group name is empty")
	case len(g) > maxGroupLen:
		return "", errorf(http.StatusUnprocessableEntity, "the group name is %d bytes; the limit is %d", len(g), maxGroupLen)
	case !utf8.ValidString(g):
		return "", errorf(http.StatusUnprocessableEntity, "the group name is not valid UTF-8")
	}
	return g, nil
}

// partitionIndex maps every partition of every topic to its description.
type partitionIndex map[tp]stream.PartitionInfo

// partitionCounts is each topic's partition count.
type partitionCounts map[string]int32

func (a *API) partitions(ctx context.Context) (partitionIndex, partitionCounts, error) {
	topics, err := a.log.ListTopics(ctx)
	if err != nil {
		return nil, nil, err
	}
	idx, counts := partitionIndex{}, partitionCounts{}
	for _, t := range topics {
		counts[t.Name] = int32(len(t.Partitions))
		for _, p := range t.Partitions {
			idx[tp{t.Name, p.Partition}] = p
		}
	}
	return idx, counts, nil
}

// lagOf is the lag of a committed offset against its partition's high
// watermark, and false for a partition that no longer exists.
func (idx partitionIndex) lagOf(o stream.GroupOffset) (int64, bool) {
	p, ok := idx[tp{o.Topic, o.Partition}]
	if !ok {
		return 0, false
	}
	return max(p.HighWatermark-o.Offset, 0), true
}

func groupState(members int) string {
	if members > 0 {
		return groupStable
	}
	return groupEmpty
}

// kafkaGroups returns the live Kafka-protocol groups (those with members)
// by name: of the groups named, or with none named, of all.
func (a *API) kafkaGroups(ctx context.Context, names ...string) (map[string]stream.GroupDescription, error) {
	ds, err := a.log.DescribeGroups(ctx, names)
	if err != nil {
		return nil, err
	}
	out := make(map[string]stream.GroupDescription, len(ds))
	for _, d := range ds {
		if len(d.Members) > 0 {
			out[d.Group] = d
		}
	}
	return out, nil
}

// mixedState is the state of a group with kafka Kafka members (described
// by d) and rest REST Proxy instances.
func mixedState(d stream.GroupDescription, rest int) string {
	if len(d.Members) > 0 {
		return d.State
	}
	return groupState(rest)
}

type groupSummaryJSON struct {
	Group   string `json:"group"`
	State   string `json:"state"`
	Members int    `json:"members"`
	Lag     int64  `json:"lag"`
}

func (a *API) listGroups(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	names, err := a.log.ListGroups(ctx)
	if err != nil {
		return err
	}
	counts := a.cons.counts()
	for g := range counts {
		if !slices.Contains(names, g) {
			names = append(names, g)
		}
	}
	live, err := a.kafkaGroups(ctx)
	if err != nil {
		return err
	}
	for g := range live {
		if !slices.Contains(names, g) {
			names = append(names, g)
		}
	}
	slices.Sort(names)
	idx, _, err := a.partitions(ctx)
	if err != nil {
		return err
	}
	out := struct {
		Groups []groupSummaryJSON `json:"groups"`
	}{Groups: make([]groupSummaryJSON, 0, len(names))}
	for _, g := range names {
		offsets, err := a.log.FetchOffsets(ctx, g)
		if err != nil {
			return err
		}
		var lag int64
		for _, o := range offsets {
			l, _ := idx.lagOf(o)
			lag += l
		}
		kd := live[g]
		out.Groups = append(out.Groups, groupSummaryJSON{Group: g, State: mixedState(kd, counts[g]), Members: counts[g] + len(kd.Members), Lag: lag})
	}
	writeJSON(w, mediaJSON, http.StatusOK, out)
	return nil
}

type topicPartitionJSON struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
}

type memberJSON struct {
	// Kind is "rest_proxy" for a REST Proxy v2 consumer instance, "kafka"
	// for a consumer of the Kafka protocol.
	Kind         string               `json:"kind"`
	MemberID     string               `json:"member_id"`
	InstanceID   string               `json:"instance_id,omitempty"` // a static Kafka member's group.instance.id
	ClientID     string               `json:"client_id"`
	ClientHost   string               `json:"client_host"`
	Topics       []string             `json:"topics"`
	TopicPattern string               `json:"topic_pattern,omitempty"`
	Partitions   []topicPartitionJSON `json:"partitions"`
	LastSeen     string               `json:"last_seen,omitempty"` // REST Proxy instances only
}

// Member kinds of memberJSON.Kind.
const (
	memberRESTProxy = "rest_proxy"
	memberKafka     = "kafka"
)

type groupPartitionJSON struct {
	Topic           string `json:"topic"`
	Partition       int32  `json:"partition"`
	CommittedOffset *int64 `json:"committed_offset"`
	LogStartOffset  int64  `json:"log_start_offset"`
	LogEndOffset    int64  `json:"log_end_offset"`
	Lag             *int64 `json:"lag"`
	Member          string `json:"member,omitempty"`
	Metadata        string `json:"metadata,omitempty"`
	CommitTime      string `json:"commit_time,omitempty"`
}

type groupJSON struct {
	Group string `json:"group"`
	State string `json:"state"`
	// Protocol is the partition assignor of the Kafka members, while the
	// group is Stable.
	Protocol   string               `json:"protocol,omitempty"`
	Lag        int64                `json:"lag"`
	Members    []memberJSON         `json:"members"`
	Partitions []groupPartitionJSON `json:"partitions"`
}

// describeGroup answers the group's members and, for every partition it
// has committed or has assigned to a member, the committed offset, the log
// end offset (high watermark), the lag and the member. Partitions assigned
// but never committed have null committed_offset and lag.
func (a *API) describeGroup(w http.ResponseWriter, r *http.Request) error {
	group, err := groupName(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	offsets, err := a.log.FetchOffsets(ctx, group)
	if err != nil {
		return err
	}
	members, _ := a.cons.members(group)
	live, err := a.kafkaGroups(ctx, group)
	if err != nil {
		return err
	}
	kd := live[group]
	if len(offsets) == 0 && len(members) == 0 && len(kd.Members) == 0 {
		return errorf(http.StatusNotFound, "group %q not found: it has no committed offsets and no active members", group)
	}
	idx, counts, err := a.partitions(ctx)
	if err != nil {
		return err
	}
	owner := map[tp]string{}
	out := groupJSON{Group: group, State: mixedState(kd, len(members)), Protocol: kd.Protocol,
		Members: make([]memberJSON, 0, len(members)+len(kd.Members))}
	for _, m := range kd.Members {
		mj := memberJSON{Kind: memberKafka, MemberID: m.MemberID, InstanceID: m.InstanceID, ClientID: m.ClientID,
			ClientHost: m.ClientHost, Topics: []string{}, Partitions: []topicPartitionJSON{}}
		for _, as := range m.Assigned {
			mj.Topics = append(mj.Topics, as.Topic)
			for _, p := range as.Partitions {
				t := tp{as.Topic, p}
				if _, ok := idx[t]; ok {
					owner[t] = m.MemberID
				}
				mj.Partitions = append(mj.Partitions, topicPartitionJSON{as.Topic, p})
			}
		}
		slices.Sort(mj.Topics)
		mj.Topics = slices.Compact(mj.Topics)
		slices.SortFunc(mj.Partitions, func(x, y topicPartitionJSON) int {
			return compareTP(tp{x.Topic, x.Partition}, tp{y.Topic, y.Partition})
		})
		out.Members = append(out.Members, mj)
	}
	assigned := assign(members, counts)
	for _, m := range members {
		mj := memberJSON{Kind: memberRESTProxy, MemberID: m.id, ClientID: m.clientID, ClientHost: m.clientHost, Topics: m.topics,
			Partitions: []topicPartitionJSON{}, LastSeen: m.lastSeen.UTC().Format(time.RFC3339Nano)}
		if m.pattern != nil {
			mj.TopicPattern = m.pattern.String()
			mj.Topics = matchingTopics(m.pattern, counts)
		}
		if mj.Topics == nil {
			mj.Topics = []string{}
		}
		for _, t := range assigned[m.id] {
			owner[t] = m.id
			mj.Partitions = append(mj.Partitions, topicPartitionJSON{t.topic, t.partition})
		}
		out.Members = append(out.Members, mj)
	}
	rows := map[tp]*groupPartitionJSON{}
	row := func(t tp, p stream.PartitionInfo) *groupPartitionJSON {
		if rows[t] == nil {
			rows[t] = &groupPartitionJSON{Topic: t.topic, Partition: t.partition,
				LogStartOffset: p.LogStartOffset, LogEndOffset: p.HighWatermark, Member: owner[t]}
		}
		return rows[t]
	}
	for _, o := range offsets {
		t := tp{o.Topic, o.Partition}
		p, ok := idx[t]
		if !ok {
			continue // the topic or partition is gone
		}
		lag, _ := idx.lagOf(o)
		gp := row(t, p)
		gp.CommittedOffset, gp.Lag, gp.Metadata = &o.Offset, &lag, o.Metadata
		if !o.CommitTime.IsZero() {
			gp.CommitTime = o.CommitTime.UTC().Format(time.RFC3339Nano)
		}
		out.Lag += lag
	}
	for t := range owner {
		row(t, idx[t])
	}
	out.Partitions = make([]groupPartitionJSON, 0, len(rows))
	for _, gp := range rows {
		out.Partitions = append(out.Partitions, *gp)
	}
	slices.SortFunc(out.Partitions, func(a, b groupPartitionJSON) int {
		return compareTP(tp{a.Topic, a.Partition}, tp{b.Topic, b.Partition})
	})
	writeJSON(w, mediaJSON, http.StatusOK, out)
	return nil
}

// activeMembersError is the 409 for changing a group's offsets while it has
// members.
func activeMembersError(group string, members []memberInfo, doing string) error {
	ids := make([]string, len(members))
	for i, m := range members {
		ids[i] = m.id
	}
	return errorf(http.StatusConflict, "group %q has %d active members (%s); %s only a group without members: delete its consumer instances or let them expire first",
		group, len(members), strings.Join(ids, ", "), doing)
}

// checkNoMembers refuses (409) to change the offsets of a group that has
// active members of either kind, whose positions would override the change.
func (a *API) checkNoMembers(ctx context.Context, group, doing string) error {
	if members, _ := a.cons.members(group); len(members) > 0 {
		return activeMembersError(group, members, doing)
	}
	live, err := a.kafkaGroups(ctx, group)
	if err != nil {
		return err
	}
	if d, ok := live[group]; ok {
		ids := make([]string, len(d.Members))
		for i, m := range d.Members {
			ids[i] = m.MemberID
		}
		return errorf(http.StatusConflict, "group %q has %d active Kafka consumers (%s) and is %s; %s only a group without members: stop its consumers first",
			group, len(ids), strings.Join(ids, ", "), d.State, doing)
	}
	return nil
}

func (a *API) deleteGroup(w http.ResponseWriter, r *http.Request) error {
	group, err := groupName(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	if err := a.checkNoMembers(ctx, group, "delete"); err != nil {
		return err
	}
	offsets, err := a.log.FetchOffsets(ctx, group)
	if err != nil {
		return err
	}
	if len(offsets) == 0 {
		return errorf(http.StatusNotFound, "group %q not found: it has no committed offsets", group)
	}
	if err := a.log.DeleteGroup(ctx, group); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// commitOffsetJSON is an offset in a request body: to commit, or to seek
// a REST Proxy consumer instance to.
type commitOffsetJSON struct {
	Topic     string  `json:"topic"`
	Partition *int32  `json:"partition"`
	Offset    *int64  `json:"offset"`
	Metadata  *string `json:"metadata"`
}

type commitRequest struct {
	Offsets []commitOffsetJSON `json:"offsets"`
}

// maxOffsetMetadata bounds a commit's metadata, in bytes: Kafka's default
// offset.metadata.max.bytes.
const maxOffsetMetadata = 4096

// commitGroupOffsets stores the offsets, all or none, as given: each is the
// next offset the group will read. Any offset of 0 or more is accepted, as
// Kafka does, even past the high watermark.
func (a *API) commitGroupOffsets(w http.ResponseWriter, r *http.Request) error {
	group, err := groupName(r)
	if err != nil {
		return err
	}
	var req commitRequest
	if _, err := readBody(w, r, &req, false, mediaJSON); err != nil {
		return err
	}
	if len(req.Offsets) == 0 {
		return errorf(http.StatusUnprocessableEntity, "offsets is empty; want at least one offset to commit")
	}
	if len(req.Offsets) > maxCommitOffsets {
		return errorf(http.StatusUnprocessableEntity, "%d offsets in one commit; the limit is %d", len(req.Offsets), maxCommitOffsets)
	}
	now := a.opts.Now()
	seen := map[tp]int{}
	commits := make([]stream.GroupOffset, len(req.Offsets))
	for i, o := range req.Offsets {
		where := fmt.Sprintf("offsets[%d]", i)
		t, err := checkPartitionRef(where, o.Topic, o.Partition)
		if err != nil {
			return err
		}
		switch {
		case o.Offset == nil:
			return errorf(http.StatusUnprocessableEntity, "%s: offset is missing", where)
		case *o.Offset < 0:
			return errorf(http.StatusUnprocessableEntity, "%s: offset %d is negative", where, *o.Offset)
		case o.Metadata != nil && len(*o.Metadata) > maxOffsetMetadata:
			return errorf(http.StatusUnprocessableEntity, "%s: metadata is %d bytes; the limit is %d", where, len(*o.Metadata), maxOffsetMetadata)
		}
		if j, dup := seen[t]; dup {
			return errorf(http.StatusUnprocessableEntity, "%s: %s/%d is also offsets[%d]", where, t.topic, t.partition, j)
		}
		seen[t] = i
		commits[i] = stream.GroupOffset{Topic: o.Topic, Partition: *o.Partition, Offset: *o.Offset, LeaderEpoch: -1, CommitTime: now}
		if o.Metadata != nil {
			commits[i].Metadata = *o.Metadata
		}
	}
	if err := a.log.CommitOffsets(r.Context(), group, commits); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type groupOffsetJSON struct {
	Topic      string `json:"topic"`
	Partition  int32  `json:"partition"`
	Offset     int64  `json:"offset"`
	Metadata   string `json:"metadata"`
	CommitTime string `json:"commit_time,omitempty"`
}

func (a *API) fetchGroupOffsets(w http.ResponseWriter, r *http.Request) error {
	group, err := groupName(r)
	if err != nil {
		return err
	}
	offsets, err := a.log.FetchOffsets(r.Context(), group)
	if err != nil {
		return err
	}
	out := struct {
		Offsets []groupOffsetJSON `json:"offsets"`
	}{Offsets: make([]groupOffsetJSON, len(offsets))}
	for i, o := range offsets {
		out.Offsets[i] = groupOffsetJSON{Topic: o.Topic, Partition: o.Partition, Offset: o.Offset, Metadata: o.Metadata}
		if !o.CommitTime.IsZero() {
			out.Offsets[i].CommitTime = o.CommitTime.UTC().Format(time.RFC3339Nano)
		}
	}
	writeJSON(w, mediaJSON, http.StatusOK, out)
	return nil
}

type seekRequest struct {
	// To is "earliest", "latest", "@<time>", or an offset (a JSON number
	// or a string of digits).
	To         json.RawMessage `json:"to"`
	Topic      string          `json:"topic"`
	Partitions []int32         `json:"partitions"`
}

// parseSeekTo parses a seek request's "to".
func parseSeekTo(raw json.RawMessage) (offsetSpec, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return offsetSpec{}, errorf(http.StatusUnprocessableEntity, "to is missing; want earliest, latest, @<time> or an offset")
	}
	var s string
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &s); err != nil {
			return offsetSpec{}, errorf(http.StatusBadRequest, "to: %v", err)
		}
	} else {
		// A JSON number: only an integer is an offset.
		if _, err := strconv.ParseInt(string(raw), 10, 64); err != nil {
			if _, ferr := strconv.ParseFloat(string(raw), 64); ferr != nil {
				return offsetSpec{}, errorf(http.StatusBadRequest, "to is a JSON %s; want a string or an integer", jsonKind(raw))
			}
		}
		s = string(raw)
	}
	return parseOffsetSpec("to", s)
}

func jsonKind(raw []byte) string {
	switch raw[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "boolean"
	}
	return "number"
}

// seekGroup commits, for the topic's partitions (all, or those listed),
// the offsets "to" resolves to. An explicit offset is clamped to each
// partition's [log start, high watermark], as Kafka's
// kafka-consumer-groups --reset-offsets does. It is refused with 409 while
// the group has active members, whose positions would override it.
func (a *API) seekGroup(w http.ResponseWriter, r *http.Request) error {
	group, err := groupName(r)
	if err != nil {
		return err
	}
	var req seekRequest
	if _, err := readBody(w, r, &req, false, mediaJSON); err != nil {
		return err
	}
	to, err := parseSeekTo(req.To)
	if err != nil {
		return err
	}
	if req.Topic == "" {
		return errorf(http.StatusUnprocessableEntity, "topic is missing")
	}
	ctx := r.Context()
	if err := a.checkNoMembers(ctx, group, "seek"); err != nil {
		return err
	}
	ti, err := a.log.DescribeTopic(ctx, req.Topic)
	if err != nil {
		return err
	}
	info := map[int32]stream.PartitionInfo{}
	for _, p := range ti.Partitions {
		info[p.Partition] = p
	}
	parts := slices.Compact(slices.Sorted(slices.Values(req.Partitions)))
	if len(req.Partitions) == 0 {
		for _, p := range ti.Partitions {
			parts = append(parts, p.Partition)
		}
	}
	commits := make([]stream.GroupOffset, 0, len(parts))
	now := a.opts.Now()
	for _, p := range parts {
		pi, ok := info[p]
		if !ok {
			return fmt.Errorf("seek group %q: topic %q has no partition %d (it has %d): %w", group, req.Topic, p, len(ti.Partitions), stream.ErrUnknownPartition)
		}
		off, err := to.resolve(ctx, a.log, req.Topic, p)
		if err != nil {
			return err
		}
		if to.kind == specOffset {
			off = min(max(off, pi.LogStartOffset), pi.HighWatermark)
		}
		commits = append(commits, stream.GroupOffset{Topic: req.Topic, Partition: p, Offset: off, LeaderEpoch: -1, CommitTime: now})
	}
	// Check again: a member may have joined while the offsets resolved.
	if err := a.checkNoMembers(ctx, group, "seek"); err != nil {
		return err
	}
	if err := a.log.CommitOffsets(ctx, group, commits); err != nil {
		return err
	}
	out := struct {
		Offsets []groupOffsetJSON `json:"offsets"`
	}{Offsets: make([]groupOffsetJSON, len(commits))}
	for i, c := range commits {
		out.Offsets[i] = groupOffsetJSON{Topic: c.Topic, Partition: c.Partition, Offset: c.Offset}
	}
	writeJSON(w, mediaJSON, http.StatusOK, out)
	return nil
}

// lagCollector computes sluice_consumer_group_lag_records when Prometheus
// scrapes: the lag of every group with committed offsets, summed by topic.
// Computing it at scrape time needs no goroutine and never reports a stale
// value or a deleted group.
type lagCollector struct {
	desc *prometheus.Desc
	// lag is set by New before the collector is registered.
	lag func(context.Context) ([]groupTopicLag, error)
}

type groupTopicLag struct {
	group, topic string
	lag          int64
}

// lagScrapeTimeout bounds the work of one scrape.
const lagScrapeTimeout = 5 * time.Second

func newLagCollector() *lagCollector {
	return &lagCollector{desc: prometheus.NewDesc("sluice_consumer_group_lag_records",
		"Records between a group's committed offsets and the high watermarks, by group and topic.",
		[]string{"group", "topic"}, nil)}
}

func (c *lagCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect reports what it can: when the log cannot answer, the scrape goes
// on without the lag series rather than failing as a whole.
func (c *lagCollector) Collect(ch chan<- prometheus.Metric) {
	if c.lag == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), lagScrapeTimeout)
	defer cancel()
	lags, err := c.lag(ctx)
	if err != nil {
		return
	}
	for _, l := range lags {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(l.lag), l.group, l.topic)
	}
}

// groupLag sums every group's lag by topic.
func (a *API) groupLag(ctx context.Context) ([]groupTopicLag, error) {
	groups, err := a.log.ListGroups(ctx)
	if err != nil {
		return nil, err
	}
	idx, _, err := a.partitions(ctx)
	if err != nil {
		return nil, err
	}
	var out []groupTopicLag
	for _, g := range groups {
		offsets, err := a.log.FetchOffsets(ctx, g)
		if err != nil {
			return nil, err
		}
		byTopic := map[string]int64{}
		for _, o := range offsets {
			if lag, ok := idx.lagOf(o); ok {
				byTopic[o.Topic] += lag
			}
		}
		for t, lag := range byTopic {
			out = append(out, groupTopicLag{group: g, topic: t, lag: lag})
		}
	}
	return out, nil
}

package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"mime"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/sluice-dev/sluice/internal/record"
	"github.com/sluice-dev/sluice/internal/stream"
)

// Kafka REST Proxy v2 consumer instances, for clients written against that
// API (Confluent's REST Proxy, Redpanda's pandaproxy):
//
//	POST   /consumers/{group}                                    create an instance -> 200 {"instance_id", "base_uri"}
//	DELETE /consumers/{group}/instances/{instance}               -> 204
//	POST   /consumers/{group}/instances/{instance}/subscription  {"topics": [...]} or {"topic_pattern": "re"} -> 204
//	GET    /consumers/{group}/instances/{instance}/subscription  -> 200 {"topics": [...]}
//	DELETE /consumers/{group}/instances/{instance}/subscription  -> 204
//	GET    /consumers/{group}/instances/{instance}/assignments   -> 200 {"partitions": [{"topic", "partition"}]}
//	GET    /consumers/{group}/instances/{instance}/records?timeout=ms&max_bytes=n
//	                                                             -> 200 [{"topic", "key", "value", "partition", "offset"}]
//	POST   /consumers/{group}/instances/{instance}/offsets       {"offsets": [{"topic", "partition", "offset", "metadata"}]}, or no body -> 200
//	GET    /consumers/{group}/instances/{instance}/offsets       {"partitions": [{"topic", "partition"}]} -> 200 {"offsets": [...]}
//	POST   /consumers/{group}/instances/{instance}/positions     {"offsets": [...], "timestamps": [...]} -> 204
//	POST   /consumers/{group}/instances/{instance}/positions/beginning  {"partitions": [...]} -> 204
//	POST   /consumers/{group}/instances/{instance}/positions/end        {"partitions": [...]} -> 204
//
// Requests carry application/vnd.kafka.v2+json (application/json and the
// embedded-format types are accepted too); responses are
// application/vnd.kafka.v2+json, records application/vnd.kafka.binary.v2+json
// or application/vnd.kafka.json.v2+json after the instance's format. Errors
// have REST Proxy's codes: 40401 unknown topic, 40403 unknown consumer
// instance, 40601 an Accept header that does not match the instance's
// format, 40902 an instance of that name exists, 40903 a request the
// instance's state does not allow (reading without a subscription, seeking a
// partition not assigned to it), 42204 an invalid instance configuration,
// 42901 too many instances.
//
// As in REST Proxy, a committed offset in POST .../offsets is the offset of
// the last record processed: the group resumes after it (offset+1 is
// stored, and GET .../offsets answers the stored value). With no body,
// the instance's positions are committed: everything it has returned.
// With auto.commit.enable (the default, as for Kafka's consumer) the
// positions are committed at the start of each records request, that is
// once the client has asked for more, and when the instance is deleted.
//
// Instances are the group's members (members.go): their partitions are the
// group's assignment, and while a group has any, POST /v1/groups/{group}/seek
// is refused.

// restRequestTypes are the Content-Types accepted on consumer requests.
var restRequestTypes = []string{mediaRESTV2, "application/vnd.kafka+json", "application/json", mediaRESTJSON, mediaRESTBinary}

// Defaults and bounds of consumer instances' requests.
const (
	defaultRequestTimeout = time.Second   // REST Proxy's consumer.request.timeout.ms
	restMaxRecords        = maxMaxRecords // records in one response
	maxInstanceName       = 255
	maxSubscribedTopics   = 10000
	maxTopicPattern       = 1000
)

func (a *API) registerRESTProxyConsumers(mux *http.ServeMux) {
	const inst = "/consumers/{group}/instances/{instance}"
	a.handle(mux, "POST /consumers/{group}", a.rest(a.createInstance))
	a.handle(mux, "DELETE "+inst, a.rest(a.deleteInstance))
	a.handle(mux, "POST "+inst+"/subscription", a.rest(a.subscribeInstance))
	a.handle(mux, "GET "+inst+"/subscription", a.rest(a.instanceSubscription))
	a.handle(mux, "DELETE "+inst+"/subscription", a.rest(a.unsubscribeInstance))
	a.handle(mux, "GET "+inst+"/assignments", a.rest(a.instanceAssignments))
	a.handle(mux, "GET "+inst+"/records", a.rest(a.instanceRecords))
	a.handle(mux, "POST "+inst+"/offsets", a.rest(a.instanceCommit))
	a.handle(mux, "GET "+inst+"/offsets", a.rest(a.instanceCommitted))
	a.handle(mux, "POST "+inst+"/positions", a.rest(a.instanceSeek))
	a.handle(mux, "POST "+inst+"/positions/beginning", a.rest(a.instanceSeekEdge(stream.Earliest)))
	a.handle(mux, "POST "+inst+"/positions/end", a.rest(a.instanceSeekEdge(stream.Latest)))
}

func invalidConfig(format string, args ...any) error {
	return restErrorf(http.StatusUnprocessableEntity, codeInvalidConfig, "invalid consumer configuration: "+format, args...)
}

func illegalState(format string, args ...any) error {
	return restErrorf(http.StatusConflict, codeIllegalState, format, args...)
}

type createInstanceRequest struct {
	Name             string      `json:"name"`
	Format           string      `json:"format"`
	AutoOffsetReset  string      `json:"auto.offset.reset"`
	AutoCommitEnable configValue `json:"auto.commit.enable"`
	FetchMinBytes    configValue `json:"fetch.min.bytes"`
	RequestTimeoutMs configValue `json:"consumer.request.timeout.ms"`
}

// createInstance creates a consumer instance. Defaults are Kafka's and REST
// Proxy's: format binary, auto.offset.reset latest, auto.commit.enable
// true, consumer.request.timeout.ms 1000 (the wait of a records request
// that names no timeout). fetch.min.bytes is accepted and ignored: a
// records request answers as soon as it has records.
func (a *API) createInstance(w http.ResponseWriter, r *http.Request) error {
	group, err := groupName(r)
	if err != nil {
		return err
	}
	var req createInstanceRequest
	if _, err := readBody(w, r, &req, true, restRequestTypes...); err != nil {
		return err
	}
	m := &member{group: group, id: req.Name, format: embeddedBinary, reset: "latest", autoCommit: true,
		requestTimeout: defaultRequestTimeout, clientHost: remoteHost(r), clientID: clientID(r)}
	if m.id == "" {
		m.id = newInstanceID()
	} else if err := checkInstanceName(m.id); err != nil {
		return err
	}
	switch f := strings.ToLower(req.Format); f {
	case "", embeddedBinary:
	case embeddedJSON:
		m.format = embeddedJSON
	default:
		return invalidConfig("format %q is not supported; want binary or json", req.Format)
	}
	switch v := strings.ToLower(req.AutoOffsetReset); v {
	case "", "latest", "largest":
	case "earliest", "smallest":
		m.reset = "earliest"
	case "none":
		m.reset = "none"
	default:
		return invalidConfig("auto.offset.reset %q; want earliest, latest or none", req.AutoOffsetReset)
	}
	switch v := strings.ToLower(string(req.AutoCommitEnable)); v {
	case "", "true":
	case "false":
		m.autoCommit = false
	default:
		return invalidConfig("auto.commit.enable %q; want true or false", req.AutoCommitEnable)
	}
	if v := string(req.FetchMinBytes); v != "" {
		if _, err := strconv.ParseInt(v, 10, 32); err != nil {
			return invalidConfig("fetch.min.bytes %q is not an integer", v)
		}
	}
	if v := string(req.RequestTimeoutMs); v != "" {
		ms, err := strconv.ParseInt(v, 10, 64)
		if err != nil || ms < 0 {
			return invalidConfig("consumer.request.timeout.ms %q; want milliseconds, 0 or more", v)
		}
		m.requestTimeout = min(time.Duration(ms)*time.Millisecond, maxPollWait)
	}
	if err := a.cons.add(m); err != nil {
		return err
	}
	writeJSON(w, mediaRESTV2, http.StatusOK, struct {
		InstanceID string `json:"instance_id"`
		BaseURI    string `json:"base_uri"`
	}{m.id, baseURI(r, group, m.id)})
	return nil
}

// checkInstanceName refuses names that cannot be a path segment or that
// nobody could type: empty, too long, not UTF-8, with a slash or a control
// character.
func checkInstanceName(name string) error {
	switch {
	case len(name) > maxInstanceName:
		return invalidConfig("name is %d bytes; the limit is %d", len(name), maxInstanceName)
	case !utf8.ValidString(name):
		return invalidConfig("name is not valid UTF-8")
	case strings.ContainsFunc(name, func(r rune) bool { return r == '/' || unicode.IsControl(r) }):
		return invalidConfig("name %q holds a slash or a control character", name)
	}
	return nil
}

// baseURI is the instance's URL, as REST Proxy answers it: on the host
// the client asked for.
func baseURI(r *http.Request, group, id string) string {
	u := url.URL{Scheme: "http", Host: r.Host, Path: "/consumers/" + group + "/instances/" + id,
		RawPath: "/consumers/" + url.PathEscape(group) + "/instances/" + url.PathEscape(id)}
	if r.TLS != nil {
		u.Scheme = "https"
	}
	return u.String()
}

func remoteHost(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

// clientID names the client software, as Kafka's client.id does: its
// User-Agent, cut short.
func clientID(r *http.Request) string {
	ua := strings.ToValidUTF8(r.UserAgent(), "")
	if len(ua) > 128 {
		ua = ua[:128]
		for !utf8.ValidString(ua) {
			ua = ua[:len(ua)-1]
		}
	}
	return ua
}

// instance returns the request's consumer instance.
func (a *API) instance(r *http.Request) (*member, error) {
	group, err := groupName(r)
	if err != nil {
		return nil, err
	}
	return a.cons.get(group, r.PathValue("instance"))
}

// lockedInstance returns the request's instance with its request lock held;
// the caller unlocks it.
func (a *API) lockedInstance(r *http.Request) (*member, error) {
	m, err := a.instance(r)
	if err != nil {
		return nil, err
	}
	if err := m.lock(r.Context()); err != nil {
		return nil, err
	}
	return m, nil
}

// deleteInstance removes the instance from its group, first committing
// its positions when it auto-commits, as a Kafka consumer does on close.
func (a *API) deleteInstance(w http.ResponseWriter, r *http.Request) error {
	m, err := a.lockedInstance(r)
	if err != nil {
		return err
	}
	defer m.unlock()
	var commitErr error
	if m.autoCommit {
		commitErr = a.commitPositions(r.Context(), m)
	}
	if err := a.cons.remove(m.group, m.id); err != nil {
		return err
	}
	if commitErr != nil {
		return fmt.Errorf("consumer instance %q deleted, but committing its positions failed: %w", m.id, commitErr)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type subscriptionRequest struct {
	Topics       []string `json:"topics"`
	TopicPattern string   `json:"topic_pattern"`
}

// subscribeInstance replaces the instance's subscription. The topics must
// exist; a pattern is a Go regular expression that must match a whole
// topic name, and covers the topics created later too. An empty list
// unsubscribes, as Kafka's subscribe does.
func (a *API) subscribeInstance(w http.ResponseWriter, r *http.Request) error {
	m, err := a.instance(r)
	if err != nil {
		return err
	}
	var req subscriptionRequest
	if _, err := readBody(w, r, &req, false, restRequestTypes...); err != nil {
		return err
	}
	var pattern *regexp.Regexp
	switch {
	case req.TopicPattern != "" && len(req.Topics) > 0:
		return errorf(http.StatusUnprocessableEntity, "topics and topic_pattern are both set; subscribe to one or the other")
	case len(req.TopicPattern) > maxTopicPattern:
		return errorf(http.StatusUnprocessableEntity, "topic_pattern is %d bytes; the limit is %d", len(req.TopicPattern), maxTopicPattern)
	case req.TopicPattern != "":
		if pattern, err = regexp.Compile(`^(?:` + req.TopicPattern + `)$`); err != nil {
			return errorf(http.StatusUnprocessableEntity, "topic_pattern: %v", err)
		}
	case len(req.Topics) > maxSubscribedTopics:
		return errorf(http.StatusUnprocessableEntity, "%d topics; the limit is %d", len(req.Topics), maxSubscribedTopics)
	}
	if len(req.Topics) > 0 {
		_, counts, err := a.partitions(r.Context())
		if err != nil {
			return err
		}
		for _, t := range req.Topics {
			if _, ok := counts[t]; !ok {
				return fmt.Errorf("subscribe to topic %q: %w", t, stream.ErrUnknownTopic)
			}
		}
	}
	a.cons.subscribe(m, req.Topics, pattern)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// matchingTopics returns the topics pattern matches, sorted.
func matchingTopics(pattern *regexp.Regexp, counts partitionCounts) []string {
	var out []string
	for t := range counts {
		if pattern.MatchString(t) {
			out = append(out, t)
		}
	}
	slices.Sort(out)
	return out
}

func (a *API) instanceSubscription(w http.ResponseWriter, r *http.Request) error {
	m, err := a.instance(r)
	if err != nil {
		return err
	}
	topics, pattern := a.cons.subscription(m)
	if pattern != nil {
		_, counts, err := a.partitions(r.Context())
		if err != nil {
			return err
		}
		topics = matchingTopics(pattern, counts)
	}
	if topics == nil {
		topics = []string{}
	}
	writeJSON(w, mediaRESTV2, http.StatusOK, struct {
		Topics []string `json:"topics"`
	}{topics})
	return nil
}

func (a *API) unsubscribeInstance(w http.ResponseWriter, r *http.Request) error {
	m, err := a.instance(r)
	if err != nil {
		return err
	}
	a.cons.subscribe(m, nil, nil)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// assigned returns the partitions the group's assignment gives m now.
func (a *API) assigned(ctx context.Context, m *member) ([]tp, uint64, error) {
	members, gen := a.cons.members(m.group)
	_, counts, err := a.partitions(ctx)
	if err != nil {
		return nil, 0, err
	}
	return assign(members, counts)[m.id], gen, nil
}

// syncAssignment returns m's partitions and, when the group changed since
// m's positions were taken, drops them: they resume from the committed
// offsets. The caller holds m's lock.
func (a *API) syncAssignment(ctx context.Context, m *member) ([]tp, error) {
	mine, gen, err := a.assigned(ctx, m)
	if err != nil {
		return nil, err
	}
	if m.posGen != gen || m.positions == nil {
		m.positions, m.posGen, m.dirty = map[tp]int64{}, gen, false
	}
	return mine, nil
}

func (a *API) instanceAssignments(w http.ResponseWriter, r *http.Request) error {
	m, err := a.instance(r)
	if err != nil {
		return err
	}
	mine, _, err := a.assigned(r.Context(), m)
	if err != nil {
		return err
	}
	out := struct {
		Partitions []topicPartitionJSON `json:"partitions"`
	}{Partitions: make([]topicPartitionJSON, len(mine))}
	for i, t := range mine {
		out.Partitions[i] = topicPartitionJSON{t.topic, t.partition}
	}
	writeJSON(w, mediaRESTV2, http.StatusOK, out)
	return nil
}

// resetPosition applies m's auto.offset.reset to a partition it has no
// valid position in.
func (a *API) resetPosition(ctx context.Context, m *member, t tp) (int64, error) {
	at := stream.Latest
	switch m.reset {
	case "earliest":
		at = stream.Earliest
	case "none":
		return 0, illegalState("no valid offset for %s/%d (no commit, or one out of range) and auto.offset.reset is none; seek the instance first", t.topic, t.partition)
	}
	return a.log.ListOffset(ctx, t.topic, t.partition, at)
}

// startPositions gives m a position in each of the partitions that lack
// one: the group's committed offset, else auto.offset.reset's.
func (a *API) startPositions(ctx context.Context, m *member, mine []tp) error {
	var committed map[tp]int64
	for _, t := range mine {
		if _, ok := m.positions[t]; ok {
			continue
		}
		if committed == nil {
			offsets, err := a.log.FetchOffsets(ctx, m.group)
			if err != nil {
				return err
			}
			committed = make(map[tp]int64, len(offsets))
			for _, o := range offsets {
				committed[tp{o.Topic, o.Partition}] = o.Offset
			}
		}
		off, ok := committed[t]
		if !ok {
			var err error
			if off, err = a.resetPosition(ctx, m, t); err != nil {
				return err
			}
		}
		m.positions[t] = off
	}
	return nil
}

// commitPositions commits m's positions when they moved since the last
// commit. The caller holds m's lock.
func (a *API) commitPositions(ctx context.Context, m *member) error {
	if !m.dirty || len(m.positions) == 0 {
		return nil
	}
	now := a.opts.Now()
	commits := make([]stream.GroupOffset, 0, len(m.positions))
	for t, off := range m.positions {
		commits = append(commits, stream.GroupOffset{Topic: t.topic, Partition: t.partition, Offset: off, LeaderEpoch: -1, CommitTime: now})
	}
	slices.SortFunc(commits, func(a, b stream.GroupOffset) int {
		return compareTP(tp{a.Topic, a.Partition}, tp{b.Topic, b.Partition})
	})
	if err := a.log.CommitOffsets(ctx, m.group, commits); err != nil {
		return err
	}
	m.dirty = false
	return nil
}

// acceptsFormat reports whether the request's Accept header takes records
// in the given embedded format.
func acceptsFormat(r *http.Request, format string) bool {
	accept := r.Header.Values("Accept")
	if len(accept) == 0 {
		return true
	}
	for _, h := range accept {
		for part := range strings.SplitSeq(h, ",") {
			mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil {
				continue
			}
			switch mt {
			case "*/*", "application/*", "application/json", mediaRESTV2, "application/vnd.kafka+json":
				return true
			case mediaRESTBinary, "application/vnd.kafka.binary+json":
				if format == embeddedBinary {
					return true
				}
			case mediaRESTJSON, "application/vnd.kafka.json+json":
				if format == embeddedJSON {
					return true
				}
			}
		}
	}
	return false
}

// instanceRecords answers the records of the instance's partitions from its
// positions on, advancing them. It reads the partitions in turn, starting
// one further each request so that none starves, until it has
// restMaxRecords records or max_bytes of keys and values (default and
// most 64 MiB; the first record is always returned whole). With nothing to
// read it waits up to timeout milliseconds (default the instance's
// consumer.request.timeout.ms, at most 30 s) for records on any of them.
func (a *API) instanceRecords(w http.ResponseWriter, r *http.Request) error {
	m, err := a.instance(r)
	if err != nil {
		return err
	}
	if !acceptsFormat(r, m.format) {
		return restErrorf(http.StatusNotAcceptable, codeFormatMismatch,
			"consumer instance %q reads the %s format; accept application/vnd.kafka.%s.v2+json", m.id, m.format, m.format)
	}
	q := r.URL.Query()
	timeoutMs, err := intParam(q, "timeout", int(m.requestTimeout/time.Millisecond), 0, math.MaxInt32)
	if err != nil {
		return err
	}
	maxBytes, err := intParam(q, "max_bytes", maxConsumeBytes, 1, math.MaxInt)
	if err != nil {
		return err
	}
	maxBytes = min(maxBytes, maxConsumeBytes)
	wait := min(time.Duration(timeoutMs)*time.Millisecond, maxPollWait)

	ctx := r.Context()
	if err := m.lock(ctx); err != nil {
		return err
	}
	defer m.unlock()
	if m.autoCommit {
		if err := a.commitPositions(ctx, m); err != nil {
			return err
		}
	}
	mine, err := a.syncAssignment(ctx, m)
	if err != nil {
		return err
	}
	if topics, pattern := a.cons.subscription(m); len(mine) == 0 && len(topics) == 0 && pattern == nil {
		return illegalState("consumer instance %q is not subscribed to any topic; subscribe first", m.id)
	}
	if err := a.startPositions(ctx, m, mine); err != nil {
		return err
	}
	pctx, cancel, closing := a.cons.pollContext(ctx)
	defer cancel()

	pos := maps.Clone(m.positions)
	out := append(make([]byte, 0, 4096), '[')
	n, used := 0, 0
	deadline := time.Now().Add(wait)
	start := m.next
	for {
		for i := range mine {
			if n >= restMaxRecords || n > 0 && used >= maxBytes {
				break
			}
			t := mine[(start+i)%len(mine)]
			emit := func(rec *record.Record) bool {
				size := len(rec.Key) + len(rec.Value)
				if n > 0 && used+size > maxBytes {
					return false
				}
				if n > 0 {
					out = append(out, ',')
				}
				out = appendRESTRecord(out, t.topic, t.partition, rec, m.format)
				n++
				used += size
				return true
			}
			lim := readLimits{maxRecords: restMaxRecords - n, maxBytes: max(maxBytes-used, 1)}
			res, err := a.readRecords(pctx, t.topic, t.partition, pos[t], lim, emit)
			if errors.Is(err, stream.ErrOffsetOutOfRange) && res.count == 0 {
				var off int64
				if off, err = a.resetPosition(pctx, m, t); err == nil {
					pos[t] = off
					res, err = a.readRecords(pctx, t.topic, t.partition, off, lim, emit)
				}
			}
			if err != nil {
				if closing() && errors.Is(err, context.Canceled) {
					break
				}
				return err
			}
			pos[t] = res.next
		}
		if n > 0 || closing() || !time.Now().Before(deadline) {
			break
		}
		if len(mine) == 0 {
			sleepCtx(pctx, time.Until(deadline))
			break
		}
		a.waitAny(pctx, mine, pos, time.Until(deadline))
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	out = append(out, "]\n"...)
	m.next++
	for t, off := range pos {
		if m.positions[t] != off {
			m.positions[t] = off
			m.dirty = true
		}
	}
	contentType := mediaRESTBinary
	if m.format == embeddedJSON {
		contentType = mediaRESTJSON
	}
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
	return nil
}

// waitAny waits up to d for records at pos in any of the partitions, or for
// a fetch error (which the read that follows reports), one fetch per
// partition. It returns once all of them have.
func (a *API) waitAny(ctx context.Context, tps []tp, pos map[tp]int64, d time.Duration) {
	if d <= 0 {
		return
	}
	wctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var wg sync.WaitGroup
	for _, t := range tps {
		wg.Go(func() {
			res, err := a.log.Fetch(wctx, stream.FetchRequest{Topic: t.topic, Partition: t.partition, Offset: pos[t], MaxBytes: 1, MaxWait: d})
			if err != nil && wctx.Err() == nil || len(res.Batches) > 0 {
				cancel()
			}
		})
	}
	wg.Wait()
}

// sleepCtx waits d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

type restCommitRequest struct {
	Offsets []commitOffsetJSON `json:"offsets"`
}

// checkPartitionRef checks a topic-partition of a request body.
func checkPartitionRef(where, topic string, partition *int32) (tp, error) {
	switch {
	case topic == "":
		return tp{}, errorf(http.StatusUnprocessableEntity, "%s: topic is missing", where)
	case partition == nil:
		return tp{}, errorf(http.StatusUnprocessableEntity, "%s: partition is missing", where)
	case *partition < 0:
		return tp{}, errorf(http.StatusUnprocessableEntity, "%s: partition %d is negative", where, *partition)
	}
	return tp{topic, *partition}, nil
}

// instanceCommit commits the offsets given (each the last record
// processed: offset+1 is stored), or with no body the instance's positions.
func (a *API) instanceCommit(w http.ResponseWriter, r *http.Request) error {
	m, err := a.instance(r)
	if err != nil {
		return err
	}
	var req restCommitRequest
	empty, err := readBody(w, r, &req, true, restRequestTypes...)
	if err != nil {
		return err
	}
	ctx := r.Context()
	if err := m.lock(ctx); err != nil {
		return err
	}
	defer m.unlock()
	if empty || req.Offsets == nil {
		m.dirty = m.dirty || len(m.positions) > 0 // commit them even if an auto-commit already did
		if err := a.commitPositions(ctx, m); err != nil {
			return err
		}
		w.WriteHeader(http.StatusOK)
		return nil
	}
	if len(req.Offsets) > maxCommitOffsets {
		return errorf(http.StatusUnprocessableEntity, "%d offsets in one commit; the limit is %d", len(req.Offsets), maxCommitOffsets)
	}
	now := a.opts.Now()
	commits := make([]stream.GroupOffset, 0, len(req.Offsets))
	seen := map[tp]bool{}
	for i, o := range req.Offsets {
		where := fmt.Sprintf("offsets[%d]", i)
		t, err := checkPartitionRef(where, o.Topic, o.Partition)
		if err != nil {
			return err
		}
		switch {
		case o.Offset == nil:
			return errorf(http.StatusUnprocessableEntity, "%s: offset is missing", where)
		case *o.Offset < 0 || *o.Offset == math.MaxInt64:
			return errorf(http.StatusUnprocessableEntity, "%s: offset %d is out of range", where, *o.Offset)
		case o.Metadata != nil && len(*o.Metadata) > maxOffsetMetadata:
			return errorf(http.StatusUnprocessableEntity, "%s: metadata is %d bytes; the limit is %d", where, len(*o.Metadata), maxOffsetMetadata)
		case seen[t]:
			return errorf(http.StatusUnprocessableEntity, "%s: %s/%d is listed twice", where, t.topic, t.partition)
		}
		seen[t] = true
		c := stream.GroupOffset{Topic: t.topic, Partition: t.partition, Offset: *o.Offset + 1, LeaderEpoch: -1, CommitTime: now}
		if o.Metadata != nil {
			c.Metadata = *o.Metadata
		}
		commits = append(commits, c)
	}
	if err := a.log.CommitOffsets(ctx, m.group, commits); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

type restPartitionJSON struct {
	Topic     string `json:"topic"`
	Partition *int32 `json:"partition"`
}

type restPartitionsRequest struct {
	Partitions []restPartitionJSON `json:"partitions"`
}

func (req restPartitionsRequest) list() ([]tp, error) {
	out := make([]tp, 0, len(req.Partitions))
	for i, p := range req.Partitions {
		t, err := checkPartitionRef(fmt.Sprintf("partitions[%d]", i), p.Topic, p.Partition)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

// instanceCommitted answers the group's committed offsets for the
// partitions listed (with no body, the instance's assigned partitions).
// Partitions without a commit are left out, as REST Proxy does.
func (a *API) instanceCommitted(w http.ResponseWriter, r *http.Request) error {
	m, err := a.instance(r)
	if err != nil {
		return err
	}
	var req restPartitionsRequest
	empty, err := readBody(w, r, &req, true, restRequestTypes...)
	if err != nil {
		return err
	}
	ctx := r.Context()
	want, err := req.list()
	if err != nil {
		return err
	}
	if empty {
		if want, _, err = a.assigned(ctx, m); err != nil {
			return err
		}
	}
	offsets, err := a.log.FetchOffsets(ctx, m.group)
	if err != nil {
		return err
	}
	committed := make(map[tp]stream.GroupOffset, len(offsets))
	for _, o := range offsets {
		committed[tp{o.Topic, o.Partition}] = o
	}
	type offsetJSON struct {
		Topic     string `json:"topic"`
		Partition int32  `json:"partition"`
		Offset    int64  `json:"offset"`
		Metadata  string `json:"metadata"`
	}
	out := struct {
		Offsets []offsetJSON `json:"offsets"`
	}{Offsets: []offsetJSON{}}
	for _, t := range want {
		if o, ok := committed[t]; ok {
			out.Offsets = append(out.Offsets, offsetJSON{o.Topic, o.Partition, o.Offset, o.Metadata})
		}
	}
	writeJSON(w, mediaRESTV2, http.StatusOK, out)
	return nil
}

type seekTimestampJSON struct {
	Topic     string          `json:"topic"`
	Partition *int32          `json:"partition"`
	Timestamp json.RawMessage `json:"timestamp"`
	Metadata  *string         `json:"metadata"`
}

type restSeekRequest struct {
	Offsets    []commitOffsetJSON  `json:"offsets"`
	Timestamps []seekTimestampJSON `json:"timestamps"`
}

// notAssigned is Kafka's refusal to seek a partition the consumer does not
// own.
func notAssigned(m *member, t tp) error {
	return illegalState("%s/%d is not assigned to consumer instance %q", t.topic, t.partition, m.id)
}

// instanceSeek moves the instance's positions in partitions assigned to it:
// to offsets, or to the first record at or after a time (RFC 3339, or Unix
// milliseconds). The positions are committed like any other (at the next
// auto-commit, or by POST .../offsets without a body).
func (a *API) instanceSeek(w http.ResponseWriter, r *http.Request) error {
	m, err := a.instance(r)
	if err != nil {
		return err
	}
	var req restSeekRequest
	if _, err := readBody(w, r, &req, false, restRequestTypes...); err != nil {
		return err
	}
	type target struct {
		t    tp
		spec offsetSpec
	}
	var targets []target
	for i, o := range req.Offsets {
		where := fmt.Sprintf("offsets[%d]", i)
		t, err := checkPartitionRef(where, o.Topic, o.Partition)
		if err != nil {
			return err
		}
		if o.Offset == nil || *o.Offset < 0 {
			return errorf(http.StatusUnprocessableEntity, "%s: offset is missing or negative", where)
		}
		targets = append(targets, target{t, offsetSpec{kind: specOffset, n: *o.Offset}})
	}
	for i, o := range req.Timestamps {
		where := fmt.Sprintf("timestamps[%d]", i)
		t, err := checkPartitionRef(where, o.Topic, o.Partition)
		if err != nil {
			return err
		}
		ms, err := parseTimestamp(where+": timestamp", o.Timestamp)
		if err != nil {
			return err
		}
		targets = append(targets, target{t, offsetSpec{kind: specTime, n: ms}})
	}
	ctx := r.Context()
	if err := m.lock(ctx); err != nil {
		return err
	}
	defer m.unlock()
	mine, err := a.syncAssignment(ctx, m)
	if err != nil {
		return err
	}
	moved := map[tp]int64{}
	for _, tg := range targets {
		if !slices.Contains(mine, tg.t) {
			return notAssigned(m, tg.t)
		}
		off, err := tg.spec.resolve(ctx, a.log, tg.t.topic, tg.t.partition)
		if err != nil {
			return err
		}
		moved[tg.t] = off
	}
	a.move(m, moved)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// move sets positions of m; the caller holds m's lock.
func (a *API) move(m *member, moved map[tp]int64) {
	for t, off := range moved {
		m.positions[t] = off
		m.dirty = true
	}
}

// parseTimestamp parses a seek timestamp: an RFC 3339 string, or Unix
// milliseconds as a number.
func parseTimestamp(where string, raw json.RawMessage) (int64, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, errorf(http.StatusUnprocessableEntity, "%s is missing", where)
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, errorf(http.StatusBadRequest, "%s: %v", where, err)
		}
		return parseTimeSpec(where, s)
	}
	ms, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil || ms < 0 {
		return 0, errorf(http.StatusUnprocessableEntity, "%s: %s is not a time; want RFC 3339 or Unix milliseconds", where, raw)
	}
	return ms, nil
}

// instanceSeekEdge moves the instance's positions in the partitions listed
// to their beginning (stream.Earliest) or end (stream.Latest).
func (a *API) instanceSeekEdge(at int64) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		m, err := a.instance(r)
		if err != nil {
			return err
		}
		var req restPartitionsRequest
		if _, err := readBody(w, r, &req, false, restRequestTypes...); err != nil {
			return err
		}
		want, err := req.list()
		if err != nil {
			return err
		}
		ctx := r.Context()
		if err := m.lock(ctx); err != nil {
			return err
		}
		defer m.unlock()
		mine, err := a.syncAssignment(ctx, m)
		if err != nil {
			return err
		}
		moved := map[tp]int64{}
		for _, t := range want {
			if !slices.Contains(mine, t) {
				return notAssigned(m, t)
			}
			off, err := a.log.ListOffset(ctx, t.topic, t.partition, at)
			if err != nil {
				return err
			}
			moved[t] = off
		}
		a.move(m, moved)
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

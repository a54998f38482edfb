package httpapi

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/sluice-dev/sluice/internal/record"
)

// This file keeps the consumer groups' active members: the Kafka REST Proxy
// v2 consumer instances (restproxy_consumers.go). They live in memory only,
// like a Kafka group coordinator's members: a restart forgets them and their
// uncommitted positions, and their groups resume from the committed offsets.
//
// Expiry is lazy: every access to the registry first removes the instances
// idle for longer than Options.ConsumerInstanceTimeout, so there is no
// goroutine to stop. An expired instance's uncommitted positions are
// dropped, never committed: the group re-reads from its last commit, which
// is at-least-once.
//
// Partitions are assigned round-robin, as Kafka's RoundRobinAssignor does:
// every partition of the topics the members subscribe to, sorted by topic
// and partition, dealt in turn to the members (sorted by id) subscribed to
// its topic. The assignment is computed when it is needed, from the members
// and the topics as they are then, so it follows joins, leaves,
// subscription changes and added partitions. Each of those bumps the
// group's generation; a member whose positions belong to an older
// generation drops them and starts again from the committed offsets, as
// Kafka's eager rebalancing does.

// Defaults for the Options fields about consumer instances.
const (
	DefaultConsumerInstanceTimeout = 5 * time.Minute
	DefaultMaxConsumerInstances    = 1000
)

// consumers is the API's consume-side state.
type consumers struct {
	mu      sync.Mutex
	groups  map[string]*groupMembers
	n       int // members over all groups
	timeout time.Duration
	max     int
	now     func() time.Time

	codecs record.Codecs

	// stop is cancelled by API.Close to end long polls.
	stop       context.Context
	stopCancel context.CancelFunc
}

func newConsumers(opts Options) *consumers {
	c := &consumers{
		groups:  map[string]*groupMembers{},
		timeout: opts.ConsumerInstanceTimeout,
		max:     opts.MaxConsumerInstances,
		now:     opts.Now,
	}
	c.stop, c.stopCancel = context.WithCancel(context.Background())
	return c
}

func (c *consumers) close() { c.stopCancel() }

// pollContext returns a context for a long poll: done when the request's
// is, or when the API is closed. closing reports which, after the fact.
func (c *consumers) pollContext(ctx context.Context) (pctx context.Context, cancel func(), closing func() bool) {
	pctx, cancelPoll := context.WithCancel(ctx)
	stop := context.AfterFunc(c.stop, cancelPoll)
	return pctx, func() { stop(); cancelPoll() }, func() bool { return c.stop.Err() != nil && ctx.Err() == nil }
}

// groupMembers are one group's members.
type groupMembers struct {
	members map[string]*member
	gen     uint64
}

// tp names a partition.
type tp struct {
	topic     string
	partition int32
}

func compareTP(a, b tp) int {
	if c := cmp.Compare(a.topic, b.topic); c != 0 {
		return c
	}
	return cmp.Compare(a.partition, b.partition)
}

// member is a REST Proxy v2 consumer instance. Its configuration is fixed
// at creation; lastSeen, topics and pattern are guarded by consumers.mu;
// the consume state (positions and what follows) by sem, which every
// request on the instance holds, so that requests on one instance run one
// at a time, as calls on one Kafka consumer must.
type member struct {
	group, id  string
	clientID   string
	clientHost string
	format     string // embeddedBinary or embeddedJSON
	reset      string // earliest, latest or none
	autoCommit bool
	// requestTimeout is how long a records request waits for data when it
	// names no timeout.
	requestTimeout time.Duration
	created        time.Time

	lastSeen time.Time
	topics   []string       // subscribed topics, sorted; nil when pattern is set
	pattern  *regexp.Regexp // a topic_pattern subscription

	sem chan struct{}

	posGen    uint64
	positions map[tp]int64
	dirty     bool // positions moved since the last commit
	next      int  // where the next records request starts among the assigned partitions
}

// lock takes the member's request lock, giving up when ctx ends.
func (m *member) lock(ctx context.Context) error {
	select {
	case m.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (m *member) unlock() { <-m.sem }

// memberInfo is a copy of what describes a member, taken under the lock.
type memberInfo struct {
	id, clientID, clientHost string
	topics                   []string
	pattern                  *regexp.Regexp
	lastSeen                 time.Time
}

func (mi memberInfo) matches(topic string) bool {
	if mi.pattern != nil {
		return mi.pattern.MatchString(topic)
	}
	_, ok := slices.BinarySearch(mi.topics, topic)
	return ok
}

// REST Proxy v2 error codes about consumer instances.
const (
	codeInstanceNotFound = 40403
	codeFormatMismatch   = 40601
	codeInstanceExists   = 40902
	codeIllegalState     = 40903
	codeInvalidConfig    = 42204
	codeTooManyInstances = 42901
)

// expireLocked removes the members idle for longer than the timeout.
func (c *consumers) expireLocked(now time.Time) {
	for name, g := range c.groups {
		for id, m := range g.members {
			if now.Sub(m.lastSeen) > c.timeout {
				delete(g.members, id)
				c.n--
				g.gen++
			}
		}
		if len(g.members) == 0 {
			delete(c.groups, name)
		}
	}
}

// add makes m a member of its group. It fails with 409 if the group has a
// member of that id, 429 when the instance limit is reached.
func (c *consumers) add(m *member) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	c.expireLocked(now)
	g := c.groups[m.group]
	if g != nil && g.members[m.id] != nil {
		return restErrorf(http.StatusConflict, codeInstanceExists, "consumer instance %q already exists in group %q", m.id, m.group)
	}
	if c.n >= c.max {
		return restErrorf(http.StatusTooManyRequests, codeTooManyInstances,
			"%d consumer instances are alive, the limit; delete some, or let idle ones expire (after %s)", c.n, c.timeout)
	}
	if g == nil {
		g = &groupMembers{members: map[string]*member{}}
		c.groups[m.group] = g
	}
	m.lastSeen = now
	m.created = now
	m.sem = make(chan struct{}, 1)
	g.members[m.id] = m
	g.gen++
	c.n++
	return nil
}

// get returns the group's member id and marks it seen, or a 404 with REST
// Proxy's code.
func (c *consumers) get(group, id string) (*member, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	c.expireLocked(now)
	if g := c.groups[group]; g != nil {
		if m := g.members[id]; m != nil {
			m.lastSeen = now
			return m, nil
		}
	}
	return nil, instanceNotFound(group, id)
}

func instanceNotFound(group, id string) error {
	return restErrorf(http.StatusNotFound, codeInstanceNotFound, "consumer instance %q not found in group %q", id, group)
}

// remove deletes the member; 404 if there is none.
func (c *consumers) remove(group, id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expireLocked(c.now())
	g := c.groups[group]
	if g == nil || g.members[id] == nil {
		return instanceNotFound(group, id)
	}
	delete(g.members, id)
	g.gen++
	c.n--
	if len(g.members) == 0 {
		delete(c.groups, group)
	}
	return nil
}

// subscribe replaces m's subscription: topics, or a pattern. Nothing of
// either unsubscribes.
func (c *consumers) subscribe(m *member, topics []string, pattern *regexp.Regexp) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m.topics, m.pattern = nil, pattern
	if pattern == nil && len(topics) > 0 {
		m.topics = slices.Compact(slices.Sorted(slices.Values(topics)))
	}
	if g := c.groups[m.group]; g != nil && g.members[m.id] == m {
		g.gen++
	}
}

// subscription returns m's subscription.
func (c *consumers) subscription(m *member) ([]string, *regexp.Regexp) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(m.topics), m.pattern
}

// members returns a copy of the group's members, sorted by id, and its
// generation. A group without members has none, and generation 0.
func (c *consumers) members(group string) ([]memberInfo, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expireLocked(c.now())
	g := c.groups[group]
	if g == nil {
		return nil, 0
	}
	out := make([]memberInfo, 0, len(g.members))
	for _, m := range g.members {
		out = append(out, memberInfo{id: m.id, clientID: m.clientID, clientHost: m.clientHost,
			topics: slices.Clone(m.topics), pattern: m.pattern, lastSeen: m.lastSeen})
	}
	slices.SortFunc(out, func(a, b memberInfo) int { return cmp.Compare(a.id, b.id) })
	return out, g.gen
}

// counts returns the number of members of every group that has any.
func (c *consumers) counts() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expireLocked(c.now())
	out := make(map[string]int, len(c.groups))
	for name, g := range c.groups {
		out[name] = len(g.members)
	}
	return out
}

// assign deals the partitions of the members' topics round-robin, as
// Kafka's RoundRobinAssignor: partitions in topic and partition order, each
// to the next member (in id order) subscribed to its topic. partitions
// gives each topic's partition count; topics it lacks are not assigned.
func assign(members []memberInfo, partitions map[string]int32) map[string][]tp {
	out := make(map[string][]tp, len(members))
	if len(members) == 0 {
		return out
	}
	topics := make([]string, 0, len(partitions))
	for t := range partitions {
		topics = append(topics, t)
	}
	slices.Sort(topics)
	next := 0
	for _, t := range topics {
		subscribed := false
		for _, m := range members {
			if m.matches(t) {
				subscribed = true
				break
			}
		}
		if !subscribed {
			continue
		}
		for p := int32(0); p < partitions[t]; p++ {
			for !members[next%len(members)].matches(t) {
				next++
			}
			m := members[next%len(members)]
			out[m.id] = append(out[m.id], tp{t, p})
			next++
		}
	}
	return out
}

// newInstanceID returns a random consumer instance id.
func newInstanceID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return "sluice-" + hex.EncodeToString(b[:])
}

// Package group is the coordinator of Kafka's classic consumer-group
// protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup), as a state machine
// independent of the wire codec: it elects a leader, selects a protocol,
// hands the leader's opaque assignments to the members and expires members
// that stop heartbeating. Membership lives in memory only, as a coordinator
// that has just taken over a group knows it: a restart forgets every member,
// whose next heartbeat or commit tells it to rejoin, while committed offsets
// persist in the metadata store, which this package never touches.
//
// # States
//
//	Empty --join--> PreparingRebalance --all joined or rebalance timeout--> CompletingRebalance
//	CompletingRebalance --leader's SyncGroup--> Stable
//	Stable, CompletingRebalance --join, leave or expiry--> PreparingRebalance
//	PreparingRebalance --nobody rejoined--> Empty
//	Empty --Delete--> Dead
//
// A group that reaches Empty with no member and no pending member (KIP-394)
// is forgotten at once; DescribeGroups and ListGroups in kafkawire then
// report it from its committed offsets ("Empty") or not at all ("Dead").
// That bounds memory by the groups that have members, at the cost of
// restarting the generation count when a group forms again, which clients
// do not depend on.
//
// The rules, error codes included, are those of Kafka's GroupCoordinator
// (classic protocol). Where this package differs, the comment says so.
package group

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Defaults for Options, Kafka's defaults for the broker settings named.
const (
	DefaultInitialRebalanceDelay = 3 * time.Second  // group.initial.rebalance.delay.ms
	DefaultMinSessionTimeout     = 6 * time.Second  // group.min.session.timeout.ms
	DefaultMaxSessionTimeout     = 30 * time.Minute // group.max.session.timeout.ms
	DefaultMaxSize               = math.MaxInt32    // group.max.size
	// DefaultNewMemberJoinTimeout bounds how long a member that joined for
	// the first time may wait in a rebalance, since it cannot heartbeat
	// before it has a member ID (Kafka's NewMemberJoinTimeoutMs).
	DefaultNewMemberJoinTimeout = 5 * time.Minute
)

// ErrClosed is returned by every method after Close.
var ErrClosed = errors.New("group coordinator closed")

// Options configure a Coordinator. Every field has a default.
type Options struct {
	// InitialRebalanceDelay is how long the first rebalance of an empty
	// group waits for more members, extended by the same delay (up to the
	// rebalance timeout) while new members keep coming, so that consumers
	// starting together do not rebalance once each. Zero means the default
	// (3s); a negative value means no delay.
	InitialRebalanceDelay time.Duration
	// MinSessionTimeout and MaxSessionTimeout bound the session timeouts
	// members may ask for; others get INVALID_SESSION_TIMEOUT. Defaults 6s
	// and 30 minutes.
	MinSessionTimeout time.Duration
	MaxSessionTimeout time.Duration
	// MaxSize bounds a group's members; joins beyond it get
	// GROUP_MAX_SIZE_REACHED. Default unlimited (MaxInt32).
	MaxSize int
	// NewMemberJoinTimeout: see DefaultNewMemberJoinTimeout.
	NewMemberJoinTimeout time.Duration
	// Clock defaults to the wall clock.
	Clock Clock
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

func (o *Options) setDefaults() error {
	switch {
	case o.InitialRebalanceDelay == 0:
		o.InitialRebalanceDelay = DefaultInitialRebalanceDelay
	case o.InitialRebalanceDelay < 0:
		o.InitialRebalanceDelay = 0
	}
	if o.MinSessionTimeout <= 0 {
		o.MinSessionTimeout = DefaultMinSessionTimeout
	}
	if o.MaxSessionTimeout <= 0 {
		o.MaxSessionTimeout = DefaultMaxSessionTimeout
	}
	if o.MinSessionTimeout > o.MaxSessionTimeout {
		return fmt.Errorf("group: MinSessionTimeout %v is above MaxSessionTimeout %v", o.MinSessionTimeout, o.MaxSessionTimeout)
	}
	if o.MaxSize <= 0 {
		o.MaxSize = DefaultMaxSize
	}
	if o.NewMemberJoinTimeout <= 0 {
		o.NewMemberJoinTimeout = DefaultNewMemberJoinTimeout
	}
	if o.Clock == nil {
		o.Clock = realClock{}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return nil
}

// State is a group's state, named as Kafka names it.
type State string

// The states of a classic group.
const (
	Empty               State = "Empty"
	PreparingRebalance  State = "PreparingRebalance"
	CompletingRebalance State = "CompletingRebalance"
	Stable              State = "Stable"
	Dead                State = "Dead"
)

// Protocol is one protocol a member supports (a partition assignor, for
// consumers), with the member's metadata for it (its subscription).
type Protocol struct {
	Name     string
	Metadata []byte
}

// JoinRequest is a JoinGroup request.
type JoinRequest struct {
	Group string
	// MemberID is empty for a member joining for the first time.
	MemberID string
	// InstanceID is the static member's group.instance.id (KIP-345), or
	// empty for a dynamic member.
	InstanceID           string
	ClientID, ClientHost string
	ProtocolType         string
	// Protocols are in the member's order of preference.
	Protocols        []Protocol
	SessionTimeout   time.Duration
	RebalanceTimeout time.Duration
	// RequireKnownMemberID is set from JoinGroup v4 on (KIP-394): a new
	// dynamic member gets MEMBER_ID_REQUIRED with its member ID and must
	// join again with it.
	RequireKnownMemberID bool
	// SupportsSkipAssignment is set from JoinGroup v9 on (KIP-814).
	SupportsSkipAssignment bool
}

// JoinResult is the answer to a join.
type JoinResult struct {
	MemberID     string
	Generation   int32
	ProtocolType string
	Protocol     string
	Leader       string
	// SkipAssignment tells a static leader that rejoined a stable group
	// not to assign (KIP-814).
	SkipAssignment bool
	// Members is set for the leader only: every member with its metadata
	// for the selected protocol.
	Members []JoinMember
}

// JoinMember is a member as the leader sees it.
type JoinMember struct {
	MemberID   string
	InstanceID string
	Metadata   []byte
}

// SyncRequest is a SyncGroup request.
type SyncRequest struct {
	Group      string
	MemberID   string
	InstanceID string
	Generation int32
	// ProtocolType and Protocol (SyncGroup v5+) must match the group's
	// when set.
	ProtocolType, Protocol *string
	// Assignments are the leader's, by member ID; ignored from others.
	Assignments map[string][]byte
}

// SyncResult is the answer to a sync.
type SyncResult struct {
	ProtocolType string
	Protocol     string
	Assignment   []byte
}

// LeaveMember is one member of a LeaveGroup request: by member ID, or by
// instance ID alone (an administrative removal of a static member).
type LeaveMember struct {
	MemberID   string
	InstanceID string
}

// Description describes a group.
type Description struct {
	Group        string
	State        State
	ProtocolType string
	// Protocol is the selected protocol; empty unless the group is Stable
	// (as Kafka's DescribeGroups answers).
	Protocol   string
	Generation int32
	Leader     string
	Members    []MemberDescription
	// Rebalances counts the generations the group has been through since
	// it was last empty.
	Rebalances uint64
}

// MemberDescription describes a member.
type MemberDescription struct {
	MemberID, InstanceID, ClientID, ClientHost string
	// Protocols are every protocol the member supports, with metadata.
	Protocols []Protocol
	// Metadata (for the selected protocol) and Assignment are set only
	// while the group is Stable.
	Metadata   []byte
	Assignment []byte
}

// Coordinator runs the groups. It is safe for concurrent use. Close stops
// its timers and ends the requests that wait in it.
type Coordinator struct {
	opts  Options
	clock Clock
	log   *slog.Logger
	done  chan struct{}

	mu     sync.Mutex
	closed bool
	groups map[string]*group
}

// New returns a coordinator with no groups.
func New(opts Options) (*Coordinator, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	return &Coordinator{opts: opts, clock: opts.Clock, log: opts.Logger, done: make(chan struct{}),
		groups: map[string]*group{}}, nil
}

// Close stops every timer, answers the joins and syncs waiting in the
// coordinator with ErrClosed and forgets every group. It is idempotent.
func (c *Coordinator) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	close(c.done)
	for _, g := range c.groups {
		g.stopTimers()
		g.state = Dead
	}
	c.groups = nil
	return nil
}

// Join handles a JoinGroup request. It returns at once with an error, or
// with MEMBER_ID_REQUIRED (kerr.MemberIDRequired, the result carrying the
// member ID), or with the current generation when nothing changes;
// otherwise it waits for the rebalance to complete. Errors are kerr errors
// with Kafka's codes, ctx.Err() when ctx ends first (the member stays in
// the rebalance, as in Kafka), or ErrClosed.
func (c *Coordinator) Join(ctx context.Context, req JoinRequest) (JoinResult, error) {
	return hold(ctx, c, func() (<-chan answer[JoinResult], JoinResult, error) { return c.join(req) })
}

// Sync handles a SyncGroup request. Followers wait for the leader's
// assignments while the group is CompletingRebalance.
func (c *Coordinator) Sync(ctx context.Context, req SyncRequest) (SyncResult, error) {
	return hold(ctx, c, func() (<-chan answer[SyncResult], SyncResult, error) { return c.sync(req) })
}

// hold runs start, a join or a sync, under the lock, and when it holds the
// request (a channel to wait on) waits for its answer, for ctx to end (the
// member stays where it is in the rebalance, as in Kafka), or for Close.
func hold[R any](ctx context.Context, c *Coordinator, start func() (<-chan answer[R], R, error)) (R, error) {
	var zero R
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return zero, ErrClosed
	}
	w, res, err := start()
	c.mu.Unlock()
	if w == nil {
		return res, err
	}
	select {
	case r := <-w:
		return r.res, r.err
	case <-ctx.Done():
		return zero, ctx.Err()
	case <-c.done:
		return zero, ErrClosed
	}
}

// Heartbeat handles a Heartbeat request: nil, or a kerr error
// (UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION, FENCED_INSTANCE_ID, and
// REBALANCE_IN_PROGRESS while the group rebalances, which tells the member
// to rejoin).
func (c *Coordinator) Heartbeat(groupName, memberID, instanceID string, generation int32) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	g := c.groups[groupName]
	switch {
	case g == nil:
		return kerr.UnknownMemberID
	case g.fenced(instanceID, memberID):
		return kerr.FencedInstanceID
	}
	m := g.members[memberID]
	switch {
	case m == nil:
		return kerr.UnknownMemberID
	case generation != g.generation:
		return kerr.IllegalGeneration
	}
	switch g.state {
	case Empty:
		return kerr.UnknownMemberID
	case PreparingRebalance:
		c.scheduleHeartbeat(g, m)
		return kerr.RebalanceInProgress
	}
	c.scheduleHeartbeat(g, m)
	return nil
}

// Leave handles a LeaveGroup request: one error (nil for success) per
// member, or a group-level error.
func (c *Coordinator) Leave(groupName string, members []LeaveMember) ([]error, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	out := make([]error, len(members))
	g := c.groups[groupName]
	for i, lm := range members {
		if g == nil || g.state == Dead {
			out[i] = kerr.UnknownMemberID
			continue
		}
		switch {
		case lm.MemberID == "":
			id, ok := g.static[lm.InstanceID]
			if lm.InstanceID == "" || !ok {
				out[i] = kerr.UnknownMemberID
				continue
			}
			c.removeMember(g, g.members[id], "removed by instance id")
		case g.pending[lm.MemberID] != nil:
			c.removePending(g, lm.MemberID)
		case g.fenced(lm.InstanceID, lm.MemberID):
			out[i] = kerr.FencedInstanceID
		case g.members[lm.MemberID] != nil:
			c.removeMember(g, g.members[lm.MemberID], "left the group")
		default:
			out[i] = kerr.UnknownMemberID
		}
	}
	if g != nil {
		c.maybeForget(g)
	}
	return out, nil
}

// CheckCommit validates the membership behind an offset commit, as Kafka
// does before storing offsets: nil to accept, else a kerr error. Commits
// from outside group management (generation below 0) are accepted only for
// groups without members. A valid commit counts as a heartbeat.
//
// Kafka checks and stores under the group's lock; the caller stores after
// this returns, so a rebalance that starts in between lets that one commit
// through, which is harmless: the member's generation was current a moment
// before.
func (c *Coordinator) CheckCommit(groupName string, generation int32, memberID, instanceID string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	g := c.groups[groupName]
	if g == nil {
		if generation < 0 {
			return nil
		}
		return kerr.IllegalGeneration
	}
	if g.fenced(instanceID, memberID) {
		return kerr.FencedInstanceID
	}
	if generation < 0 && g.state == Empty {
		return nil
	}
	m := g.members[memberID]
	switch {
	case m == nil:
		return kerr.UnknownMemberID
	case generation != g.generation:
		return kerr.IllegalGeneration
	case g.state == CompletingRebalance:
		return kerr.RebalanceInProgress
	}
	c.scheduleHeartbeat(g, m)
	return nil
}

// Describe describes a group the coordinator tracks, and false for one it
// does not (no members).
func (c *Coordinator) Describe(groupName string) (Description, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.groups[groupName]
	if g == nil {
		return Description{Group: groupName, State: Dead}, false
	}
	return g.describe(), true
}

// List describes every group the coordinator tracks, sorted by name.
func (c *Coordinator) List() []Description {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Description, 0, len(c.groups))
	for _, name := range sortedKeys(c.groups) {
		out = append(out, c.groups[name].describe())
	}
	return out
}

// Delete forgets a group that has no members, so that its offsets can be
// deleted: NON_EMPTY_GROUP (kerr.NonEmptyGroup) while it has members. A
// group the coordinator does not track is not an error: its offsets are
// the caller's to delete.
func (c *Coordinator) Delete(groupName string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	g := c.groups[groupName]
	if g == nil {
		return nil
	}
	if g.state != Empty {
		return kerr.NonEmptyGroup
	}
	c.forget(g)
	return nil
}

// newMemberID returns a member ID as Kafka makes them: the instance ID, or
// else the client ID, a dash and a random UUID.
func newMemberID(clientID, instanceID string) string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	prefix := clientID
	if instanceID != "" {
		prefix = instanceID
	}
	return fmt.Sprintf("%s-%x-%x-%x-%x-%x", prefix, b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

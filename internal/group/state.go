package group

import (
	"bytes"
	"cmp"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Everything in this file runs with Coordinator.mu held. Timer callbacks
// take the lock and then check that the group (and member) they were armed
// for is still the current one, so a stale timer does nothing.

// answer is what a held JoinGroup or SyncGroup request is released with.
type answer[R any] struct {
	res R
	err error
}

// group is one group's state.
type group struct {
	name         string
	state        State
	generation   int32
	protocolType string
	protocol     string // selected; set from CompletingRebalance on
	leader       string
	members      map[string]*member
	static       map[string]string   // instance ID -> member ID
	pending      map[string]*pending // KIP-394 member IDs given out, not yet joined
	// pendingSync are the members that have not sent SyncGroup for the
	// current generation; they are removed when syncTimer fires.
	pendingSync map[string]bool
	rebalances  uint64

	joinTimer Timer
	syncTimer Timer
	// initialDelay is set while the first rebalance of an empty group
	// waits (InitialRebalanceDelay); remaining is what is left of the
	// rebalance timeout after it, and newMember records a join since the
	// delay was last armed.
	initialDelay bool
	remaining    time.Duration
	newMember    bool
}

type member struct {
	id, instanceID       string
	clientID, clientHost string
	protocolType         string
	protocols            []Protocol
	sessionTimeout       time.Duration
	rebalanceTimeout     time.Duration
	assignment           []byte
	// isNew is set from a member's first join to the end of that
	// rebalance: until then it has no member ID to heartbeat with.
	isNew bool
	// joined is set while the member is part of the join in progress
	// (its JoinGroup is held); joinWait receives the answer. A caller that
	// gave up leaves joined set: the member still counts, as in Kafka,
	// and its session then expires if it never heartbeats.
	joined   bool
	joinWait chan answer[JoinResult]
	syncWait chan answer[SyncResult]
	hbTimer  Timer
}

// pending is a member ID handed out with MEMBER_ID_REQUIRED.
type pending struct {
	timer Timer
}

func newGroup(name string) *group {
	return &group{name: name, state: Empty, members: map[string]*member{}, static: map[string]string{},
		pending: map[string]*pending{}, pendingSync: map[string]bool{}}
}

func (g *group) stopTimers() {
	for _, t := range []Timer{g.joinTimer, g.syncTimer} {
		if t != nil {
			t.Stop()
		}
	}
	g.joinTimer, g.syncTimer = nil, nil
	for _, m := range g.members {
		if m.hbTimer != nil {
			m.hbTimer.Stop()
		}
	}
	for _, p := range g.pending {
		p.timer.Stop()
	}
}

// fenced reports a static member's old member ID: the instance ID now
// belongs to another member ID.
func (g *group) fenced(instanceID, memberID string) bool {
	if instanceID == "" {
		return false
	}
	id, ok := g.static[instanceID]
	return ok && id != memberID
}

// rebalanceTimeout is the longest of the members' rebalance timeouts.
func (g *group) rebalanceTimeout() time.Duration {
	var d time.Duration
	for _, m := range g.members {
		d = max(d, m.rebalanceTimeout)
	}
	return d
}

func (g *group) awaitingJoin() int {
	n := 0
	for _, m := range g.members {
		if m.joined {
			n++
		}
	}
	return n
}

// supports reports whether a member with this protocol type and these
// protocols may join: any non-empty type and protocols for an empty group,
// else the group's type and at least one protocol every member supports.
func (g *group) supports(protocolType string, protocols []Protocol) bool {
	if len(g.members) == 0 {
		return protocolType != "" && len(protocols) > 0
	}
	if protocolType != g.protocolType {
		return false
	}
	for _, p := range protocols {
		if g.supportedByAll(p.Name) {
			return true
		}
	}
	return false
}

func (g *group) supportedByAll(name string) bool {
	for _, m := range g.members {
		if !slices.ContainsFunc(m.protocols, func(p Protocol) bool { return p.Name == name }) {
			return false
		}
	}
	return true
}

// selectProtocol picks the protocol every member supports, by vote: each
// member votes for the first of its protocols (in its order of preference)
// that all support; the most votes win. Kafka breaks ties arbitrarily;
// here the name that sorts first wins, so that the choice is stable.
func (g *group) selectProtocol() string {
	votes := map[string]int{}
	for _, m := range g.members {
		for _, p := range m.protocols {
			if g.supportedByAll(p.Name) {
				votes[p.Name]++
				break
			}
		}
	}
	best, n := "", -1
	for _, name := range sortedKeys(votes) {
		if votes[name] > n {
			best, n = name, votes[name]
		}
	}
	return best
}

func (m *member) metadataFor(protocol string) []byte {
	for _, p := range m.protocols {
		if p.Name == protocol {
			return p.Metadata
		}
	}
	return nil
}

func sameProtocols(a, b []Protocol) bool {
	return slices.EqualFunc(a, b, func(x, y Protocol) bool { return x.Name == y.Name && bytes.Equal(x.Metadata, y.Metadata) })
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// join runs a JoinGroup. It returns a channel to wait on, or the answer.
func (c *Coordinator) join(req JoinRequest) (<-chan answer[JoinResult], JoinResult, error) {
	fail := func(err error) (<-chan answer[JoinResult], JoinResult, error) {
		return nil, JoinResult{MemberID: req.MemberID}, err
	}
	switch {
	case req.Group == "":
		return fail(kerr.InvalidGroupID)
	case req.SessionTimeout < c.opts.MinSessionTimeout || req.SessionTimeout > c.opts.MaxSessionTimeout:
		return fail(kerr.InvalidSessionTimeout)
	}
	g := c.groups[req.Group]
	if g == nil {
		if req.MemberID != "" {
			return fail(kerr.UnknownMemberID)
		}
		g = newGroup(req.Group)
		c.groups[req.Group] = g
	}
	defer c.maybeForget(g)

	if !c.acceptJoining(g, req.MemberID) {
		if m := g.members[req.MemberID]; m != nil {
			c.removeMember(g, m, "group max size reached")
		}
		return nil, JoinResult{}, kerr.GroupMaxSizeReached
	}
	if req.MemberID == "" {
		return c.joinNew(g, req)
	}
	return c.joinKnown(g, req)
}

// acceptJoining applies group.max.size: a member already counted is let
// back in; others only while there is room.
func (c *Coordinator) acceptJoining(g *group, memberID string) bool {
	m := g.members[memberID]
	switch g.state {
	case Empty, Dead:
		return true
	case PreparingRebalance:
		return (m != nil && m.joined) || g.awaitingJoin() < c.opts.MaxSize
	}
	return m != nil || len(g.members) < c.opts.MaxSize
}

func (c *Coordinator) joinNew(g *group, req JoinRequest) (<-chan answer[JoinResult], JoinResult, error) {
	switch {
	case g.state == Dead:
		return nil, JoinResult{}, kerr.CoordinatorNotAvailable
	case !g.supports(req.ProtocolType, req.Protocols):
		return nil, JoinResult{}, kerr.InconsistentGroupProtocol
	}
	id := newMemberID(req.ClientID, req.InstanceID)
	if req.InstanceID != "" {
		if old, ok := g.static[req.InstanceID]; ok {
			return c.replaceStatic(g, g.members[old], id, req)
		}
		return c.addMember(g, id, req)
	}
	if req.RequireKnownMemberID {
		p := &pending{}
		p.timer = c.clock.AfterFunc(req.SessionTimeout, func() { c.expirePending(g, id, p) })
		g.pending[id] = p
		return nil, JoinResult{MemberID: id}, kerr.MemberIDRequired
	}
	return c.addMember(g, id, req)
}

func (c *Coordinator) joinKnown(g *group, req JoinRequest) (<-chan answer[JoinResult], JoinResult, error) {
	fail := func(err error) (<-chan answer[JoinResult], JoinResult, error) {
		return nil, JoinResult{MemberID: req.MemberID}, err
	}
	switch {
	case g.state == Dead:
		return fail(kerr.CoordinatorNotAvailable)
	case !g.supports(req.ProtocolType, req.Protocols):
		return fail(kerr.InconsistentGroupProtocol)
	}
	if p := g.pending[req.MemberID]; p != nil {
		p.timer.Stop()
		delete(g.pending, req.MemberID)
		return c.addMember(g, req.MemberID, req)
	}
	if g.fenced(req.InstanceID, req.MemberID) {
		return fail(kerr.FencedInstanceID)
	}
	m := g.members[req.MemberID]
	if m == nil || req.InstanceID != "" && g.static[req.InstanceID] == "" {
		return fail(kerr.UnknownMemberID)
	}
	switch g.state {
	case PreparingRebalance:
		return c.updateAndRebalance(g, m, req), JoinResult{}, nil
	case CompletingRebalance:
		if sameProtocols(m.protocols, req.Protocols) {
			// A retry of a join whose answer was lost: answer it again.
			return nil, c.joinResult(g, m), nil
		}
		return c.updateAndRebalance(g, m, req), JoinResult{}, nil
	case Stable:
		if g.leader == m.id || !sameProtocols(m.protocols, req.Protocols) {
			// A leader's join is how a consumer asks for a rebalance
			// for changes the metadata does not show, such as new
			// partitions.
			return c.updateAndRebalance(g, m, req), JoinResult{}, nil
		}
		res := c.joinResult(g, m)
		res.Members = nil
		return nil, res, nil
	}
	return fail(kerr.UnknownMemberID)
}

// addMember adds a member, held in the join, and starts a rebalance if none
// is in progress.
func (c *Coordinator) addMember(g *group, id string, req JoinRequest) (<-chan answer[JoinResult], JoinResult, error) {
	m := &member{id: id, instanceID: req.InstanceID, clientID: req.ClientID, clientHost: req.ClientHost,
		protocolType: req.ProtocolType, protocols: req.Protocols, sessionTimeout: req.SessionTimeout,
		rebalanceTimeout: req.RebalanceTimeout, isNew: true}
	if g.state == PreparingRebalance && g.initialDelay {
		g.newMember = true
	}
	if len(g.members) == 0 {
		g.protocolType = req.ProtocolType
	}
	if g.leader == "" {
		g.leader = id
	}
	g.members[id] = m
	if req.InstanceID != "" {
		g.static[req.InstanceID] = id
	}
	w := c.await(m)
	// A new member cannot heartbeat, and a held JoinGroup hides a
	// disconnect; its join expires after NewMemberJoinTimeout instead.
	c.scheduleHeartbeat(g, m)
	c.maybeRebalance(g)
	// A member that used the last member ID handed out (KIP-394) may be
	// the one the join was waiting for.
	c.tryCompleteJoin(g)
	return w, JoinResult{}, nil
}

// await marks m as joined and returns the channel its answer goes to. A
// held join that is superseded by another is told to rejoin.
func (c *Coordinator) await(m *member) <-chan answer[JoinResult] {
	if m.joinWait != nil {
		m.joinWait <- answer[JoinResult]{JoinResult{MemberID: m.id}, kerr.RebalanceInProgress}
	}
	w := make(chan answer[JoinResult], 1)
	m.joined, m.joinWait = true, w
	return w
}

func (c *Coordinator) updateAndRebalance(g *group, m *member, req JoinRequest) <-chan answer[JoinResult] {
	m.protocols, m.sessionTimeout, m.rebalanceTimeout = req.Protocols, req.SessionTimeout, req.RebalanceTimeout
	m.clientID, m.clientHost = req.ClientID, req.ClientHost
	w := c.await(m)
	c.maybeRebalance(g)
	if g.state == PreparingRebalance {
		c.tryCompleteJoin(g)
	}
	return w
}

// replaceStatic gives a rejoining static member (a restarted process with
// the same group.instance.id) a new member ID in place of its old one,
// whose requests are fenced from then on. A stable group keeps its
// assignment and does not rebalance when the selected protocol stays the
// same (Kafka's rule) and, for consumers, the member's subscription is
// unchanged: Kafka does not look at the subscription, so a member that
// restarted with new topics would wait for some other rebalance to get
// them. The raw metadata is not compared, because a cooperative consumer's
// also lists the partitions it owns, which a restarted process has none of.
func (c *Coordinator) replaceStatic(g *group, old *member, id string, req JoinRequest) (<-chan answer[JoinResult], JoinResult, error) {
	oldLeader := g.leader
	wasLeader := g.leader == old.id
	if old.joinWait != nil {
		old.joinWait <- answer[JoinResult]{JoinResult{MemberID: old.id}, kerr.FencedInstanceID}
		old.joinWait = nil
	}
	if old.syncWait != nil {
		old.syncWait <- answer[SyncResult]{err: kerr.FencedInstanceID}
		old.syncWait = nil
	}
	delete(g.members, old.id)
	if g.pendingSync[old.id] {
		delete(g.pendingSync, old.id)
		g.pendingSync[id] = true
	}
	unchanged := sameSubscription(g.protocolType, g.protocol, old.protocols, req.Protocols)
	old.id = id
	g.members[id] = old
	g.static[req.InstanceID] = id
	if wasLeader {
		g.leader = id
	}
	m := old
	m.protocols, m.sessionTimeout, m.rebalanceTimeout = req.Protocols, req.SessionTimeout, req.RebalanceTimeout
	m.clientID, m.clientHost = req.ClientID, req.ClientHost
	c.scheduleHeartbeat(g, m)
	switch g.state {
	case Stable:
		if unchanged && g.selectProtocol() == g.protocol {
			res := c.joinResult(g, m)
			if req.SupportsSkipAssignment {
				res.SkipAssignment = g.leader == id
			} else {
				// Before KIP-814 the old leader ID is answered, so that
				// a rejoining leader does not assign for a stable group
				// that would not pass its assignment on.
				res.Leader, res.Members = oldLeader, nil
			}
			if !res.SkipAssignment {
				res.Members = nil
			}
			return nil, res, nil
		}
		w := c.await(m)
		c.prepareRebalance(g)
		return w, JoinResult{}, nil
	case CompletingRebalance:
		// The leader may have assigned to the old member ID already.
		w := c.await(m)
		c.prepareRebalance(g)
		return w, JoinResult{}, nil
	}
	w := c.await(m)
	c.tryCompleteJoin(g)
	return w, JoinResult{}, nil
}

// joinResult is the current generation as a member's join answers it.
func (c *Coordinator) joinResult(g *group, m *member) JoinResult {
	res := JoinResult{MemberID: m.id, Generation: g.generation, ProtocolType: g.protocolType,
		Protocol: g.protocol, Leader: g.leader}
	if g.leader == m.id {
		for _, id := range sortedKeys(g.members) {
			o := g.members[id]
			res.Members = append(res.Members, JoinMember{MemberID: o.id, InstanceID: o.instanceID,
				Metadata: o.metadataFor(g.protocol)})
		}
	}
	return res
}

// maybeRebalance starts a rebalance from the states that allow one.
func (c *Coordinator) maybeRebalance(g *group) {
	switch g.state {
	case Empty, Stable, CompletingRebalance:
		c.prepareRebalance(g)
	}
}

func (c *Coordinator) prepareRebalance(g *group) {
	if g.state == CompletingRebalance {
		c.failSyncs(g, kerr.RebalanceInProgress)
	}
	if g.syncTimer != nil {
		g.syncTimer.Stop()
		g.syncTimer = nil
	}
	clear(g.pendingSync)
	wasEmpty := g.state == Empty
	g.state = PreparingRebalance
	if wasEmpty && c.opts.InitialRebalanceDelay > 0 {
		g.initialDelay, g.newMember = true, false
		g.remaining = max(g.rebalanceTimeout()-c.opts.InitialRebalanceDelay, 0)
		c.armJoin(g, c.opts.InitialRebalanceDelay)
		return
	}
	g.initialDelay = false
	c.armJoin(g, g.rebalanceTimeout())
	c.tryCompleteJoin(g)
}

func (c *Coordinator) armJoin(g *group, d time.Duration) {
	if g.joinTimer != nil {
		g.joinTimer.Stop()
	}
	var t Timer
	t = c.clock.AfterFunc(d, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.closed || c.groups[g.name] != g || g.joinTimer != t {
			return
		}
		c.joinDeadline(g)
	})
	g.joinTimer = t
}

// joinDeadline runs when the join's timer fires: the initial delay is
// extended while new members keep arriving; otherwise the join completes
// with whoever rejoined.
func (c *Coordinator) joinDeadline(g *group) {
	g.joinTimer = nil
	if g.state != PreparingRebalance {
		return
	}
	if g.initialDelay && g.newMember && g.remaining > 0 {
		d := min(c.opts.InitialRebalanceDelay, g.remaining)
		g.remaining -= d
		g.newMember = false
		c.armJoin(g, d)
		return
	}
	c.completeJoin(g)
	c.maybeForget(g)
}

// tryCompleteJoin completes the join once every member has rejoined and no
// member ID handed out is still to come; the initial delay always runs out.
func (c *Coordinator) tryCompleteJoin(g *group) {
	if g.state == PreparingRebalance && !g.initialDelay && g.awaitingJoin() == len(g.members) && len(g.pending) == 0 {
		c.completeJoin(g)
	}
}

func (c *Coordinator) completeJoin(g *group) {
	if g.joinTimer != nil {
		g.joinTimer.Stop()
		g.joinTimer = nil
	}
	g.initialDelay = false
	// Dynamic members that did not rejoin are out; static ones keep their
	// place (and their old metadata) until their session expires.
	for _, id := range sortedKeys(g.members) {
		if m := g.members[id]; !m.joined && m.instanceID == "" {
			c.dropMember(g, m)
		}
	}
	if len(g.members) == 0 {
		g.generation++
		g.protocol = ""
		g.state = Empty
		return
	}
	if l := g.members[g.leader]; l == nil || !l.joined {
		g.leader = ""
		for _, id := range sortedKeys(g.members) {
			if g.members[id].joined {
				g.leader = id
				break
			}
		}
		if g.leader == "" {
			// Only static members that have not rejoined remain: wait
			// another rebalance timeout for them, or for their sessions
			// to expire.
			g.leader = sortedKeys(g.members)[0]
			c.armJoin(g, g.rebalanceTimeout())
			return
		}
	}
	g.generation++
	g.rebalances++
	g.protocol = g.selectProtocol()
	g.state = CompletingRebalance
	for id, m := range g.members {
		m.assignment = nil
		g.pendingSync[id] = true
		if m.joined {
			if m.joinWait != nil {
				m.joinWait <- answer[JoinResult]{res: c.joinResult(g, m)}
			}
			m.joined, m.joinWait = false, nil
		}
		m.isNew = false
		c.scheduleHeartbeat(g, m)
	}
	gen := g.generation
	var t Timer
	t = c.clock.AfterFunc(g.rebalanceTimeout(), func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.closed || c.groups[g.name] != g || g.syncTimer != t || g.generation != gen {
			return
		}
		c.syncDeadline(g)
	})
	g.syncTimer = t
}

// syncDeadline removes the members that did not send SyncGroup within the
// rebalance timeout after the join completed, and rebalances without them.
func (c *Coordinator) syncDeadline(g *group) {
	g.syncTimer = nil
	if (g.state != CompletingRebalance && g.state != Stable) || len(g.pendingSync) == 0 {
		return
	}
	for _, id := range sortedKeys(g.pendingSync) {
		if m := g.members[id]; m != nil {
			c.dropMember(g, m)
		}
	}
	c.prepareRebalance(g)
	c.maybeForget(g)
}

func (c *Coordinator) sync(req SyncRequest) (<-chan answer[SyncResult], SyncResult, error) {
	if req.Group == "" {
		return nil, SyncResult{}, kerr.InvalidGroupID
	}
	g := c.groups[req.Group]
	switch {
	case g == nil:
		return nil, SyncResult{}, kerr.UnknownMemberID
	case g.state == Dead:
		return nil, SyncResult{}, kerr.CoordinatorNotAvailable
	case g.fenced(req.InstanceID, req.MemberID):
		return nil, SyncResult{}, kerr.FencedInstanceID
	}
	m := g.members[req.MemberID]
	switch {
	case m == nil:
		return nil, SyncResult{}, kerr.UnknownMemberID
	case req.Generation != g.generation:
		return nil, SyncResult{}, kerr.IllegalGeneration
	case req.ProtocolType != nil && *req.ProtocolType != g.protocolType,
		req.Protocol != nil && *req.Protocol != g.protocol:
		return nil, SyncResult{}, kerr.InconsistentGroupProtocol
	}
	switch g.state {
	case Empty:
		return nil, SyncResult{}, kerr.UnknownMemberID
	case PreparingRebalance:
		return nil, SyncResult{}, kerr.RebalanceInProgress
	case Stable:
		delete(g.pendingSync, m.id)
		c.scheduleHeartbeat(g, m)
		return nil, SyncResult{ProtocolType: g.protocolType, Protocol: g.protocol, Assignment: m.assignment}, nil
	}
	// CompletingRebalance.
	if m.syncWait != nil {
		m.syncWait <- answer[SyncResult]{err: kerr.RebalanceInProgress}
	}
	w := make(chan answer[SyncResult], 1)
	m.syncWait = w
	delete(g.pendingSync, m.id)
	if g.leader == m.id {
		for id, o := range g.members {
			o.assignment = req.Assignments[id] // members the leader left out get none
		}
		g.state = Stable
		for _, o := range g.members {
			if o.syncWait != nil {
				o.syncWait <- answer[SyncResult]{res: SyncResult{ProtocolType: g.protocolType, Protocol: g.protocol, Assignment: o.assignment}}
				o.syncWait = nil
			}
			c.scheduleHeartbeat(g, o)
		}
	}
	return w, SyncResult{}, nil
}

// failSyncs answers every held SyncGroup with err and clears the
// assignments, when a rebalance starts before the leader synced.
func (c *Coordinator) failSyncs(g *group, err error) {
	for _, m := range g.members {
		m.assignment = nil
		if m.syncWait != nil {
			m.syncWait <- answer[SyncResult]{err: err}
			m.syncWait = nil
		}
		c.scheduleHeartbeat(g, m)
	}
}

// scheduleHeartbeat restarts m's session: it expires after its session
// timeout without a heartbeat, or, for a new member, after
// NewMemberJoinTimeout.
func (c *Coordinator) scheduleHeartbeat(g *group, m *member) {
	if m.hbTimer != nil {
		m.hbTimer.Stop()
	}
	d := m.sessionTimeout
	if m.isNew {
		d = c.opts.NewMemberJoinTimeout
	}
	var t Timer
	t = c.clock.AfterFunc(d, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.closed || c.groups[g.name] != g || g.members[m.id] != m || m.hbTimer != t {
			return
		}
		m.hbTimer = nil
		// A held join or sync is the member's liveness until it is
		// answered, after which the session starts again.
		if !m.isNew && (m.joined || m.syncWait != nil) {
			return
		}
		c.log.Info("group member session expired", "group", g.name, "member_id", m.id, "instance_id", m.instanceID)
		c.removeMember(g, m, "session expired")
		c.maybeForget(g)
	})
	m.hbTimer = t
}

func (c *Coordinator) expirePending(g *group, id string, p *pending) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.groups[g.name] != g || g.pending[id] != p {
		return
	}
	c.removePending(g, id)
	c.maybeForget(g)
}

func (c *Coordinator) removePending(g *group, id string) {
	if p := g.pending[id]; p != nil {
		p.timer.Stop()
		delete(g.pending, id)
	}
	c.tryCompleteJoin(g)
}

// removeMember takes m out of the group (leave, expiry) and rebalances.
func (c *Coordinator) removeMember(g *group, m *member, reason string) {
	if m.joinWait != nil {
		m.joinWait <- answer[JoinResult]{JoinResult{}, kerr.UnknownMemberID}
		m.joinWait = nil
	}
	if m.syncWait != nil {
		m.syncWait <- answer[SyncResult]{err: kerr.UnknownMemberID}
		m.syncWait = nil
	}
	c.dropMember(g, m)
	c.log.Debug("group member removed", "group", g.name, "member_id", m.id, "reason", reason)
	switch g.state {
	case Stable, CompletingRebalance:
		c.prepareRebalance(g)
	case PreparingRebalance:
		c.tryCompleteJoin(g)
	}
}

// dropMember removes m's state from the group, with no further effect.
func (c *Coordinator) dropMember(g *group, m *member) {
	if m.hbTimer != nil {
		m.hbTimer.Stop()
		m.hbTimer = nil
	}
	delete(g.members, m.id)
	delete(g.pendingSync, m.id)
	if m.instanceID != "" && g.static[m.instanceID] == m.id {
		delete(g.static, m.instanceID)
	}
	if len(g.members) == 0 {
		g.protocolType = ""
	}
	if g.leader == m.id {
		g.leader = ""
		if ids := sortedKeys(g.members); len(ids) > 0 {
			g.leader = ids[0]
		}
	}
}

// maybeForget forgets a group left Empty with nobody on the way in.
func (c *Coordinator) maybeForget(g *group) {
	if g.state == Empty && len(g.members) == 0 && len(g.pending) == 0 && c.groups[g.name] == g {
		c.forget(g)
	}
}

func (c *Coordinator) forget(g *group) {
	g.stopTimers()
	g.state = Dead
	delete(c.groups, g.name)
}

func (g *group) describe() Description {
	d := Description{Group: g.name, State: g.state, ProtocolType: g.protocolType, Generation: g.generation,
		Leader: g.leader, Rebalances: g.rebalances}
	if g.state == Stable {
		d.Protocol = g.protocol
	}
	for _, id := range sortedKeys(g.members) {
		m := g.members[id]
		md := MemberDescription{MemberID: m.id, InstanceID: m.instanceID, ClientID: m.clientID, ClientHost: m.clientHost,
			Protocols: slices.Clone(m.protocols)}
		if g.state == Stable {
			md.Metadata, md.Assignment = m.metadataFor(g.protocol), m.assignment
		}
		d.Members = append(d.Members, md)
	}
	slices.SortFunc(d.Members, func(a, b MemberDescription) int { return cmp.Compare(a.MemberID, b.MemberID) })
	return d
}

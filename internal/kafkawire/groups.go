package kafkawire

import (
	"context"
	"errors"
	"net"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluice-dev/sluice/internal/group"
)

// The group APIs (JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
// DescribeGroups, ListGroups, DeleteGroups, OffsetDelete) are thin: the
// rules live in the coordinator (internal/group, Options.Groups), and the
// handlers translate requests and answers. Membership is in memory: after
// a restart members learn from UNKNOWN_MEMBER_ID or ILLEGAL_GENERATION
// that they must rejoin, and resume from their committed offsets.

// checkCommit validates the group membership behind an offset commit and
// returns a Kafka error code, 0 to accept: ILLEGAL_GENERATION,
// UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID or REBALANCE_IN_PROGRESS for
// groups the coordinator tracks; commits with generation -1 (simple
// consumers, tools) only for groups without members, as Kafka.
func (s *Server) checkCommit(group string, generation int32, memberID string, instanceID *string) int16 {
	inst := ""
	if instanceID != nil {
		inst = *instanceID
	}
	return groupCode(s.groups.CheckCommit(group, generation, memberID, inst))
}

// groupCode maps a coordinator error to its Kafka code. The coordinator
// answers with kerr errors; a closed coordinator (the server is stopping)
// is NOT_COORDINATOR, which sends clients looking for the coordinator
// again.
func groupCode(err error) int16 {
	var ke *kerr.Error
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ke):
		return ke.Code
	case errors.Is(err, group.ErrClosed):
		return kerr.NotCoordinator.Code
	}
	return errorCode(err, kerr.InvalidRequest.Code)
}

// heldContext is the context of a request the coordinator may hold for a
// rebalance (JoinGroup, SyncGroup): it ends with the connection, and when
// the server starts to drain, so that Shutdown does not wait out a
// rebalance. Only this connection waits: each connection has its own
// goroutine.
func (s *Server) heldContext(rc *request) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(rc.ctx)
	stop := context.AfterFunc(s.drain, cancel)
	return ctx, func() { stop(); cancel() }
}

// heldCode maps the error of a held request. A request cut short by the
// server draining answers NOT_COORDINATOR, as a broker that gives up a
// group answers the joins it holds; one cut short by its connection
// closing gets no answer (ok false).
func (s *Server) heldCode(rc *request, err error) (code int16, ok bool) {
	if err != nil && rc.ctx.Err() != nil {
		return 0, false
	}
	if errors.Is(err, context.Canceled) && s.drain.Err() != nil {
		return kerr.NotCoordinator.Code, true
	}
	return groupCode(err), true
}

// clientHost is a member's host as Kafka reports it: "/" and the address.
func clientHost(rc *request) string {
	host, _, err := net.SplitHostPort(rc.c.remote)
	if err != nil {
		host = rc.c.remote
	}
	return "/" + host
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func nullable(v string) *string {
	if v == "" {
		return nil
	}
	return &v
}

package kafkawire

import (
	"bytes"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-dev/sluice/internal/group"
)

// SyncGroup (key 14): versions 0-5.
//
// Behaviour:
//   - The leader's SyncGroup carries every member's assignment (opaque
//     bytes; the consumer protocol's for consumers); the other members'
//     syncs are held until it arrives, then each gets its own. Members the
//     leader left out get an empty assignment. Only this connection waits;
//     Shutdown ends the wait with NOT_COORDINATOR.
//   - In a stable group a sync answers the member's current assignment,
//     which is how a static member that rejoined gets its old one back.
//   - v5+ ProtocolType and Protocol must match the group's, else
//     INCONSISTENT_GROUP_PROTOCOL; v5+ responses carry them.
//   - Errors: UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION, FENCED_INSTANCE_ID,
//     REBALANCE_IN_PROGRESS (the group started another rebalance: rejoin).
//   - Incremental (cooperative-sticky) rebalancing needs nothing more: its
//     clients revoke partitions and join again, and assignments are
//     opaque here.

func (s *Server) handleSyncGroup(rc *request, req *kmsg.SyncGroupRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
	if !s.authorize(rc, opRead, resGroup, req.Group) {
		resp.ErrorCode = rc.note(kerr.GroupAuthorizationFailed.Code)
		return resp, nil
	}
	sr := group.SyncRequest{Group: req.Group, MemberID: req.MemberID, InstanceID: deref(req.InstanceID),
		Generation: req.Generation, ProtocolType: req.ProtocolType, Protocol: req.Protocol}
	if len(req.GroupAssignment) > 0 {
		sr.Assignments = make(map[string][]byte, len(req.GroupAssignment))
		for _, a := range req.GroupAssignment {
			// Cloned: the coordinator keeps them beyond this request's buffer.
			sr.Assignments[a.MemberID] = bytes.Clone(a.MemberAssignment)
		}
	}
	ctx, cancel := s.heldContext(rc)
	defer cancel()
	res, err := s.groups.Sync(ctx, sr)
	code, ok := s.heldCode(rc, err)
	if !ok {
		return nil, err
	}
	resp.ErrorCode = rc.note(code)
	if code == 0 {
		resp.ProtocolType, resp.Protocol = &res.ProtocolType, &res.Protocol
		resp.MemberAssignment = res.Assignment
		if resp.MemberAssignment == nil {
			resp.MemberAssignment = []byte{}
		}
	}
	return resp, nil
}

package kafkawire

import (
	"bytes"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-dev/sluice/internal/group"
)

// JoinGroup (key 11): versions 0-9.
//
// Behaviour:
//   - The coordinator (internal/group) runs the classic protocol: a join
//     is held until the rebalance completes (every known member rejoined,
//     or the rebalance timeout passed; a new group's first rebalance waits
//     the initial rebalance delay), then answers with the generation, the
//     selected protocol and the leader; the leader also gets every
//     member's metadata. Only this connection waits; Shutdown ends the
//     wait with NOT_COORDINATOR.
//   - v0 has no rebalance timeout: the session timeout serves as one, as
//     in Kafka.
//   - v4+ new dynamic members get MEMBER_ID_REQUIRED with their member ID
//     (KIP-394); v5+ static members (InstanceID, KIP-345) rejoin under a
//     new member ID without a rebalance, and the old ID is fenced
//     (FENCED_INSTANCE_ID); v9+ a static leader that rejoins a stable
//     group is told SkipAssignment (KIP-814).
//   - Errors: INVALID_GROUP_ID, INVALID_SESSION_TIMEOUT (outside the
//     coordinator's bounds, 6s to 30 minutes by default),
//     INCONSISTENT_GROUP_PROTOCOL, UNKNOWN_MEMBER_ID,
//     GROUP_MAX_SIZE_REACHED, FENCED_INSTANCE_ID, REBALANCE_IN_PROGRESS
//     (a join superseded by a newer one of the same member).
//   - Reason (v8+) is logged at debug level only.

func (s *Server) handleJoinGroup(rc *request, req *kmsg.JoinGroupRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
	resp.Generation = -1
	resp.MemberID = req.MemberID
	if !s.authorize(rc, opRead, resGroup, req.Group) {
		resp.ErrorCode = rc.note(kerr.GroupAuthorizationFailed.Code)
		return resp, nil
	}
	jr := group.JoinRequest{
		Group: req.Group, MemberID: req.MemberID, InstanceID: deref(req.InstanceID),
		ClientID: rc.clientID, ClientHost: clientHost(rc), ProtocolType: req.ProtocolType,
		SessionTimeout:         time.Duration(req.SessionTimeoutMillis) * time.Millisecond,
		RebalanceTimeout:       time.Duration(req.RebalanceTimeoutMillis) * time.Millisecond,
		RequireKnownMemberID:   req.Version >= 4,
		SupportsSkipAssignment: req.Version >= 9,
	}
	if req.Version == 0 {
		jr.RebalanceTimeout = jr.SessionTimeout
	}
	for _, p := range req.Protocols {
		// The coordinator keeps the metadata; the request's bytes are the
		// connection's buffer, reused for the next request.
		jr.Protocols = append(jr.Protocols, group.Protocol{Name: p.Name, Metadata: bytes.Clone(p.Metadata)})
	}
	if req.Reason != nil {
		s.logger.Debug("kafka join group", "group", req.Group, "member_id", req.MemberID, "reason", *req.Reason)
	}
	ctx, cancel := s.heldContext(rc)
	defer cancel()
	res, err := s.groups.Join(ctx, jr)
	code, ok := s.heldCode(rc, err)
	if !ok {
		return nil, err
	}
	resp.ErrorCode = rc.note(code)
	if res.MemberID != "" || code == kerr.UnknownMemberID.Code {
		resp.MemberID = res.MemberID
	}
	if code != 0 {
		return resp, nil
	}
	resp.Generation = res.Generation
	resp.ProtocolType = &res.ProtocolType
	resp.Protocol = &res.Protocol
	resp.LeaderID = res.Leader
	resp.SkipAssignment = res.SkipAssignment
	for _, m := range res.Members {
		rm := kmsg.NewJoinGroupResponseMember()
		rm.MemberID, rm.InstanceID, rm.ProtocolMetadata = m.MemberID, nullable(m.InstanceID), m.Metadata
		resp.Members = append(resp.Members, rm)
	}
	return resp, nil
}

package kafkawire

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-dev/sluice/internal/group"
)

// LeaveGroup (key 13): versions 0-5.
//
// Behaviour:
//   - v0-2 name one member; v3+ a batch of members (KIP-345), each by
//     member ID, or by instance ID alone to remove a static member
//     administratively, each answered with its own error code:
//     UNKNOWN_MEMBER_ID or FENCED_INSTANCE_ID.
//   - Before v3 the member's error is the top-level error code, as in
//     Kafka.
//   - Members that leave are removed at once and the group rebalances
//     without waiting for their session timeouts.

func (s *Server) handleLeaveGroup(rc *request, req *kmsg.LeaveGroupRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
	switch {
	case req.Group == "":
		resp.ErrorCode = rc.note(kerr.InvalidGroupID.Code)
		return resp, nil
	case !s.authorize(rc, opRead, resGroup, req.Group):
		resp.ErrorCode = rc.note(kerr.GroupAuthorizationFailed.Code)
		return resp, nil
	}
	var leaving []group.LeaveMember
	if req.Version < 3 {
		leaving = []group.LeaveMember{{MemberID: req.MemberID}}
	} else {
		for _, m := range req.Members {
			leaving = append(leaving, group.LeaveMember{MemberID: m.MemberID, InstanceID: deref(m.InstanceID)})
		}
	}
	errs, err := s.groups.Leave(req.Group, leaving)
	if err != nil {
		resp.ErrorCode = rc.note(groupCode(err))
		return resp, nil
	}
	if req.Version < 3 {
		resp.ErrorCode = rc.note(groupCode(errs[0]))
		return resp, nil
	}
	for i, m := range req.Members {
		rm := kmsg.NewLeaveGroupResponseMember()
		rm.MemberID, rm.InstanceID = m.MemberID, m.InstanceID
		rm.ErrorCode = rc.note(groupCode(errs[i]))
		resp.Members = append(resp.Members, rm)
	}
	return resp, nil
}

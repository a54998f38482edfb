package kafkawire

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Heartbeat (key 12): versions 0-4.
//
// Behaviour:
//   - A heartbeat restarts the member's session timeout. Members that miss
//     it are removed and the group rebalances.
//   - Errors: REBALANCE_IN_PROGRESS while the group prepares a rebalance
//     (the member must rejoin), UNKNOWN_MEMBER_ID (also for groups the
//     coordinator does not know, as after a restart), ILLEGAL_GENERATION,
//     FENCED_INSTANCE_ID (v3+ static members replaced by a newer
//     instance).

func (s *Server) handleHeartbeat(rc *request, req *kmsg.HeartbeatRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
	switch {
	case req.Group == "":
		resp.ErrorCode = kerr.InvalidGroupID.Code
	case !s.authorize(rc, opRead, resGroup, req.Group):
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
	default:
		resp.ErrorCode = groupCode(s.groups.Heartbeat(req.Group, req.MemberID, deref(req.InstanceID), req.Generation))
	}
	rc.note(resp.ErrorCode)
	return resp, nil
}

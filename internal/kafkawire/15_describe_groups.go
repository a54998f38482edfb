package kafkawire

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeGroups (key 15): versions 0-5.
//
// Behaviour:
//   - Groups with members come from the coordinator: state, protocol type,
//     and each member's IDs, client ID and host; while the group is Stable
//     also the selected protocol and each member's metadata and assignment
//     (Kafka gives them only then).
//   - A group without members is "Empty" when it has committed offsets
//     and "Dead" otherwise (a group nobody knows), both without error, as
//     Kafka answers before v6.
//   - AuthorizedOperations (v3+) are not reported (INT32_MIN) until ACLs
//     land.

func (s *Server) handleDescribeGroups(rc *request, req *kmsg.DescribeGroupsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	for _, name := range req.Groups {
		g := kmsg.NewDescribeGroupsResponseGroup()
		g.Group = name
		switch {
		case name == "":
			g.ErrorCode = kerr.InvalidGroupID.Code
		case !s.authorize(rc, opDescribe, resGroup, name):
			g.ErrorCode = kerr.GroupAuthorizationFailed.Code
		default:
			s.describeGroup(rc, &g)
		}
		rc.note(g.ErrorCode)
		resp.Groups = append(resp.Groups, g)
	}
	return resp, nil
}

func (s *Server) describeGroup(rc *request, g *kmsg.DescribeGroupsResponseGroup) {
	d, ok := s.groups.Describe(g.Group)
	if !ok || len(d.Members) == 0 {
		g.State = "Dead"
		offsets, err := s.log.FetchOffsets(rc.ctx, g.Group)
		if err != nil {
			g.ErrorCode = errorCode(err, kerr.InvalidRequest.Code)
			s.errorMessage(rc, "describe group", g.ErrorCode, err)
			return
		}
		if len(offsets) > 0 {
			g.State = "Empty"
		}
		return
	}
	g.State, g.ProtocolType, g.Protocol = string(d.State), d.ProtocolType, d.Protocol
	for _, m := range d.Members {
		rm := kmsg.NewDescribeGroupsResponseGroupMember()
		rm.MemberID, rm.InstanceID, rm.ClientID, rm.ClientHost = m.MemberID, nullable(m.InstanceID), m.ClientID, m.ClientHost
		rm.ProtocolMetadata, rm.MemberAssignment = m.Metadata, m.Assignment
		if rm.ProtocolMetadata == nil {
			rm.ProtocolMetadata = []byte{}
		}
		if rm.MemberAssignment == nil {
			rm.MemberAssignment = []byte{}
		}
		g.Members = append(g.Members, rm)
	}
}

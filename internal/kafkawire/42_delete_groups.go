package kafkawire

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DeleteGroups (key 42): versions 0-2.
//
// Behaviour:
//   - Deletes each group's committed offsets (stream.Log.DeleteGroup) and
//     forgets it in the coordinator.
//   - Errors per group: INVALID_GROUP_ID for an empty name,
//     NON_EMPTY_GROUP while it has members, GROUP_ID_NOT_FOUND for a group
//     with neither members nor offsets.

func (s *Server) handleDeleteGroups(rc *request, req *kmsg.DeleteGroupsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	for _, name := range req.Groups {
		g := kmsg.NewDeleteGroupsResponseGroup()
		g.Group = name
		switch {
		case name == "":
			g.ErrorCode = kerr.InvalidGroupID.Code
		case !s.authorize(rc, opDelete, resGroup, name):
			g.ErrorCode = kerr.GroupAuthorizationFailed.Code
		default:
			g.ErrorCode = s.deleteGroup(rc, name)
		}
		rc.note(g.ErrorCode)
		resp.Groups = append(resp.Groups, g)
	}
	return resp, nil
}

func (s *Server) deleteGroup(rc *request, name string) int16 {
	_, tracked := s.groups.Describe(name)
	if err := s.groups.Delete(name); err != nil {
		return groupCode(err)
	}
	offsets, err := s.log.FetchOffsets(rc.ctx, name)
	if err == nil && len(offsets) == 0 {
		if tracked {
			return 0 // it had only pending members (KIP-394), now forgotten
		}
		return kerr.GroupIDNotFound.Code
	}
	if err == nil {
		err = s.log.DeleteGroup(rc.ctx, name)
	}
	if err != nil {
		code := errorCode(err, kerr.NonEmptyGroup.Code)
		s.errorMessage(rc, "delete group", code, err)
		return code
	}
	return 0
}

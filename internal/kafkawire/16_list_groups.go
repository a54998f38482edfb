package kafkawire

import (
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ListGroups (key 16): versions 0-4.
//
// Behaviour:
//   - Lists the groups with members (from the coordinator, with their
//     state and protocol type) and the groups with committed offsets and
//     no members (state "Empty", protocol type "", as Kafka lists groups
//     that only commit offsets), sorted by name.
//   - v4+ StatesFilter keeps the groups in the states named, compared
//     without regard to case; an empty filter keeps all.

func (s *Server) handleListGroups(rc *request, req *kmsg.ListGroupsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	committed, err := s.log.ListGroups(rc.ctx)
	if err != nil {
		resp.ErrorCode = rc.note(errorCode(err, kerr.InvalidRequest.Code))
		s.errorMessage(rc, "list groups", resp.ErrorCode, err)
		return resp, nil
	}
	keep := func(state string) bool {
		return len(req.StatesFilter) == 0 || slices.ContainsFunc(req.StatesFilter, func(f string) bool { return strings.EqualFold(f, state) })
	}
	listed := map[string]bool{}
	var out []kmsg.ListGroupsResponseGroup
	add := func(name, protocolType, state string) {
		if listed[name] {
			return
		}
		listed[name] = true
		if !keep(state) || !s.authorize(rc, opDescribe, resGroup, name) {
			return
		}
		g := kmsg.NewListGroupsResponseGroup()
		g.Group, g.ProtocolType, g.GroupState = name, protocolType, state
		out = append(out, g)
	}
	for _, d := range s.groups.List() {
		if len(d.Members) > 0 { // else only pending members (KIP-394): listed by its offsets, if any
			add(d.Group, d.ProtocolType, string(d.State))
		}
	}
	for _, name := range committed {
		if !listed[name] {
			add(name, "", "Empty")
		}
	}
	slices.SortFunc(out, func(a, b kmsg.ListGroupsResponseGroup) int { return strings.Compare(a.Group, b.Group) })
	resp.Groups = out
	return resp, nil
}

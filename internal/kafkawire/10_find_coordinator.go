package kafkawire

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// FindCoordinator (key 10): versions 0-6.
//
// Behaviour:
//   - This node coordinates every group (CoordinatorType 0) and every
//     transactional ID (type 1): the answer is always this node at the
//     advertised address. Transactional producers then learn from
//     InitProducerId that transactions are not supported, which is a
//     clearer error than a coordinator that never appears.
//   - Other coordinator types (share groups, 2) get INVALID_REQUEST.
//   - v0-3 carry one key; v4+ a batch of keys (KIP-699), each answered in
//     Coordinators.

func (s *Server) handleFindCoordinator(rc *request, req *kmsg.FindCoordinatorRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	answer := func(key string) (int16, *string) {
		switch req.CoordinatorType {
		case 0:
			if !s.authorize(rc, opDescribe, resGroup, key) {
				return kerr.GroupAuthorizationFailed.Code, nil
			}
		case 1:
			if !s.authorize(rc, opDescribe, resTransactionalID, key) {
				return kerr.TransactionalIDAuthorizationFailed.Code, nil
			}
		default:
			return kerr.InvalidRequest.Code, strPtr("unknown coordinator type")
		}
		return 0, nil
	}
	if req.Version < 4 {
		code, msg := answer(req.CoordinatorKey)
		resp.ErrorCode, resp.ErrorMessage = rc.note(code), msg
		resp.NodeID, resp.Host, resp.Port = -1, "", -1
		if code == 0 {
			resp.NodeID, resp.Host, resp.Port = s.opts.NodeID, rc.c.adv.host, rc.c.adv.port
		}
		return resp, nil
	}
	resp.Coordinators = make([]kmsg.FindCoordinatorResponseCoordinator, len(req.CoordinatorKeys))
	for i, key := range req.CoordinatorKeys {
		c := kmsg.NewFindCoordinatorResponseCoordinator()
		c.Key = key
		code, msg := answer(key)
		c.ErrorCode, c.ErrorMessage = rc.note(code), msg
		c.NodeID, c.Host, c.Port = -1, "", -1
		if code == 0 {
			c.NodeID, c.Host, c.Port = s.opts.NodeID, rc.c.adv.host, rc.c.adv.port
		}
		resp.Coordinators[i] = c
	}
	return resp, nil
}

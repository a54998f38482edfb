package kafkawire

import (
	"regexp"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ApiVersions (key 18): versions 0-4.
//
// Behaviour:
//   - Lists every served API key with the versions advertised in apiTable.
//   - The response always uses response header version 0, whatever the
//     request's version (KIP-511); conn.write takes care of that.
//   - A request at a version above 4 is answered, without parsing its body,
//     with a version 0 response carrying UNSUPPORTED_VERSION and the key
//     list (conn.handle), so that newer clients downgrade rather than fail.
//   - v3+: ClientSoftwareName and ClientSoftwareVersion must match Kafka's
//     pattern [a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?, else
//     INVALID_REQUEST with no key list, as Kafka answers.
//   - No feature flags (SupportedFeatures, FinalizedFeatures) are advertised.

// clientSoftwareRe is Kafka's rule for client software names and versions.
var clientSoftwareRe = regexp.MustCompile(`^[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?$`)

func (s *Server) handleApiVersions(rc *request, req *kmsg.ApiVersionsRequest) (kmsg.Response, error) {
	if req.Version >= 3 && (!clientSoftwareRe.MatchString(req.ClientSoftwareName) ||
		!clientSoftwareRe.MatchString(req.ClientSoftwareVersion)) {
		resp := req.ResponseKind().(*kmsg.ApiVersionsResponse)
		resp.ErrorCode = rc.note(kerr.InvalidRequest.Code)
		return resp, nil
	}
	return s.apiVersionsResponse(req.Version), nil
}

// apiVersionsResponse lists the served APIs at the given response version.
func (s *Server) apiVersionsResponse(version int16) *kmsg.ApiVersionsResponse {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.SetVersion(version)
	for _, a := range s.apis {
		if a == nil {
			continue
		}
		k := kmsg.NewApiVersionsResponseApiKey()
		k.ApiKey, k.MinVersion, k.MaxVersion = a.key, a.min, a.max
		resp.ApiKeys = append(resp.ApiKeys, k)
	}
	return resp
}

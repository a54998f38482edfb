package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"
)

// Media types of request and response bodies.
const (
	mediaJSON   = "application/json"
	mediaNDJSON = "application/x-ndjson"
	// mediaRESTV2 is Kafka REST Proxy v2's media type: of its responses,
	// its errors and its requests that carry no records.
	mediaRESTV2 = "application/vnd.kafka.v2+json"
	// REST Proxy v2's embedded formats: of produce bodies, and of the
	// records consumer instances answer.
	mediaRESTJSON   = "application/vnd.kafka.json.v2+json"
	mediaRESTBinary = "application/vnd.kafka.binary.v2+json"
)

// mediaType returns the request's media type, lowercased and without
// parameters ("" when there is no Content-Type). A charset other than UTF-8
// is refused.
func mediaType(r *http.Request) (string, error) {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return "", nil
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return "", errorf(http.StatusUnsupportedMediaType, "Content-Type %q does not parse: %v", ct, err)
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return "", errorf(http.StatusUnsupportedMediaType, "charset %q is not supported; send UTF-8", cs)
	}
	return mt, nil
}

// readBody decodes the JSON object body of a group or consumer request
// into dst, refusing unknown fields and anything after the object. Bodies
// are small: they are read whole, up to maxAdminBody. mediaTypes lists the
// Content-Types accepted besides none at all. An empty body is decoded as
// nothing and reported when allowEmpty is set (REST Proxy gives some empty
// bodies a meaning), and refused with 400 otherwise. Errors are *Error: 415
// for another Content-Type, 413 for a body over the limit, 400 for one that
// is not a JSON object of the right shape.
func readBody(w http.ResponseWriter, r *http.Request, dst any, allowEmpty bool, mediaTypes ...string) (empty bool, err error) {
	mt, err := mediaType(r)
	if err != nil {
		return false, err
	}
	if mt != "" && !slices.Contains(mediaTypes, mt) {
		return false, errorf(http.StatusUnsupportedMediaType, "Content-Type %q is not supported; send %s", mt, strings.Join(mediaTypes, " or "))
	}
	if r.ContentLength > maxAdminBody {
		return false, errorf(http.StatusRequestEntityTooLarge, "request body of %d bytes is larger than the limit of %d bytes", r.ContentLength, maxAdminBody)
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxAdminBody))
	if err != nil {
		return false, bodyReadError(err)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		if allowEmpty {
			return true, nil
		}
		return false, errorf(http.StatusBadRequest, "the body is empty; want a JSON object")
	}
	if !utf8.Valid(b) {
		return false, errorf(http.StatusBadRequest, "the body is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return false, jsonBodyError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return false, errorf(http.StatusBadRequest, "unexpected data after the JSON body")
	}
	return false, nil
}

// bodyReadError is the 4xx for a request body that could not be read: 413
// for one over the limit, 408 for a read that timed out, 400 otherwise.
func bodyReadError(err error) *Error {
	var (
		maxErr *http.MaxBytesError
		netErr net.Error
	)
	switch {
	case errors.As(err, &maxErr):
		return errorf(http.StatusRequestEntityTooLarge, "request body is larger than the limit of %d bytes", maxErr.Limit)
	case errors.As(err, &netErr) && netErr.Timeout():
		return errorf(http.StatusRequestTimeout, "reading the request body timed out")
	}
	return errorf(http.StatusBadRequest, "read request body: %v", err)
}

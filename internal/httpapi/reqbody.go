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

// readBody decodes the JSON object body of a group or consumer request
// into dst, refusing unknown fields and anything after the object. Bodies
// are small: they are read whole, up to maxAdminBody. mediaTypes lists the
// Content-Types accepted besides none at all. An empty body is decoded as
// nothing and reported when allowEmpty is set (REST Proxy gives some empty
// bodies a meaning), and refused with 400 otherwise. Errors are *Error: 415
// for another Content-Type, 413 for a body over the limit, 400 for one that
// is not a JSON object of the right shape.
func readBody(w http.ResponseWriter, r *http.Request, dst any, allowEmpty bool, mediaTypes ...string) (empty bool, err error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, params, err := mime.ParseMediaType(ct)
		if err != nil {
			return false, errorf(http.StatusUnsupportedMediaType, "Content-Type %q does not parse: %v", ct, err)
		}
		if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
			return false, errorf(http.StatusUnsupportedMediaType, "charset %q is not supported; send UTF-8", cs)
		}
		if !slices.Contains(mediaTypes, mt) {
			return false, errorf(http.StatusUnsupportedMediaType, "Content-Type %q is not supported; send %s", mt, strings.Join(mediaTypes, " or "))
		}
	}
	if r.ContentLength > maxAdminBody {
		return false, errorf(http.StatusRequestEntityTooLarge, "request body of %d bytes is larger than the limit of %d bytes", r.ContentLength, maxAdminBody)
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxAdminBody))
	if err != nil {
		var (
			maxErr *http.MaxBytesError
			netErr net.Error
		)
		switch {
		case errors.As(err, &maxErr):
			return false, errorf(http.StatusRequestEntityTooLarge, "request body is larger than the limit of %d bytes", maxErr.Limit)
		case errors.As(err, &netErr) && netErr.Timeout():
			return false, errorf(http.StatusRequestTimeout, "reading the request body timed out")
		}
		return false, errorf(http.StatusBadRequest, "read request body: %v", err)
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

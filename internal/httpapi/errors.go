package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/sluice-dev/sluice/internal/stream"
)

// Error is an error with the HTTP status it should be answered with. The
// body of every error response is {"error_code": <int>, "message": "..."};
// error_code is the HTTP status, or a Kafka REST Proxy style code (such as
// 40401 for an unknown topic) where REST Proxy clients expect one.
type Error struct {
	Status  int
	Code    int // defaults to Status
	Message string
	// ContentType is the media type of the error body; default
	// application/json. REST Proxy routes answer with mediaRESTV2.
	ContentType string
}

func (e *Error) Error() string { return e.Message }

// errorf returns an *Error with the given status.
func errorf(status int, format string, args ...any) *Error {
	return &Error{Status: status, Message: fmt.Sprintf(format, args...)}
}

// restErrorf returns an *Error as REST Proxy v2 answers it: with its own
// error code and media type.
func restErrorf(status, code int, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...), ContentType: mediaRESTV2}
}

// statusOf maps an error to its HTTP status: the one place where the
// stream seam's errors meet HTTP.
func statusOf(err error) int {
	var he *Error
	switch {
	case errors.As(err, &he):
		return he.Status
	case errors.Is(err, stream.ErrUnknownTopic), errors.Is(err, stream.ErrUnknownPartition):
		return http.StatusNotFound
	case errors.Is(err, stream.ErrTopicExists):
		return http.StatusConflict
	case errors.Is(err, stream.ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, stream.ErrInvalid), errors.Is(err, stream.ErrOffsetOutOfRange):
		return http.StatusUnprocessableEntity
	case errors.Is(err, stream.ErrUnavailable):
		return http.StatusServiceUnavailable
	case isMaxBytes(err):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		// The client went away or the server is shutting down.
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

func isMaxBytes(err error) bool {
	var me *http.MaxBytesError
	return errors.As(err, &me)
}

// Kafka REST Proxy v2's error codes for what the seam reports.
const (
	codeUnknownTopic     = 40401
	codeUnknownPartition = 40402
	codeKafkaError       = 50002
	codeRetriableError   = 50003
)

// restProxyError returns err as REST Proxy v2 clients expect it: the same
// status and JSON shape, REST Proxy's error codes and media type. REST
// Proxy routes are registered through rest, which applies it.
func restProxyError(err error) *Error {
	status := statusOf(err)
	e := &Error{Status: status, Code: status, Message: err.Error(), ContentType: mediaRESTV2}
	var he *Error
	switch {
	case errors.As(err, &he) && he.Code != 0:
		e.Code = he.Code
	case errors.Is(err, stream.ErrUnknownTopic):
		e.Code = codeUnknownTopic
	case errors.Is(err, stream.ErrUnknownPartition):
		e.Code = codeUnknownPartition
	case errors.Is(err, stream.ErrUnavailable):
		e.Code = codeRetriableError
	case status >= 500:
		e.Code = codeKafkaError
	}
	return e
}

// rest answers fn's errors as REST Proxy does.
func (a *API) rest(fn handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := fn(w, r); err != nil {
			return restProxyError(err)
		}
		return nil
	}
}

// errorBody is the JSON shape of every error response.
type errorBody struct {
	ErrorCode int    `json:"error_code"`
	Message   string `json:"message"`
}

// writeError answers with err's status and message. Server errors (5xx
// other than 503) are logged; their message still names what failed.
func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status := statusOf(err)
	code, contentType := status, mediaJSON
	var he *Error
	if errors.As(err, &he) {
		if he.Code != 0 {
			code = he.Code
		}
		if he.ContentType != "" {
			contentType = he.ContentType
		}
	}
	if status >= 500 && status != http.StatusServiceUnavailable {
		a.opts.Logger.Error("http request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeJSON(w, contentType, status, errorBody{ErrorCode: code, Message: err.Error()})
}

// writeJSON writes v, encoded as JSON, as the response body with the given
// media type and status.
func writeJSON(w http.ResponseWriter, contentType string, status int, v any) {
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

package httpapi

import (
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
}

func (e *Error) Error() string { return e.Message }

// errorf returns an *Error with the given status.
func errorf(status int, format string, args ...any) *Error {
	return &Error{Status: status, Message: fmt.Sprintf(format, args...)}
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
	}
	return http.StatusInternalServerError
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
	code := status
	var he *Error
	if errors.As(err, &he) && he.Code != 0 {
		code = he.Code
	}
	if status >= 500 && status != http.StatusServiceUnavailable {
		a.opts.Logger.Error("http request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeJSON(w, status, errorBody{ErrorCode: code, Message: err.Error()})
}

// writeJSON writes v as the response body with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Package client is a small Go client for Sluice's HTTP API: topic
// administration, produce, partition fetches and consumer-group offsets. It
// is what the sluice CLI's client commands use; every method maps to one
// endpoint of docs/http-api.md and returns the server's errors as *Error.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
)

// DefaultTimeout bounds each request that is not a long poll or a streamed
// produce; see WithTimeout.
const DefaultTimeout = 30 * time.Second

// Client talks to one Sluice server. It is safe for concurrent use.
type Client struct {
	base      *url.URL
	hc        *http.Client
	timeout   time.Duration
	userAgent string
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient makes the client send its requests with hc instead of its
// own, which keeps connections alive and bounds dialing and TLS handshakes
// but not whole requests (long polls and streamed bodies may take long).
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// WithTimeout bounds each request other than the streamed produce of
// ProduceNDJSON (bounded by its context only) and fetches (which get their
// long-poll wait on top). Zero or less means no bound but the context's.
// Default DefaultTimeout.
func WithTimeout(d time.Duration) Option { return func(c *Client) { c.timeout = d } }

// WithUserAgent sets the User-Agent header of every request.
func WithUserAgent(ua string) Option { return func(c *Client) { c.userAgent = ua } }

// New returns a client for the server at baseURL, such as
// "http://127.0.0.1:8080". A baseURL without a scheme is taken as http.
func New(baseURL string, opts ...Option) (*Client, error) {
	s := strings.TrimSpace(baseURL)
	if s == "" {
		return nil, errors.New("server address is empty")
	}
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("server address %q: %w", baseURL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("server address %q: want an http:// or https:// URL", baseURL)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("server address %q: no host", baseURL)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("server address %q: want no query or fragment", baseURL)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	c := &Client{base: u, timeout: DefaultTimeout, userAgent: "sluice-client"}
	for _, o := range opts {
		o(c)
	}
	if c.hc == nil {
		c.hc = &http.Client{Transport: newTransport()}
	}
	return c, nil
}

// newTransport is the default transport: keep-alive with enough idle
// connections for a consumer's per-partition long polls, and bounds on the
// phases that should be quick.
func newTransport() *http.Transport {
	return &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   10 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

// BaseURL returns the server's base URL.
func (c *Client) BaseURL() string { return c.base.String() }

// Error is an error answered by the server: its HTTP status and the
// {"error_code", "message"} body every Sluice error has.
type Error struct {
	// StatusCode is the HTTP status.
	StatusCode int
	// Code is the body's error_code: the HTTP status, or a Kafka REST
	// Proxy style code (such as 40401) on REST Proxy routes.
	Code int
	// Message says what was wrong.
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s (HTTP %d)", e.Message, e.StatusCode)
}

// IsStatus reports whether err is an *Error with the given HTTP status.
func IsStatus(err error, status int) bool {
	var e *Error
	return errors.As(err, &e) && e.StatusCode == status
}

// maxErrorBody bounds how much of an error response is read.
const maxErrorBody = 64 << 10

// decodeError turns a non-2xx response into an *Error. A body that is not
// the JSON error shape (a proxy's HTML page, say) becomes the message,
// cut to its first line.
func decodeError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	e := &Error{StatusCode: resp.StatusCode, Code: resp.StatusCode}
	var body struct {
		ErrorCode *int    `json:"error_code"`
		Message   *string `json:"message"`
	}
	if json.Unmarshal(b, &body) == nil && body.Message != nil {
		e.Message = *body.Message
		if body.ErrorCode != nil {
			e.Code = *body.ErrorCode
		}
		return e
	}
	msg := strings.TrimSpace(string(b))
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = strings.TrimSpace(msg[:i])
	}
	if len(msg) > 200 {
		msg = msg[:200] + "..."
	}
	if msg == "" || !utf8.ValidString(msg) {
		msg = strings.ToLower(http.StatusText(resp.StatusCode))
	}
	e.Message = msg
	return e
}

// request describes one API call.
type request struct {
	method string
	path   string // already escaped
	query  url.Values
	// body is sent as is with contentType; or, when body is nil and in is
	// not, in is encoded as JSON.
	body        io.Reader
	contentType string
	in          any
	// out receives the JSON response body, if not nil.
	out any
	// timeout overrides the client's timeout: < 0 means none.
	timeout time.Duration
}

// do sends req and decodes its answer.
func (c *Client) do(ctx context.Context, req request) error {
	timeout := c.timeout
	if req.timeout != 0 {
		timeout = req.timeout
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	body, contentType := req.body, req.contentType
	if body == nil && req.in != nil {
		b, err := json.Marshal(req.in)
		if err != nil {
			return fmt.Errorf("%s %s: encode request: %w", req.method, req.path, err)
		}
		body, contentType = bytes.NewReader(b), "application/json"
	}
	u := c.base.String() + req.path
	if len(req.query) > 0 {
		u += "?" + req.query.Encode()
	}
	hreq, err := http.NewRequestWithContext(ctx, req.method, u, body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", req.method, req.path, err)
	}
	if contentType != "" {
		hreq.Header.Set("Content-Type", contentType)
	}
	hreq.Header.Set("Accept", "application/json")
	if c.userAgent != "" {
		hreq.Header.Set("User-Agent", c.userAgent)
	}
	resp, err := c.hc.Do(hreq)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return &RequestError{Method: req.method, URL: c.base.String() + req.path, Err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return decodeError(resp)
	}
	if req.out == nil || resp.StatusCode == http.StatusNoContent {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(req.out); err != nil {
		return fmt.Errorf("%s %s: decode response: %w", req.method, req.path, err)
	}
	return nil
}

// RequestError is a request that got no answer from the server: it could
// not be sent, or the connection failed, or the context ended first.
type RequestError struct {
	Method string
	URL    string
	Err    error
}

func (e *RequestError) Error() string {
	return fmt.Sprintf("%s %s: %v", e.Method, e.URL, e.Err)
}

func (e *RequestError) Unwrap() error { return e.Err }

// escape escapes one path segment.
func escape(s string) string { return url.PathEscape(s) }

// Pos is a position in a partition: an offset, the earliest or latest
// offset, or the first offset at or after a time. It is written as the
// API's offset parameter: a number, "earliest", "latest" or "@<time>".
type Pos struct{ s string }

// Positions for Fetch and Seek.
var (
	Earliest = Pos{"earliest"}
	Latest   = Pos{"latest"}
)

// Offset returns the position of offset n.
func Offset(n int64) Pos { return Pos{fmt.Sprint(n)} }

// At returns the position of the first record at or after t.
func At(t time.Time) Pos { return Pos{"@" + t.UTC().Format(time.RFC3339Nano)} }

// ParsePos parses a position as the API writes it: a non-negative offset,
// "earliest", "latest", or "@" followed by an RFC 3339 time or Unix
// milliseconds.
func ParsePos(s string) (Pos, error) {
	switch s {
	case "earliest":
		return Earliest, nil
	case "latest":
		return Latest, nil
	}
	if t, ok := strings.CutPrefix(s, "@"); ok {
		if _, err := time.Parse(time.RFC3339Nano, t); err == nil {
			return Pos{s}, nil
		}
		if isDigits(t) {
			return Pos{s}, nil
		}
		return Pos{}, fmt.Errorf("position %q: want @ followed by an RFC 3339 time or Unix milliseconds", s)
	}
	if isDigits(s) && len(s) <= 19 {
		return Pos{s}, nil
	}
	return Pos{}, fmt.Errorf("position %q: want an offset, earliest, latest or @<time>", s)
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// IsZero reports whether p is the zero Pos, which names no position.
func (p Pos) IsZero() bool { return p.s == "" }

// String returns p as the API's offset parameter.
func (p Pos) String() string { return p.s }

// MarshalJSON writes an offset as a JSON number and every other position
// as a string, as the seek endpoint takes them.
func (p Pos) MarshalJSON() ([]byte, error) {
	if isDigits(p.s) {
		return []byte(p.s), nil
	}
	return json.Marshal(p.s)
}

package kafkawire

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-dev/sluice/internal/stream"
)

// Buffer sizes of a connection. A connection keeps its request, response
// and fetch buffers for the next request, so that a busy producer or
// consumer does not allocate per request, up to the retain limits; larger
// buffers are dropped after the request that needed them.
const (
	readBufferSize     = 8 << 10
	firstReadChunk     = 64 << 10
	retainRequestBytes = 8 << 20  // a producer's requests of several 1 MiB batches
	retainFetchBytes   = 16 << 20 // a consumer's fetches, read and then encoded
)

// minHeaderSize is the smallest request header: API key, version,
// correlation ID and a client ID length.
const minHeaderSize = 10

// anonymous is the principal of every request until authentication lands.
const anonymous = "User:ANONYMOUS"

// Errors that end a connection.
var (
	errTooLarge    = errors.New("request exceeds the size limit")
	errTooShort    = errors.New("request shorter than a request header")
	errWrite       = errors.New("write response")
	errUnsupported = errors.New("unsupported API key or version")
	errPanic       = errors.New("request handler panicked")
	// errCloseAcks0 asks for the connection to be closed after a produce
	// request with acks=0 failed: with no response to carry the error,
	// closing is how Kafka tells such a producer.
	errCloseAcks0 = errors.New("acks=0 produce failed")
)

// conn is one client connection. Only its own goroutine touches it, except
// that Shutdown sets its read deadline.
type conn struct {
	s      *Server
	nc     net.Conn
	br     *bufio.Reader
	remote string
	adv    hostPort

	clientID string // the last client ID seen, to avoid reallocating it
	rbuf     []byte // request body
	wbuf     []byte // response frame
	fetchBuf []byte // arena for fetched batches
	pipe     *pipeline
}

func newConn(s *Server, nc net.Conn, adv hostPort) *conn {
	c := &conn{s: s, nc: nc, br: bufio.NewReaderSize(nc, readBufferSize), remote: nc.RemoteAddr().String(), adv: adv}
	if c.adv.host == "" {
		if h, p, err := splitHostPort(nc.LocalAddr().String()); err == nil {
			c.adv = hostPort{h, p}
			if c.adv.port == 0 {
				c.adv.port = adv.port
			}
		}
	}
	return c
}

// serve reads and answers requests, one at a time, until the connection
// fails, ctx ends or the server drains.
func (c *conn) serve(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { _ = c.nc.Close() })
	defer stop()
	defer c.nc.Close()
	log := c.s.logger.With("remote", c.remote)
	// Stopped before the connection closes, so that pipelined responses
	// are written first.
	c.pipe = c.startPipeline(log, cancel)
	defer c.pipe.stop()
	log.Debug("kafka connection opened")
	for {
		if err := c.nc.SetReadDeadline(time.Now().Add(c.s.opts.IdleTimeout)); err != nil {
			return
		}
		if c.s.drain.Err() != nil {
			return
		}
		body, err := c.readRequest()
		if err != nil {
			switch {
			case errors.Is(err, errTooLarge):
				c.s.metrics.request("unknown", "request_too_large")
				log.Warn("kafka connection closed: request too large", "err", err)
			case errors.Is(err, errTooShort):
				c.s.metrics.request("unknown", "malformed_request")
				log.Warn("kafka connection closed: malformed request", "err", err)
			case errors.Is(err, io.EOF), ctx.Err() != nil, c.s.drain.Err() != nil:
				log.Debug("kafka connection closed")
			default:
				log.Debug("kafka connection closed", "err", err)
			}
			return
		}
		if err := c.handle(ctx, log, body); err != nil {
			switch {
			case errors.Is(err, errCloseAcks0), errors.Is(err, errWrite), ctx.Err() != nil:
				log.Debug("kafka connection closed", "client_id", c.clientID, "err", err)
			default:
				log.Warn("kafka connection closed", "client_id", c.clientID, "err", err)
			}
			return
		}
		c.trimBuffers()
	}
}

// readRequest reads one size-prefixed request into c.rbuf. The buffer grows
// only as bytes arrive, at most doubling, so a peer announcing a large
// request must send it before memory is spent on it.
func (c *conn) readRequest() ([]byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(c.br, size[:]); err != nil {
		return nil, err
	}
	n := int64(int32(binary.BigEndian.Uint32(size[:])))
	switch {
	case n > int64(c.s.opts.MaxRequestBytes):
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", errTooLarge, n, c.s.opts.MaxRequestBytes)
	case n < minHeaderSize:
		return nil, fmt.Errorf("%w: %d bytes", errTooShort, n)
	}
	buf := c.rbuf[:0]
	for int64(len(buf)) < n {
		chunk := int(min(n-int64(len(buf)), int64(max(len(buf), firstReadChunk))))
		if cap(buf)-len(buf) < chunk {
			nb := make([]byte, len(buf), len(buf)+chunk)
			copy(nb, buf)
			buf = nb
		}
		if _, err := io.ReadFull(c.br, buf[len(buf):len(buf)+chunk]); err != nil {
			return nil, err
		}
		buf = buf[:len(buf)+chunk]
	}
	c.rbuf = buf
	return buf, nil
}

// trimBuffers drops buffers a large request or response left behind.
func (c *conn) trimBuffers() {
	if cap(c.rbuf) > retainRequestBytes {
		c.rbuf = nil
	}
	if cap(c.wbuf) > retainFetchBytes {
		c.wbuf = nil
	}
	if cap(c.fetchBuf) > retainFetchBytes {
		c.fetchBuf = nil
	}
}

// request is one request being served.
type request struct {
	ctx       context.Context
	c         *conn
	key       int16
	version   int16
	clientID  string
	principal string
	// code is the first error code noted for the response, for metrics.
	code int16
}

// note records code as the request's error for metrics (the first non-zero
// one wins) and returns it.
func (r *request) note(code int16) int16 {
	if r.code == 0 {
		r.code = code
	}
	return code
}

// header is a parsed request header.
type header struct {
	key, version int16
	correlation  int32
}

// handle parses, serves and answers one request. An error closes the
// connection.
func (c *conn) handle(ctx context.Context, log *slog.Logger, body []byte) error {
	h := header{
		key:         int16(binary.BigEndian.Uint16(body[0:])),
		version:     int16(binary.BigEndian.Uint16(body[2:])),
		correlation: int32(binary.BigEndian.Uint32(body[4:])),
	}
	rest := body[8:]
	idLen := int(int16(binary.BigEndian.Uint16(rest)))
	rest = rest[2:]
	if idLen > len(rest) {
		c.s.metrics.request(apiName(h.key), "malformed_request")
		return fmt.Errorf("malformed request header: client id of %d bytes in %d", idLen, len(rest))
	}
	if idLen > 0 {
		if string(rest[:idLen]) != c.clientID {
			c.clientID = string(rest[:idLen])
		}
		rest = rest[idLen:]
	} else {
		c.clientID = ""
	}

	a := c.s.api(h.key)
	if h.key == apiVersionsKey && (h.version < 0 || h.version > a.max) {
		// KIP-511: answer what we can parse, the correlation ID, with a v0
		// body listing what we serve, so the client can pick a version.
		c.s.metrics.request(a.name, "UNSUPPORTED_VERSION")
		resp := c.s.apiVersionsResponse(0)
		resp.ErrorCode = kerr.UnsupportedVersion.Code
		c.pipe.drain()
		return c.write(h, resp)
	}
	if a == nil || h.version < a.min || h.version > a.max {
		c.s.metrics.request(apiName(h.key), "unsupported_version")
		return fmt.Errorf("%w: %s (key %d) version %d", errUnsupported, apiName(h.key), h.key, h.version)
	}

	req := kmsg.RequestForKey(h.key)
	req.SetVersion(h.version)
	if req.IsFlexible() {
		var err error
		if rest, err = skipHeaderTags(rest); err != nil {
			c.s.metrics.request(a.name, "malformed_request")
			return err
		}
	}
	if err := validateShape(c.s.shapes[h.key], rest, h.version, req.IsFlexible()); err != nil {
		c.s.metrics.request(a.name, "malformed_request")
		return fmt.Errorf("%s v%d: %w", a.name, h.version, err)
	}
	if err := req.ReadFrom(rest); err != nil {
		c.s.metrics.request(a.name, "malformed_request")
		return fmt.Errorf("%s v%d: %w: %v", a.name, h.version, errShape, err)
	}

	rc := &request{ctx: ctx, c: c, key: h.key, version: h.version, clientID: c.clientID, principal: anonymous}
	start := time.Now()
	if pr, ok := req.(*kmsg.ProduceRequest); ok && pr.Acks != 0 {
		if sp, ok := c.s.log.(stream.StagedProducer); ok {
			finish, err := c.stage(rc, log, a, pr, sp)
			if err != nil {
				c.s.metrics.observe(a, rc, err, time.Since(start))
				return err
			}
			c.pipe.push(&pending{h: h, a: a, rc: rc, start: start, finish: finish})
			return nil
		}
	}
	// Every other request is served after the responses before it are
	// written, so that it sees their effects (pipeline.go).
	c.pipe.drain()
	resp, err := c.dispatch(rc, log, a, req)
	c.s.metrics.observe(a, rc, err, time.Since(start))
	if err != nil {
		return err
	}
	if resp == nil {
		return nil // produce with acks=0
	}
	return c.write(h, resp)
}

// dispatch runs the API's handler, turning a panic into an error that
// closes this connection only.
func (c *conn) dispatch(rc *request, log *slog.Logger, a *api, req kmsg.Request) (resp kmsg.Response, err error) {
	defer func() {
		if p := recover(); p != nil {
			log.Error("kafka request handler panicked", "api", a.name, "version", rc.version,
				"client_id", rc.clientID, "panic", p, "stack", string(debug.Stack()))
			resp, err = nil, fmt.Errorf("%w: %s v%d: %v", errPanic, a.name, rc.version, p)
		}
	}()
	return a.handle(c.s, rc, req)
}

// stage runs the first half of a pipelined produce request, turning a panic
// into an error that closes this connection only.
func (c *conn) stage(rc *request, log *slog.Logger, a *api, req *kmsg.ProduceRequest, sp stream.StagedProducer) (finish func() (kmsg.Response, error), err error) {
	defer func() {
		if p := recover(); p != nil {
			log.Error("kafka request handler panicked", "api", a.name, "version", rc.version,
				"client_id", rc.clientID, "panic", p, "stack", string(debug.Stack()))
			finish, err = nil, fmt.Errorf("%w: %s v%d: %v", errPanic, a.name, rc.version, p)
		}
	}()
	return c.s.stageProduce(rc, req, sp), nil
}

// skipHeaderTags skips the tagged fields of a request header v2.
func skipHeaderTags(b []byte) ([]byte, error) {
	w := shapeWalker{b: b, flexible: true}
	if err := w.tags(nil); err != nil {
		return nil, fmt.Errorf("request header: %w", err)
	}
	return w.b, nil
}

// write frames and sends a response: the size, the correlation ID, an empty
// tagged-field section when the response is flexible (never for
// ApiVersions, whose responses always use header version 0), and the body.
func (c *conn) write(h header, resp kmsg.Response) error {
	var err error
	c.wbuf, err = c.writeFrame(c.wbuf, h, resp)
	return err
}

// writeFrame is write with buf as the frame's buffer, which it returns for
// reuse.
func (c *conn) writeFrame(buf []byte, h header, resp kmsg.Response) ([]byte, error) {
	b := append(buf[:0], 0, 0, 0, 0)
	b = kbin.AppendInt32(b, h.correlation)
	if resp.IsFlexible() && resp.Key() != apiVersionsKey {
		b = append(b, 0)
	}
	b = resp.AppendTo(b)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	if err := c.nc.SetWriteDeadline(time.Now().Add(c.s.opts.IdleTimeout)); err != nil {
		return b, fmt.Errorf("%w: %w", errWrite, err)
	}
	if _, err := c.nc.Write(b); err != nil {
		return b, fmt.Errorf("%w: %w", errWrite, err)
	}
	return b, nil
}

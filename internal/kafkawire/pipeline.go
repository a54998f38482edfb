package kafkawire

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// A connection serves its requests in order, one at a time, with one
// exception: produce requests on a log that can split its appends
// (stream.StagedProducer). Their batches are appended as the request is
// read, which fixes their order in the log; the wait for their fsync and the
// response are left to the connection's writer goroutine, and the connection
// reads its next request meanwhile. A producer with several requests in
// flight (librdkafka and the Java client keep up to five, idempotent or
// not; franz-go's idempotent producer keeps one) then has them all share
// fsyncs, instead of each waiting for its own behind the one before. The
// appends of one request are also written one after another before any of
// them waits, rather than each partition's goroutine writing and then
// syncing in turn.
//
// Responses still leave in request order: the writer answers the pipelined
// requests first in, first out, and any other request waits until every
// response before it is written before it is even served, so it sees the
// effects of the requests before it, exactly as without pipelining. At most
// maxPipelined requests wait at a time; one more blocks the reader, which
// bounds what a connection holds besides its request buffer to their
// responses.
const maxPipelined = 8

// pending is a request whose response is not ready yet.
type pending struct {
	h      header
	a      *api
	rc     *request
	start  time.Time
	finish func() (kmsg.Response, error)
}

// pipeline is a connection's writer of pipelined responses. Only the
// connection's reader goroutine calls push and drain; the writer goroutine
// is the only other user of the connection's write side, and never while
// drain has returned and nothing new was pushed.
type pipeline struct {
	c     *conn
	q     chan *pending
	wg    sync.WaitGroup // pushed and not yet answered
	done  chan struct{}  // closed when the writer has stopped
	abort context.CancelFunc
	log   *slog.Logger
	wbuf  []byte // the writer's response frame
}

// startPipeline starts the connection's writer. abort is called when a
// response cannot be written, to close the connection.
func (c *conn) startPipeline(log *slog.Logger, abort context.CancelFunc) *pipeline {
	p := &pipeline{c: c, q: make(chan *pending, maxPipelined), done: make(chan struct{}), abort: abort, log: log}
	go p.writeLoop()
	return p
}

// push queues a pipelined request's response, blocking while maxPipelined
// are queued.
func (p *pipeline) push(pd *pending) {
	p.wg.Add(1)
	p.q <- pd
}

// drain returns once every queued response is written (or abandoned after a
// failed write).
func (p *pipeline) drain() { p.wg.Wait() }

// stop waits for the queued requests to finish, so that every batch appended
// gets its acknowledgement waited for, and stops the writer.
func (p *pipeline) stop() {
	close(p.q)
	<-p.done
}

func (p *pipeline) writeLoop() {
	defer close(p.done)
	broken := false
	for pd := range p.q {
		resp, err := p.finish(pd)
		p.c.s.metrics.observe(pd.a, pd.rc, err, time.Since(pd.start))
		if err == nil && resp != nil && !broken {
			p.wbuf, err = p.c.writeFrame(p.wbuf, pd.h, resp)
			if cap(p.wbuf) > retainFetchBytes {
				p.wbuf = nil
			}
		}
		if err != nil && !broken {
			// Nothing after this response may be written: the client
			// matches responses to requests by order too. Later
			// requests are still waited for, unanswered.
			broken = true
			p.log.Debug("kafka connection closed", "client_id", pd.rc.clientID, "err", err)
			p.abort()
		}
		p.wg.Done()
	}
}

// finish runs a pending request's second half, turning a panic into an
// error that closes the connection, as dispatch does for the first.
func (p *pipeline) finish(pd *pending) (resp kmsg.Response, err error) {
	defer func() {
		if r := recover(); r != nil {
			p.log.Error("kafka request handler panicked", "api", pd.a.name, "version", pd.rc.version,
				"client_id", pd.rc.clientID, "panic", r, "stack", string(debug.Stack()))
			resp, err = nil, fmt.Errorf("%w: %s v%d: %v", errPanic, pd.a.name, pd.rc.version, r)
		}
	}()
	return pd.finish()
}

// Package kafka implements stream.Log on an external Apache Kafka cluster
// (or anything that speaks its protocol) through franz-go: Sluice's "cluster
// mode". Topics, records and group offsets live in Kafka; Sluice keeps no
// state of its own here.
//
// Records go over the wire as the RecordBatch v2 bytes the caller built:
// Produce sends them in a raw ProduceRequest to the partition leader and
// Fetch hands back the batches of a raw FetchRequest, so nothing is decoded
// or re-encoded on the way. Topic and group administration goes through
// kadm.
//
// Kafka applies administrative changes asynchronously: a broker may answer
// from older metadata for a moment after a topic is created, altered or
// deleted. The admin methods therefore wait, up to
// Options.PropagationTimeout, until the cluster shows the change before they
// return, so a caller reads its own writes.
package kafka

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-dev/sluice/internal/stream"
)

// Options configure a Log. Brokers is required; every other field has a
// default.
type Options struct {
	// Brokers are the seed brokers, as host:port.
	Brokers []string
	// ClientID is the client.id sent with every request (default "sluice").
	ClientID string
	// ReplicationFactor is given to topics that CreateTopic creates; zero
	// or -1 leaves it to the brokers' default.replication.factor.
	ReplicationFactor int16
	// ProduceTimeout bounds how long a leader waits for the in-sync
	// replicas to acknowledge a batch (acks=all); the context bounds it
	// further (default 30s).
	ProduceTimeout time.Duration
	// MaxInFlight bounds the produce requests, and separately the
	// fetches, in flight at once (default 16). Kafka answers the requests
	// of one connection one at a time, so each in-flight request gets a
	// connection of its own: a long poll on an idle partition never holds
	// up a fetch or a produce elsewhere on the same broker. Callers beyond
	// the bound wait for a free connection.
	MaxInFlight int
	// PropagationTimeout bounds how long an admin call waits for the
	// cluster's metadata to show the change it made (default 10s).
	PropagationTimeout time.Duration
	// ClientOpts are extra franz-go options for every client this Log
	// opens, such as kgo.DialTLSConfig or kgo.SASL.
	ClientOpts []kgo.Opt
}

func (o Options) withDefaults() (Options, error) {
	if len(o.Brokers) == 0 {
		return o, fmt.Errorf("kafka: %w: no brokers given", stream.ErrInvalid)
	}
	if o.ClientID == "" {
		o.ClientID = "sluice"
	}
	if o.ReplicationFactor == 0 {
		o.ReplicationFactor = -1
	}
	if o.ProduceTimeout <= 0 {
		o.ProduceTimeout = 30 * time.Second
	}
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = 16
	}
	if o.PropagationTimeout <= 0 {
		o.PropagationTimeout = 10 * time.Second
	}
	return o, nil
}

// Log is stream.Log on a Kafka cluster. It is safe for concurrent use. Close
// releases its connections.
type Log struct {
	opts Options
	cl   *kgo.Client // admin and metadata
	adm  *kadm.Client

	producers *pool
	fetchers  *pool

	mu     sync.Mutex
	topics map[string]*topicMeta // leaders for Produce and Fetch
}

var _ stream.Log = (*Log)(nil)

// New connects to the cluster. It fails with stream.ErrUnavailable when no
// seed broker answers before ctx is done.
func New(ctx context.Context, opts Options) (*Log, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	newClient := func() (*kgo.Client, error) {
		kopts := append([]kgo.Opt{kgo.SeedBrokers(opts.Brokers...), kgo.ClientID(opts.ClientID)}, opts.ClientOpts...)
		return kgo.NewClient(kopts...)
	}
	cl, err := newClient()
	if err != nil {
		return nil, fmt.Errorf("kafka: %w: %w", stream.ErrInvalid, err)
	}
	if err := cl.Ping(ctx); err != nil {
		cl.Close()
		return nil, fmt.Errorf("kafka: %w: no broker of %v answered: %w", stream.ErrUnavailable, opts.Brokers, err)
	}
	return &Log{
		opts:      opts,
		cl:        cl,
		adm:       kadm.NewClient(cl),
		producers: newPool(opts.MaxInFlight, newClient),
		fetchers:  newPool(opts.MaxInFlight, newClient),
		topics:    map[string]*topicMeta{},
	}, nil
}

// Close closes every connection. Calls in progress fail, as do later ones,
// with stream.ErrUnavailable.
func (l *Log) Close() {
	l.producers.close()
	l.fetchers.close()
	l.cl.Close()
}

// errClosed reports a call on a closed Log.
var errClosed = fmt.Errorf("kafka: %w: log closed", stream.ErrUnavailable)

// pool hands out franz-go clients, each to one caller at a time, so that
// each in-flight request has its own connection to its broker. Clients are
// created on first need, up to the bound.
type pool struct {
	newClient func() (*kgo.Client, error)
	sem       chan struct{}

	mu     sync.Mutex
	idle   []*kgo.Client
	all    []*kgo.Client
	closed bool
}

func newPool(n int, newClient func() (*kgo.Client, error)) *pool {
	return &pool{newClient: newClient, sem: make(chan struct{}, n)}
}

func (p *pool) get(ctx context.Context) (*kgo.Client, error) {
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		<-p.sem
		return nil, errClosed
	}
	if n := len(p.idle); n > 0 {
		cl := p.idle[n-1]
		p.idle = p.idle[:n-1]
		return cl, nil
	}
	cl, err := p.newClient()
	if err != nil {
		<-p.sem
		return nil, fmt.Errorf("kafka: %w: %w", stream.ErrUnavailable, err)
	}
	p.all = append(p.all, cl)
	return cl, nil
}

func (p *pool) put(cl *kgo.Client) {
	p.mu.Lock()
	if !p.closed {
		p.idle = append(p.idle, cl)
	}
	p.mu.Unlock()
	<-p.sem
}

func (p *pool) close() {
	p.mu.Lock()
	all := p.all
	p.closed, p.all, p.idle = true, nil, nil
	p.mu.Unlock()
	for _, cl := range all {
		cl.Close()
	}
}

// topicMeta is what Produce and Fetch need to address a partition.
type topicMeta struct {
	id      [16]byte
	leaders []int32 // by partition; -1 while a partition has no leader
	at      time.Time
}

// metaMaxAge bounds how long cached leaders are trusted without an error
// to say they moved; errors from a leader refresh them at once.
const metaMaxAge = time.Minute

// metadata asks the cluster about topics (every topic when topics is nil)
// and caches what it learns about leaders. franz-go caches the answer too,
// which keeps kadm's own lookups fresh after a change.
func (l *Log) metadata(ctx context.Context, topics []string) (*kmsg.MetadataResponse, error) {
	req := kmsg.NewPtrMetadataRequest()
	if topics != nil {
		req.Topics = make([]kmsg.MetadataRequestTopic, 0, len(topics))
		for _, t := range topics {
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = kmsg.StringPtr(t)
			req.Topics = append(req.Topics, rt)
		}
	}
	resp, err := req.RequestWith(ctx, l.cl)
	if err != nil {
		return nil, mapErr(fmt.Errorf("metadata: %w", err))
	}
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, t := range resp.Topics {
		if t.Topic == nil {
			continue
		}
		if missing(t.ErrorCode) {
			delete(l.topics, *t.Topic)
			continue
		}
		if t.ErrorCode != 0 {
			continue
		}
		tm := &topicMeta{id: t.TopicID, leaders: make([]int32, partitionCount(t)), at: now}
		for i := range tm.leaders {
			tm.leaders[i] = -1
		}
		for _, p := range t.Partitions {
			if p.Partition >= 0 {
				tm.leaders[p.Partition] = p.Leader
			}
		}
		l.topics[*t.Topic] = tm
	}
	return resp, nil
}

// partitionCount is one more than the highest partition a metadata answer
// lists: partitions are numbered from zero without gaps.
func partitionCount(t kmsg.MetadataResponseTopic) int {
	n := 0
	for _, p := range t.Partitions {
		n = max(n, int(p.Partition)+1)
	}
	return n
}

// leader returns the leader of a partition and its topic's ID, from the
// cache unless refresh is set or the cache cannot answer. It fails with
// stream.ErrUnknownTopic or stream.ErrUnknownPartition only on fresh
// metadata.
func (l *Log) leader(ctx context.Context, topicName string, partition int32, refresh bool) (int32, [16]byte, error) {
	l.mu.Lock()
	tm := l.topics[topicName]
	l.mu.Unlock()
	if refresh || tm == nil || time.Since(tm.at) > metaMaxAge || int(partition) >= len(tm.leaders) {
		if _, err := l.metadata(ctx, []string{topicName}); err != nil {
			return -1, [16]byte{}, err
		}
		l.mu.Lock()
		tm = l.topics[topicName]
		l.mu.Unlock()
	}
	switch {
	case tm == nil:
		return -1, [16]byte{}, fmt.Errorf("%w: %q", stream.ErrUnknownTopic, topicName)
	case partition < 0 || int(partition) >= len(tm.leaders):
		return -1, [16]byte{}, fmt.Errorf("%w: %s/%d: the topic has %d partitions", stream.ErrUnknownPartition, topicName, partition, len(tm.leaders))
	}
	return tm.leaders[partition], tm.id, nil
}

// forget drops a topic's cached leaders.
func (l *Log) forget(topicName string) {
	l.mu.Lock()
	delete(l.topics, topicName)
	l.mu.Unlock()
}

// Retries of requests that failed because a leader moved or is not known
// yet: up to maxAttempts in all, with a backoff doubling from firstBackoff
// to maxBackoff (about five seconds in all), always bounded by the context.
const (
	maxAttempts  = 10
	firstBackoff = 50 * time.Millisecond
	maxBackoff   = time.Second
)

// backoff sleeps before attempt (counted from 1 for the first retry).
func backoff(ctx context.Context, attempt int) error {
	d := firstBackoff << min(attempt-1, 10)
	t := time.NewTimer(min(d, maxBackoff))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// settle calls check until it reports done, backing off between calls, for
// at most PropagationTimeout. It returns nil once check is done, else the
// last error check returned (or errNotSettled).
func (l *Log) settle(ctx context.Context, check func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, l.opts.PropagationTimeout)
	defer cancel()
	d := 10 * time.Millisecond
	for {
		done, err := check()
		if done && err == nil {
			return nil
		}
		if err == nil {
			err = errNotSettled
		}
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return err
		}
		d = min(2*d, 250*time.Millisecond)
	}
}

var errNotSettled = errors.New("the cluster does not show the change yet")

// millisUntil converts d to whole milliseconds for a request field, no more
// than what is left before ctx's deadline (less a margin for the answer to
// travel back), so the broker answers before the caller gives up.
func millisUntil(ctx context.Context, d time.Duration) int32 {
	if dl, ok := ctx.Deadline(); ok {
		d = min(d, time.Until(dl)-100*time.Millisecond)
	}
	if d <= 0 {
		return 0
	}
	// Round up: a broker that waits 299ms for a 299.6ms MaxWait answers
	// before the caller's wait is up, and a caller that waits for a time
	// (a long poll's timeout_ms) sees the answer too early.
	return int32(min((d+time.Millisecond-1)/time.Millisecond, math.MaxInt32))
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

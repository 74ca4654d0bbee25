package upstream

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"

	"github.com/ssegate/ssegate/internal/ratelog"
	"github.com/ssegate/ssegate/replay"
)

// Hub watches the whole stream and fans each event out to the local
// clients of its channel.
//
// It holds one core NATS subscription on the republish prefix, so it sees
// every position of the stream. Stream sequences are contiguous, so the
// hub knows the last position it dispatched and every message must be the
// next one: a jump is a loss, seen at the next message on any channel, and
// the missing range is read back from the stream before anything after it
// is dispatched (order.go). Every client therefore gets its channels'
// events in stream order with none missing, and a client's single
// Last-Event-ID position is exact across all of its channels.
//
// One dispatcher goroutine does all of this. It never waits on the
// network: reads and head checks run in goroutines of their own and hand
// their results back to it.
type Hub struct {
	conn    *Conn
	stream  replay.StreamConfig
	history reader
	log     *zap.Logger
	metrics Metrics
	warn    *ratelog.Limiter // live messages the stream did not send
	io      effects
	follows follows

	sub     *nats.Subscription
	msgs    chan *nats.Msg
	results chan result
	poke    chan struct{}
	ready   chan struct{} // closed once the hub knows its position
	stopped chan struct{}
	unwatch func()
	epoch   atomic.Pointer[string]
	// ctx bounds all of the hub's own NATS requests; Close cancels it, so
	// a request hanging during a failover cannot hold up a shutdown.
	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex
	topics map[string]*topic // by stream subject
	closed bool
	order  order
}

// reader is what the hub needs of the stream's history.
type reader interface {
	Follow(ctx context.Context, after uint64, fn func(replay.Msg) error) error
	Head(ctx context.Context) (replay.Head, error)
}

// topic is one channel with local clients.
type topic struct {
	subject string
	clients map[*Client]struct{}
}

// Metrics receives the hub's counts. Nil fields are skipped.
type Metrics struct {
	// Backfilled counts events read back from the stream after core NATS
	// lost them on the way, and delivered to a local client.
	Backfilled func(n int)
	// Channels is a change to the number of channels with local clients.
	Channels func(delta float64)
	// Recovering is a change to the number of channels whose clients wait
	// while the hub reads back what it missed: all of them, or none.
	Recovering func(delta float64)
}

func (m Metrics) add(gauge func(float64), delta float64) {
	if gauge != nil && delta != 0 {
		gauge(delta)
	}
}

// HubOption configures a Hub.
type HubOption func(*Hub)

// WithMetrics reports the hub's counters.
func WithMetrics(m Metrics) HubOption { return func(h *Hub) { h.metrics = m } }

// WithPendingLimit sets how many live messages may wait for the
// dispatcher before NATS drops them (which the hub then reads back).
func WithPendingLimit(n int) HubOption {
	return func(h *Hub) { h.msgs = make(chan *nats.Msg, n) }
}

// WithLogger sets the hub's logger.
func WithLogger(l *zap.Logger) HubOption { return func(h *Hub) { h.log = l } }

// defaultPendingMsgs is how many live messages may wait for the
// dispatcher. The dispatcher never blocks, so this fills only under a
// burst; an overflow is itself detected and read back.
const defaultPendingMsgs = 1 << 16

// ErrClosed is returned by Attach on a closed hub.
var ErrClosed = errors.New("hub is closed")

// ErrNotReady is returned by Attach while the hub does not know the
// stream's position yet: NATS or JetStream is out of reach.
var ErrNotReady = errors.New("stream position not known yet")

// ErrDisconnected is what Attach's error is (errors.Is) while NATS is away.
var ErrDisconnected = errors.New("NATS is not connected")

// Unavailable is Attach's error while NATS is away. At is the hub's
// position then: every event after it is in the stream, or will be, so a
// client without a position that is told At, and comes back from it,
// misses nothing published meanwhile.
type Unavailable struct{ At replay.ID }

func (e *Unavailable) Error() string        { return ErrDisconnected.Error() }
func (e *Unavailable) Is(target error) bool { return target == ErrDisconnected }

// NewHub starts a hub on conn for the given stream.
func NewHub(conn *Conn, stream replay.StreamConfig, history *replay.History, opts ...HubOption) (*Hub, error) {
	return newHub(conn, stream, history, history.Epoch(), opts...)
}

func newHub(conn *Conn, stream replay.StreamConfig, history reader, epoch string, opts ...HubOption) (*Hub, error) {
	h := newCore(stream, history, epoch, opts...)
	h.conn = conn
	h.io = (*liveEffects)(h)
	sub, err := conn.NC.ChanSubscribe(h.stream.RepublishPrefix+".>", h.msgs)
	if err != nil {
		return nil, fmt.Errorf("subscribing to %s.>: %w", h.stream.RepublishPrefix, err)
	}
	// The Go channel is the subscription's only buffer: what does not fit
	// is dropped by nats.go, reported through Dropped, and read back.
	h.sub = sub
	// Core NATS delivers at most once. A reconnect, or a subscription that
	// overflowed, may have lost the newest messages with nothing after
	// them to show it: the hub then checks the stream's head at once.
	h.unwatch = conn.Watch(&Watcher{
		Reconnected: h.kick,
		Dropped:     func(*nats.Subscription) { h.kick() },
	})
	go h.run()
	return h, nil
}

// newCore builds the hub's state without any connection or goroutine:
// the simulation drives it step by step.
func newCore(stream replay.StreamConfig, history reader, epoch string, opts ...HubOption) *Hub {
	h := &Hub{
		stream:  stream.WithDefaults(),
		history: history,
		log:     zap.NewNop(),
		msgs:    make(chan *nats.Msg, defaultPendingMsgs),
		results: make(chan result, resultBuffer),
		poke:    make(chan struct{}, 1),
		ready:   make(chan struct{}),
		stopped: make(chan struct{}),
		unwatch: func() {},
		topics:  make(map[string]*topic),
		warn:    ratelog.New(1.0/60, 1),
	}
	h.epoch.Store(&epoch)
	h.ctx, h.cancel = context.WithCancel(context.Background())
	for _, o := range opts {
		o(h)
	}
	return h
}

// Attach adds a client of the stream subjects. It needs no NATS request:
// the client starts at the hub's position, and every event after it
// reaches the client. A replaying client is held until its session calls
// EndReplay; Start is then the position its read must pass.
func (h *Hub) Attach(ctx context.Context, subjects []string, queueSize int, replaying bool) (*Client, error) {
	if err := h.waitReady(ctx); err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.conn != nil && !h.conn.NC.IsConnected() {
		// Nothing can reach a new client while NATS is away, and a
		// client with a position could not be replayed: it is told to
		// come back, as every client is in a few seconds.
		return nil, &Unavailable{At: replay.ID{Seq: h.order.pos, Epoch: h.Epoch()}}
	}
	if h.closed {
		return nil, ErrClosed
	}
	c := &Client{
		hub:       h,
		queue:     newFrameQueue(queueSize),
		done:      make(chan struct{}),
		holdCap:   max(4*queueSize, 1024),
		replaying: replaying,
		start:     h.order.pos,
	}
	if !replaying {
		c.pos = c.start
	}
	for _, s := range subjects {
		t := h.topics[s]
		if t == nil {
			t = &topic{subject: s, clients: make(map[*Client]struct{})}
			h.topics[s] = t
			h.metrics.add(h.metrics.Channels, 1)
			h.metrics.add(h.metrics.Recovering, h.order.waitGauge())
		}
		t.clients[c] = struct{}{}
		c.topics = append(c.topics, t)
	}
	return c, nil
}

// waitReady waits, for a moment at most, until the hub knows its
// position: a client told at once that the gateway is unavailable comes
// back in a few seconds, which beats a request left hanging.
func (h *Hub) waitReady(ctx context.Context) error {
	select {
	case <-h.ready:
		return nil
	default:
	}
	wait := time.NewTimer(requestTimeout)
	defer wait.Stop()
	select {
	case <-h.ready:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-h.ctx.Done():
		return ErrClosed
	case <-wait.C:
		return ErrNotReady
	}
}

func (h *Hub) detach(c *Client) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if c.detached {
		return
	}
	c.detached = true
	c.held = nil
	for _, t := range c.topics {
		delete(t.clients, c)
		if len(t.clients) == 0 && h.topics[t.subject] == t {
			delete(h.topics, t.subject)
			h.metrics.add(h.metrics.Channels, -1)
			h.metrics.add(h.metrics.Recovering, -h.order.waitGauge())
		}
	}
}

// requestTimeout bounds the hub's own requests, and how long Attach waits
// for the hub's first position.
const requestTimeout = 5 * time.Second

// Close ends every client's stream with ReasonShutdown and stops the hub.
func (h *Hub) Close() {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	h.closed = true
	for _, t := range h.topics {
		// Each client detaches as its stream ends, and the last one of
		// a channel takes it out of the gauges.
		for c := range t.clients {
			c.End(ReasonShutdown)
		}
	}
	h.mu.Unlock()
	h.unwatch()
	h.cancel()
	if h.sub != nil {
		if err := h.sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			h.log.Debug("unsubscribe", zap.Error(err))
		}
		<-h.stopped
	}
}

// Epoch is the epoch of the stream the hub is following.
func (h *Hub) Epoch() string { return *h.epoch.Load() }

// Position is the last stream sequence the hub dispatched.
func (h *Hub) Position() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.order.pos
}

// Recovering reports how many channels wait while the hub reads back
// events it missed.
func (h *Hub) Recovering() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.order.waitGauge() == 0 {
		return 0
	}
	return len(h.topics)
}

// Settled reports whether the hub knows its position and is reading
// nothing back.
func (h *Hub) Settled() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.order.based && h.order.reading == 0
}

// Channels reports how many channels have local clients.
func (h *Hub) Channels() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.topics)
}

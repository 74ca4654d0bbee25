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

// Hub subscribes once per channel and fans every event out to the local
// clients of that channel.
//
// All subscriptions feed one Go channel read by one dispatcher goroutine.
// nats.go would otherwise run each subscription in its own goroutine, and
// a client of several channels would see their events out of stream order,
// which would make its single Last-Event-ID position wrong.
//
// The dispatcher never waits on the network. When it sees that a channel
// may have lost an event, it holds that channel's clients and hands the
// channel to the recovery worker (recover.go), which reads the stream and
// releases them; every other client keeps flowing.
type Hub struct {
	conn    *Conn
	stream  replay.StreamConfig
	history reader
	log     *zap.Logger
	metrics Metrics
	heads   *headReader
	warn    *ratelog.Limiter // live messages the stream did not send

	msgs    chan *nats.Msg
	wake    chan struct{}
	stopped chan struct{}
	unwatch func()
	epoch   atomic.Pointer[string]
	// ctx bounds all of the hub's own NATS requests; Close cancels it, so
	// a request hanging during a failover cannot hold up a shutdown.
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	topics   map[string]*topic // by live subject
	queue    []*topic          // suspect topics waiting for the worker
	settling []*topic          // new topics waiting for their settle probe
	closed   bool
	// checkEpoch asks the worker to compare the stream's epoch with ours.
	checkEpoch  bool
	epochAsked  time.Time
	settleTimer *time.Timer
}

// reader is what the hub needs of the stream's history.
type reader interface {
	Backfill(ctx context.Context, subjects []string, after uint64, fn func(replay.Msg) error) error
	LastSequences(ctx context.Context, subjects []string) (map[string]uint64, error)
	Head(ctx context.Context) (replay.Head, error)
}

type topic struct {
	subject string // stream subject
	live    string
	sub     *nats.Subscription
	ready   chan struct{}
	err     error // set before ready is closed
	clients map[*Client]struct{}

	// Guarded by hub.mu.
	//
	// last is the head of the channel's chain: every event on the subject
	// up to last was delivered live, or is known to predate the topic, or
	// is known missing (changed). A live message's Nats-Last-Sequence
	// above last reveals an event that core NATS lost on the way.
	last      uint64
	isReady   bool
	attaching int  // attaches waiting for ready
	suspect   bool // held for recovery: a probe, or a read if changed
	changed   bool // known to have lost an event
	holdsAll  bool // holds its single-channel clients too (see holds)
	queued    bool // in hub.queue
	inJob     bool // the worker has chosen which clients to read for
	gen       uint64
	readyAt   time.Time
}

// Metrics receives the hub's counts. Nil fields are skipped.
type Metrics struct {
	// Backfilled counts events recovered from the stream.
	Backfilled func(n int)
	// Channels and Recovering are changes to the number of subscribed
	// channels and of those held for recovery.
	Channels   func(delta float64)
	Recovering func(delta float64)
}

func (m Metrics) add(gauge func(float64), delta float64) {
	if gauge != nil {
		gauge(delta)
	}
}

// HubOption configures a Hub.
type HubOption func(*Hub)

// WithMetrics reports the hub's counters.
func WithMetrics(m Metrics) HubOption { return func(h *Hub) { h.metrics = m } }

// WithPendingLimit sets how many live messages may wait for the
// dispatcher before NATS drops them (which recovery then finds).
func WithPendingLimit(n int) HubOption {
	return func(h *Hub) { h.msgs = make(chan *nats.Msg, n) }
}

// WithLogger sets the hub's logger.
func WithLogger(l *zap.Logger) HubOption { return func(h *Hub) { h.log = l } }

// defaultPendingMsgs is how many live messages may wait for the
// dispatcher. The dispatcher never blocks, so this fills only under a
// burst; an overflow is itself detected and recovered.
const defaultPendingMsgs = 1 << 16

// NewHub starts a hub on conn for the given stream.
func NewHub(conn *Conn, stream replay.StreamConfig, history *replay.History, opts ...HubOption) *Hub {
	return newHub(conn, stream, history, history.Epoch(), opts...)
}

func newHub(conn *Conn, stream replay.StreamConfig, history reader, epoch string, opts ...HubOption) *Hub {
	h := &Hub{
		conn:    conn,
		stream:  stream.WithDefaults(),
		history: history,
		log:     zap.NewNop(),
		msgs:    make(chan *nats.Msg, defaultPendingMsgs),
		wake:    make(chan struct{}, 1),
		stopped: make(chan struct{}),
		topics:  make(map[string]*topic),
	}
	h.epoch.Store(&epoch)
	h.ctx, h.cancel = context.WithCancel(context.Background())
	for _, o := range opts {
		o(h)
	}
	h.warn = ratelog.New(1.0/60, 1)
	h.heads = &headReader{read: func() (replay.Head, error) {
		ctx, cancel := context.WithTimeout(h.ctx, requestTimeout)
		defer cancel()
		// While NATS is away, nats.go would hold the flush until the
		// timeout; the client is better told at once to come back.
		if !h.conn.NC.IsConnected() {
			return replay.Head{}, nats.ErrConnectionReconnecting
		}
		// Once the flush returns, the server has every SUB sent before
		// it; the head may then be asked on any connection.
		if err := h.conn.NC.FlushWithContext(ctx); err != nil {
			return replay.Head{}, err
		}
		return h.history.Head(ctx)
	}}
	// Core NATS delivers at most once: across a disconnect, or when a
	// subscription overflows, any channel may lose events. Holding every
	// channel from the disconnect on means no client sees a newer event
	// of one channel before a lost older one of another is recovered.
	h.unwatch = conn.Watch(&Watcher{
		Disconnected: func() { h.suspectAll() },
		Reconnected:  func() { h.suspectAll() },
		Dropped:      func(sub *nats.Subscription) { h.suspectSubject(sub.Subject) },
	})
	var workers sync.WaitGroup
	workers.Add(2)
	go func() { defer workers.Done(); h.dispatch() }()
	go func() { defer workers.Done(); h.recoverLoop() }()
	go func() { workers.Wait(); close(h.stopped) }()
	return h
}

// Timeouts of the hub's own requests, and the wait before a new channel's
// settle probe.
const (
	requestTimeout = 5 * time.Second
	settleDelay    = 2 * time.Second
	// readTimeout bounds one recovery read; past it, the clients it was
	// for resume by themselves instead.
	readTimeout = 10 * time.Second
)

// ErrClosed is returned by Attach on a closed hub.
var ErrClosed = errors.New("hub is closed")

// Attach subscribes a new client to the stream subjects. It returns once
// every subscription has a baseline, so any event stored after Attach
// returns reaches the client. A replaying client is held until its
// session calls EndReplay; any other starts at Start.
func (h *Hub) Attach(ctx context.Context, subjects []string, queueSize int, replaying bool) (*Client, error) {
	c := &Client{
		hub:       h,
		queue:     newFrameQueue(queueSize),
		done:      make(chan struct{}),
		holdCap:   max(4*queueSize, 1024),
		replaying: replaying,
	}
	topics, err := h.reserve(subjects)
	if err != nil {
		return nil, err
	}
	for _, t := range topics {
		select {
		case <-t.ready:
			err = cmpErr(err, t.err)
		case <-ctx.Done():
			err = cmpErr(err, ctx.Err())
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, t := range topics {
		t.attaching--
	}
	if err == nil && h.closed {
		err = ErrClosed
	}
	if err != nil {
		for _, t := range topics {
			h.dropIfUnusedLocked(t)
		}
		return nil, err
	}
	c.topics = topics
	for _, t := range topics {
		t.clients[c] = struct{}{}
		c.start = max(c.start, t.last)
		if t.suspect && t.holds(c) {
			c.suspect++
		}
		if t.inJob {
			// The worker chose its clients before this one came: it
			// must look again before it lets the topic go.
			t.gen++
		}
	}
	if !replaying {
		c.pos = c.start
	}
	return c, nil
}

func cmpErr(err, next error) error {
	if err != nil {
		return err
	}
	return next
}

// reserve finds or creates the topics of subjects, marking each as being
// attached to so that no detach removes it meanwhile.
func (h *Hub) reserve(subjects []string) ([]*topic, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrClosed
	}
	topics := make([]*topic, 0, len(subjects))
	for _, s := range subjects {
		t, err := h.topicLocked(s)
		if err != nil {
			for _, t := range topics {
				t.attaching--
				h.dropIfUnusedLocked(t)
			}
			return nil, err
		}
		t.attaching++
		topics = append(topics, t)
	}
	return topics, nil
}

// topicLocked returns the topic of subject, subscribing a new one.
func (h *Hub) topicLocked(subject string) (*topic, error) {
	live := h.stream.LiveSubject(subject)
	if t := h.topics[live]; t != nil {
		return t, nil
	}
	t := &topic{subject: subject, live: live, ready: make(chan struct{}), clients: make(map[*Client]struct{})}
	sub, err := h.conn.NC.ChanSubscribe(live, h.msgs)
	if err != nil {
		return nil, fmt.Errorf("subscribing %s: %w", live, err)
	}
	t.sub = sub
	h.topics[live] = t
	h.metrics.add(h.metrics.Channels, 1)
	// Preparing does not depend on the request that created the topic:
	// other clients share it, and it must finish even if this one leaves.
	go h.prepare(t)
	return t, nil
}

// prepare records the stream's head as the new topic's baseline: every
// event at or below it was stored before the subscription and is owed to
// no one who attaches without a position.
//
// In a cluster, the stream leader, which republishes, learns of the
// subscription a moment later over the routes, and an event republished in
// between is lost on the way. The next event on the channel reveals the
// gap; for a channel that stays quiet, the settle probe finds it.
func (h *Hub) prepare(t *topic) {
	head, err := h.heads.Read(h.ctx)
	h.mu.Lock()
	if err != nil {
		t.err = fmt.Errorf("subscribing %s: %w", t.live, err)
		h.removeLocked(t)
	} else {
		h.noteEpochLocked(head)
		t.last = max(t.last, head.LastSeq)
		t.isReady = true
		t.readyAt = time.Now()
		h.settleLocked(t)
	}
	h.mu.Unlock()
	close(t.ready)
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
		h.dropIfUnusedLocked(t)
	}
}

// dropIfUnusedLocked unsubscribes a topic nobody reads or waits for.
func (h *Hub) dropIfUnusedLocked(t *topic) {
	if len(t.clients) == 0 && t.attaching == 0 {
		h.removeLocked(t)
	}
}

func (h *Hub) removeLocked(t *topic) {
	if h.topics[t.live] != t {
		return
	}
	delete(h.topics, t.live)
	h.metrics.add(h.metrics.Channels, -1)
	if t.suspect {
		h.metrics.add(h.metrics.Recovering, -1)
	}
	if err := t.sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		h.log.Debug("unsubscribe", zap.String("subject", t.live), zap.Error(err))
	}
}

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
	if h.settleTimer != nil {
		h.settleTimer.Stop()
	}
	h.mu.Unlock()
	h.unwatch()
	h.cancel()
	<-h.stopped
}

// Recovering reports how many channels are held for recovery.
func (h *Hub) Recovering() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, t := range h.topics {
		if t.suspect {
			n++
		}
	}
	return n
}

// Settled reports whether no channel is held for recovery or waiting for
// its settle probe.
func (h *Hub) Settled() bool {
	h.mu.Lock()
	settling := len(h.settling)
	h.mu.Unlock()
	return settling == 0 && h.Recovering() == 0
}

// Channels reports how many channels have a subscription.
func (h *Hub) Channels() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.topics)
}

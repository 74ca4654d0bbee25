package upstream

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/ssegate/ssegate/replay"
)

// Hub subscribes once per channel and fans every event out to the local
// clients of that channel.
//
// All subscriptions feed one Go channel read by one dispatcher goroutine.
// nats.go would otherwise run each subscription in its own goroutine, and
// a client of several channels would see their events out of stream order,
// which would make its single Last-Event-ID position wrong.
type Hub struct {
	conn    *Conn
	stream  replay.StreamConfig
	history *replay.History
	log     *zap.Logger
	metrics Metrics

	msgs    chan *nats.Msg
	resync  chan struct{}
	checks  chan *topic
	stopped chan struct{}
	unwatch func()
	// awaiting is set while a goroutine waits for JetStream to answer.
	awaiting atomic.Bool
	// suspect is set when messages may have been lost on any channel.
	suspect atomic.Bool
	// ctx bounds all of the hub's own NATS requests; Close cancels it, so
	// a request hanging during a failover cannot hold up a shutdown.
	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex
	topics map[string]*topic // by live subject
	maxSeq uint64
	closed bool
}

type topic struct {
	subject string // stream subject
	live    string
	sub     *nats.Subscription
	ready   chan struct{}
	err     error // set before ready is closed
	clients map[*Client]struct{}
	// last is the last sequence dispatched; baseline, the newest sequence
	// the stream held on this subject when the subscription started.
	// Together they let a republished message's Nats-Last-Sequence reveal
	// a message that core NATS lost on the way. Until one of them is known
	// there is nothing to compare with: a gap then would mean the whole
	// history of the channel.
	last        uint64
	baseline    uint64
	hasBaseline bool
}

// position is the newest sequence known delivered or known to predate the
// subscription, and whether there is one.
func (t *topic) position() (uint64, bool) {
	return max(t.last, t.baseline), t.last > 0 || t.hasBaseline
}

// Metrics receives the hub's counters. Nil fields are skipped.
type Metrics struct {
	SlowClient func()
	Backfilled func(n int)
}

func (m Metrics) slow() {
	if m.SlowClient != nil {
		m.SlowClient()
	}
}

// HubOption configures a Hub.
type HubOption func(*Hub)

// WithMetrics reports the hub's counters.
func WithMetrics(m Metrics) HubOption { return func(h *Hub) { h.metrics = m } }

// WithPendingLimit sets how many live messages may wait for the
// dispatcher before NATS drops them (which a resync then recovers).
func WithPendingLimit(n int) HubOption {
	return func(h *Hub) { h.msgs = make(chan *nats.Msg, n) }
}

// WithLogger sets the hub's logger.
func WithLogger(l *zap.Logger) HubOption { return func(h *Hub) { h.log = l } }

// defaultPendingMsgs is how many live messages may wait for the
// dispatcher. The dispatcher never blocks on clients, so this only fills
// while it backfills a gap; an overflow is itself detected and backfilled.
const defaultPendingMsgs = 1 << 16

// NewHub starts a hub on conn for the given stream.
func NewHub(conn *Conn, stream replay.StreamConfig, history *replay.History, opts ...HubOption) *Hub {
	h := &Hub{
		conn:    conn,
		stream:  stream.WithDefaults(),
		history: history,
		log:     zap.NewNop(),
		msgs:    make(chan *nats.Msg, defaultPendingMsgs),
		resync:  make(chan struct{}, 1),
		checks:  make(chan *topic, 256),
		stopped: make(chan struct{}),
		topics:  make(map[string]*topic),
	}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	for _, o := range opts {
		o(h)
	}
	// After a disconnect or a drop, any channel may have missed events,
	// and they must be recovered across all channels in stream order
	// before anything newer is delivered: the first live message handled
	// afterwards triggers that, and for channels that stay quiet, a resync
	// runs once JetStream answers.
	h.unwatch = conn.Watch(&Watcher{
		Disconnected: func() { h.suspect.Store(true) },
		Reconnected: func() {
			h.suspect.Store(true)
			go h.resyncWhenJetStreamAnswers()
		},
		Dropped: func(*nats.Subscription) {
			h.suspect.Store(true)
			h.requestResync()
		},
	})
	go h.dispatch()
	return h
}

// ErrClosed is returned by Attach on a closed hub.
var ErrClosed = errors.New("hub is closed")

// Attach subscribes a new client to the stream subjects. When replaying is
// true the client starts in replay mode: live events queue up, and a queue
// overflow is remembered instead of ending the stream (see EndReplay).
// Attach returns once every subscription is known to the server, so any
// event stored after it returns will reach the client live.
func (h *Hub) Attach(ctx context.Context, subjects []string, queueSize int, replaying bool) (*Client, error) {
	c := &Client{
		hub:       h,
		queue:     make(chan Frame, queueSize),
		done:      make(chan struct{}),
		replaying: replaying,
	}
	var created []*topic
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, ErrClosed
	}
	for _, s := range subjects {
		live := h.stream.LiveSubject(s)
		t := h.topics[live]
		if t == nil {
			t = &topic{subject: s, live: live, ready: make(chan struct{}), clients: make(map[*Client]struct{})}
			sub, err := h.conn.NC.ChanSubscribe(live, h.msgs)
			if err != nil {
				h.mu.Unlock()
				c.Detach()
				return nil, fmt.Errorf("subscribing %s: %w", live, err)
			}
			t.sub = sub
			h.topics[live] = t
			created = append(created, t)
		}
		t.clients[c] = struct{}{}
		c.topics = append(c.topics, t)
	}
	h.mu.Unlock()

	// Preparing does not depend on the request that happened to create
	// the subscription: other clients share it, and it must finish even
	// if this one leaves.
	for _, t := range created {
		go h.prepare(t)
	}
	for _, t := range c.topics {
		select {
		case <-t.ready:
			if t.err != nil {
				c.Detach()
				return nil, t.err
			}
		case <-ctx.Done():
			c.Detach()
			return nil, ctx.Err()
		}
	}
	return c, nil
}

// prepare makes sure the server has the subscription, then records the
// subject's newest stored sequence as the gap-detection baseline.
//
// In a cluster, the flush only proves that the gateway's own server has
// the subscription; the stream leader, which republishes, learns of it a
// moment later over the routes. An event republished in between is lost
// on the way. The next event on the channel reveals the gap, and for a
// channel that stays quiet, a check after settleDelay finds it.
func (h *Hub) prepare(t *topic) {
	defer close(t.ready)
	ctx, cancel := context.WithTimeout(h.ctx, requestTimeout)
	defer cancel()
	if err := h.conn.NC.FlushWithContext(ctx); err != nil {
		t.err = fmt.Errorf("subscribing %s: %w", t.live, err)
		return
	}
	baseline, err := h.lastSeq(ctx, t.subject)
	if err != nil {
		// Gap detection starts with the first live message instead.
		h.log.Debug("no baseline for channel", zap.String("subject", t.subject), zap.Error(err))
		return
	}
	h.mu.Lock()
	t.baseline = max(t.baseline, baseline)
	t.hasBaseline = true
	h.mu.Unlock()
	time.AfterFunc(settleDelay, func() {
		select {
		case h.checks <- t:
		default: // the dispatcher is busy or gone; the next event checks
		}
	})
}

// Timeouts of the hub's own requests, and the wait before a new channel's
// quiet-channel check.
const (
	requestTimeout = 5 * time.Second
	settleDelay    = 2 * time.Second
	// backfillTimeout bounds how long live delivery waits for a backfill;
	// past it, the affected clients resume by themselves instead.
	backfillTimeout = 10 * time.Second
)

// lastSeq is the sequence of the newest stored message on subject, 0 if
// there is none.
func (h *Hub) lastSeq(ctx context.Context, subject string) (uint64, error) {
	stream, err := h.conn.JS.Stream(ctx, h.stream.Name)
	if err != nil {
		return 0, err
	}
	last, err := stream.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return last.Sequence, nil
}

// check backfills a channel whose newest stored event was not delivered.
func (h *Hub) check(t *topic) {
	h.mu.Lock()
	pos, ok := t.position()
	current := h.topics[t.live] == t
	h.mu.Unlock()
	if !ok || !current {
		return
	}
	ctx, cancel := context.WithTimeout(h.ctx, requestTimeout)
	last, err := h.lastSeq(ctx, t.subject)
	cancel()
	if err == nil && last > pos {
		h.backfill(map[*topic]uint64{t: pos})
	}
}

func (h *Hub) detach(c *Client) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c.mu.Lock()
	if c.detached {
		c.mu.Unlock()
		return
	}
	c.detached = true
	c.mu.Unlock()
	for _, t := range c.topics {
		delete(t.clients, c)
		if len(t.clients) == 0 && h.topics[t.live] == t {
			delete(h.topics, t.live)
			if err := t.sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
				h.log.Debug("unsubscribe", zap.String("subject", t.live), zap.Error(err))
			}
		}
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
		for c := range t.clients {
			c.End(ReasonShutdown, 0)
		}
	}
	h.mu.Unlock()
	h.unwatch()
	h.cancel()
	<-h.stopped
}

// Channels reports how many channels have a subscription.
func (h *Hub) Channels() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.topics)
}

// resyncWhenJetStreamAnswers waits, off the dispatcher, until JetStream
// answers again, then asks for a resync. After a failover the stream has
// no leader for a moment, and a request sent then may go unanswered until
// its timeout, holding up live delivery for nothing: nothing new is stored
// without a leader either.
func (h *Hub) resyncWhenJetStreamAnswers() {
	if !h.awaiting.CompareAndSwap(false, true) {
		return
	}
	defer h.awaiting.Store(false)
	wait := 100 * time.Millisecond
	for {
		ctx, cancel := context.WithTimeout(h.ctx, time.Second)
		_, err := h.conn.JS.Stream(ctx, h.stream.Name)
		cancel()
		if err == nil {
			h.requestResync()
			return
		}
		select {
		case <-time.After(wait):
		case <-h.ctx.Done():
			return
		}
		wait = min(2*wait, 2*time.Second)
	}
}

func (h *Hub) requestResync() {
	select {
	case h.resync <- struct{}{}:
	default:
	}
}

func (h *Hub) dispatch() {
	defer close(h.stopped)
	for {
		select {
		case m := <-h.msgs:
			h.handle(m)
		case <-h.resync:
			h.resyncAll()
		case t := <-h.checks:
			h.check(t)
		case <-h.ctx.Done():
			return
		}
	}
}

func (h *Hub) handle(m *nats.Msg) {
	if h.suspect.Load() {
		// A message arrived, so JetStream is up: recover everything
		// missed, in order, before this one.
		h.resyncAll()
	}
	seq, err := strconv.ParseUint(m.Header.Get(jetstream.SequenceHeader), 10, 64)
	if err != nil {
		h.log.Warn("live message without a stream sequence; is the stream's republish rule ours?", zap.String("subject", m.Subject))
		return
	}
	prev, _ := strconv.ParseUint(m.Header.Get("Nats-Last-Sequence"), 10, 64)
	msg := replay.Msg{Seq: seq, Subject: m.Header.Get(jetstream.SubjectHeader), Header: m.Header, Data: m.Data}

	h.mu.Lock()
	t := h.topics[m.Subject]
	if t == nil || seq <= t.last {
		h.mu.Unlock()
		return
	}
	if known, ok := t.position(); ok && prev > known {
		h.mu.Unlock()
		h.backfill(map[*topic]uint64{t: known})
		h.mu.Lock()
	}
	h.deliverLocked(msg)
	h.mu.Unlock()
}

// resyncAll backfills every channel after a reconnect or a reported drop:
// core NATS delivers at most once, and either can lose messages.
func (h *Hub) resyncAll() {
	h.suspect.Store(false)
	h.mu.Lock()
	from := make(map[*topic]uint64, len(h.topics))
	for _, t := range h.topics {
		if seq, ok := t.position(); ok {
			from[t] = seq
		}
	}
	h.mu.Unlock()
	if len(from) > 0 {
		h.backfill(from)
	}
}

// backfill reads the missing events of the given topics from the stream, in
// stream order, and delivers those not yet delivered.
func (h *Hub) backfill(from map[*topic]uint64) {
	subjects := make([]string, 0, len(from))
	var after uint64
	first := true
	for t, seq := range from {
		subjects = append(subjects, t.subject)
		if first || seq < after {
			after, first = seq, false
		}
	}
	ctx, cancel := context.WithTimeout(h.ctx, backfillTimeout)
	defer cancel()
	n := 0
	err := h.history.Backfill(ctx, subjects, after, func(m replay.Msg) error {
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.deliverLocked(m) {
			n++
		}
		return nil
	})
	if n > 0 && h.metrics.Backfilled != nil {
		h.metrics.Backfilled(n)
	}
	if err == nil {
		return
	}
	// The events are in the stream but out of reach now. Each client has
	// every event of these channels up to the position the backfill
	// started from (or its own, if lower), so it resumes from there.
	h.log.Warn("backfill failed; clients of the affected channels will resume from their position", zap.Strings("subjects", subjects), zap.Error(err))
	h.mu.Lock()
	defer h.mu.Unlock()
	for t, pos := range from {
		for c := range t.clients {
			c.End(ReasonResync, pos)
		}
	}
}

// deliverLocked fans m out to its topic's clients unless it was delivered
// already. h.mu must be held.
func (h *Hub) deliverLocked(m replay.Msg) bool {
	t := h.topics[h.stream.LiveSubject(m.Subject)]
	if t == nil || m.Seq <= t.last {
		return false
	}
	f := Frame{
		Seq:  m.Seq,
		Data: replay.Encode(nil, m, h.history.Epoch()),
		Late: m.Seq < h.maxSeq,
	}
	for c := range t.clients {
		c.push(f)
	}
	t.last = m.Seq
	h.maxSeq = max(h.maxSeq, m.Seq)
	return true
}

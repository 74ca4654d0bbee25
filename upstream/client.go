package upstream

import (
	"sync"
	"sync/atomic"
)

// Frame is one encoded event on its way to a client. Data is shared by all
// clients of the event and must not be modified.
type Frame struct {
	Seq  uint64
	Data []byte
	// Stored is when JetStream stored a live event, in Unix nanoseconds;
	// 0 for events read back from the stream.
	Stored int64
}

// Reason says why the hub ended a client's stream. Whatever the reason,
// the frames a client was given form an unbroken run of its channels'
// events in stream order, so it resumes from the last one it wrote.
type Reason int

const (
	// ReasonNone: the stream has not been ended by the hub.
	ReasonNone Reason = iota
	// ReasonSlow: the client's queue or hold buffer overflowed.
	ReasonSlow
	// ReasonShutdown: the hub is closing (config reload or shutdown).
	ReasonShutdown
	// ReasonResync: the stream removed events before the hub could read
	// them back; the client resumes from its position, where the replay
	// tells it what it cannot have.
	ReasonResync
	// ReasonRecreated: the stream was deleted and created again, so the
	// client's position means nothing any more.
	ReasonRecreated
)

func (r Reason) String() string {
	switch r {
	case ReasonSlow:
		return "slow"
	case ReasonShutdown:
		return "shutdown"
	case ReasonResync:
		return "resync"
	case ReasonRecreated:
		return "stream_recreated"
	}
	return "none"
}

// Client is one stream's attachment to the hub's channels.
//
// The hub keeps one promise per client: the frames it queues are the
// client's channels' events after its position, in stream order, with
// none missing. While its session is still reading history, the client is
// held: live frames wait in a bounded buffer and are released in order
// afterwards.
type Client struct {
	hub    *Hub
	topics []*topic
	queue  frameQueue
	done   chan struct{}
	// ended is reason != ReasonNone, readable without a lock.
	ended atomic.Bool

	// Guarded by hub.mu.
	pos uint64 // every owed event up to pos has been queued
	// start is the hub's position when the client attached, or when its
	// hold buffer last overflowed: where a client without a position
	// starts, and what a replaying client's read must pass.
	start     uint64
	held      []Frame // live frames waiting for the replay to end
	holdCap   int
	replaying bool // the session is reading the client's history
	redo      bool // held frames were dropped: the session reads again
	detached  bool

	mu     sync.Mutex
	reason Reason
}

// Ready gets a token when frames start to wait. Whoever receives it must
// Take until Take reports that no more are waiting: frames queued
// meanwhile send no token of their own.
func (c *Client) Ready() <-chan struct{} { return c.queue.ready }

// Take moves up to max waiting frames, in stream order, onto dst, and
// reports whether more are waiting.
func (c *Client) Take(dst []Frame, max int) ([]Frame, bool) { return c.queue.take(dst, max) }

// Done is closed when the hub ends the stream; Reason says why.
func (c *Client) Done() <-chan struct{} { return c.done }

// Start is the hub's position when the client attached. A client without
// a position gets every event of its channels after it, and none before.
// A replaying client's read must pass it (replay.History.Read's through):
// the hub queues every event after it.
func (c *Client) Start() uint64 {
	c.hub.mu.Lock()
	defer c.hub.mu.Unlock()
	return c.start
}

// Epoch is the epoch of the stream the client's positions belong to.
func (c *Client) Epoch() string { return c.hub.Epoch() }

// Reason says why Done was closed.
func (c *Client) Reason() Reason {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reason
}

// EndReplay hands a replaying client over to live delivery once the
// session has written every event up to pos, and read the stream past
// Start. It reports false, and the client stays in replay mode, when its
// hold buffer overflowed meanwhile: the session must then read again from
// pos, past the new Start.
func (c *Client) EndReplay(pos uint64) bool {
	h := c.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	c.pos = max(c.pos, pos)
	if c.redo {
		// What is held came after the overflow, past the new Start:
		// it stays for the read that goes past Start.
		c.redo = false
		return false
	}

	c.replaying = false
	for _, f := range c.held {
		if f.Seq > c.pos {
			c.queueLocked(f)
		}
	}
	c.held = nil
	return true
}

// End ends the stream for reason. Only the first reason counts.
func (c *Client) End(reason Reason) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.reason != ReasonNone {
		return
	}
	c.reason = reason
	c.ended.Store(true)
	close(c.done)
}

// Detach removes the client from its channels; the last client of a
// channel unsubscribes it. It is safe to call more than once.
func (c *Client) Detach() { c.hub.detach(c) }

// offerLocked gives the client a frame of one of its channels, in stream
// order. hub.mu must be held.
func (c *Client) offerLocked(f Frame) {
	if f.Seq <= c.pos || c.ended.Load() {
		return
	}
	if !c.replaying {
		c.queueLocked(f)
		return
	}
	if len(c.held) < c.holdCap {
		c.held = append(c.held, f)
		return
	}
	// The session reads again, past this frame: the frames are in the
	// stream.
	c.redo = true
	c.start = f.Seq
	clear(c.held)
	c.held = c.held[:0]
}

// queueLocked hands a frame to the writer without ever blocking. A frame
// that does not fit ends the stream, and nothing is queued after it, so
// the client never sees a gap.
func (c *Client) queueLocked(f Frame) {
	if c.ended.Load() {
		return
	}
	if c.queue.push(f) {
		c.pos = f.Seq
		return
	}
	c.slow()
}

func (c *Client) slow() { c.End(ReasonSlow) }

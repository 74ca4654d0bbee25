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
	// Late marks an event that was backfilled after a gap, so newer events
	// on other channels may already have been delivered before it.
	Late bool
}

// Reason says why the hub ended a client's stream.
type Reason int

const (
	// ReasonNone: the stream has not been ended by the hub.
	ReasonNone Reason = iota
	// ReasonSlow: the client's queue overflowed.
	ReasonSlow
	// ReasonShutdown: the hub is closing (config reload or shutdown).
	ReasonShutdown
	// ReasonResync: events could not be delivered in order, or could not
	// be recovered; the client must resume from the rewind position (or
	// from its own last event, if that is lower).
	ReasonResync
)

func (r Reason) String() string {
	switch r {
	case ReasonSlow:
		return "slow"
	case ReasonShutdown:
		return "shutdown"
	case ReasonResync:
		return "resync"
	}
	return "none"
}

// Client is one stream's attachment to the hub's channels.
type Client struct {
	hub    *Hub
	topics []*topic
	queue  chan Frame
	done   chan struct{}

	// ended is reason != ReasonNone, readable without the lock on the
	// dispatcher's hot path.
	ended atomic.Bool

	mu         sync.Mutex
	reason     Reason
	rewind     uint64
	replaying  bool
	overflowed bool
	detached   bool
}

// Frames delivers live events in stream order.
func (c *Client) Frames() <-chan Frame { return c.queue }

// Done is closed when the hub ends the stream; Reason says why.
func (c *Client) Done() <-chan struct{} { return c.done }

// Reason says why Done was closed, and for ReasonResync the position the
// client has everything up to.
func (c *Client) Reason() (Reason, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reason, c.rewind
}

// EndReplay leaves replay mode. It reports false, and stays in replay mode,
// when live events were dropped meanwhile for lack of queue space: the
// caller must then replay again from its last position, because those
// events are only in the stream now.
func (c *Client) EndReplay() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.overflowed {
		c.overflowed = false
		return false
	}
	c.replaying = false
	return true
}

// End ends the stream for reason. Only the first reason counts.
func (c *Client) End(reason Reason, rewind uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.endLocked(reason, rewind)
}

func (c *Client) endLocked(reason Reason, rewind uint64) {
	if c.reason != ReasonNone {
		return
	}
	c.reason, c.rewind = reason, rewind
	c.ended.Store(true)
	close(c.done)
}

// push hands a frame to the client without ever blocking the dispatcher.
// Once a frame has been dropped, no later frame may be queued: the client
// would otherwise see a gap and resume past the missing event.
func (c *Client) push(f Frame) {
	if c.ended.Load() {
		return
	}
	select {
	case c.queue <- f:
		return
	default:
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.replaying {
		c.overflowed = true
		return
	}
	if c.reason == ReasonNone {
		c.hub.metrics.slow()
	}
	c.endLocked(ReasonSlow, 0)
}

// Detach removes the client from its channels; the last client of a
// channel unsubscribes it. It is safe to call more than once.
func (c *Client) Detach() {
	c.hub.detach(c)
}

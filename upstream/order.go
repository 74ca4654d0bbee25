package upstream

import (
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"

	"github.com/ssegate/ssegate/replay"
)

// The order of the stream, in one place.
//
// The hub dispatches stream messages strictly by sequence: pos is the last
// one dispatched, and the next one must be pos+1. A live message that
// comes next is dispatched at once. One that jumps ahead reveals that core
// NATS lost what lies between, on this connection: the hub then follows
// the stream itself from pos+1 (a read), and the live messages that keep
// arriving wait, by sequence, in a bounded list. Read messages are
// dispatched as they come. As soon as the first waiting message is the
// next one, live delivery takes over again and the read stops. A waiting
// list that overflows is dropped: the read brings those messages too.
//
// A live message at or below pos was dispatched already (a read brought it
// first, or the server sent it twice) and is dropped. One that never
// comes, with nothing after it, is found by the idle check: while no
// message arrives, the hub asks the stream's head every idleCheck, and a
// head past pos starts a read.
//
// Nothing here waits on the network or on a client. The hub asks for
// reads and head checks through effects, and their results come back to
// the dispatcher as results.
type order struct {
	// pos is the last sequence dispatched; based is set once the first
	// head check has given it a value.
	pos   uint64
	based bool
	// reading is the generation of the read in progress, 0 for none.
	// Results of an older read are ignored. target is the newest sequence
	// known to exist since the read started: once the read has passed it
	// and nothing waits, the read stops.
	reading, gen, target uint64
	waiting              []pending
	// lastSeen is when a message last came, live or read, and lastLive
	// when one came live; headAsked is when the head was last asked, and
	// asking is set while it is.
	lastSeen, lastLive, headAsked time.Time
	asking                        bool
}

// pending is a live message waiting for the read to reach it.
type pending struct {
	seq     uint64
	subject string
	msg     *nats.Msg
}

// effects is how the hub's order reaches the network: follow starts
// reading the stream after a position, for the read of generation gen;
// unfollow stops it; askHead checks the stream's head.
type effects interface {
	follow(gen, after uint64)
	unfollow(gen uint64)
	askHead()
}

// result is what a read or a head check hands back to the dispatcher.
type result struct {
	gen  uint64 // the read a message belongs to; 0 for a head check
	msg  replay.Msg
	head replay.Head
	err  error
	// epochOnly marks a read's own check of the stream's epoch: its head
	// says nothing of the hub's position or of its head check.
	epochOnly bool
}

// Tuning of the order.
const (
	// maxWaiting bounds the live messages that wait during a read.
	maxWaiting = 1 << 14
	// idleCheck is how long the hub waits without any message before it
	// asks the stream's head, and how often it asks while it stays quiet.
	idleCheck = time.Second
	// resultBuffer is how many read messages may be on their way to the
	// dispatcher.
	resultBuffer = 256
)

func (o *order) waitGauge() float64 {
	if o.reading != 0 {
		return 1
	}
	return 0
}

// liveLocked takes one live message, already checked (see positions).
func (h *Hub) liveLocked(p pending, now time.Time) {
	o := &h.order
	o.lastSeen, o.lastLive = now, now
	switch {
	case o.based && p.seq <= o.pos:
		// Dispatched already; or the stream was recreated and its
		// sequences started again, which a head check tells.
		h.askEpochLocked(now)
	case o.based && o.reading == 0 && p.seq == o.pos+1:
		h.dispatchLocked(p.seq, p.subject, func() Frame { return h.liveFrame(p) })
	default:
		o.target = max(o.target, p.seq)
		h.waitLocked(p)
		h.catchUpLocked()
	}
}

// waitLocked keeps p, in sequence order, until the hub reaches it.
func (h *Hub) waitLocked(p pending) {
	o := &h.order
	i, found := slices.BinarySearchFunc(o.waiting, p.seq, func(w pending, seq uint64) int {
		return cmpUint(w.seq, seq)
	})
	if found {
		return
	}
	if len(o.waiting) >= maxWaiting {
		// The read brings these too; dropping them bounds the memory.
		clear(o.waiting)
		o.waiting = o.waiting[:0]
		i = 0
	}
	o.waiting = slices.Insert(o.waiting, i, p)
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// readLocked takes one message of the read of generation gen.
func (h *Hub) readLocked(gen uint64, m replay.Msg, now time.Time) {
	o := &h.order
	if gen != o.reading || m.Seq <= o.pos {
		return
	}
	o.lastSeen = now
	if m.Seq > o.pos+1 {
		// The stream no longer holds what lies between: removed by its
		// limits before the hub could read it.
		h.removedLocked(o.pos+1, m.Seq-1)
	}
	if h.dispatchLocked(m.Seq, m.Subject, func() Frame { return h.readFrame(m) }) && h.metrics.Backfilled != nil {
		h.metrics.Backfilled(1)
	}
	h.catchUpLocked()
}

// catchUpLocked dispatches the waiting messages that follow on from pos,
// and decides whether a read is needed: it stops the one in progress when
// live delivery can go on, and starts one when a waiting message is
// beyond the next.
func (h *Hub) catchUpLocked() {
	o := &h.order
	if !o.based {
		return
	}
	n := 0
	for ; n < len(o.waiting); n++ {
		p := o.waiting[n]
		if p.seq > o.pos+1 {
			break
		}
		if p.seq == o.pos+1 {
			// Live delivery goes on, or takes over from the read.
			h.stopReadLocked()
			h.dispatchLocked(p.seq, p.subject, func() Frame { return h.liveFrame(p) })
		}
	}
	clear(o.waiting[:n])
	o.waiting = append(o.waiting[:0], o.waiting[n:]...)
	if len(o.waiting) > 0 && o.reading == 0 {
		h.startReadLocked()
	}
}

// startReadLocked follows the stream from pos+1 until live delivery can
// take over again.
func (h *Hub) startReadLocked() {
	o := &h.order
	o.gen++
	o.reading = o.gen
	h.metrics.add(h.metrics.Recovering, float64(len(h.topics)))
	h.io.follow(o.reading, o.pos)
}

func (h *Hub) stopReadLocked() {
	o := &h.order
	if o.reading == 0 {
		return
	}
	h.io.unfollow(o.reading)
	o.reading = 0
	h.metrics.add(h.metrics.Recovering, -float64(len(h.topics)))
}

// dispatchLocked moves pos to seq and offers the event to the clients of
// its channel. The frame is built once, and only when a client wants it.
// It reports whether any client was offered the event.
func (h *Hub) dispatchLocked(seq uint64, subject string, frame func() Frame) bool {
	h.order.pos = seq
	t := h.topics[subject]
	if t == nil || len(t.clients) == 0 {
		return false
	}
	f := frame()
	for c := range t.clients {
		c.offerLocked(f)
	}
	return true
}

// removedLocked handles messages the stream removed (by max_age,
// max_bytes or max_msgs_per_subject) before the hub could read them back.
// Their channels are not known, so every client ends and resumes from its
// own position, where Resolve tells it what it cannot have.
func (h *Hub) removedLocked(from, to uint64) {
	h.log.Warn("events were removed from the stream before they could be read back; every stream resumes from its position",
		zap.Uint64("from", from), zap.Uint64("to", to))
	h.endAllLocked(ReasonResync)
}

func (h *Hub) endAllLocked(reason Reason) {
	for _, t := range h.topics {
		for c := range t.clients {
			c.End(reason)
		}
	}
}

// headLocked takes a head check's answer: the first gives the hub its
// position; later ones find a loss after which nothing arrived, or a
// stream that was recreated.
func (h *Hub) headLocked(head replay.Head, err error, now time.Time) {
	o := &h.order
	o.asking = false
	if err != nil {
		return
	}
	h.noteEpochLocked(head)
	switch {
	case !o.based:
		o.pos, o.based = head.LastSeq, true
		close(h.ready)
		h.catchUpLocked()
	case head.LastSeq > o.pos && o.reading == 0 && now.Sub(o.lastSeen) >= idleCheck/2:
		// Nothing came for a while, yet the stream moved on.
		o.target = head.LastSeq
		h.startReadLocked()
	}
}

// tickLocked asks the stream's head when the hub has no position yet, or
// when no message came for idleCheck.
func (h *Hub) tickLocked(now time.Time, force bool) {
	o := &h.order
	if o.reading != 0 && len(o.waiting) == 0 && o.pos >= o.target && now.Sub(o.lastLive) >= idleCheck {
		// The read has passed all the stream was known to hold, and no
		// live message came for a while to take over from it: it stops,
		// and a later loss shows as before. Under a steady flow, live
		// delivery takes over long before; stopping a read as soon as it
		// is level would only start another at the next drop.
		h.stopReadLocked()
	}
	if o.asking || o.reading != 0 {
		return
	}
	quiet := now.Sub(o.lastSeen) >= idleCheck && now.Sub(o.headAsked) >= idleCheck
	if force || !o.based || quiet {
		o.asking, o.headAsked = true, now
		h.io.askHead()
	}
}

// askEpochLocked has the hub check, at most once a second, whether the
// stream was recreated.
func (h *Hub) askEpochLocked(now time.Time) {
	if now.Sub(h.order.headAsked) >= idleCheck {
		h.tickLocked(now, true)
	}
}

// noteEpochLocked handles a stream that was deleted and created again: its
// sequences started again at 1, so every client's position is void.
// Clients are ended with ReasonRecreated and resume from the start of the
// new stream; the hub goes on from its head.
func (h *Hub) noteEpochLocked(head replay.Head) {
	if head.Epoch == "" || head.Epoch == *h.epoch.Load() {
		return
	}
	h.log.Warn("stream was recreated; ending every stream so that clients start again from its beginning",
		zap.String("stream", h.stream.Name), zap.String("epoch", head.Epoch))
	epoch := head.Epoch
	h.epoch.Store(&epoch)
	h.endAllLocked(ReasonRecreated)
	h.stopReadLocked()
	clear(h.order.waiting)
	h.order.waiting = h.order.waiting[:0]
	h.order.pos = head.LastSeq
}

package upstream

import (
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/ssegate/ssegate/replay"
)

// run is the dispatcher: the one goroutine that orders the stream.
func (h *Hub) run() {
	defer close(h.stopped)
	tick := time.NewTicker(idleCheck / 4)
	defer tick.Stop()
	h.mu.Lock()
	h.tickLocked(time.Now(), true)
	h.mu.Unlock()
	for {
		select {
		case m := <-h.msgs:
			h.handle(m)
		case r := <-h.results:
			h.mu.Lock()
			h.resultLocked(r, time.Now())
			h.mu.Unlock()
		case <-tick.C:
			h.mu.Lock()
			h.tickLocked(time.Now(), false)
			h.mu.Unlock()
		case <-h.poke:
			h.mu.Lock()
			h.tickLocked(time.Now(), true)
			h.mu.Unlock()
		case <-h.ctx.Done():
			h.mu.Lock()
			h.stopReadLocked()
			h.mu.Unlock()
			return
		}
	}
}

func (h *Hub) resultLocked(r result, now time.Time) {
	switch {
	case r.epochOnly:
		h.noteEpochLocked(r.head)
	case r.gen != 0:
		h.readLocked(r.gen, r.msg, now)
	default:
		h.headLocked(r.head, r.err, now)
	}
}

// kick asks for a head check at once: NATS reconnected, or dropped
// messages of the hub's subscription.
func (h *Hub) kick() {
	select {
	case h.poke <- struct{}{}:
	default:
	}
}

// handle takes one live message. It never waits on the network.
func (h *Hub) handle(m *nats.Msg) {
	p, ok := h.check(m)
	if !ok {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.liveLocked(p, time.Now())
}

// check reads a live message's channel and position. The channel is the
// subject the message arrived on, never a header.
func (h *Hub) check(m *nats.Msg) (pending, bool) {
	subject, ok := strings.CutPrefix(m.Subject, h.stream.RepublishPrefix+".")
	if !ok {
		return pending{}, false
	}
	seq, problem := position(m.Header, h.stream.Name, subject)
	if problem != "" {
		if ok, n := h.warn.Allow(); ok {
			h.log.Warn("live message ignored: "+problem+"; only the stream may publish under the republish prefix",
				zap.String("subject", m.Subject), zap.Int64("suppressed_before", n))
		}
		return pending{}, false
	}
	return pending{seq: seq, subject: subject, msg: m}, true
}

// position reads a republished message's stream sequence. nats-server
// appends its own Nats-* headers after any the publisher set, so the last
// value of each is the server's; a publisher's forged values come first
// and are ignored. Stream and subject must agree with where the message
// arrived, and the previous sequence on the subject must be below it.
func position(hdr nats.Header, stream, subject string) (seq uint64, problem string) {
	if last(hdr, jetstream.StreamHeader) != stream {
		return 0, "not republished by stream " + stream
	}
	if last(hdr, jetstream.SubjectHeader) != subject {
		return 0, "Nats-Subject does not match the subject it arrived on"
	}
	seq, err := strconv.ParseUint(last(hdr, jetstream.SequenceHeader), 10, 64)
	if err != nil || seq == 0 {
		return 0, "no valid Nats-Sequence"
	}
	prev, err := strconv.ParseUint(last(hdr, "Nats-Last-Sequence"), 10, 64)
	if err != nil || prev >= seq {
		return 0, "no valid Nats-Last-Sequence"
	}
	return seq, ""
}

// last is the last value of a header, as the server appended it.
func last(hdr nats.Header, key string) string {
	v := hdr[key]
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

// liveFrame encodes a live message, with when JetStream stored it.
func (h *Hub) liveFrame(p pending) Frame {
	m := p.msg
	f := Frame{Seq: p.seq, Data: replay.Encode(nil, replay.Msg{Seq: p.seq, Subject: p.subject, Header: m.Header, Data: m.Data}, *h.epoch.Load())}
	if ts, err := time.Parse(time.RFC3339Nano, last(m.Header, "Nats-Time-Stamp")); err == nil {
		f.Stored = ts.UnixNano()
	}
	return f
}

// readFrame encodes a message read back from the stream.
func (h *Hub) readFrame(m replay.Msg) Frame {
	return Frame{Seq: m.Seq, Data: replay.Encode(nil, m, *h.epoch.Load())}
}

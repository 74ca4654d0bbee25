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

func (h *Hub) dispatch() {
	for {
		select {
		case m := <-h.msgs:
			h.handle(m)
		case <-h.ctx.Done():
			return
		}
	}
}

// handle fans one live message out. It never waits on the network.
func (h *Hub) handle(m *nats.Msg) {
	subject, ok := strings.CutPrefix(m.Subject, h.stream.RepublishPrefix+".")
	if !ok {
		return
	}
	seq, prev, err := positions(m.Header, h.stream.Name, subject)
	if err != "" {
		if ok, n := h.warn.Allow(); ok {
			h.log.Warn("live message ignored: "+err+"; only the stream may publish under the republish prefix",
				zap.String("subject", m.Subject), zap.Int64("suppressed_before", n))
		}
		return
	}
	// The channel is the subject the message arrived on, never a header.
	f := Frame{Seq: seq, Data: replay.Encode(nil, replay.Msg{Seq: seq, Subject: subject, Header: m.Header, Data: m.Data}, *h.epoch.Load())}
	if ts, err := time.Parse(time.RFC3339Nano, last(m.Header, "Nats-Time-Stamp")); err == nil {
		f.Stored = ts.UnixNano()
	}

	h.mu.Lock()
	defer h.mu.Unlock()
	t := h.topics[m.Subject]
	switch {
	case t == nil:
		return
	case !t.isReady:
		// No one is attached yet; the baseline will cover it.
		t.last = max(t.last, seq)
		return
	case seq <= t.last:
		// Delivered already by a recovery read, or the stream was
		// recreated and its sequences started again.
		h.askEpochLocked()
		return
	case prev > t.last:
		h.gapLocked(t)
	}
	t.last = seq
	for c := range t.clients {
		c.offerLocked(f)
	}
}

// positions reads a republished message's stream sequence and the previous
// sequence on its subject. nats-server appends its own Nats-* headers after
// any the publisher set, so the last value of each is the server's; a
// publisher's forged values come first and are ignored. Stream and subject
// must agree with where the message arrived.
func positions(hdr nats.Header, stream, subject string) (seq, prev uint64, problem string) {
	if last(hdr, jetstream.StreamHeader) != stream {
		return 0, 0, "not republished by stream " + stream
	}
	if last(hdr, jetstream.SubjectHeader) != subject {
		return 0, 0, "Nats-Subject does not match the subject it arrived on"
	}
	seq, err := strconv.ParseUint(last(hdr, jetstream.SequenceHeader), 10, 64)
	if err != nil || seq == 0 {
		return 0, 0, "no valid Nats-Sequence"
	}
	prev, err = strconv.ParseUint(last(hdr, "Nats-Last-Sequence"), 10, 64)
	if err != nil || prev >= seq {
		return 0, 0, "no valid Nats-Last-Sequence"
	}
	return seq, prev, ""
}

// last is the last value of a header, as the server appended it.
func last(hdr nats.Header, key string) string {
	v := hdr[key]
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

// gapLocked marks a topic that lost an event: its clients are held until
// the worker has read what they missed.
func (h *Hub) gapLocked(t *topic) {
	t.changed = true
	for c := range t.clients {
		if c.replaying {
			c.redo = true
		}
	}
	h.suspectLocked(t)
	t.holdAllLocked()
}

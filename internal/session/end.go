package session

import (
	"math/rand/v2"
	"time"

	"github.com/ssegate/ssegate/replay"
	"github.com/ssegate/ssegate/sse"
	"github.com/ssegate/ssegate/upstream"
)

// Why a stream ends: the reasons its log line and the ended count carry,
// besides the hub's (upstream.Reason).
const (
	endSlow        = "slow"
	endUnavailable = "unavailable"
	endExpired     = "expired"
	// endDisconnected is a stream that control ended (package control).
	endDisconnected = "disconnected"
	// endStopped is a stream that stopped without a last frame: its
	// client left, or can no longer be written to. end records and
	// counts it as endClientLeft.
	endStopped    = ""
	endClientLeft = "client_left"
)

// Endings are the reasons a stream ends, for the ended count's labels.
func Endings() []string {
	return []string{endSlow, upstream.ReasonShutdown.String(), endExpired, upstream.ReasonResync.String(),
		upstream.ReasonRecreated.String(), endUnavailable, endClientLeft, endDisconnected}
}

// hubEnding is why a stream the hub gave up on ends. The client has every
// event up to what was written, so it resumes from there; what was queued
// but not written comes again from the stream.
func (s *session) hubEnding() string {
	reason := s.client.Reason()
	if reason == upstream.ReasonRecreated {
		// The old position means nothing in the new stream: start it
		// from its beginning, after telling the client to reload.
		s.reset(replay.ResetStreamRecreated, replay.ID{Epoch: s.client.Epoch()})
	}
	return reason.String()
}

// resumeID is the id a client must resume from, when it does not hold it
// already: a client that attached without a position and got no event yet
// would otherwise come back with none and miss what was published
// meanwhile. A stream that never attached has none to give.
func (s *session) resumeID() string {
	if s.known || s.client == nil {
		return ""
	}
	return replay.ID{Seq: s.lastSent, Epoch: s.client.Epoch()}.String()
}

// end is the one place a stream's end is recorded and counted, once: a
// write that timed out ends it as slow (see failed), and whatever ends it
// afterwards is not counted again. It writes the last frame (why, where
// to resume from, and when to come back) unless a write failed: a client
// that stopped reading is not written to again. The delay is jittered, so
// that streams ended together do not all come back together.
func (s *session) end(why string) {
	if s.ended != "" {
		return
	}
	if why == endStopped {
		// Counted too, once: a client that leaves is ended by nobody
		// else. It gets no last frame.
		s.ended = endClientLeft
		s.sv.m.Ended(endClientLeft)
		return
	}
	s.ended = why
	if why == endSlow {
		s.sv.m.Slow()
	}
	s.sv.m.Ended(why)
	if s.broken {
		return
	}
	s.buf = sse.AppendComment(s.buf[:0], "end: "+why)
	if id := s.resumeID(); id != "" {
		s.buf = sse.AppendID(s.buf, id)
	}
	s.buf = sse.AppendRetry(s.buf, s.jitteredRetry())
	_ = s.write(s.buf)
	_ = s.flush()
}

// jitteredRetry is the retry delay scaled by a random factor in [1, 2).
func (s *session) jitteredRetry() time.Duration {
	r := s.sv.cfg.Retry
	return r + rand.N(r)
}

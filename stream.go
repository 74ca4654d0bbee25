package ssegate

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/ssegate/ssegate/auth"
	"github.com/ssegate/ssegate/replay"
	"github.com/ssegate/ssegate/sse"
	"github.com/ssegate/ssegate/upstream"
)

// session is one open event stream.
type session struct {
	h        *Handler
	w        http.ResponseWriter
	rc       *http.ResponseController
	client   hubClient
	history  replaySource
	subjects []string
	buf      []byte

	// lastSent is the position the client has every event up to: the
	// sequence of the newest event written, or where it started.
	lastSent uint64
	// known is set once the client holds lastSent as its last event id:
	// it sent it, or was sent an event with it.
	known bool

	sent  int
	ended string
	// stuck is set when a write timed out; nothing more is written.
	stuck bool
	// The stream's bytes go to out, through Caddy's writers or, after a
	// takeover, straight to the connection.
	out         io.Writer
	flushOut    func() error
	setDeadline func(time.Time) error
	// ownDeadline is set when Caddy does not bound the writes, and
	// clearDeadline when a deadline must not outlive a flush (see
	// boundWrites); armedAt is when the session last set a deadline.
	ownDeadline   bool
	clearDeadline bool
	armedAt       time.Time
	// lastWrite is when live delivery last wrote, for the heartbeat.
	lastWrite time.Time
}

// hubClient is what a session needs of its attachment to the hub.
type hubClient interface {
	Ready() <-chan struct{}
	Take(dst []upstream.Frame, max int) ([]upstream.Frame, bool)
	Done() <-chan struct{}
	Reason() upstream.Reason
	Epoch() string
	EndReplay(pos uint64) bool
}

// replaySource is what a session needs of the stream's history.
type replaySource interface {
	Resolve(ctx context.Context, raw string, subjects []string) (replay.Resolution, error)
	Read(ctx context.Context, subjects []string, after uint64, limit int, fn func(replay.Msg) error) error
	Epoch() string
}

// errEnded is returned by session steps that ended the stream cleanly.
var errEnded = errors.New("stream ended")

// maxBatch bounds how many queued frames are written before one flush, so
// a busy channel still flushes regularly.
const maxBatch = 64

// maxBuffered is the size of the buffer a batch of frames is gathered in
// (see writeFrames): it bounds the memory a burst of large events takes.
const maxBuffered = 16 << 10

// maxCatchUpPasses bounds how often a replay reads again because live
// delivery moved on meanwhile. A channel busier than the client can read
// would otherwise keep it replaying for ever.
const maxCatchUpPasses = 4

// serveStream attaches the client and runs its stream to the end. It owns
// adm and releases it when the stream ends, which with a takeover is after
// ServeHTTP has returned.
func (h *Handler) serveStream(w http.ResponseWriter, r *http.Request, subjects []string, position string, adm *auth.Admission) {
	s := h.newSession(w, subjects)
	end := s.closer(r, adm, time.Now())

	// Attach before the headers go out: a client whose EventSource is open
	// is subscribed, so an event published after onopen reaches it.
	run, err := h.app.running(r.Context())
	var client *upstream.Client
	if err == nil {
		client, err = run.hub.Attach(r.Context(), subjects, h.queueSize(), position != "")
	}
	if err != nil {
		defer end()
		s.open()
		// An EventSource gives up for good on a non-200 status, so a
		// gateway that cannot reach NATS answers 200 and asks it to retry.
		// While NATS is away every client comes back every few seconds.
		if ok, n := h.unavailable.Allow(); ok {
			h.log.Warn("stream unavailable", zap.Error(err), zap.Int64("suppressed_before", n))
		}
		s.end("unavailable", "")
		return
	}
	s.client, s.history = client, run.history
	if conn := s.takeOver(r); conn != nil {
		// The request's context ends when ServeHTTP returns, and nothing
		// of the request is kept: it holds what the takeover lets go.
		ctx, cancel := context.WithCancel(context.Background())
		proto, expires := protoLabel(r), adm.Expires
		go watchClose(conn, cancel)
		go func() {
			defer end()
			defer conn.Close()
			defer cancel()
			s.run(ctx, client, proto, position, expires)
		}()
		return
	}
	defer end()
	defer s.boundWrites(r)()
	s.open()
	s.run(r.Context(), client, protoLabel(r), position, adm.Expires)
}

// newSession writes a stream through w; a takeover redirects it later.
func (h *Handler) newSession(w http.ResponseWriter, subjects []string) *session {
	s := &session{h: h, w: w, rc: http.NewResponseController(w), subjects: subjects}
	s.out, s.flushOut, s.setDeadline = w, s.rc.Flush, s.rc.SetWriteDeadline
	return s
}

// closer returns what ends a stream's life: its log line, which is the
// record of every stream (Caddy skips the access line of a request that
// carried a ticket; r.URL is scrubbed), and the admission's release.
func (s *session) closer(r *http.Request, adm *auth.Admission, start time.Time) func() {
	proto, remote := r.Proto, r.RemoteAddr
	return func() {
		adm.Release()
		// Counted here, once per stream: a client that leaves is ended by
		// nobody else, and a stream ended by a failed write must not be
		// counted again by the step that noticed it.
		s.h.app.metrics.ended.WithLabelValues(or(s.ended, "client_left")).Inc()
		s.h.log.Info("stream closed",
			zap.String("sub", adm.Subject),
			zap.Strings("channels", adm.Channels),
			zap.String("proto", proto),
			zap.String("remote", remote),
			zap.Duration("duration", time.Since(start)),
			zap.Int("events", s.sent),
			zap.String("end", or(s.ended, "client_left")))
	}
}

// run replays what the client missed, if it has a position, then streams
// live until the end.
func (s *session) run(ctx context.Context, client *upstream.Client, proto, position string, expires time.Time) {
	defer client.Detach()
	m := s.h.app.metrics
	m.clients.Inc()
	defer m.clients.Dec()
	m.connections.WithLabelValues(proto).Inc()
	defer m.connections.WithLabelValues(proto).Dec()
	if position == "" {
		s.lastSent = client.Start()
	} else {
		s.known = true
		if s.catchUp(ctx, position) != nil {
			return
		}
	}
	s.live(ctx, expires)
}

// open sends the headers and a first comment at once: Caddy's encode
// handler, and some proxies, hold headers back until the first body write.
func (s *session) open() {
	streamHeaders(s.w.Header())
	s.w.WriteHeader(http.StatusOK)
	s.buf = sse.AppendComment(s.buf[:0], "ssegate")
	s.buf = sse.AppendRetry(s.buf, s.h.retry())
	_ = s.write(s.buf)
	_ = s.flush()
}

// protoLabel maps the request's protocol to the fixed set of the streams
// gauge's label values: r.Proto is the request line as the client sent
// it, and each new spelling would be a new series.
func protoLabel(r *http.Request) string {
	switch {
	case r.ProtoMajor == 1 && r.ProtoMinor == 0:
		return "HTTP/1.0"
	case r.ProtoMajor == 1:
		return "HTTP/1.1"
	case r.ProtoMajor == 2:
		return "HTTP/2.0"
	case r.ProtoMajor == 3:
		return "HTTP/3.0"
	}
	return "other"
}

func streamHeaders(hdr http.Header) {
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("X-Accel-Buffering", "no")
	hdr.Del("Content-Length")
}

// catchUp replays what the client missed, then hands it over to live
// delivery, which held its events meanwhile. When live delivery may have
// lost one in the meantime, it reads again from where it stopped.
func (s *session) catchUp(ctx context.Context, position string) error {
	res, err := s.history.Resolve(ctx, position, s.subjects)
	if err != nil {
		s.h.log.Warn("cannot read stream state for replay", zap.Error(err))
		s.end("unavailable", "")
		return errEnded
	}
	s.lastSent = res.After
	if res.Reset != "" {
		s.reset(res.Reset, res.Current)
		s.lastSent = res.Current.Seq
	}
	for pass := 1; ; pass++ {
		err := s.history.Read(ctx, s.subjects, s.lastSent, s.h.replayLimit(), s.replayOne)
		switch {
		case errors.Is(err, replay.ErrTooFarBehind) && pass == 1:
			s.reset(replay.ResetTooFarBehind, res.Current)
			s.lastSent = max(s.lastSent, res.Current.Seq)
		case errors.Is(err, replay.ErrTooFarBehind):
			// It fell behind again while replaying: a slow client.
			s.slow()
			return errEnded
		case err != nil:
			if ctx.Err() == nil && !s.stuck {
				s.h.log.Warn("replay failed", zap.Error(err))
				s.end("unavailable", s.resumeID())
			}
			return errEnded
		}
		if err := s.flush(); err != nil {
			return err
		}
		if s.client.EndReplay(s.lastSent) {
			return nil
		}
		if pass == maxCatchUpPasses {
			s.slow()
			return errEnded
		}
	}
}

func (s *session) replayOne(m replay.Msg) error {
	s.buf = replay.Encode(s.buf[:0], m, s.history.Epoch())
	if err := s.write(s.buf); err != nil {
		return err
	}
	s.lastSent = m.Seq
	s.sent++
	s.h.app.metrics.replayed.Inc()
	s.h.app.metrics.delivered.Inc()
	return nil
}

// reset tells the client its position could not be honoured. The event's
// id is the position it continues from, so a reconnect does not repeat it.
func (s *session) reset(reason string, current replay.ID) {
	s.h.app.metrics.resets.WithLabelValues(reason).Inc()
	s.buf = sse.AppendEvent(s.buf[:0], sse.Event{
		ID:   current.String(),
		Name: "reset",
		Data: []byte(`{"reason":"` + reason + `"}`),
	})
	s.known = true
	_ = s.write(s.buf)
}

// hubEnded ends a stream the hub gave up on. The client has every event up
// to what was written, so it resumes from there; what was queued but not
// written comes again from the stream.
func (s *session) hubEnded() {
	reason := s.client.Reason()
	switch reason {
	case upstream.ReasonRecreated:
		// The old position means nothing in the new stream: start it
		// from its beginning, after telling the client to reload.
		s.reset(replay.ResetStreamRecreated, replay.ID{Epoch: s.client.Epoch()})
		s.end(reason.String(), "")
	case upstream.ReasonSlow:
		s.slow()
	default:
		s.end(reason.String(), s.resumeID())
	}
}

// slow ends a stream whose client could not keep up.
func (s *session) slow() {
	s.end("slow", s.resumeID())
}

// resumeID is the id a client must resume from, when it does not hold it
// already: a client that attached without a position and got no event yet
// would otherwise come back with none and miss what was published
// meanwhile.
func (s *session) resumeID() string {
	if s.known {
		return ""
	}
	return replay.ID{Seq: s.lastSent, Epoch: s.client.Epoch()}.String()
}

// end writes the last frame: why, where to resume from, and when to come
// back. The delay is jittered, so that streams ended together do not all
// come back together. The handler then returns, which ends the response.
func (s *session) end(why, resumeID string) {
	if s.ended == "" {
		s.ended = why
		if why == "slow" {
			s.h.app.metrics.slow.Inc()
		}
	}
	if s.stuck {
		// A write timed out: another would wait as long again, for a
		// client that is not reading.
		return
	}
	s.buf = sse.AppendComment(s.buf[:0], "end: "+s.ended)
	if resumeID != "" {
		s.buf = sse.AppendID(s.buf, resumeID)
	}
	s.buf = sse.AppendRetry(s.buf, s.jitteredRetry())
	_ = s.write(s.buf)
	_ = s.flush()
}

// jitteredRetry is the retry delay scaled by a random factor in [1, 2).
func (s *session) jitteredRetry() time.Duration {
	r := s.h.retry()
	return r + rand.N(r)
}

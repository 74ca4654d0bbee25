package ssegate

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
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
	// The stream's bytes go to out, through Caddy's writers or, after a
	// takeover, straight to the connection.
	out         io.Writer
	flushOut    func() error
	setDeadline func(time.Time) error
	// ownDeadline is set when Caddy does not bound the writes (see
	// boundWrites); armedAt is when the session last set a deadline.
	ownDeadline bool
	armedAt     time.Time
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

// maxBuffered bounds the batch a session copies frames into, so that a
// client's buffer does not grow with the size of a burst of large events.
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
		proto, expires := r.Proto, adm.Expires
		go func() {
			defer end()
			defer conn.Close()
			defer cancel()
			s.run(ctx, client, proto, position, expires)
		}()
		return
	}
	defer end()
	defer s.boundWrites(r.Context())()
	s.open()
	s.run(r.Context(), client, r.Proto, position, adm.Expires)
}

// newSession writes a stream through w; a takeover redirects it later.
func (h *Handler) newSession(w http.ResponseWriter, subjects []string) *session {
	s := &session{h: h, w: w, rc: http.NewResponseController(w), subjects: subjects, buf: make([]byte, 0, 512)}
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
			if ctx.Err() == nil {
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

// live streams queued events and heartbeats until the client leaves, the
// hub ends the stream, or the credential expires.
func (s *session) live(ctx context.Context, expires time.Time) {
	heartbeat := time.NewTicker(s.h.heartbeat())
	defer heartbeat.Stop()
	var expiry <-chan time.Time
	if !expires.IsZero() {
		t := time.NewTimer(time.Until(expires))
		defer t.Stop()
		expiry = t.C
	}
	var batch []upstream.Frame
	for {
		select {
		case <-s.client.Ready():
			for more := true; more; {
				batch, more = s.client.Take(batch[:0], maxBatch)
				if len(batch) > 0 && s.sendBatch(batch) != nil {
					return
				}
			}
			heartbeat.Reset(s.h.heartbeat())
		case <-heartbeat.C:
			s.buf = sse.AppendComment(s.buf[:0], "")
			if s.write(s.buf) != nil || s.flush() != nil {
				return
			}
		case <-s.client.Done():
			s.hubEnded()
			return
		case <-expiry:
			// Reconnecting picks up the browser's refreshed cookie.
			s.end("expired", s.resumeID())
			return
		case <-ctx.Done():
			return
		}
	}
}

// sendBatch writes queued frames in one write and one flush: each is a
// deadline update and a trip through the writers.
func (s *session) sendBatch(batch []upstream.Frame) error {
	s.buf = s.buf[:0]
	for _, f := range batch {
		if err := s.send(f); err != nil {
			return err
		}
	}
	if err := s.write(s.buf); err != nil {
		return err
	}
	if err := s.flush(); err != nil {
		return err
	}
	s.h.app.metrics.delivered.Add(float64(len(batch)))
	if first := batch[0]; first.Stored != 0 {
		// The batch's oldest event stands for the batch.
		s.h.app.metrics.latency.Observe(time.Since(time.Unix(0, first.Stored)).Seconds())
	}
	return nil
}

// send adds one live frame to the batch in s.buf, writing the batch out
// first when it would grow past maxBuffered. The hub queues each event
// once, in order.
func (s *session) send(f upstream.Frame) error {
	if len(s.buf) > 0 && len(s.buf)+len(f.Data) > maxBuffered {
		if err := s.write(s.buf); err != nil {
			return err
		}
		s.buf = s.buf[:0]
	}
	s.buf = append(s.buf, f.Data...)
	s.lastSent, s.known = f.Seq, true
	s.sent++
	return nil
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
	s.h.app.metrics.slow.Inc()
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
	}
	s.h.app.metrics.ended.WithLabelValues(s.ended).Inc()
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

// boundWrites makes sure no write or flush can block for longer than the
// write timeout: a client that stops reading would otherwise hold its
// goroutine until the connection dies. Caddy already bounds every write
// and flush of a response with its idle timeout writer; the stream only
// tightens it. Where the server's write_idle_timeout is off, the session
// sets deadlines itself.
func (s *session) boundWrites(ctx context.Context) (restore func()) {
	if _, w := caddyhttp.IdleTimeoutsFromContext(ctx); w != nil {
		return w.Override(s.h.writeTimeout(), 0, 0)
	}
	s.ownDeadline = true
	return func() {}
}

// write writes b, under the write timeout. A timed-out client counts as
// slow, like one whose queue overflowed.
func (s *session) write(b []byte) error {
	if s.ownDeadline {
		// Cleared after each flush: on HTTP/2 a pending deadline resets
		// the stream when it passes, even if nothing is being written.
		if now := time.Now(); s.armedAt.IsZero() || now.Sub(s.armedAt) > s.h.writeTimeout()/4 {
			_ = s.setDeadline(now.Add(s.h.writeTimeout()))
			s.armedAt = now
		}
	}
	n, err := s.out.Write(b)
	s.h.app.metrics.bytes.Add(float64(n))
	return s.failed(err)
}

func (s *session) flush() error {
	if err := s.flushOut(); err != nil {
		return s.failed(err)
	}
	if !s.armedAt.IsZero() {
		s.armedAt = time.Time{}
		_ = s.setDeadline(time.Time{})
	}
	return nil
}

// failed records a write that timed out: the client stopped reading, so
// it is slow, not gone.
func (s *session) failed(err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) && s.ended == "" {
		s.ended = "slow"
		s.h.app.metrics.slow.Inc()
		s.h.app.metrics.ended.WithLabelValues("slow").Inc()
	}
	return err
}

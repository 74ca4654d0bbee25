package session

import (
	"cmp"
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/ssegate/ssegate/auth"
	"github.com/ssegate/ssegate/internal/eventfilter"
	"github.com/ssegate/ssegate/internal/streams"
	"github.com/ssegate/ssegate/replay"
	"github.com/ssegate/ssegate/sse"
	"github.com/ssegate/ssegate/upstream"
)

// session is one open event stream.
type session struct {
	sv       *Server
	w        http.ResponseWriter
	rc       *http.ResponseController
	client   Client
	history  History
	subjects []string
	buf      []byte

	// lastSent is the position the client has every event up to: the
	// sequence of the newest event written, or where it started.
	lastSent uint64
	// known is set once the client holds lastSent as its last event id:
	// it sent it, or was sent an event with it.
	known bool
	// startID, for a client that came without a position, is where its
	// stream starts, said in its first bytes.
	startID string
	// read is the position the replay has examined every event up to.
	// It runs ahead of lastSent past events the filter drops, which
	// advance no client's id.
	read uint64

	// filter keeps the events the client asked for; skipped counts the
	// others. since is the time the client asked to start at.
	filter  eventfilter.Filter
	skipped int
	since   string

	sent int
	// ended is why the stream ended, once it has (see end), and broken
	// is set once a write failed: nothing more is written then.
	ended  string
	broken bool
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
	// conn names the stream; kicked is closed when a watcher (control)
	// ends it, and nil when no watcher could; unwatch reports the close.
	conn     string
	kicked   chan struct{}
	kickOnce sync.Once
	unwatch  func()
}

// errBroken is what a write returns once one has failed.
var errBroken = errors.New("stream broken by an earlier write")

// maxBatch bounds how many queued frames are written before one flush, so
// a busy channel still flushes regularly.
const maxBatch = 64

// maxBuffered is the size of the buffer a batch of frames is gathered in
// (see writeFrames): it bounds the memory a burst of large events takes.
const maxBuffered = 16 << 10

// Serve is a stream's life, top to bottom: it attaches the client and runs
// its stream to the end. It owns adm and releases it when the stream ends,
// which with a takeover is after Serve has returned.
func (sv *Server) Serve(w http.ResponseWriter, r *http.Request, subjects []string, position string, adm *auth.Admission, attach Attach, opts ...Option) {
	s := sv.newSession(w, subjects)
	for _, o := range opts {
		o(s)
	}
	end := s.closer(r, adm, time.Now())

	// Attach before the headers go out: a client whose EventSource is open
	// is subscribed, so an event published after onopen reaches it.
	client, history, err := attach(r.Context(), subjects, position != "" || s.since != "")
	fresh := position == "" && s.since == ""
	if err != nil {
		defer end()
		var down *upstream.Unavailable
		if fresh && errors.As(err, &down) && down.At.Epoch != "" {
			// Told where the hub stood, a client without a position
			// comes back from there and misses nothing published while
			// NATS was away.
			s.startID = down.At.String()
		}
		s.open()
		// An EventSource gives up for good on a non-200 status, so a
		// gateway that cannot reach NATS answers 200 and asks it to retry.
		// While NATS is away every client comes back every few seconds.
		if ok, n := sv.unavailable.Allow(); ok {
			sv.log.Warn("stream unavailable", zap.Error(err), zap.Int64("suppressed_before", n))
		}
		s.end(endUnavailable)
		return
	}
	s.client, s.history = client, history
	if fresh {
		// A client without a position starts at the hub's: the stream's
		// first bytes say so (see firstBytes).
		s.lastSent, s.known = client.Start(), true
		s.startID = replay.ID{Seq: s.lastSent, Epoch: client.Epoch()}.String()
	}
	s.watch(adm)
	if conn := s.takeOver(r); conn != nil {
		// The request's context ends when ServeHTTP returns, and nothing
		// of the request is kept: it holds what the takeover lets go.
		ctx, cancel := context.WithCancel(context.Background())
		proto, expires := ProtoLabel(r), adm.Expires
		go watchClose(conn, cancel)
		go func() {
			defer end()
			defer conn.Close()
			defer cancel()
			s.run(ctx, proto, position, expires)
		}()
		return
	}
	defer end()
	defer s.boundWrites(r)()
	s.open()
	s.run(r.Context(), ProtoLabel(r), position, adm.Expires)
}

// newSession writes a stream through w; a takeover redirects it later.
func (sv *Server) newSession(w http.ResponseWriter, subjects []string) *session {
	s := &session{sv: sv, w: w, rc: http.NewResponseController(w), subjects: subjects, conn: streams.NewID()}
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
		if s.unwatch != nil {
			s.unwatch()
		}
		s.sv.log.Info("stream closed",
			zap.String("connection", s.conn),
			zap.String("sub", adm.Subject),
			zap.Strings("channels", adm.Channels),
			zap.String("proto", proto),
			zap.String("remote", remote),
			zap.Duration("duration", time.Since(start)),
			zap.Int("events", s.sent),
			zap.Int("skipped", s.skipped),
			zap.String("end", cmp.Or(s.ended, endClientLeft)))
	}
}

// run replays what the client missed, if it has a position, then streams
// live until the end, and ends the stream with the reason it stopped.
func (s *session) run(ctx context.Context, proto, position string, expires time.Time) {
	defer s.client.Detach()
	s.sv.m.Opened(proto)
	defer s.sv.m.Closed(proto)
	why, live := endStopped, true
	switch {
	case position == "" && s.since != "":
		s.known = true
		why, live = s.catchUpSince(ctx)
	case position == "":
		// Started at the hub's position, said in the first bytes.
	default:
		s.known = true
		why, live = s.catchUp(ctx, position)
	}
	if live {
		why = s.live(ctx, expires)
	}
	s.end(why)
}

// open sends the headers and a first comment at once: Caddy's encode
// handler, and some proxies, hold headers back until the first body write.
func (s *session) open() {
	streamHeaders(s.w.Header())
	s.w.WriteHeader(http.StatusOK)
	s.buf = s.firstBytes(s.buf[:0])
	_ = s.write(s.buf)
	_ = s.flush()
}

// firstBytes are a stream's first bytes, written and flushed at once: a
// comment, the retry delay and, for a client that came without a
// position, where its stream starts. An id line with no data sets an
// EventSource's last event id and dispatches nothing, so a client whose
// gateway dies before the first event comes back with a position and
// misses nothing published meanwhile. One write and one flush: at tens of
// thousands of streams opening together, each flush is a trip through
// HTTP/2's serve loop.
func (s *session) firstBytes(dst []byte) []byte {
	dst = sse.AppendComment(dst, "ssegate")
	dst = sse.AppendRetry(dst, s.sv.cfg.Retry)
	if s.startID != "" {
		dst = sse.AppendID(dst, s.startID)
	}
	return dst
}

func streamHeaders(hdr http.Header) {
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("X-Accel-Buffering", "no")
	hdr.Del("Content-Length")
}

// watch tells the watchers (presence, control) that the stream is open;
// a watcher may end it with kick.
func (s *session) watch(adm *auth.Admission) {
	if len(s.sv.cfg.Watchers) == 0 {
		return
	}
	s.kicked = make(chan struct{})
	s.unwatch = streams.Open(s.sv.cfg.Watchers, &streams.Info{
		ID: s.conn, Sub: adm.Subject, JTI: adm.JTI, IssuedAt: adm.IssuedAt, Channels: adm.Channels,
	}, s.kick)
}

func (s *session) kick() { s.kickOnce.Do(func() { close(s.kicked) }) }

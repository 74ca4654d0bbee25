package history

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/ssegate/ssegate/auth"
	"github.com/ssegate/ssegate/internal/refusal"
	"github.com/ssegate/ssegate/replay"
	"github.com/ssegate/ssegate/upstream"
)

// Source is the stream's history, read over the replay connection: the
// same reads, positions and budget as a stream's replay.
type Source interface {
	Resolve(ctx context.Context, raw string, subjects []string) (replay.Resolution, error)
	Read(ctx context.Context, subjects []string, after, through uint64, limit int, fn func(replay.Msg) error) error
	Epoch() string
	Head(ctx context.Context) (replay.Head, error)
	AfterNewest(ctx context.Context, subjects []string, n int) (uint64, error)
	AfterTime(ctx context.Context, subjects []string, t time.Time) (after uint64, expired bool, err error)
}

// Hub is the live feed, attached to as a stream attaches.
type Hub interface {
	Attach(ctx context.Context, subjects []string, queueSize int, replaying bool) (*upstream.Client, error)
}

// Backend returns the running gateway's history and hub, waiting while it
// starts; it fails when NATS cannot serve.
type Backend func(ctx context.Context) (Source, Hub, error)

// Request is what the gateway checked before handing a request over: the
// admitted channels, each with its subject, and when the credential
// expires (zero: never).
type Request struct {
	Channels []string
	Subjects []string
	Expires  time.Time
}

// Server answers history and poll requests.
type Server struct {
	backend      Backend
	history      Config
	poll         PollConfig
	log          *zap.Logger
	refusal      refusal.Refuser
	writeTimeout time.Duration
	waiting      func(delta float64)
	keep         keepers
	// bufs holds answer buffers between answers.
	bufs sync.Pool
}

// Option configures a Server.
type Option func(*Server)

// WithHistory sets the history endpoint's limits.
func WithHistory(c Config) Option { return func(s *Server) { s.history = c } }

// WithPoll sets the poll endpoint's wait cap.
func WithPoll(c PollConfig) Option { return func(s *Server) { s.poll = c } }

// WithLogger logs refusals and failures to l.
func WithLogger(l *zap.Logger) Option { return func(s *Server) { s.log = l } }

// RefusingWith answers bad requests with the gateway's refusals: the
// same JSON, log line and count as a stream's.
func RefusingWith(r refusal.Refuser) Option { return func(s *Server) { s.refusal = r } }

// CappingWaitAt caps every poll's wait at the handler's write timeout.
func CappingWaitAt(writeTimeout time.Duration) Option {
	return func(s *Server) { s.writeTimeout = writeTimeout }
}

// CountingWaitsIn reports polls that start (+1) and stop (-1) waiting on
// the live feed.
func CountingWaitsIn(gauge func(delta float64)) Option {
	return func(s *Server) { s.waiting = gauge }
}

// NewServer answers from what backend returns.
func NewServer(backend Backend, opts ...Option) *Server {
	s := &Server{backend: backend, log: zap.NewNop(), waiting: func(float64) {}}
	for _, o := range opts {
		o(s)
	}
	s.keep.linger = s.poll.maxWait(s.writeTimeout) + keepLinger
	return s
}

// keepLinger is how long a polled channel stays subscribed after a
// poll's longest wait: long enough for a poll loop's next request.
const keepLinger = 30 * time.Second

// errFull stops a read once the answer is full.
var errFull = errors.New("answer full")

// ServeHistory answers GET <history path>: stored events of the request's
// channels, in stream order.
func (s *Server) ServeHistory(w http.ResponseWriter, r *http.Request, req Request) {
	def, most, _ := s.history.limits()
	p, perr := parseParams(r.URL.Query(), def, most)
	if perr != nil {
		s.refuse(w, r, perr)
		return
	}
	src, _, err := s.backend(r.Context())
	if err != nil {
		s.unavailable(w, r, err)
		return
	}
	a, _, err := s.page(r.Context(), src, req, p)
	if err != nil {
		s.unavailable(w, r, err)
		return
	}
	s.writeAnswer(w, a)
}

// page reads one answer's events from the stream. It returns the answer
// and the position it reached. A position that cannot be honoured gets a
// reset: expired and stream_recreated with the oldest events kept, the
// others with none and the current position, as a stream goes live.
func (s *Server) page(ctx context.Context, src Source, req Request, p params) (Answer, uint64, error) {
	st, err := s.startAt(ctx, src, req, p)
	if err != nil {
		return Answer{}, 0, err
	}
	_, _, maxBytes := s.history.limits()
	c := newCollector(req.Channels, req.Subjects, p.limit, maxBytes, p.filter)
	c.floor = st.after
	epoch := src.Epoch()
	if st.read {
		// The read must pass the position the answer claims.
		err = src.Read(ctx, req.Subjects, st.after, st.reached, 0, func(m replay.Msg) error {
			if !c.addMsg(m, epoch) {
				return errFull
			}
			return nil
		})
		if err != nil && !errors.Is(err, errFull) {
			return Answer{}, 0, err
		}
	}
	a := c.answer(epoch, st.reached)
	if st.reset != "" {
		a.Reset = &Reset{Reason: st.reset}
	}
	return a, c.reached(st.reached), nil
}

// start is where a page starts: after which position it reads, whether
// it reads at all, the position a complete read reaches, and the reset
// to report.
type start struct {
	after, reached uint64
	read           bool
	reset          string
}

func (s *Server) startAt(ctx context.Context, src Source, req Request, p params) (start, error) {
	if p.hasAfter {
		res, err := src.Resolve(ctx, p.after, req.Subjects)
		if err != nil {
			return start{}, err
		}
		st := start{after: res.After, reached: res.Current.Seq, read: true, reset: res.Reset}
		if res.Reset == replay.ResetMalformed || res.Reset == replay.ResetUnknown {
			st.after, st.read = res.Current.Seq, false
		}
		return st, nil
	}
	head, err := src.Head(ctx)
	if err != nil {
		return start{}, err
	}
	st := start{reached: head.LastSeq, read: true}
	switch {
	case p.last > 0:
		st.after, err = src.AfterNewest(ctx, req.Subjects, p.last)
	case p.since != "":
		t, perr := time.Parse(time.RFC3339Nano, p.since)
		if perr != nil || t.After(time.Now()) {
			return start{after: head.LastSeq, reached: head.LastSeq, reset: replay.ResetMalformed}, nil
		}
		var expired bool
		st.after, expired, err = src.AfterTime(ctx, req.Subjects, t)
		if expired {
			st.reset = replay.ResetExpired
		}
	}
	return st, err
}

// refuse answers a bad request.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, e *auth.Error) {
	_ = s.refusal.Refuse(w, r, e.Status, e.Code, e.Detail)
}

// unavailable answers a request that NATS could not serve, unless the
// client has gone.
func (s *Server) unavailable(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		return
	}
	s.log.Warn("history unavailable", zap.String("path", r.URL.Path), zap.Error(err))
	_ = s.refusal.Refuse(w, r, http.StatusServiceUnavailable, auth.CodeUnavailable, "events cannot be read right now; try again")
}

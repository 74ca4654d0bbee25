// Package session serves one open event stream: it replays what the
// client missed, hands it over to live delivery from the hub, and writes
// the stream's last frame with where to resume and when to come back.
//
// A session knows nothing of Caddy's config or of the gateway's handler:
// it is given a Config, a Metrics of funcs, a logger and, per stream, the
// hub's client and the stream's history through the small interfaces
// below.
package session

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/ssegate/ssegate/internal/ratelog"
	"github.com/ssegate/ssegate/internal/streams"
	"github.com/ssegate/ssegate/replay"
	"github.com/ssegate/ssegate/upstream"
)

// Config is what every stream of a handler shares. Every field must be
// set: the gateway resolves its defaults before it builds a Server.
type Config struct {
	// Heartbeat is the idle interval between comment lines.
	Heartbeat time.Duration
	// Retry is the reconnection delay sent to clients; the last frame's
	// is jittered up to twice as long.
	Retry time.Duration
	// WriteTimeout bounds one write to a client.
	WriteTimeout time.Duration
	// ReplayLimit caps the events replayed to one connection.
	ReplayLimit int
	// HTTP1Takeover serves HTTP/1.1 streams from the connection itself
	// (see takeover.go).
	HTTP1Takeover bool
	// Watchers are told of every attached stream and may end it
	// (presence, control).
	Watchers []streams.Watcher
}

// Metrics receives a session's counts. Nil fields are skipped.
type Metrics struct {
	// Opened and Closed bracket a stream that attached to the hub, by the
	// request's protocol.
	Opened, Closed func(proto string)
	// Replayed counts an event sent from history; Delivered counts events
	// written, live and replayed.
	Replayed  func()
	Delivered func(n int)
	// Written counts bytes written, heartbeats included.
	Written func(n int)
	// Latency is the seconds from a live batch's oldest event's storage
	// to its write.
	Latency func(seconds float64)
	// Reset counts a reset event, by reason.
	Reset func(reason string)
	// Ended counts a stream's end, by reason, and Slow a stream ended
	// because its client could not keep up.
	Ended func(reason string)
	Slow  func()
}

// withDefaults fills nil fields with no-ops, so that the session calls
// each count without a check.
func (m Metrics) withDefaults() Metrics {
	for _, f := range []*func(string){&m.Opened, &m.Closed, &m.Reset, &m.Ended} {
		if *f == nil {
			*f = func(string) {}
		}
	}
	for _, f := range []*func(int){&m.Delivered, &m.Written} {
		if *f == nil {
			*f = func(int) {}
		}
	}
	for _, f := range []*func(){&m.Replayed, &m.Slow} {
		if *f == nil {
			*f = func() {}
		}
	}
	if m.Latency == nil {
		m.Latency = func(float64) {}
	}
	return m
}

// Client is what a session needs of its attachment to the hub
// (upstream.Client).
type Client interface {
	Ready() <-chan struct{}
	Take(dst []upstream.Frame, max int) ([]upstream.Frame, bool)
	Done() <-chan struct{}
	Reason() upstream.Reason
	Epoch() string
	Start() uint64
	EndReplay(pos uint64) bool
	Detach()
}

// History is what a session needs of the stream's history
// (replay.History).
type History interface {
	Resolve(ctx context.Context, raw string, subjects []string) (replay.Resolution, error)
	Read(ctx context.Context, subjects []string, after, through uint64, limit int, fn func(replay.Msg) error) error
	Epoch() string
}

// Attach attaches a stream's subjects to the hub; replaying says that the
// client has a position to be replayed from first.
type Attach func(ctx context.Context, subjects []string, replaying bool) (Client, History, error)

// Server serves the streams of one handler.
type Server struct {
	cfg Config
	m   Metrics
	log *zap.Logger
	// unavailable limits the warnings of streams that NATS cannot serve.
	unavailable *ratelog.Limiter
	buffers     bufferPool
}

// New returns a Server of streams with cfg, counted in m and logged to
// log (nil for none).
func New(cfg Config, m Metrics, log *zap.Logger) *Server {
	if log == nil {
		log = zap.NewNop()
	}
	return &Server{cfg: cfg, m: m.withDefaults(), log: log, unavailable: ratelog.New(1, 10)}
}

// Package health answers whether the gateway can serve streams: the
// readiness endpoint for load balancers, and the figures the console shows
// beside it.
package health

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ssegate/ssegate/internal/refusal"
)

const (
	// checkTTL is how long one JetStream check answers for: load
	// balancers and consoles poll often, and each check is an API request.
	checkTTL = time.Second
	// checkTimeout bounds one check, so a check never hangs on a NATS
	// server that stopped answering.
	checkTimeout = 2 * time.Second
)

// Conn is the gateway's running NATS connection; nc is nil while the
// gateway is starting.
type Conn func() (nc *nats.Conn, js jetstream.JetStream)

// Checker checks the stream, at most once per checkTTL, for the health
// endpoint and the console's figures. Its last two samples of the stream's
// last sequence give the rate of events stored. One check at most is in
// flight: callers that come meanwhile share its answer, or give up on
// their own context, so a slow JetStream does not queue them up (the
// endpoint needs no credential).
type Checker struct {
	conn   Conn
	stream string
	refuse refusal.Refuser
	// extra adds the state of optional parts (presence, control).
	extra func(*Report)
	opts  options

	mu       sync.Mutex
	at       time.Time // when the last answer came
	err      error
	lastSeq  uint64
	differs  bool // the stream's config differs from the gateway's
	prevAt   time.Time
	prevSeq  uint64
	inflight chan struct{} // closed when the check under way has answered
}

// Option adds to what a Checker reports.
type Option func(*options)

type options struct {
	differs     func(jetstream.StreamConfig) bool
	sayDiffers  func(bool)
	replayDrops func() uint64
	now         func() time.Time
}

// WithConfigCheck has each check compare the stream's config with the
// gateway's (differs), report it as Stream "config_differs", and tell say
// the outcome (a gauge): an operator who has applied a change to the
// stream sees it go back to "ok".
func WithConfigCheck(differs func(jetstream.StreamConfig) bool, say func(bool)) Option {
	return func(o *options) { o.differs, o.sayDiffers = differs, say }
}

// WithReplayDrops reports the replay connection's cuts as ReplayDrops.
func WithReplayDrops(drops func() uint64) Option { return func(o *options) { o.replayDrops = drops } }

// New returns a Checker of the named stream over conn; refuse answers the
// requests the endpoint does not serve.
func New(conn Conn, stream string, refuse refusal.Refuser, opts ...Option) *Checker {
	c := &Checker{conn: conn, stream: stream, refuse: refuse, opts: options{now: time.Now}}
	for _, o := range opts {
		o(&c.opts)
	}
	return c
}

// Report adds extra to every report: the state of parts that streams do
// not depend on, which therefore leave Status be.
func (p *Checker) Report(extra func(*Report)) { p.extra = extra }

// result is one (possibly cached) answer of the check.
type result struct {
	err     error
	rate    float64 // events stored per second, over the last two samples
	differs bool    // the stream's config differs from the gateway's
}

// errAbandoned is the answer to a caller that gave up waiting.
var errAbandoned = errors.New("health check abandoned by its caller")

func (p *Checker) check(ctx context.Context, js jetstream.JetStream) result {
	p.mu.Lock()
	if !p.at.IsZero() && p.opts.now().Sub(p.at) < checkTTL {
		defer p.mu.Unlock()
		return p.result()
	}
	done := p.inflight
	if done == nil {
		done = make(chan struct{})
		p.inflight = done
		go p.run(js, done)
	}
	p.mu.Unlock()
	select {
	case <-done:
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.result()
	case <-ctx.Done():
		return result{err: errAbandoned}
	}
}

// run makes one check. Not the request's context: a caller that gives up
// must not leave a failure cached for the others.
func (p *Checker) run(js jetstream.JetStream, done chan struct{}) {
	ctx, cancel := context.WithTimeout(context.Background(), checkTimeout)
	info, err := streamInfo(ctx, js, p.stream)
	cancel()
	// Stamped when the answer came: an answer that took the whole timeout
	// is fresh from now on, not already stale.
	now := p.opts.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if err == nil && p.err == nil && !p.at.IsZero() {
		p.prevAt, p.prevSeq = p.at, p.lastSeq
	} else {
		p.prevAt = time.Time{}
	}
	if err == nil {
		p.lastSeq = info.State.LastSeq
		if p.opts.differs != nil {
			p.differs = p.opts.differs(info.Config)
			if p.opts.sayDiffers != nil {
				p.opts.sayDiffers(p.differs)
			}
		}
	}
	p.at, p.err = now, err
	p.inflight = nil
	close(done)
}

// result is the last answer; p.mu must be held.
func (p *Checker) result() result {
	res := result{err: p.err, differs: p.differs}
	if dt := p.at.Sub(p.prevAt).Seconds(); !p.prevAt.IsZero() && dt > 0 && p.lastSeq >= p.prevSeq {
		res.rate = float64(p.lastSeq-p.prevSeq) / dt
	}
	return res
}

func streamInfo(ctx context.Context, js jetstream.JetStream, name string) (*jetstream.StreamInfo, error) {
	s, err := js.Stream(ctx, name)
	if err != nil {
		return nil, err
	}
	return s.CachedInfo(), nil
}

// Report is the readiness answer. Its values are fixed words, so an
// unauthenticated caller learns nothing but the state.
type Report struct {
	Status    string `json:"status"`
	NATS      string `json:"nats"`
	JetStream string `json:"jetstream"`
	// Stream is config_differs when the shared stream's config is not
	// this gateway's (docs/operations-shared-stream.md); the gateway
	// serves on with the stream's.
	Stream string `json:"stream"`
	// ReplayDrops counts the cuts of the replay connection since it was
	// dialled (see upstream.ReplayConn.Drops); replays resume after one.
	ReplayDrops uint64 `json:"replay_drops"`
	// Presence and Revocations are the state of their KV buckets, when
	// configured. Streams do not depend on them, so they leave Status be.
	Presence    string `json:"presence,omitempty"`
	Revocations string `json:"revocations,omitempty"`
}

// Check reports NATS's connection state and whether JetStream serves the
// stream, and the rate of events stored. Ready (Status "ok") means a new
// stream gets live events and replays.
func (p *Checker) Check(ctx context.Context) (Report, float64) {
	hl, res := p.readiness(ctx)
	return hl, res.rate
}

func (p *Checker) readiness(ctx context.Context) (Report, result) {
	hl := Report{Status: "unavailable", NATS: "unknown", JetStream: "unknown", Stream: "unknown"}
	nc, js := p.conn()
	if nc == nil {
		hl.Status = "starting"
		return hl, result{}
	}
	if p.opts.replayDrops != nil {
		hl.ReplayDrops = p.opts.replayDrops()
	}
	status := nc.Status()
	hl.NATS = strings.ToLower(status.String())
	if status != nats.CONNECTED {
		return hl, result{}
	}
	res := p.check(ctx, js)
	switch {
	case res.err == nil:
		hl.Status, hl.JetStream, hl.Stream = "ok", "ok", "ok"
		if res.differs {
			hl.Stream = "config_differs"
		}
	case errors.Is(res.err, jetstream.ErrStreamNotFound):
		hl.JetStream = "stream_missing"
	default:
		hl.JetStream = "unavailable"
	}
	return hl, res
}

// ServeHTTP answers 200 when ready and 503 otherwise, for load balancers.
func (p *Checker) ServeHTTP(w http.ResponseWriter, r *http.Request) error {
	if p.refuse.NotRead(w, r) {
		return nil
	}
	hl, _ := p.readiness(r.Context())
	if p.extra != nil {
		p.extra(&hl)
	}
	hdr := w.Header()
	hdr.Set("Content-Type", "application/json")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Content-Type-Options", "nosniff")
	if hl.Status != "ok" {
		hdr.Set("Retry-After", "5")
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	if r.Method == http.MethodHead {
		return nil
	}
	return json.NewEncoder(w).Encode(hl)
}

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

	"github.com/ssegate/ssegate/auth"
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
// last sequence give the rate of events stored.
type Checker struct {
	conn   Conn
	stream string
	refuse refusal.Refuser
	// extra adds the state of optional parts (presence, control).
	extra func(*Report)

	mu      sync.Mutex
	at      time.Time
	err     error
	lastSeq uint64
	prevAt  time.Time
	prevSeq uint64
}

// New returns a Checker of the named stream over conn; refuse answers the
// requests the endpoint does not serve.
func New(conn Conn, stream string, refuse refusal.Refuser) *Checker {
	return &Checker{conn: conn, stream: stream, refuse: refuse}
}

// Report adds extra to every report: the state of parts that streams do
// not depend on, which therefore leave Status be.
func (p *Checker) Report(extra func(*Report)) { p.extra = extra }

// result is one (possibly cached) answer of the check.
type result struct {
	err  error
	rate float64 // events stored per second, over the last two samples
}

func (p *Checker) check(js jetstream.JetStream, stream string, now time.Time) result {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.at.IsZero() || now.Sub(p.at) >= checkTTL {
		// Not the request's context: a caller that gives up must not
		// leave a failure cached for the next one.
		ctx, cancel := context.WithTimeout(context.Background(), checkTimeout)
		info, err := streamInfo(ctx, js, stream)
		cancel()
		if err == nil && p.err == nil && !p.at.IsZero() {
			p.prevAt, p.prevSeq = p.at, p.lastSeq
		} else {
			p.prevAt = time.Time{}
		}
		if err == nil {
			p.lastSeq = info.State.LastSeq
		}
		p.at, p.err = now, err
	}
	res := result{err: p.err}
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
	// Presence and Revocations are the state of their KV buckets, when
	// configured. Streams do not depend on them, so they leave Status be.
	Presence    string `json:"presence,omitempty"`
	Revocations string `json:"revocations,omitempty"`
}

// Check reports NATS's connection state and whether JetStream serves the
// stream, and the rate of events stored. Ready (Status "ok") means a new
// stream gets live events and replays.
func (p *Checker) Check(now time.Time) (Report, float64) {
	hl, res := p.readiness(now)
	return hl, res.rate
}

func (p *Checker) readiness(now time.Time) (Report, result) {
	hl := Report{Status: "unavailable", NATS: "unknown", JetStream: "unknown"}
	nc, js := p.conn()
	if nc == nil {
		hl.Status = "starting"
		return hl, result{}
	}
	status := nc.Status()
	hl.NATS = strings.ToLower(status.String())
	if status != nats.CONNECTED {
		return hl, result{}
	}
	res := p.check(js, p.stream, now)
	switch {
	case res.err == nil:
		hl.Status, hl.JetStream = "ok", "ok"
	case errors.Is(res.err, jetstream.ErrStreamNotFound):
		hl.JetStream = "stream_missing"
	default:
		hl.JetStream = "unavailable"
	}
	return hl, res
}

// ServeHTTP answers 200 when ready and 503 otherwise, for load balancers.
func (p *Checker) ServeHTTP(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		return p.refuse.Refuse(w, r, http.StatusMethodNotAllowed, auth.CodeMethodNotAllowed, "use GET or HEAD")
	}
	hl, _ := p.readiness(time.Now())
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

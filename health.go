package ssegate

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
)

const (
	// probeTTL is how long one JetStream check answers for: load
	// balancers and consoles poll often, and each check is an API request.
	probeTTL = time.Second
	// probeTimeout bounds one check, so a probe never hangs on a NATS
	// server that stopped answering.
	probeTimeout = 2 * time.Second
)

// jsProbe checks the stream, at most once per probeTTL, for the health
// endpoint and the console's figures. Its last two samples of the stream's
// last sequence give the rate of events stored.
type jsProbe struct {
	mu      sync.Mutex
	at      time.Time
	err     error
	lastSeq uint64
	prevAt  time.Time
	prevSeq uint64
}

// probeResult is one (possibly cached) answer of the probe.
type probeResult struct {
	err  error
	rate float64 // events stored per second, over the last two samples
}

func (p *jsProbe) check(js jetstream.JetStream, stream string, now time.Time) probeResult {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.at.IsZero() || now.Sub(p.at) >= probeTTL {
		// Not the request's context: a caller that gives up must not
		// leave a failure cached for the next one.
		ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
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
	res := probeResult{err: p.err}
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

// health is the readiness answer. Its values are fixed words, so an
// unauthenticated probe learns nothing but the state.
type health struct {
	Status    string `json:"status"`
	NATS      string `json:"nats"`
	JetStream string `json:"jetstream"`
	// Presence and Revocations are the state of their KV buckets, when
	// configured. Streams do not depend on them, so they leave Status be.
	Presence    string `json:"presence,omitempty"`
	Revocations string `json:"revocations,omitempty"`
}

// current is the running state without waiting for Start: a probe during
// startup answers at once that the gateway is not ready.
func (a *App) current() *running {
	select {
	case <-a.started:
		return a.state.Load()
	default:
		return nil
	}
}

// readiness reports NATS's connection state and whether JetStream serves
// the stream. Ready means a new stream gets live events and replays.
func (h *Handler) readiness(now time.Time) (health, probeResult) {
	hl := health{Status: "unavailable", NATS: "unknown", JetStream: "unknown"}
	run := h.app.current()
	if run == nil {
		hl.Status = "starting"
		return hl, probeResult{}
	}
	status := run.conn.NC.Status()
	hl.NATS = strings.ToLower(status.String())
	if status != nats.CONNECTED {
		return hl, probeResult{}
	}
	res := h.probe.check(run.conn.JS, h.app.Stream.Name, now)
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

// serveHealth answers 200 when ready and 503 otherwise, for load balancers.
func (h *Handler) serveHealth(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		return h.refuse(w, r, http.StatusMethodNotAllowed, "method_not_allowed", "use GET or HEAD")
	}
	hl, _ := h.readiness(time.Now())
	h.watcherHealth(&hl)
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

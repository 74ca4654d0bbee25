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

	"github.com/ssegate/ssegate/replay"
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
// last sequence give the rate of events stored. One check at most is in
// flight: callers that come meanwhile share its answer, or give up on
// their own context, so a slow JetStream does not queue them up.
type jsProbe struct {
	mu       sync.Mutex
	at       time.Time // when the last answer came
	err      error
	lastSeq  uint64
	differs  bool // the stream's config differs from the gateway's
	prevAt   time.Time
	prevSeq  uint64
	inflight chan struct{} // closed when the check under way has answered
}

// probeResult is one (possibly cached) answer of the probe.
type probeResult struct {
	err     error
	rate    float64 // events stored per second, over the last two samples
	differs bool    // the stream's config differs from the gateway's
}

// errProbeAbandoned is the answer to a caller that gave up waiting.
var errProbeAbandoned = errors.New("health check abandoned by its caller")

func (p *jsProbe) check(ctx context.Context, js jetstream.JetStream, stream replay.StreamConfig) probeResult {
	p.mu.Lock()
	if !p.at.IsZero() && time.Since(p.at) < probeTTL {
		defer p.mu.Unlock()
		return p.result()
	}
	done := p.inflight
	if done == nil {
		done = make(chan struct{})
		p.inflight = done
		go p.run(js, stream, done)
	}
	p.mu.Unlock()
	select {
	case <-done:
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.result()
	case <-ctx.Done():
		return probeResult{err: errProbeAbandoned}
	}
}

// run makes one check. Not the request's context: a caller that gives up
// must not leave a failure cached for the others.
func (p *jsProbe) run(js jetstream.JetStream, stream replay.StreamConfig, done chan struct{}) {
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	info, err := streamInfo(ctx, js, stream.Name)
	cancel()
	// Stamped when the answer came: an answer that took the whole timeout
	// is fresh from now on, not already stale.
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if err == nil && p.err == nil && !p.at.IsZero() {
		p.prevAt, p.prevSeq = p.at, p.lastSeq
	} else {
		p.prevAt = time.Time{}
	}
	if err == nil {
		p.lastSeq = info.State.LastSeq
		// Checked each time: once an operator has applied the change
		// to the stream, the gateway says so.
		p.differs = !stream.Unmanaged && len(stream.Differences(info.Config)) > 0
	}
	p.at, p.err = now, err
	p.inflight = nil
	close(done)
}

// result is the last answer; p.mu must be held.
func (p *jsProbe) result() probeResult {
	res := probeResult{err: p.err, differs: p.differs}
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
	// Stream is config_differs when the shared stream's config is not
	// this gateway's (docs/operations-shared-stream.md); the gateway
	// serves on with the stream's.
	Stream string `json:"stream"`
	// ReplayDrops counts the cuts of the replay connection since it was
	// dialled (see upstream.ReplayConn.Drops); replays resume after one.
	ReplayDrops uint64 `json:"replay_drops"`
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
func (h *Handler) readiness(ctx context.Context) (health, probeResult) {
	hl := health{Status: "unavailable", NATS: "unknown", JetStream: "unknown", Stream: "unknown"}
	run := h.app.current()
	if run == nil {
		hl.Status = "starting"
		return hl, probeResult{}
	}
	hl.ReplayDrops = run.replay.Drops()
	status := run.conn.NC.Status()
	hl.NATS = strings.ToLower(status.String())
	if status != nats.CONNECTED {
		return hl, probeResult{}
	}
	res := h.probe.check(ctx, run.conn.JS, h.app.Stream)
	switch {
	case res.err == nil:
		hl.Status, hl.JetStream, hl.Stream = "ok", "ok", "ok"
		if res.differs {
			hl.Stream = "config_differs"
		}
		h.app.metrics.setStreamDiffers(res.differs)
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
	hl, _ := h.readiness(r.Context())
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

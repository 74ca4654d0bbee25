package ssegate

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/ssegate/ssegate/internal/version"
	"github.com/ssegate/ssegate/replay"
	"github.com/ssegate/ssegate/upstream"
)

// App is the `ssegate` Caddy app. It owns what all routes share: the NATS
// connection (kept in a usage pool, so a config reload does not drop it) and
// the JetStream stream that stores events for replay.
type App struct {
	// NATS says how to reach NATS; empty means an embedded server.
	NATS upstream.Config `json:"nats,omitzero"`
	// Stream is the JetStream stream for history and the live path.
	Stream replay.StreamConfig `json:"stream,omitzero"`
	// StartTimeout bounds connecting and preparing the stream at start.
	// Default 30s.
	StartTimeout caddy.Duration `json:"start_timeout,omitempty"`
	// ReplayConcurrency bounds the replays (each a short-lived JetStream
	// consumer) running at once; others wait their turn. Default 64.
	ReplayConcurrency int `json:"replay_concurrency,omitempty"`
	// ReplayPullBytes bounds the bytes of events one replay has in flight
	// from NATS: each pull asks for at most this much. Default 2 MiB, and
	// never less than the server's max_payload plus 4 KiB, or the largest
	// events could not be replayed.
	ReplayPullBytes int `json:"replay_pull_bytes,omitempty"`
	// ReplayBudget bounds the bytes in flight across all replays and
	// backfills. A quarter is kept for backfills; a replay beyond the rest
	// waits for its turn. Default 32 MiB, at most 48 MiB: nats-server cuts
	// a connection with more than its max_pending (64 MiB) queued.
	ReplayBudget int64 `json:"replay_budget,omitempty"`

	log     *zap.Logger
	metrics *metrics
	state   atomic.Pointer[running]
	// started is closed when Start has finished, successfully or not.
	// Caddy starts apps in no fixed order, so the HTTP servers may take
	// requests a moment before this app is ready.
	started chan struct{}
}

// running is what exists between Start and Stop.
type running struct {
	conn    *upstream.Conn
	hub     *upstream.Hub
	history *replay.History
	replay  *upstream.ReplayConn
	unwatch func()
}

// CaddyModule returns the Caddy module information.
func (*App) CaddyModule() caddy.ModuleInfo { return moduleInfo[App]("ssegate") }

// Provision checks the config. It must not dial NATS: `caddy validate` and
// `caddy adapt` run it on machines that may not reach NATS.
func (a *App) Provision(ctx caddy.Context) error {
	a.log = ctx.Logger()
	a.Stream = a.Stream.WithDefaults()
	if err := a.NATS.Validate(); err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	if err := a.Stream.Validate(); err != nil {
		return err
	}
	if a.ReplayConcurrency < 0 || a.ReplayPullBytes < 0 || a.ReplayBudget < 0 {
		return errors.New("replay_concurrency, replay_pull_bytes and replay_budget cannot be negative")
	}
	pull, budget := cmp.Or(a.ReplayPullBytes, replay.DefaultPullBytes), cmp.Or(a.ReplayBudget, replay.DefaultBudget)
	if budget < 2*int64(pull) {
		// One pull's worth for backfills, at least one for replays.
		return fmt.Errorf("replay_budget %d must hold two replays' pulls (2 × replay_pull_bytes %d)", budget, pull)
	}
	if budget > replay.MaxBudget {
		return fmt.Errorf("replay_budget %d: at most %d (48 MiB); nats-server cuts the replay connection as a slow consumer "+
			"when more than its max_pending (64 MiB by default) is queued for it", budget, replay.MaxBudget)
	}
	a.metrics = acquireMetrics(ctx.GetMetricsRegistry())
	a.started = make(chan struct{})
	return nil
}

// Start connects to NATS (or starts the embedded server) and makes sure the
// stream is ready, so a broken setup fails at startup with a clear error.
func (a *App) Start() error {
	defer close(a.started)
	conn, err := upstream.Acquire(a.NATS, a.log, a.Stream.Subjects...)
	if err != nil {
		return err
	}
	timeout := time.Duration(a.StartTimeout)
	if timeout <= 0 {
		timeout = DefaultStartTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	stream, err := replay.Ensure(ctx, conn.JS, a.Stream)
	if err != nil {
		_ = conn.Release()
		return err
	}
	a.reportStreamConfig(stream)
	history, replayConn, err := a.history(conn, stream)
	if err != nil {
		_ = conn.Release()
		return err
	}
	// Replays, recovery and head reads go over the replay connection: a
	// setup whose replay side cannot reach the stream fails here, not on
	// the first client.
	if err := replay.Retry(ctx, func(ctx context.Context) error { _, err := history.Head(ctx); return err }); err != nil {
		_ = errors.Join(replayConn.Release(), conn.Release())
		return fmt.Errorf("replay connection: %w", err)
	}
	hub, err := upstream.NewHub(conn, a.Stream, history,
		upstream.WithLogger(a.log),
		upstream.WithMetrics(a.metrics.hub()),
	)
	if err != nil {
		_ = errors.Join(replayConn.Release(), conn.Release())
		return err
	}
	unwatch := conn.Watch(a.metrics.natsWatcher())
	if conn.NC.IsConnected() {
		a.metrics.natsConnected.Set(1)
	}
	a.state.Store(&running{conn: conn, hub: hub, history: history, replay: replayConn, unwatch: unwatch})
	concurrency, pullBytes, budget := history.Limits()
	a.log.Info("ssegate ready", zap.String("version", version.String()), zap.String("stream", stream.Name), zap.String("epoch", stream.Epoch),
		zap.Int("replay_concurrency", concurrency), zap.Int("replay_pull_bytes", pullBytes), zap.Int64("replay_budget", budget))
	return nil
}

// pullOverhead is what a stored message adds to its payload in a pull:
// its subject and the reply subject that carries its position.
const pullOverhead = 4 << 10

// history opens the replay connection and the History that reads over it.
func (a *App) history(conn *upstream.Conn, stream replay.Stream) (*replay.History, *upstream.ReplayConn, error) {
	least := int(conn.NC.MaxPayload()) + pullOverhead
	pullBytes := max(replay.DefaultPullBytes, least)
	if a.ReplayPullBytes > 0 {
		if a.ReplayPullBytes < least {
			return nil, nil, fmt.Errorf("replay_pull_bytes %d cannot hold the largest event the NATS server accepts (max_payload %d); set it to at least %d",
				a.ReplayPullBytes, conn.NC.MaxPayload(), least)
		}
		pullBytes = a.ReplayPullBytes
	}
	rc, err := upstream.AcquireReplay(conn, a.log, a.metrics.replayDropped())
	if err != nil {
		return nil, nil, err
	}
	h := replay.NewHistory(rc.JS, stream, cmp.Or(a.ReplayConcurrency, DefaultReplayConcurrency),
		replay.WithPullBytes(pullBytes),
		replay.WithBudget(cmp.Or(a.ReplayBudget, replay.DefaultBudget)),
		replay.WithWaiting(a.metrics.replaysWaitingGauge()),
	)
	return h, rc, nil
}

// Stop ends every stream (each client is told to come back, with jitter)
// and gives back the NATS connection.
func (a *App) Stop() error {
	r := a.state.Swap(nil)
	if r == nil {
		return nil
	}
	r.unwatch()
	r.hub.Close()
	return errors.Join(r.replay.Release(), r.conn.Release())
}

// Cleanup gives back the shared metrics.
func (a *App) Cleanup() error {
	if a.metrics != nil {
		releaseMetrics()
	}
	return nil
}

// endSessions ends every session (open event stream), each with a retry hint; it is safe to call
// more than once and before Stop.
func (a *App) endSessions() {
	if r := a.state.Load(); r != nil {
		r.hub.Close()
	}
}

var errNotReady = errors.New("ssegate app is not running")

// current is the running state without waiting for Start: a health check
// during startup answers at once that the gateway is not ready.
func (a *App) current() *running {
	select {
	case <-a.started:
		return a.state.Load()
	default:
		return nil
	}
}

// channels counts the channels with a live subscription.
func (a *App) channels() int {
	if run := a.current(); run != nil {
		return run.hub.Channels()
	}
	return 0
}

// running returns the started app's state, waiting for Start to finish
// if it is under way.
func (a *App) running(ctx context.Context) (*running, error) {
	select {
	case <-a.started:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	r := a.state.Load()
	if r == nil {
		return nil, errNotReady
	}
	return r, nil
}

// Interface guards.
var (
	_ caddy.App          = (*App)(nil)
	_ caddy.Provisioner  = (*App)(nil)
	_ caddy.CleanerUpper = (*App)(nil)
)

// Inspection is what a running app shows of itself beyond its endpoints
// and /metrics, for the gateway-level tests in gatewaytest: the epoch that
// event ids carry and the hub's position are on no endpoint, and a test of
// resume builds ids from them and waits for the hub to reach an event, or
// to settle (know its position and read nothing back) before measuring.
type Inspection struct {
	Epoch    string
	Position uint64
	Settled  bool
	// Connected and Reconnects are the gateway's own NATS connection's
	// state now; the metrics say the same, but they are shared by every
	// config of the process, so a test reading them may see another's.
	Connected  bool
	Reconnects uint64
}

// Inspect reports the running app; false before Start or after Stop.
func (a *App) Inspect() (Inspection, bool) {
	run := a.current()
	if run == nil {
		return Inspection{}, false
	}
	return Inspection{Epoch: run.history.Epoch(), Position: run.hub.Position(), Settled: run.hub.Settled(),
		Connected: run.conn.NC.IsConnected(), Reconnects: run.conn.NC.Stats().Reconnects}, true
}

// reportStreamConfig says, loudly, that the shared stream's config is not
// this gateway's. Ensure kept the stream's: gateways share it, and the one
// that starts last must not rewrite what the others use. The health
// endpoint and the stream_config_differs gauge say so for as long as it
// lasts (see docs/operations-shared-stream.md for rolling out a change).
func (a *App) reportStreamConfig(s replay.Stream) {
	a.metrics.setStreamDiffers(len(s.Differs) > 0)
	if len(s.Differs) == 0 {
		return
	}
	a.log.Error("the stream's config differs from this gateway's: the stream's is kept and this gateway's is not applied; "+
		"change the stream itself once every gateway has the new config (docs/operations-shared-stream.md)",
		zap.String("stream", s.Name), zap.Strings("differences", s.Differs))
}

// streamDiffers says whether the stream's config, as a health check
// found it, differs from this gateway's: checked each time, so that once
// an operator has applied the change to the stream, the gateway says so.
func (a *App) streamDiffers(got jetstream.StreamConfig) bool {
	return !a.Stream.Unmanaged && len(a.Stream.Differences(got)) > 0
}

// replayDrops is how often the replay connection was cut, for health.
func (a *App) replayDrops() uint64 {
	if run := a.current(); run != nil && run.replay != nil {
		return run.replay.Drops()
	}
	return 0
}

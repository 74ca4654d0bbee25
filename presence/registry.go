package presence

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"go.uber.org/zap"

	"github.com/ssegate/ssegate/auth"
	"github.com/ssegate/ssegate/internal/kvttl"
	"github.com/ssegate/ssegate/internal/refusal"
	"github.com/ssegate/ssegate/internal/streams"
)

// Connect returns the gateway's NATS connection once it is up.
type Connect func(ctx context.Context) (*nats.Conn, jetstream.JetStream, error)

// Registry is one gateway's part of presence: it counts the gateway's
// streams, stores them in KV one entry per channel, watches the other
// gateways' entries, and announces joins and leaves.
type Registry struct {
	cfg     Config
	id      string
	log     *zap.Logger
	connect Connect
	subject func(ch string) string
	events  auth.Patterns
	visible auth.Patterns
	access  Access
	refusal refusal.Refuser

	loc  *local
	view *view
	// lost are the entries of gateways that vanished, whose users' claims
	// the worker must release.
	lostMu sync.Mutex
	lost   []*seen

	wake   chan struct{}
	health kvttl.BucketHealth
	cancel context.CancelFunc
	done   chan struct{}
}

// Option configures a Registry.
type Option func(*Registry)

// WithLogger sets the logger.
func WithLogger(l *zap.Logger) Option { return func(r *Registry) { r.log = l } }

// RefusingWith answers bad requests with the gateway's refusals: the
// same JSON, log line and count as a stream's. Without it a refusal is
// answered but neither logged nor counted.
func RefusingWith(f refusal.Refuser) Option { return func(r *Registry) { r.refusal = f } }

// WithStreamSubject maps a channel to its stream subject, where join and
// leave events go for the channels of Config.Events.
func WithStreamSubject(f func(ch string) string) Option { return func(r *Registry) { r.subject = f } }

// Authorize sets who may read the endpoint; before it, nobody may.
func (r *Registry) Authorize(a Access) { r.access = a }

// New checks cfg. It does not dial NATS: Start does, in the background.
func New(cfg Config, connect Connect, opts ...Option) (*Registry, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &Registry{cfg: cfg, id: nuid.Next(), log: zap.NewNop(), connect: connect,
		loc: newLocal(), view: newView(), wake: make(chan struct{}, 1), done: make(chan struct{})}
	var err error
	if r.events, err = auth.CompilePatterns(cfg.Events); err != nil {
		return nil, err
	}
	if r.visible, err = auth.CompilePatterns(cfg.Channels); err != nil {
		return nil, err
	}
	for _, o := range opts {
		o(r)
	}
	return r, nil
}

// Health says whether presence can reach its bucket (kvttl.State...).
// Streams do not depend on it.
func (r *Registry) Health() string { return r.health.State(r.cfg.bucket()) }

// Gateway is this gateway's id in entries and messages.
func (r *Registry) Gateway() string { return r.id }

// Path is the endpoint's path.
func (r *Registry) Path() string { return r.cfg.Path }

// Opened counts a stream (streams.Watcher).
func (r *Registry) Opened(s *streams.Info, _ func()) func() {
	if r.loc.open(s) {
		r.poke()
	}
	return func() {
		if r.loc.close(s) {
			r.poke()
		}
	}
}

func (r *Registry) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Start runs the registry until Stop.
func (r *Registry) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go r.run(ctx)
}

// Stop stops writing. The entries stay until they expire, so that clients
// moving to another gateway, or to this one's successor after a reload,
// keep their presence without a leave and a join.
func (r *Registry) Stop() {
	r.loc.stop()
	if r.cancel != nil {
		r.cancel()
		<-r.done
	}
}

// Sse-Event header of stored join and leave events.
const eventHeader = "Sse-Event"

// announcement is a join or leave message on NATS.
type announcement struct {
	Type    string `json:"type"`
	Channel string `json:"channel"`
	Sub     string `json:"sub"`
	Gateway string `json:"gateway"`
	Time    string `json:"time"`
}

// announce publishes a join or leave, and stores it in the channel's
// stream if the channel has presence events.
func (c *conn) announce(ctx context.Context, r *Registry, kind string, m member, gw string) {
	a := announcement{Type: kind, Channel: m.ch, Sub: m.sub, Gateway: gw, Time: time.Now().UTC().Format(time.RFC3339Nano)}
	b, _ := json.Marshal(a)
	if err := c.nc.Publish(r.cfg.Prefix()+".presence."+m.ch, b); err != nil {
		r.log.Warn("presence: announcing failed", zap.String("type", kind), zap.String("channel", m.ch), zap.Error(err))
	}
	if r.subject == nil || !r.events.Match(m.ch) {
		return
	}
	data, _ := json.Marshal(struct {
		Sub string `json:"sub"`
	}{m.sub})
	msg := nats.NewMsg(r.subject(m.ch))
	msg.Data = data
	msg.Header.Set(eventHeader, kind)
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	if _, err := c.js.PublishMsg(ctx, msg); err != nil {
		r.log.Warn("presence: storing event failed", zap.String("type", kind), zap.String("channel", m.ch), zap.Error(err))
	}
}

// opTimeout bounds one NATS request.
const opTimeout = 3 * time.Second

package control

import (
	"bytes"
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/ssegate/ssegate/auth"
	"github.com/ssegate/ssegate/internal/kvttl"
	"github.com/ssegate/ssegate/internal/refusal"
	"github.com/ssegate/ssegate/internal/streams"
)

// Connect returns the gateway's NATS connection once it is up.
type Connect func(ctx context.Context) (*nats.Conn, jetstream.JetStream, error)

// Service is one gateway's part of control: it knows the gateway's
// streams, ends those an action names, and holds the revocations.
type Service struct {
	cfg     Config
	log     *zap.Logger
	refusal refusal.Refuser
	connect Connect
	ctrl    *auth.Controllers

	mu      sync.Mutex
	streams map[string]*tracked

	revoked *revocations
	health  kvttl.BucketHealth
	nc      atomic.Pointer[natsConn]
	cancel  context.CancelFunc
	done    chan struct{}
}

type tracked struct {
	info *streams.Info
	kick func()
}

type natsConn struct {
	nc *nats.Conn
	js jetstream.JetStream
}

// New checks cfg; it does not dial NATS. Its endpoint answers bad
// requests with refuse.
func New(cfg Config, connect Connect, log *zap.Logger, refuse refusal.Refuser) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg, log: log, refusal: refuse, connect: connect, streams: map[string]*tracked{},
		revoked: newRevocations(), done: make(chan struct{})}
	return s, nil
}

// Authorize sets who may control over HTTP; without it nobody may.
func (s *Service) Authorize(c *auth.Controllers) { s.ctrl = c }

// Revoked is the gate's check (auth.WithRevocations).
func (s *Service) Revoked(sub, jti string, iat time.Time) bool {
	return s.revoked.revoked(sub, jti, iat)
}

// Health says whether the revocation bucket can be read.
func (s *Service) Health() string { return s.health.State(s.cfg.bucket()) }

// Path is the endpoint's prefix.
func (s *Service) Path() string { return s.cfg.Path }

// Opened tracks a stream (streams.Watcher).
func (s *Service) Opened(info *streams.Info, kick func()) func() {
	s.mu.Lock()
	s.streams[info.ID] = &tracked{info: info, kick: kick}
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		delete(s.streams, info.ID)
		s.mu.Unlock()
	}
}

// end ends this gateway's streams that a matches; it returns how many.
func (s *Service) end(kind string, a *Action) int {
	s.mu.Lock()
	var hit []func()
	for _, t := range s.streams {
		if a.matches(kind, t.info) {
			hit = append(hit, t.kick)
		}
	}
	s.mu.Unlock()
	for _, kick := range hit {
		kick()
	}
	return len(hit)
}

// Start connects in the background and runs until Stop.
func (s *Service) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go s.run(ctx)
}

// Stop ends the subscriptions and the watch.
func (s *Service) Stop() {
	if s.cancel != nil {
		s.cancel()
		<-s.done
	}
}

// run subscribes to the control subjects, then keeps the revocation
// watch open, reopening it when the bucket comes back.
func (s *Service) run(ctx context.Context) {
	defer close(s.done)
	var c *natsConn
	for c == nil {
		nc, js, err := s.connect(ctx)
		if err == nil {
			c = &natsConn{nc: nc, js: js}
			break
		}
		if !sleep(ctx, time.Second) {
			return
		}
	}
	s.nc.Store(c)
	s.health.Use(c.js)
	subs, err := s.subscribe(c.nc)
	if err != nil {
		s.log.Error("control: cannot subscribe to the control subjects", zap.String("subjects", s.cfg.Prefix()+".control.>"), zap.Error(err))
	}
	defer func() {
		for _, sub := range subs {
			_ = sub.Unsubscribe()
		}
	}()
	var stop context.CancelFunc
	for {
		if stop == nil {
			stop = s.openWatch(ctx, c.js)
		}
		if !sleep(ctx, time.Second) {
			if stop != nil {
				stop()
			}
			return
		}
		if stop != nil && s.bucketGone() {
			stop()
			stop = nil
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

// openWatch opens the bucket and watches it; nil when it cannot.
func (s *Service) openWatch(ctx context.Context, js jetstream.JetStream) context.CancelFunc {
	octx, cancel := context.WithTimeout(ctx, opTimeout)
	kv, err := kvttl.Ensure(octx, js, s.cfg.bucket(), "ssegate revocations")
	cancel()
	if err != nil {
		s.log.Warn("control: revocation bucket unavailable", zap.String("bucket", s.cfg.bucket()), zap.Error(err))
		return nil
	}
	wctx, stop := context.WithCancel(ctx)
	w, err := kv.WatchAll(wctx)
	if err != nil {
		stop()
		return nil
	}
	go s.revoked.watch(w)
	return stop
}

// bucketGone reports a deleted bucket, whose watch must be opened again
// on a new one.
func (s *Service) bucketGone() bool {
	return s.health.State(s.cfg.bucket()) == kvttl.StateBucketMissing
}

// opTimeout bounds one NATS request.
const opTimeout = 3 * time.Second

// revokeQueue is the queue group in which one gateway stores each
// revocation that a backend published on NATS.
const revokeQueue = "ssegate-revoke-store"

// storedHeader marks a revocation already stored by the gateway that took
// it over HTTP. A backend that sets it on its own only skips the storing.
const storedHeader = "Ssegate-Stored"

// subscribe applies every action on this gateway; of the gateways, one
// stores each revocation published on NATS.
func (s *Service) subscribe(nc *nats.Conn) ([]*nats.Subscription, error) {
	all, err := nc.Subscribe(s.cfg.Prefix()+".control.>", s.onAction)
	if err != nil {
		return nil, err
	}
	one, err := nc.QueueSubscribe(s.cfg.Prefix()+".control."+KindRevoke, revokeQueue, s.onRevokeStore)
	if err != nil {
		return []*nats.Subscription{all}, err
	}
	return []*nats.Subscription{all, one}, nil
}

// action reads an action from NATS; a bad one is logged and dropped.
func (s *Service) action(m *nats.Msg) (string, *Action) {
	kind := m.Subject[len(s.cfg.Prefix()+".control."):]
	if kind != KindDisconnect && kind != KindRevoke {
		s.log.Info("control: unknown action subject", zap.String("subject", m.Subject))
		return "", nil
	}
	var a Action
	dec := json.NewDecoder(bytes.NewReader(m.Data))
	dec.DisallowUnknownFields()
	if len(m.Data) > maxBody || dec.Decode(&a) != nil {
		s.log.Info("control: malformed action", zap.String("subject", m.Subject))
		return "", nil
	}
	if err := a.check(kind); err != nil {
		s.log.Info("control: invalid action", zap.String("subject", m.Subject), zap.String("id", clip(a.ID)), zap.String("detail", err.Error()))
		return "", nil
	}
	return kind, &a
}

func (s *Service) onAction(m *nats.Msg) {
	kind, a := s.action(m)
	if a == nil {
		return
	}
	if kind == KindRevoke {
		key, rec, _ := keyFor(a, s.cfg.maxLife(), time.Now())
		s.revoked.apply(key, rec)
	}
	n := s.end(kind, a)
	s.log.Info("control action", zap.String("action", kind), zap.String("id", clip(a.ID)),
		zap.String("sub", a.Sub), zap.Bool("jti", a.JTI != ""), zap.String("connection", a.Connection), zap.Int("ended", n))
}

func (s *Service) onRevokeStore(m *nats.Msg) {
	kind, a := s.action(m)
	c := s.nc.Load()
	if a == nil || kind != KindRevoke || c == nil || m.Header.Get(storedHeader) != "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if err := s.store(ctx, c.js, a); err != nil {
		s.log.Warn("control: storing a revocation failed", zap.String("id", clip(a.ID)), zap.Error(err))
	}
}

// store writes a revocation with its TTL.
func (s *Service) store(ctx context.Context, js jetstream.JetStream, a *Action) error {
	key, rec, ttl := keyFor(a, s.cfg.maxLife(), time.Now())
	b, _ := json.Marshal(rec)
	_, err := kvttl.Put(ctx, js, s.cfg.bucket(), key, b, ttl)
	return err
}

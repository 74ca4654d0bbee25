package upstream

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/ssegate/ssegate/replay"
)

// pool keeps NATS connections (and embedded servers) alive across config
// reloads: a reload provisions the new config before the old one is cleaned
// up, so the usage count never drops to zero and nothing reconnects. It has
// to be package-level, because module instances do not survive a reload.
var pool = caddy.NewUsagePool()

// Conn is a shared NATS connection. Listeners registered with Watch hear
// about disconnects, reconnects and slow-consumer drops, so that several
// hubs (old and new config during a reload) can share one connection.
type Conn struct {
	NC  *nats.Conn
	JS  jetstream.JetStream
	key string
	// urls and opts are how NC was dialled, minus its name and handlers,
	// so that Dial can open more connections the same way.
	urls []string
	opts []nats.Option
	// embedded is the in-process server, with what this connection
	// asked of it; nil for external NATS.
	embedded *embeddedServer
	auth     *serverAuth

	closed   chan struct{}
	mu       sync.Mutex
	watchers map[*Watcher]struct{}
}

// Watcher receives connection events. Every callback must return quickly.
type Watcher struct {
	Disconnected func()
	Reconnected  func()
	// Dropped is called when NATS reports that a subscription lost messages.
	Dropped func(sub *nats.Subscription)
}

// Acquire returns the pooled connection for cfg, dialling (or starting the
// embedded server) on first use. Every Acquire needs one Release.
// streamSubjects are what the embedded server lets anonymous clients and
// users without their own lists publish to; default events.>.
func Acquire(cfg Config, log *zap.Logger, streamSubjects ...string) (*Conn, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if len(streamSubjects) == 0 {
		streamSubjects = []string{replay.DefaultSubjects}
	}
	key := cfg.key(streamSubjects)
	v, _, err := pool.LoadOrNew(key, func() (caddy.Destructor, error) {
		return dial(cfg, streamSubjects, key, log)
	})
	if err != nil {
		return nil, err
	}
	return v.(*Conn), nil
}

// Release gives back a connection from Acquire; the last release closes it.
func (c *Conn) Release() error {
	_, err := pool.Delete(c.key)
	return err
}

// Destruct implements caddy.Destructor for the pool.
func (c *Conn) Destruct() error {
	// Drain lets subscriptions finish what they hold, then closes; wait
	// for it, so that an embedded server stops after its last client.
	if err := c.NC.Drain(); err != nil {
		c.NC.Close()
	}
	select {
	case <-c.closed:
	case <-time.After(5 * time.Second):
		c.NC.Close()
	}
	c.detach()
	return nil
}

// Watch registers w and returns the function that removes it.
func (c *Conn) Watch(w *Watcher) (stop func()) {
	c.mu.Lock()
	c.watchers[w] = struct{}{}
	c.mu.Unlock()
	return func() {
		c.mu.Lock()
		delete(c.watchers, w)
		c.mu.Unlock()
	}
}

func (c *Conn) each(fn func(*Watcher)) {
	c.mu.Lock()
	ws := make([]*Watcher, 0, len(c.watchers))
	for w := range c.watchers {
		ws = append(ws, w)
	}
	c.mu.Unlock()
	for _, w := range ws {
		fn(w)
	}
}

func dial(cfg Config, streamSubjects []string, key string, log *zap.Logger) (*Conn, error) {
	c := &Conn{key: key, watchers: make(map[*Watcher]struct{}), closed: make(chan struct{})}
	urls := cfg.URLs
	opts, err := cfg.options()
	if err != nil {
		return nil, err
	}
	if cfg.IsEmbedded() {
		if err := c.attach(cfg.embedded(), streamSubjects, log); err != nil {
			return nil, err
		}
		urls = []string{c.embedded.srv.ClientURL()}
		login, err := c.embedded.gatewayAuth()
		if err != nil {
			c.detach()
			return nil, err
		}
		opts = append(opts, nats.InProcessServer(c.embedded.srv), login)
	}
	c.urls, c.opts = urls, opts
	nc, err := c.Dial("ssegate", c.handlers(log)...)
	if err != nil {
		c.detach()
		return nil, fmt.Errorf("connecting to NATS: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		c.detach()
		return nil, err
	}
	c.NC, c.JS = nc, js
	log.Info("nats connected", zap.String("url", nc.ConnectedUrlRedacted()), zap.Bool("embedded", c.embedded != nil))
	return c, nil
}

// Dial opens another connection to the same NATS, with the same
// credentials, TLS and inbox prefix (in-process to the embedded server),
// named name. The caller closes it.
func (c *Conn) Dial(name string, extra ...nats.Option) (*nats.Conn, error) {
	opts := append(append(slices.Clip(c.opts), nats.Name(name)), extra...)
	return nats.Connect(strings.Join(c.urls, ","), opts...)
}

// attach starts or joins the embedded server and asks it for this
// config's users.
func (c *Conn) attach(e EmbeddedConfig, streamSubjects []string, log *zap.Logger) error {
	users, err := resolved(e.Users)
	if err != nil {
		return err
	}
	auth := &serverAuth{users: users, streamSubjects: slices.Clone(streamSubjects), anonymous: e.anonymous()}
	srv, err := acquireEmbedded(e, auth, log)
	if err != nil {
		return err
	}
	if err := srv.require(auth); err != nil {
		srv.release()
		return err
	}
	c.embedded, c.auth = srv, auth
	return nil
}

// detach gives back the embedded server; the last one stops it.
func (c *Conn) detach() {
	if c.embedded != nil {
		c.embedded.drop(c.auth)
		c.embedded.release()
	}
}

// handlers route the connection's events to the watchers.
func (c *Conn) handlers(log *zap.Logger) []nats.Option {
	return []nats.Option{
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			log.Warn("nats disconnected", zap.Error(err))
			c.each(func(w *Watcher) { call(w.Disconnected) })
		}),
		nats.ClosedHandler(func(*nats.Conn) { close(c.closed) }),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("nats reconnected", zap.String("url", nc.ConnectedUrlRedacted()))
			c.each(func(w *Watcher) { call(w.Reconnected) })
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrSlowConsumer) && sub != nil {
				c.each(func(w *Watcher) {
					if w.Dropped != nil {
						w.Dropped(sub)
					}
				})
				return
			}
			log.Warn("nats async error", zap.Error(err))
		}),
	}
}

func call(fn func()) {
	if fn != nil {
		fn()
	}
}

// options turns the config into nats.go options. Reconnects never give up:
// a gateway that stops reconnecting serves heartbeats forever and no events.
// Replies come in under InboxPrefix, where backends, which may read
// _INBOX.> for their acks, cannot read the gateway's JetStream answers.
func (cfg Config) options() ([]nats.Option, error) {
	wait := time.Duration(cfg.ReconnectWait)
	if wait <= 0 {
		wait = time.Second
	}
	opts := []nats.Option{
		nats.CustomInboxPrefix(InboxPrefix),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(wait),
		nats.RetryOnFailedConnect(false),
	}
	// Secrets may be placeholders ({env.*}, {file.*}), so that the
	// config need not hold them.
	repl := caddy.NewReplacer()
	switch {
	case cfg.User != "":
		password := repl.ReplaceKnown(cfg.Password, "")
		if password == "" {
			return nil, errors.New("nats password is empty once placeholders are replaced")
		}
		opts = append(opts, nats.UserInfo(cfg.User, password))
	case cfg.Token != "":
		token := repl.ReplaceKnown(cfg.Token, "")
		if token == "" {
			return nil, errors.New("nats token is empty once placeholders are replaced")
		}
		opts = append(opts, nats.Token(token))
	case cfg.CredsFile != "":
		opts = append(opts, nats.UserCredentials(cfg.CredsFile))
	case cfg.NKeyFile != "":
		opt, err := nats.NkeyOptionFromSeed(cfg.NKeyFile)
		if err != nil {
			return nil, fmt.Errorf("nkey_file: %w", err)
		}
		opts = append(opts, opt)
	}
	if t := cfg.TLS; t != nil {
		if t.CA != "" {
			opts = append(opts, nats.RootCAs(t.CA))
		}
		if t.Cert != "" {
			opts = append(opts, nats.ClientCert(t.Cert, t.Key))
		}
		if t.ServerName != "" {
			name := t.ServerName
			opts = append(opts, nats.Secure(), func(o *nats.Options) error {
				o.TLSConfig.ServerName = name
				return nil
			})
		} else {
			opts = append(opts, nats.Secure())
		}
	}
	return opts, nil
}

package upstream

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
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
	NC     *nats.Conn
	JS     jetstream.JetStream
	server *server.Server
	key    string

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
func Acquire(cfg Config, log *zap.Logger) (*Conn, error) {
	key := cfg.key()
	v, _, err := pool.LoadOrNew(key, func() (caddy.Destructor, error) {
		return dial(cfg, key, log)
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
	if c.server != nil {
		c.server.Shutdown()
		c.server.WaitForShutdown()
	}
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

func dial(cfg Config, key string, log *zap.Logger) (*Conn, error) {
	c := &Conn{key: key, watchers: make(map[*Watcher]struct{}), closed: make(chan struct{})}
	urls := cfg.URLs
	if cfg.IsEmbedded() {
		srv, err := startEmbedded(cfg.embedded(), log)
		if err != nil {
			return nil, err
		}
		c.server = srv
		urls = []string{srv.ClientURL()}
	}
	opts, err := cfg.options(log)
	if err != nil {
		c.shutdownServer()
		return nil, err
	}
	opts = append(opts,
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
	)
	nc, err := nats.Connect(strings.Join(urls, ","), opts...)
	if err != nil {
		c.shutdownServer()
		return nil, fmt.Errorf("connecting to NATS: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		c.shutdownServer()
		return nil, err
	}
	c.NC, c.JS = nc, js
	log.Info("nats connected", zap.String("url", nc.ConnectedUrlRedacted()), zap.Bool("embedded", c.server != nil))
	return c, nil
}

func (c *Conn) shutdownServer() {
	if c.server != nil {
		c.server.Shutdown()
	}
}

func call(fn func()) {
	if fn != nil {
		fn()
	}
}

// options turns the config into nats.go options. Reconnects never give up:
// a gateway that stops reconnecting serves heartbeats forever and no events.
func (cfg Config) options(log *zap.Logger) ([]nats.Option, error) {
	wait := time.Duration(cfg.ReconnectWait)
	if wait <= 0 {
		wait = time.Second
	}
	opts := []nats.Option{
		nats.Name("ssegate"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(wait),
		nats.RetryOnFailedConnect(false),
	}
	switch {
	case cfg.User != "":
		opts = append(opts, nats.UserInfo(cfg.User, cfg.Password))
	case cfg.Token != "":
		opts = append(opts, nats.Token(cfg.Token))
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

func startEmbedded(e EmbeddedConfig, log *zap.Logger) (*server.Server, error) {
	host, port, err := e.hostPort()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(e.StoreDir, 0o700); err != nil {
		return nil, fmt.Errorf("embedded nats store_dir: %w", err)
	}
	srv, err := server.NewServer(&server.Options{
		ServerName: "ssegate-embedded",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   e.StoreDir,
		NoSigs:     true,
	})
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	srv.SetLoggerV2(zapLogger{log.Named("nats-server").Sugar()}, false, false, false)
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("embedded nats did not start on %s (port in use?)", e.Listen)
	}
	log.Info("embedded nats-server started", zap.String("listen", srv.ClientURL()), zap.String("store_dir", e.StoreDir))
	return srv, nil
}

// zapLogger adapts nats-server's logger interface to zap.
type zapLogger struct{ s *zap.SugaredLogger }

func (l zapLogger) Noticef(f string, v ...any) { l.s.Infof(f, v...) }
func (l zapLogger) Warnf(f string, v ...any)   { l.s.Warnf(f, v...) }
func (l zapLogger) Fatalf(f string, v ...any)  { l.s.Errorf(f, v...) }
func (l zapLogger) Errorf(f string, v ...any)  { l.s.Errorf(f, v...) }
func (l zapLogger) Debugf(f string, v ...any)  { l.s.Debugf(f, v...) }
func (l zapLogger) Tracef(f string, v ...any)  { l.s.Debugf(f, v...) }

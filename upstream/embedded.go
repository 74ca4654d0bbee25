package upstream

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"go.uber.org/zap"
)

// embeddedServer is the in-process nats-server, pooled by its store
// directory apart from the client connections. A reload that changes the
// connection (reconnect_wait, users) dials a new in-process connection to
// the same server instead of starting a second server on the same port
// and store, which fails on the port and would corrupt the store.
type embeddedServer struct {
	srv      *server.Server
	key      string
	listen   string
	storeDir string
	log      *zap.Logger
	// The server's own users are nkeys, not passwords: nats-server warns
	// about plaintext passwords at start, and nobody configured these.
	// gateway signs the gateway's in-process connection; it is random per
	// server, never logged, and exists only in memory.
	gateway nkeys.KeyPair
	// anonymousKey is the public nkey of the user that clients without
	// credentials become; its seed is thrown away, so nobody signs as it.
	anonymousKey string

	mu sync.Mutex
	// auths holds what each connection on this server asked for, in the
	// order they came; the newest is applied. So a reload applies the new
	// users, and a reload that fails puts the old ones back.
	auths   []*serverAuth
	applied *serverAuth
}

// serverAuth is the part of the server's options a reload may change.
type serverAuth struct {
	users          []EmbeddedUser // passwords resolved
	streamSubjects []string
	// anonymous lets clients without credentials in, with the backend role.
	anonymous bool
}

// acquireEmbedded starts the server for e with auth, or returns the
// running one. Every call needs one release.
func acquireEmbedded(e EmbeddedConfig, auth *serverAuth, log *zap.Logger) (*embeddedServer, error) {
	store, err := filepath.Abs(e.StoreDir)
	if err != nil {
		return nil, fmt.Errorf("embedded nats store_dir: %w", err)
	}
	key := "ssegate.embedded:" + store
	v, _, err := pool.LoadOrNew(key, func() (caddy.Destructor, error) {
		return startEmbedded(e, key, auth, log)
	})
	if err != nil {
		return nil, err
	}
	s := v.(*embeddedServer)
	if s.listen != e.Listen {
		s.release()
		return nil, fmt.Errorf("embedded nats: store_dir %s is in use by the server listening on %s; "+
			"changing listen to %s needs a restart of Caddy", store, s.listen, e.Listen)
	}
	return s, nil
}

func (s *embeddedServer) release() { _, _ = pool.Delete(s.key) }

// Destruct implements caddy.Destructor: the last release stops the server.
func (s *embeddedServer) Destruct() error {
	s.srv.Shutdown()
	s.srv.WaitForShutdown()
	s.gateway.Wipe()
	return nil
}

func startEmbedded(e EmbeddedConfig, key string, auth *serverAuth, log *zap.Logger) (*embeddedServer, error) {
	if err := os.MkdirAll(e.StoreDir, 0o700); err != nil {
		return nil, fmt.Errorf("embedded nats store_dir: %w", err)
	}
	s := &embeddedServer{
		key:      key,
		listen:   e.Listen,
		storeDir: e.StoreDir,
		log:      log,
		applied:  auth,
	}
	if err := s.createKeys(); err != nil {
		return nil, err
	}
	opts, err := s.options(auth)
	if err != nil {
		return nil, err
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	srv.SetLoggerV2(newServerLog(log), false, false, false)
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("embedded nats did not start on %s (port in use?)", e.Listen)
	}
	s.srv = srv
	log.Info("embedded nats-server started", zap.String("listen", srv.ClientURL()),
		zap.String("store_dir", e.StoreDir), zap.Bool("anonymous_publish", auth.anonymous))
	return s, nil
}

// createKeys makes the server's own nkeys, once per server, so that a
// reload does not count them as changed users.
func (s *embeddedServer) createKeys() error {
	gw, err := nkeys.CreateUser()
	if err != nil {
		return fmt.Errorf("embedded nats: %w", err)
	}
	anon, err := nkeys.CreateUser()
	if err != nil {
		return fmt.Errorf("embedded nats: %w", err)
	}
	defer anon.Wipe()
	if s.anonymousKey, err = anon.PublicKey(); err != nil {
		return fmt.Errorf("embedded nats: %w", err)
	}
	s.gateway = gw
	return nil
}

// gatewayAuth is the in-process connection's login: it signs the server's
// nonce with the gateway's nkey.
func (s *embeddedServer) gatewayAuth() (nats.Option, error) {
	pub, err := s.gateway.PublicKey()
	if err != nil {
		return nil, err
	}
	return nats.Nkey(pub, s.gateway.Sign), nil
}

// options builds the whole option set; reloads diff it against the
// running one, so it must come out the same apart from the users.
func (s *embeddedServer) options(a *serverAuth) (*server.Options, error) {
	host, port, err := EmbeddedConfig{Listen: s.listen}.hostPort()
	if err != nil {
		return nil, err
	}
	gw, err := s.gateway.PublicKey()
	if err != nil {
		return nil, err
	}
	o := &server.Options{
		ServerName: "ssegate-embedded",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   s.storeDir,
		NoSigs:     true,
		Nkeys: []*server.NkeyUser{{
			Nkey:                   gw,
			AllowedConnectionTypes: map[string]struct{}{jwt.ConnectionTypeInProcess: {}},
		}},
	}
	if a.anonymous {
		o.Nkeys = append(o.Nkeys, &server.NkeyUser{
			Nkey:        s.anonymousKey,
			Permissions: backendRole(a.streamSubjects),
		})
		o.NoAuthUser = s.anonymousKey
	}
	for _, u := range a.users {
		perms := u.permissions(a.streamSubjects)
		if u.NKey != "" {
			o.Nkeys = append(o.Nkeys, &server.NkeyUser{Nkey: u.NKey, Permissions: perms})
			continue
		}
		o.Users = append(o.Users, &server.User{Username: u.User, Password: u.Password, Permissions: perms})
	}
	return o, nil
}

// require registers what a connection needs from the server and applies
// it; drop gives it back.
func (s *embeddedServer) require(a *serverAuth) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.apply(a); err != nil {
		return err
	}
	s.auths = append(s.auths, a)
	return nil
}

func (s *embeddedServer) drop(a *serverAuth) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, have := range s.auths {
		if have == a {
			s.auths = append(s.auths[:i], s.auths[i+1:]...)
			break
		}
	}
	if len(s.auths) == 0 {
		return
	}
	if err := s.apply(s.auths[len(s.auths)-1]); err != nil {
		s.log.Error("embedded nats: restoring the previous users", zap.Error(err))
	}
}

// apply reloads the running server's users when they differ. Clients
// whose user is gone or whose permissions shrank are told so by the
// server; the gateway's own user never changes.
func (s *embeddedServer) apply(a *serverAuth) error {
	if reflect.DeepEqual(a, s.applied) {
		return nil
	}
	opts, err := s.options(a)
	if err != nil {
		return err
	}
	if err := s.srv.ReloadOptions(opts); err != nil {
		return fmt.Errorf("embedded nats: applying users: %w", err)
	}
	s.applied = a
	s.log.Info("embedded nats-server users applied", zap.Int("users", len(a.users)), zap.Bool("anonymous_publish", a.anonymous))
	return nil
}

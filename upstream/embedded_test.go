package upstream

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ssegate/ssegate/replay"
)

// embeddedConfig is an embedded server on a free loopback port.
func embeddedConfig(t *testing.T, users ...EmbeddedUser) Config {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return Config{Embedded: &EmbeddedConfig{Listen: addr, StoreDir: t.TempDir(), Users: users}}
}

// acquire takes a connection that the test gives back, with the stream.
func acquire(t *testing.T, cfg Config) *Conn {
	t.Helper()
	conn, err := Acquire(cfg, zap.NewNop(), replay.DefaultSubjects)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Release() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := replay.Ensure(ctx, conn.JS, replay.StreamConfig{Storage: "memory"}.WithDefaults()); err != nil {
		t.Fatal(err)
	}
	return conn
}

// canPublish reports whether a client with opts gets in and has a
// JetStream publish to subject acknowledged.
func canPublish(t *testing.T, url, subject string, opts ...nats.Option) error {
	t.Helper()
	nc, err := nats.Connect(url, append(opts, nats.MaxReconnects(0))...)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err = js.Publish(ctx, subject, []byte("x"))
	return err
}

func TestEmbeddedUsers(t *testing.T) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := kp.PublicKey()
	t.Setenv("SSEGATE_TEST_NATS_PASSWORD", "s3cret-from-env")
	conn := acquire(t, embeddedConfig(t,
		EmbeddedUser{User: "backend", Password: "{env.SSEGATE_TEST_NATS_PASSWORD}"},
		EmbeddedUser{NKey: pub, Publish: []string{"events.orders.>"}},
	))
	url := "nats://" + conn.embedded.listen
	nkey := nats.Nkey(pub, kp.Sign)

	allowed := []struct {
		name, subject string
		opts          []nats.Option
	}{
		{"password from the environment", "events.demo", []nats.Option{nats.UserInfo("backend", "s3cret-from-env")}},
		{"nkey within its list", "events.orders.1", []nats.Option{nkey}},
		{"anonymous on loopback", "events.demo", nil},
	}
	for _, tt := range allowed {
		if err := canPublish(t, url, tt.subject, tt.opts...); err != nil {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
	refused := []struct {
		name, subject string
		opts          []nats.Option
	}{
		{"wrong password", "events.demo", []nats.Option{nats.UserInfo("backend", "guess")}},
		{"the placeholder itself as password", "events.demo", []nats.Option{nats.UserInfo("backend", "{env.SSEGATE_TEST_NATS_PASSWORD}")}},
		{"nkey outside its list", "events.demo", []nats.Option{nkey}},
		{"the gateway's nkey over TCP, even signing with it", "events.demo", []nats.Option{gatewayLogin(t, conn)}},
	}
	for _, tt := range refused {
		if err := canPublish(t, url, tt.subject, tt.opts...); err == nil {
			t.Errorf("%s: published", tt.name)
		}
	}
	if inbox := conn.NC.NewInbox(); !strings.HasPrefix(inbox, InboxPrefix+".") {
		t.Errorf("the gateway's inbox %q is not under %s", inbox, InboxPrefix)
	}
}

// TestEmbeddedUsersFollowReloads: a changed config reuses the running
// server, applies its users, and a config that goes away (a reload that
// failed) puts the previous users back.
func TestEmbeddedUsersFollowReloads(t *testing.T) {
	base := embeddedConfig(t, EmbeddedUser{User: "a", Password: "pa"})
	url := "nats://" + base.Embedded.Listen
	as := func(user string) nats.Option { return nats.UserInfo(user, "p"+user) }
	connA := acquire(t, base)
	heldA, err := nats.Connect(url, as("a"), nats.MaxReconnects(0))
	if err != nil {
		t.Fatal(err)
	}
	defer heldA.Close()

	next := base
	next.ReconnectWait = caddy.Duration(2 * time.Second)
	next.Embedded = &EmbeddedConfig{Listen: base.Embedded.Listen, StoreDir: base.Embedded.StoreDir, Users: []EmbeddedUser{{User: "b", Password: "pb"}}}
	connB, err := Acquire(next, zap.NewNop(), replay.DefaultSubjects)
	if err != nil {
		t.Fatalf("second config on the same server: %v", err)
	}
	if connB == connA || connB.embedded != connA.embedded {
		t.Fatal("want a new connection to the same server")
	}
	check := func(when string, in, out string) {
		t.Helper()
		if err := canPublish(t, url, "events.x", as(in)); err != nil {
			t.Errorf("%s: user %s: %v", when, in, err)
		}
		if err := canPublish(t, url, "events.x", as(out)); err == nil {
			t.Errorf("%s: user %s still gets in", when, out)
		}
	}
	check("after the reload", "b", "a")
	deadline := time.Now().Add(5 * time.Second)
	for heldA.IsConnected() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if heldA.IsConnected() {
		t.Error("a client of the removed user stayed connected")
	}

	if err := connA.Release(); err != nil {
		t.Fatal(err)
	}
	check("after the old config left", "b", "a")
	if err := connB.NC.Flush(); err != nil {
		t.Fatalf("the new config's connection: %v", err)
	}

	failed := next
	failed.Embedded = &EmbeddedConfig{Listen: next.Embedded.Listen, StoreDir: next.Embedded.StoreDir, Users: []EmbeddedUser{{User: "c", Password: "pc"}}}
	connC, err := Acquire(failed, zap.NewNop(), replay.DefaultSubjects)
	if err != nil {
		t.Fatal(err)
	}
	check("during the failing reload", "c", "b")
	_ = connC.Release()
	check("after the failed reload", "b", "c")

	moved := embeddedConfig(t)
	moved.Embedded.StoreDir = next.Embedded.StoreDir
	if _, err := Acquire(moved, zap.NewNop()); err == nil || !strings.Contains(err.Error(), "needs a restart") {
		t.Errorf("a second listen on the same store: %v", err)
	}

	_ = connB.Release()
	if _, err := nats.Connect(url, as("b"), nats.MaxReconnects(0)); err == nil {
		t.Error("the server outlived its last connection")
	}
}

// TestEmbeddedAnonymousOff: with anonymous off, only users get in.
func gatewayLogin(t *testing.T, conn *Conn) nats.Option {
	t.Helper()
	login, err := conn.embedded.gatewayAuth()
	if err != nil {
		t.Fatal(err)
	}
	return login
}

// TestNoPlaintextPasswordWarning: a server whose only users are its own
// (the gateway and, on loopback, the anonymous publisher) starts without
// nats-server's "Plaintext passwords detected" warning, which the user
// could do nothing about. A configured plaintext password still warns.
func TestNoPlaintextPasswordWarning(t *testing.T) {
	for _, tt := range []struct {
		name  string
		users []EmbeddedUser
		warn  bool
	}{
		{"no users", nil, false},
		{"a bcrypt password", []EmbeddedUser{{User: "backend", Password: "$2a$11$M9eOxDCsnBHThsYHbjE2HeYBbjqSdlrpA2ZkwEZpw5tmw1kx3oHDS"}}, false},
		{"a plaintext password", []EmbeddedUser{{User: "backend", Password: "pw"}}, true},
	} {
		core, logs := observer.New(zapcore.InfoLevel)
		conn, err := Acquire(embeddedConfig(t, tt.users...), zap.New(core), replay.DefaultSubjects)
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.Release()
		if got := logs.FilterMessageSnippet("Plaintext passwords").Len() > 0; got != tt.warn {
			t.Errorf("%s: plaintext password warning %v, want %v", tt.name, got, tt.warn)
		}
		if logs.FilterMessage("embedded nats-server started").Len() != 1 {
			t.Errorf("%s: the server did not start; log: %v", tt.name, logs.All())
		}
	}
}

func TestEmbeddedAnonymousOff(t *testing.T) {
	cfg := embeddedConfig(t, EmbeddedUser{User: "backend", Password: "pw"})
	off := false
	cfg.Embedded.Anonymous = &off
	conn := acquire(t, cfg)
	url := "nats://" + conn.embedded.listen
	if err := canPublish(t, url, "events.demo"); err == nil {
		t.Error("an anonymous client published")
	}
	if err := canPublish(t, url, "events.demo", nats.UserInfo("backend", "pw")); err != nil {
		t.Errorf("the user: %v", err)
	}
}

// TestDialAnother: Dial opens another connection the same way as the
// gateway's own, in-process to the embedded server with its rights.
func TestDialAnother(t *testing.T) {
	conn := acquire(t, embeddedConfig(t))
	nc, err := conn.Dial("ssegate-replay")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if nc.Opts.Name != "ssegate-replay" || nc.Opts.InProcessServer == nil {
		t.Errorf("name %q, in-process %v", nc.Opts.Name, nc.Opts.InProcessServer != nil)
	}
	if inbox := nc.NewInbox(); !strings.HasPrefix(inbox, InboxPrefix+".") {
		t.Errorf("inbox %q", inbox)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := js.Stream(ctx, replay.DefaultStreamName); err != nil {
		t.Errorf("the second connection cannot read the stream: %v", err)
	}
}

// TestEmptySecretsAreRefused: a password placeholder whose variable is
// unset is an error at start, not an attempt with an empty password.
func TestEmptySecretsAreRefused(t *testing.T) {
	const unset = "{env.SSEGATE_TEST_UNSET_VARIABLE}"
	for name, cfg := range map[string]Config{
		"external password": {URLs: []string{"nats://127.0.0.1:1"}, User: "u", Password: unset},
		"external token":    {URLs: []string{"nats://127.0.0.1:1"}, Token: unset},
		"embedded user":     embeddedConfig(t, EmbeddedUser{User: "backend", Password: unset}),
	} {
		_, err := Acquire(cfg, zap.NewNop())
		if err == nil || !strings.Contains(err.Error(), "empty once placeholders are replaced") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

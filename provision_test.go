package ssegate

import (
	"context"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/ssegate/ssegate/internal/testkit"
	"github.com/ssegate/ssegate/replay"
	"github.com/ssegate/ssegate/upstream"
)

// validHandler is a handler as Provision leaves it, linked to an app whose
// stream has the defaults (subjects events.>), without a caddy.Context.
func validHandler(h *Handler, stream replay.StreamConfig) error {
	h.app = &App{Stream: stream.WithDefaults()}
	re, err := compileChannelPattern(h.ChannelPattern)
	if err != nil {
		return err
	}
	h.channelRE = re
	return h.Validate()
}

func TestHandlerValidate(t *testing.T) {
	tests := []struct {
		name   string
		h      Handler
		stream replay.StreamConfig // defaults added
		want   string              // "" means valid
	}{
		{name: "defaults", h: Handler{}},
		{name: "every field", h: Handler{
			ChannelParam: "ch", Subject: "events.app.{channel}", ChannelPattern: `^[a-z]+(\.[a-z]+)*$`,
			MaxChannels: 4, Public: []string{"news", "status.>"}, Heartbeat: caddy.Duration(time.Second),
			Retry: caddy.Duration(time.Second), QueueSize: 8, WriteTimeout: caddy.Duration(time.Second), ReplayLimit: 100,
		}},
		{name: "fixed channels", h: Handler{Channels: []string{"news", "alerts.global"}}},
		{name: "placeholder", h: Handler{ChannelPlaceholder: "{http.regexp.ch.1}"}},
		{name: "custom stream subjects", h: Handler{Subject: "app.{channel}"}, stream: replay.StreamConfig{Subjects: []string{"app.>"}}},
		{name: "subject with channel in the middle", h: Handler{Subject: "events.{channel}.updates"}},

		{name: "subject without channel", h: Handler{Subject: "events.all"}, want: `subject "events.all" must contain {channel} exactly once`},
		{name: "subject with channel twice", h: Handler{Subject: "events.{channel}.{channel}"}, want: "must contain {channel} exactly once"},
		{name: "subject outside the stream", h: Handler{Subject: "other.{channel}"}, want: `which stream "SSEGATE" (subjects [events.>]) does not store`},
		{name: "default subject outside a custom stream", h: Handler{}, stream: replay.StreamConfig{Subjects: []string{"app.>"}}, want: `subject "events.{channel}" maps channels to subjects like "events.x"`},
		{name: "fixed channel with a * wildcard", h: Handler{Channels: []string{"news", "alerts.*"}}, want: `channels: invalid_channel: channel "alerts.*" is not a valid channel name`},
		{name: "fixed channel with a > wildcard", h: Handler{Channels: []string{">"}}, want: `channel ">" is not a valid channel name`},
		{name: "fixed channel against channel_pattern", h: Handler{ChannelPattern: "^[a-z]+$", Channels: []string{"News"}}, want: `channel "News" is not a valid channel name`},
		{name: "placeholder with fixed channels", h: Handler{ChannelPlaceholder: "{http.regexp.ch.1}", Channels: []string{"news"}}, want: "channel_placeholder and channels are exclusive"},
		{name: "max_channels at the replay's bound", h: Handler{MaxChannels: 256}},
		{name: "max_channels past the replay's bound", h: Handler{MaxChannels: 257}, want: "max_channels 257: at most 256"},
		{name: "negative queue_size", h: Handler{QueueSize: -1}, want: "cannot be negative"},
		{name: "negative heartbeat", h: Handler{Heartbeat: caddy.Duration(-time.Second)}, want: "cannot be negative"},
		{name: "subject with an empty token", h: Handler{Subject: "events..{channel}"}, want: "subject"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			testkit.CheckError(t, validHandler(&tt.h, tt.stream), tt.want)
		})
	}
}

// deadNATS is a listener that counts connections, posing as a NATS server
// that never answers, so a test can tell that nothing dialed it.
func deadNATS(t *testing.T) (url string, accepted *atomic.Int32) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	accepted = new(atomic.Int32)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	return "nats://" + l.Addr().String(), accepted
}

func provisionApp(t *testing.T, a *App) error {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	return a.Provision(ctx)
}

// testNKey is a public user nkey, valid and unused; testSeed a seed.
const (
	testNKey = "UCCJTZCNUONCWBFTFQRF2XB3C3PNCTV7JCY4EZCB5R7G6EVQ4VCSHGRI"
	testSeed = "SUACSSL3UAHUDXKFSNVUZRF5UHPMWZ6BFDTJ7M6USDXIEDNPPQYYYCU3VY"
)

// TestAppProvisionOffline: `caddy adapt --validate` and `caddy validate`
// provision the app on machines that may not reach NATS, so Provision must
// check the config without dialing, and refuse bad combinations itself.
func TestAppProvisionOffline(t *testing.T) {
	t.Run("unreachable urls", func(t *testing.T) {
		url, accepted := deadNATS(t)
		a := &App{NATS: upstream.Config{
			URLs:          []string{"nats://127.0.0.1:1", url},
			User:          "gateway",
			Password:      "s3cret",
			TLS:           &upstream.TLSConfig{CA: "/nonexistent/ca.pem", Cert: "/nonexistent/c.pem", Key: "/nonexistent/k.pem"},
			ReconnectWait: caddy.Duration(time.Second),
		}}
		start := time.Now()
		if err := provisionApp(t, a); err != nil {
			t.Fatalf("Provision: %v", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("Provision took %v; it looks like it waited on the network", d)
		}
		// Give a stray background dial the time to land before looking.
		time.Sleep(100 * time.Millisecond)
		if n := accepted.Load(); n != 0 {
			t.Errorf("Provision opened %d connection(s) to NATS", n)
		}
		if a.state.Load() != nil {
			t.Error("Provision left the app running; only Start may connect")
		}
		if a.Stream.Name != replay.DefaultStreamName || len(a.Stream.Subjects) != 1 || a.Stream.Subjects[0] != replay.DefaultSubjects {
			t.Errorf("stream = %+v, want the defaults filled in", a.Stream)
		}
	})

	valid := []struct {
		name string
		app  *App // a pointer: App holds an atomic and must not be copied
	}{
		{"embedded by default", &App{}},
		{"embedded with listen and store_dir", &App{NATS: upstream.Config{Embedded: &upstream.EmbeddedConfig{Listen: "127.0.0.1:14222", StoreDir: t.TempDir()}}}},
		{"token", &App{NATS: upstream.Config{URLs: []string{"nats://127.0.0.1:1"}, Token: "t"}}},
		{"creds_file", &App{NATS: upstream.Config{URLs: []string{"nats://127.0.0.1:1"}, CredsFile: "/nonexistent.creds"}}},
		{"nkey_file with tls ca only", &App{NATS: upstream.Config{URLs: []string{"nats://127.0.0.1:1"}, NKeyFile: "/nonexistent.nk", TLS: &upstream.TLSConfig{CA: "/nonexistent/ca.pem"}}}},
		{"embedded on all interfaces with a user", &App{NATS: upstream.Config{Embedded: &upstream.EmbeddedConfig{Listen: "0.0.0.0:14222", Users: []upstream.EmbeddedUser{{User: "backend", Password: "s3cret"}}}}}},
		{"embedded nkey user with lists", &App{NATS: upstream.Config{Embedded: &upstream.EmbeddedConfig{Users: []upstream.EmbeddedUser{{NKey: testNKey, Publish: []string{"events.>"}, Subscribe: []string{"_INBOX.>"}}}}}}},
		{"embedded on localhost without users", &App{NATS: upstream.Config{Embedded: &upstream.EmbeddedConfig{Listen: "localhost:14222"}}}},
		{"embedded on ::1 without users", &App{NATS: upstream.Config{Embedded: &upstream.EmbeddedConfig{Listen: "[::1]:14222"}}}},
		{"replay budgets", &App{ReplayConcurrency: 8, ReplayPullBytes: 4 << 20, ReplayBudget: 8 << 20}},
		{"unmanaged custom stream", &App{Stream: replay.StreamConfig{Name: "EVENTS", Subjects: []string{"app.>"}, RepublishPrefix: "live", Storage: "memory", Replicas: 3, Unmanaged: true}}},
	}
	for _, tt := range valid {
		t.Run(tt.name, func(t *testing.T) {
			if err := provisionApp(t, tt.app); err != nil {
				t.Fatalf("Provision: %v", err)
			}
		})
	}

	nats := func(c upstream.Config) *App { return &App{NATS: c} }
	embedded := func(e upstream.EmbeddedConfig) *App { return nats(upstream.Config{Embedded: &e}) }
	embeddedUsers := func(u ...upstream.EmbeddedUser) *App { return embedded(upstream.EmbeddedConfig{Users: u}) }
	on := true
	urls := []string{"nats://127.0.0.1:1"}
	invalid := []struct {
		name string
		app  *App
		want string
	}{
		{"embedded and urls", nats(upstream.Config{URLs: urls, Embedded: &upstream.EmbeddedConfig{}}), "nats: embedded and urls are exclusive"},
		{"user without password", nats(upstream.Config{URLs: urls, User: "u"}), "nats: user and password go together"},
		{"password without user", nats(upstream.Config{URLs: urls, Password: "p"}), "nats: user and password go together"},
		{"user and token", nats(upstream.Config{URLs: urls, User: "u", Password: "p", Token: "t"}), "nats: choose one of user/password, token, creds_file and nkey_file"},
		{"creds_file and nkey_file", nats(upstream.Config{URLs: urls, CredsFile: "/a.creds", NKeyFile: "/a.nk"}), "nats: choose one of"},
		{"tls cert without key", nats(upstream.Config{URLs: urls, TLS: &upstream.TLSConfig{Cert: "/c.pem"}}), "nats: tls cert and key go together"},
		{"tls key without cert", nats(upstream.Config{URLs: urls, TLS: &upstream.TLSConfig{Key: "/k.pem"}}), "nats: tls cert and key go together"},
		{"credentials for the embedded server", nats(upstream.Config{Token: "t"}), "the embedded server needs none"},
		{"tls for the embedded server", nats(upstream.Config{TLS: &upstream.TLSConfig{CA: "/ca.pem"}}), "the embedded server needs none"},
		{"bad embedded listen", nats(upstream.Config{Embedded: &upstream.EmbeddedConfig{Listen: "4222"}}), `embedded listen "4222"`},
		{"password for the embedded server", nats(upstream.Config{Password: "p"}), "the embedded server needs none"},
		{"embedded on all interfaces without users", embedded(upstream.EmbeddedConfig{Listen: "0.0.0.0:4222"}), `embedded listen "0.0.0.0:4222" is reachable from other hosts, and the embedded server has no users, so anyone could publish; add a user`},
		{"embedded on every address without users", embedded(upstream.EmbeddedConfig{Listen: ":4222"}), "or listen on 127.0.0.1"},
		{"embedded on a host name without users", embedded(upstream.EmbeddedConfig{Listen: "nats.internal:4222"}), "reachable from other hosts"},
		{"embedded anonymous on all interfaces", embedded(upstream.EmbeddedConfig{Listen: "0.0.0.0:4222", Anonymous: &on, Users: []upstream.EmbeddedUser{{User: "a", Password: "s3cret"}}}), `embedded anonymous on: only for a loopback listen, not "0.0.0.0:4222"`},
		{"embedded user without password", embeddedUsers(upstream.EmbeddedUser{User: "backend"}), `embedded user "backend": password is required`},
		{"embedded user with user and nkey", embeddedUsers(upstream.EmbeddedUser{User: "backend", Password: "s3cret", NKey: testNKey}), "give user and password, or nkey, not both"},
		{"embedded user without name", embeddedUsers(upstream.EmbeddedUser{Password: "s3cret"}), "needs a user name or an nkey"},
		{"embedded nkey not a user key", embeddedUsers(upstream.EmbeddedUser{NKey: "UABC"}), `embedded nkey "UABC": not a public user nkey`},
		{"embedded nkey seed instead of public key", embeddedUsers(upstream.EmbeddedUser{NKey: testSeed}), "that is a seed, which stays with the client"},
		{"embedded nkey with password", embeddedUsers(upstream.EmbeddedUser{NKey: testNKey, Password: "s3cret"}), "takes no password"},
		{"embedded user with a reserved name", embeddedUsers(upstream.EmbeddedUser{User: "_ssegate_gateway", Password: "s3cret"}), "reserved"},
		{"embedded user twice", embeddedUsers(upstream.EmbeddedUser{User: "a", Password: "s3cret"}, upstream.EmbeddedUser{User: "a", Password: "s3cret2"}), `embedded user "a" is given more than once`},
		{"embedded user bad publish subject", embeddedUsers(upstream.EmbeddedUser{User: "a", Password: "s3cret", Publish: []string{"events..x"}}), `"events..x" is not a NATS subject`},
		{"embedded user bad subscribe subject", embeddedUsers(upstream.EmbeddedUser{User: "a", Password: "s3cret", Subscribe: []string{"a.>.b"}}), `"a.>.b" is not a NATS subject`},
		{"stream replicas", &App{Stream: replay.StreamConfig{Replicas: 6}}, "stream replicas 6: want 1 to 5"},
		{"stream storage", &App{Stream: replay.StreamConfig{Storage: "disk"}}, `stream storage "disk": want file or memory`},
		{"stream loops through republish", &App{Stream: replay.StreamConfig{Subjects: []string{">"}}}, "would loop"},
		{"negative replay_budget", &App{ReplayBudget: -1}, "cannot be negative"},
		{"negative replay_pull_bytes", &App{ReplayPullBytes: -1}, "cannot be negative"},
		{"replay_budget below two pulls", &App{ReplayPullBytes: 4 << 20, ReplayBudget: 6 << 20}, "must hold two replays' pulls"},
		{"replay_budget below two default pulls", &App{ReplayBudget: 3 << 20}, "replay_budget 3145728 must hold two replays' pulls (2 × replay_pull_bytes 2097152)"},
		{"replay_pull_bytes beyond half the default budget", &App{ReplayPullBytes: 20 << 20}, "replay_budget 33554432 must hold"},
		{"replay_budget at nats-server's max_pending", &App{ReplayBudget: 64 << 20}, "replay_budget 67108864: at most 50331648"},
	}
	for _, tt := range invalid {
		t.Run(tt.name, func(t *testing.T) {
			err := provisionApp(t, tt.app)
			if err == nil {
				t.Fatalf("Provision succeeded; want an error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Provision: %q does not contain %q", err, tt.want)
			}
			for _, secret := range []string{"s3cret", testSeed} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("Provision: %q holds a secret", err)
				}
			}
		})
	}
}

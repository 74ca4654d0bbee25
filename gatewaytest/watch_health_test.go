package gatewaytest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/ssegate/ssegate/internal/natstest"
)

// flows publishes on demo and waits for the stream to carry it.
func flows(t *testing.T, g *gateway, lines <-chan string, data string) {
	t.Helper()
	publish(t, g.js(), "events.demo", "", data)
	awaitLine(t, lines, "data: "+data, 5*time.Second)
}

// TestWatchBucketsDeletedHealthSaysSoStreamsFlow: with both buckets
// deleted under it, health names them, keeps status ok, and streams go on.
func TestWatchBucketsDeletedHealthSaysSoStreamsFlow(t *testing.T) {
	g := watchGateway(t, nil, "")
	eventually(t, 5*time.Second, "buckets ok", func() bool {
		h := getHealth(t, g.httpURL).body
		return h.Presence == "ok" && h.Revocations == "ok"
	})
	alice := token(t, jwt.MapClaims{"sub": "alice", "channels": []string{"demo"}})
	lines, _ := openRaw(t, g, []string{"demo"}, bearerHeader(alice))
	for _, b := range []string{"ssegate_presence", "ssegate_revoked"} {
		if err := g.js().DeleteKeyValue(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
	var presenceSeen, revocationsSeen bool
	eventually(t, 5*time.Second, "health names the missing buckets", func() bool {
		h := getHealth(t, g.httpURL)
		if h.status != 200 || h.body.Status != "ok" {
			t.Fatalf("status %d %q: a missing bucket must not take the gateway out", h.status, h.body.Status)
		}
		presenceSeen = presenceSeen || h.body.Presence == "bucket_missing"
		revocationsSeen = revocationsSeen || h.body.Revocations == "bucket_missing"
		return presenceSeen && revocationsSeen
	})
	flows(t, g, lines, "after the buckets went")
	open(t, g.h1Client(), eventsURL(g.httpURL, []string{"demo"}, nil), bearerHeader(alice))
	// Both come back on their own.
	eventually(t, 15*time.Second, "buckets back", func() bool {
		h := getHealth(t, g.httpURL).body
		return h.Presence == "ok" && h.Revocations == "ok"
	})
}

// TestWatchBucketsDeniedHealthSaysSoStreamsFlow: a NATS user that may
// not touch the buckets: health says unavailable, streams are served,
// and revocation checks do not hold requests up beyond their first wait.
func TestWatchBucketsDeniedHealthSaysSoStreamsFlow(t *testing.T) {
	var deny []string
	for _, b := range []string{"ssegate_presence", "ssegate_revoked"} {
		deny = append(deny, "$KV."+b+".>", "$JS.API.*.*.KV_"+b, "$JS.API.*.*.KV_"+b+".>", "$JS.API.*.*.*.KV_"+b+".>")
	}
	ns := natstest.Server(t, func(o *server.Options) {
		o.Users = []*server.User{{Username: "gw", Password: "gw-password-0123456789", Permissions: &server.Permissions{
			Publish: &server.SubjectPermission{Allow: []string{">"}, Deny: deny},
		}}, {Username: "admin", Password: "admin-password-0123456789"}}
	})
	cfg := watchConfig("")
	cfg.nats = map[string]any{"urls": []string{ns.ClientURL()}, "user": "gw", "password": "gw-password-0123456789"}
	g := startGateway(t, ns, cfg)
	eventually(t, 10*time.Second, "health names the unreachable buckets", func() bool {
		h := getHealth(t, g.httpURL)
		return h.status == 200 && h.body.Presence == "unavailable" && h.body.Revocations == "unavailable"
	})
	alice := token(t, jwt.MapClaims{"sub": "alice", "channels": []string{"room.1"}})
	start := time.Now()
	for range 3 {
		open(t, g.h1Client(), eventsURL(g.httpURL, []string{"room.1"}, nil), bearerHeader(alice))
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("three admissions took %v", d)
	}
	lines, _ := openRaw(t, g, []string{"demo"}, nil)
	publishAs(t, ns, "admin", "admin-password-0123456789", "events.demo", "flowing")
	for l := range lines {
		if l == "data: flowing" {
			return
		}
		if strings.HasPrefix(l, ": end") {
			t.Fatalf("stream ended: %s", l)
		}
	}
}

func publishAs(t *testing.T, ns *server.Server, user, pass, subject, data string) {
	t.Helper()
	nc, js := natstest.Connect(t, ns, nats.UserInfo(user, pass))
	defer nc.Close()
	publish(t, js, subject, "", data)
}

// TestEmbeddedControlNeedsPermission: on the embedded server, an anonymous
// local client (a backend's default rights) can neither control streams
// nor hear presence; a user given ssegate.control.> and
// ssegate.presence.> can do both.
func TestEmbeddedControlNeedsPermission(t *testing.T) {
	addr := freePort(t)
	cfg := watchConfig("")
	cfg.nats = map[string]any{"embedded": map[string]any{
		"listen": addr, "store_dir": t.TempDir(), "anonymous": true,
		"users": []any{map[string]any{"user": "ops", "password": "ops-password-0123456789",
			"publish": []string{"ssegate.control.>"}, "subscribe": []string{"ssegate.presence.>"}}},
	}}
	g := startGateway(t, nil, cfg)
	alice := token(t, jwt.MapClaims{"sub": "alice", "channels": []string{"room.1"}})
	lines, _ := openRaw(t, g, []string{"room.1"}, bearerHeader(alice))

	denied := make(violations, 16)
	anon, err := nats.Connect("nats://"+addr, denied.option())
	if err != nil {
		t.Fatal(err)
	}
	defer anon.Close()
	if _, err := anon.SubscribeSync("ssegate.presence.>"); err != nil {
		t.Fatal(err)
	}
	denied.expect(t, "anonymous presence subscription", "ssegate.presence.>")
	if err := anon.Publish("ssegate.control.disconnect", []byte(`{"sub":"alice"}`)); err != nil {
		t.Fatal(err)
	}
	denied.expect(t, "anonymous disconnect", "ssegate.control.disconnect")

	ops, err := nats.Connect("nats://"+addr, nats.UserInfo("ops", "ops-password-0123456789"))
	if err != nil {
		t.Fatal(err)
	}
	defer ops.Close()
	if err := ops.Publish("ssegate.control.disconnect", []byte(`{"sub":"alice"}`)); err != nil {
		t.Fatal(err)
	}
	endsDisconnected(t, lines, 2*time.Second)
}

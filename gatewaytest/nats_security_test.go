package gatewaytest

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/golang-jwt/jwt/v5"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ssegate/ssegate/internal/natstest"
	"github.com/ssegate/ssegate/internal/testkit"
	"github.com/ssegate/ssegate/upstream"
)

// violations collects a connection's asynchronous errors, where nats-server
// reports denied publishes and subscriptions.
type violations chan error

func (v violations) option() nats.Option {
	return nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		select {
		case v <- err:
		default:
		}
	})
}

// expect waits for the server to deny something on subject.
func (v violations) expect(t *testing.T, what, subject string) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case err := <-v:
			msg := strings.ToLower(err.Error())
			if strings.Contains(msg, "permissions violation") && strings.Contains(msg, strings.ToLower(subject)) {
				return
			}
		case <-deadline:
			t.Fatalf("%s: no permissions violation for %q", what, subject)
		}
	}
}

// withTickets is a handler config with a ticket endpoint and public demo.
func withTickets() map[string]any {
	return map[string]any{"public": []string{"demo"}, "auth": map[string]any{
		"hmac_keys":   []any{map[string]any{"secret": testSecret}},
		"ticket_path": "/events/ticket",
	}}
}

// checkPublishOnly tries, as a backend connected with nc, everything the
// issue lists, and checks that only publishing events works: events flow,
// a replay works, a ticket is redeemed, and no live event can be forged,
// no private channel read, no stream purged, no spent ticket revived.
// admin, with full rights, looks at what the backend tried to change.
func checkPublishOnly(t *testing.T, g *gateway, nc *nats.Conn, denied violations, admin jetstream.JetStream) {
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	demo := open(t, g.h1Client(), eventsURL(g.httpURL, []string{"demo"}, nil), nil)
	publish(t, js, "events.demo", "", "one")
	first := demo.next(t, 5*time.Second)
	if first.Data != "one" {
		t.Fatalf("demo got %+v", first)
	}
	if err := nc.Publish("events.demo", []byte("two")); err != nil { // core publish
		t.Fatal(err)
	}
	two := demo.next(t, 5*time.Second)
	if two.Data != "two" {
		t.Fatalf("demo got %+v", two)
	}
	// A replay from the first event.
	again := open(t, g.h1Client(), eventsURL(g.httpURL, []string{"demo"}, url.Values{"last_event_id": {first.LastEventID}}), nil)
	if ev := again.next(t, 5*time.Second); ev.Data != "two" || ev.LastEventID != two.LastEventID {
		t.Fatalf("replay got %+v, want %+v", ev, two)
	}

	bearer := token(t, jwt.MapClaims{"sub": "alice", "channels": []string{"user.{sub}"}})
	ticketURL := eventsURL(g.httpURL, []string{"user.alice"}, url.Values{"ticket": {mintTicket(t, g, bearer, "user.alice")}})
	alice := open(t, g.h1Client(), ticketURL, nil)

	// Forged live events, directly and as the reply subject of a
	// JetStream publish (the stream's ack then lands on the live subject).
	for _, subj := range []string{"ssegate.live.events.user.alice", "ssegate.live.events.demo"} {
		if err := nc.Publish(subj, []byte("forged")); err != nil {
			t.Fatal(err)
		}
		denied.expect(t, "forging a live event", subj)
	}
	// The same trick against the JetStream API: the ack would read as a
	// purge up to its sequence. The API ignores it.
	for _, reply := range []string{"ssegate.live.events.user.alice", "$JS.API.STREAM.PURGE.SSEGATE", "$JS.API.STREAM.DELETE.SSEGATE"} {
		if err := nc.PublishMsg(&nats.Msg{Subject: "events.other", Reply: reply, Data: []byte("x")}); err != nil {
			t.Fatal(err)
		}
	}
	// Reading a private channel, or the gateway's replies.
	for _, subj := range []string{"ssegate.live.events.user.alice", "ssegate.live.>", upstream.InboxPrefix + ".>", "$KV.>"} {
		sub, err := nc.SubscribeSync(subj)
		if err != nil {
			t.Fatal(err)
		}
		denied.expect(t, "subscribing", subj)
		defer sub.Unsubscribe()
	}
	publish(t, js, "events.user.alice", "", "real")
	if ev := alice.next(t, 5*time.Second); ev.Data != "real" {
		t.Fatalf("alice got %+v; want only the real event", ev)
	}
	publish(t, js, "events.demo", "", "three")
	if ev := demo.next(t, 5*time.Second); ev.Data != "three" {
		t.Fatalf("demo got %+v; want only the real event", ev)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := admin.KeyValue(ctx, "ssegate_tickets")
	if err != nil {
		t.Fatal(err)
	}
	spent, err := kv.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	keys := 0
	for key := range spent.Keys() {
		keys++
		del := nats.NewMsg("$KV.ssegate_tickets." + key)
		del.Header.Set("KV-Operation", "DEL")
		if err := nc.PublishMsg(del); err != nil {
			t.Fatal(err)
		}
		denied.expect(t, "deleting a spent ticket's key", del.Subject)
	}
	if keys == 0 {
		t.Fatal("no spent ticket in the bucket")
	}
	// Purging or changing the stream or the bucket, through the JetStream API.
	for _, subj := range []string{
		"$JS.API.STREAM.PURGE.SSEGATE", "$JS.API.STREAM.DELETE.SSEGATE", "$JS.API.STREAM.UPDATE.SSEGATE",
		"$JS.API.STREAM.PURGE.KV_ssegate_tickets", "$JS.API.STREAM.MSG.DELETE.SSEGATE",
	} {
		if err := nc.Publish(subj, []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
		denied.expect(t, "using the JetStream API", subj)
	}
	short, cancelShort := context.WithTimeout(ctx, time.Second)
	defer cancelShort()
	if _, err := js.Stream(short, "SSEGATE"); err == nil {
		t.Error("the backend could read the stream's info")
	}

	stream, err := admin.Stream(ctx, "SSEGATE")
	if err != nil {
		t.Fatal(err)
	}
	if st := stream.CachedInfo().State; st.Msgs < 4 || st.FirstSeq != 1 {
		t.Errorf("stream state %+v; something purged it", st)
	}
	if resp, _ := getAnswer(t, g, ticketURL); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a spent ticket got %d on reuse; want 401", resp.StatusCode)
	}
}

// TestProductionNATSPermissions runs the gateway against a nats-server
// configured with the users of docs/security.md, verbatim: the gateway works through
// them, and the backend user can publish events and nothing more.
func TestProductionNATSPermissions(t *testing.T) {
	conf := filepath.Join("..", "testdata", "nats-production.conf")
	checkDocHolds(t, conf, filepath.Join("..", "docs", "security.md"))
	gatewayPass, backendPass := "gateway-"+rand.Text(), "backend-"+rand.Text()
	t.Setenv("SSEGATE_NATS_PASSWORD", gatewayPass)
	t.Setenv("BACKEND_NATS_PASSWORD", backendPass)
	controllerPass := "controller-" + rand.Text()
	t.Setenv("CONTROLLER_NATS_PASSWORD", controllerPass)
	opts, err := server.ProcessConfigFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	opts.Host, opts.Port, opts.StoreDir, opts.NoLog, opts.NoSigs = "127.0.0.1", -1, t.TempDir(), true, true
	// The test's own eyes; not part of the documented set.
	adminPass := rand.Text()
	opts.Users = append(opts.Users, &server.User{Username: "test-admin", Password: adminPass})
	ns := natstest.Start(t, opts)
	logFile := caddyLogFile(t)
	handler := withTickets()
	handler["health_path"] = "/events/health"
	handler["presence"] = map[string]any{"path": "/events/presence", "events": []string{"demo"}}
	handler["control"] = map[string]any{"path": "/events/control", "keys": []string{testControlKey}}
	g := startGateway(t, ns, gatewayConfig{noTLS: true, handler: handler, logFile: logFile, nats: map[string]any{
		"urls": []string{ns.ClientURL()}, "user": "ssegate", "password": "{env.SSEGATE_NATS_PASSWORD}",
		"reconnect_wait": int64(50 * time.Millisecond),
	}})
	if _, err := nats.Connect(ns.ClientURL()); err == nil {
		t.Fatal("an anonymous client got in")
	}
	denied := make(violations, 64)
	nc, err := nats.Connect(ns.ClientURL(), nats.UserInfo("backend", backendPass), denied.option())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	checkPublishOnly(t, g, nc, denied, adminJS(t, ns.ClientURL(), adminPass))
	controller, err := nats.Connect(ns.ClientURL(), nats.UserInfo("controller", controllerPass))
	if err != nil {
		t.Fatal(err)
	}
	defer controller.Close()
	checkPresenceAndControl(t, g, controller)

	// Everything the gateway did was allowed: it reports no violation.
	logs, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(strings.ToLower(string(logs)), "permissions violation") {
		t.Errorf("the gateway hit a permissions violation; the permission set of docs/security.md is short of something:\n%s", grepLines(string(logs), "iolation"))
	}
	if strings.Contains(string(logs), gatewayPass) {
		t.Error("the gateway's NATS password is in the logs")
	}
}

// TestEmbeddedAnonymousPublishOnly: on the embedded server, a local
// client without credentials (a backend, cmd/publish) may publish events
// and nothing more. The test looks at what it tried to change as a user
// of its own with every right; with a user configured, anonymous access
// is on only when asked for; that it is on by default on a loopback
// listener without users is upstream's TestEmbeddedAnonymousOnWithUsers,
// and the role is the same either way.
func TestEmbeddedAnonymousPublishOnly(t *testing.T) {
	addr := freePort(t)
	adminPass := rand.Text()
	admin := []any{map[string]any{"user": "test-admin", "password": adminPass, "publish": []string{">"}, "subscribe": []string{">"}}}
	g := startGateway(t, nil, gatewayConfig{noTLS: true, handler: withTickets(), nats: map[string]any{
		"embedded": map[string]any{"listen": addr, "store_dir": t.TempDir(), "users": admin, "anonymous": true},
	}})
	denied := make(violations, 64)
	nc, err := nats.Connect("nats://"+addr, denied.option())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	checkPublishOnly(t, g, nc, denied, adminJS(t, "nats://"+addr, adminPass))
}

// adminJS is a JetStream handle of the test's own user with every right,
// test-admin, to look at the state an attacker tried to change.
func adminJS(t *testing.T, url, password string) jetstream.JetStream {
	t.Helper()
	_, js := natstest.ConnectURL(t, url, nats.UserInfo("test-admin", password))
	return js
}

// TestEmbeddedOpenListenRefused: an embedded server reachable from other
// hosts needs users; the error names the fix, and nothing starts.
func TestEmbeddedOpenListenRefused(t *testing.T) {
	for _, listen := range []string{"0.0.0.0:" + strconv.Itoa(testkit.FreePorts(t, 1)[0]), ":" + strconv.Itoa(testkit.FreePorts(t, 1)[0])} {
		cfg := `{"admin": {"disabled": true, "config": {"persist": false}},
			"apps": {"ssegate": {"nats": {"embedded": {"listen": "` + listen + `", "store_dir": "` + t.TempDir() + `"}}}}}`
		err := caddy.Load([]byte(cfg), true)
		if err == nil {
			_ = caddy.Stop()
			t.Fatalf("listen %s without users started", listen)
		}
		for _, want := range []string{"reachable from other hosts", "add a user", "listen on 127.0.0.1"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("listen %s: error %q does not say %q", listen, err, want)
			}
		}
	}
}

func grepLines(s, sub string) string {
	var out []string
	for line := range strings.Lines(s) {
		if strings.Contains(line, sub) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "")
}

// checkDocHolds fails when the documentation's copy of a config file
// differs from the file the tests run.
func checkDocHolds(t *testing.T, file, doc string) {
	t.Helper()
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(text), "```\n"+string(want)+"```\n") {
		t.Errorf("%s does not hold %s verbatim in a code block", doc, file)
	}
}

// TestReloadWithChangedNATSBlock: a reload that changes the global NATS
// block keeps the embedded server (its port, store and clients) and applies
// the new users; streams carry on from where they were.
func TestReloadWithChangedNATSBlock(t *testing.T) {
	addr, store := freePort(t), t.TempDir()
	natsBlock := func(wait time.Duration, users ...map[string]any) map[string]any {
		e := map[string]any{"listen": addr, "store_dir": store}
		if len(users) > 0 {
			// The test's publisher has no credentials: with users, it
			// gets in only when anonymous is on explicitly.
			e["users"], e["anonymous"] = users, true
		}
		return map[string]any{"embedded": e, "reconnect_wait": int64(wait)}
	}
	g := startGateway(t, nil, gatewayConfig{noTLS: true, nats: natsBlock(time.Second)})
	pub, js := natstest.ConnectURL(t, "nats://"+addr, nats.MaxReconnects(-1))
	s := open(t, g.h1Client(), eventsURL(g.httpURL, []string{"demo"}, nil), nil)
	for i, block := range []map[string]any{
		natsBlock(2*time.Second, map[string]any{"user": "backend", "password": "pw1"}),
		natsBlock(2*time.Second, map[string]any{"user": "backend", "password": "pw2", "publish": []string{"events.demo"}}),
	} {
		data := fmt.Sprint("before reload ", i)
		publish(t, js, "events.demo", "", data)
		ev := s.next(t, 5*time.Second)
		if ev.Data != data {
			t.Fatalf("got %+v, want %q", ev, data)
		}

		g = startGateway(t, nil, gatewayConfig{noTLS: true, nats: block})
		// The old config's stream ends; the client comes back with its id.
		s = open(t, g.h1Client(), eventsURL(g.httpURL, []string{"demo"}, url.Values{"last_event_id": {ev.LastEventID}}), nil)
		data = fmt.Sprint("after reload ", i)
		publish(t, js, "events.demo", "", data)
		if ev := s.next(t, 5*time.Second); ev.Data != data {
			t.Fatalf("after reload %d got %+v, want %q first", i, ev, data)
		}
		password := block["embedded"].(map[string]any)["users"].([]map[string]any)[0]["password"].(string)
		backend, err := nats.Connect("nats://"+addr, nats.UserInfo("backend", password), nats.MaxReconnects(0))
		if err != nil {
			t.Fatalf("after reload %d the new user cannot connect: %v", i, err)
		}
		backend.Close()
	}
	if n := pub.Stats().Reconnects; n != 0 || !pub.IsConnected() {
		t.Errorf("a publisher reconnected %d times: the embedded server restarted", n)
	}
	if _, err := nats.Connect("nats://"+addr, nats.UserInfo("backend", "pw1"), nats.MaxReconnects(0)); err == nil {
		t.Error("the replaced password still works")
	}
}

package gatewaytest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/ssegate/ssegate"
	"github.com/ssegate/ssegate/replay"
	"github.com/ssegate/ssegate/upstream"
)

// otherGateway starts a second gateway's app on ns's stream, with stream
// config cfg, beside the Caddy under test: only one Caddy runs in a
// process, so the app runs outside it, through its public face.
func otherGateway(t *testing.T, url string, cfg replay.StreamConfig) error {
	t.Helper()
	a := &ssegate.App{NATS: upstream.Config{URLs: []string{url}}, Stream: cfg}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	if err := a.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	err := a.Start()
	if err == nil {
		t.Cleanup(func() { _ = a.Stop(); _ = a.Cleanup() })
	}
	return err
}

// TestGatewaysSharingAStreamKeepItsConfig: a second gateway with another
// max_age keeps the stream's, and says so in its log, its health and a
// metric; one with another republish_prefix refuses to start. Neither
// takes the live path from the first gateway's clients.
func TestGatewaysSharingAStreamKeepItsConfig(t *testing.T) {
	ns := natsServer(t)
	g := startGateway(t, ns, gatewayConfig{noTLS: true, handler: map[string]any{"health_path": "/events/health"}})
	s := open(t, g.h1Client(), eventsURL(g.httpURL, []string{"shared"}, nil), nil)

	if err := otherGateway(t, ns.ClientURL(), replay.StreamConfig{Storage: "memory", MaxAge: caddy.Duration(time.Minute)}); err != nil {
		t.Fatalf("a gateway with another max_age: %v", err)
	}
	err := otherGateway(t, ns.ClientURL(), replay.StreamConfig{Storage: "memory", MaxAge: caddy.Duration(time.Minute), RepublishPrefix: "other.live"})
	if err == nil || !strings.Contains(err.Error(), "other.live") {
		t.Fatalf("a gateway with another republish_prefix started: %v", err)
	}

	st := gatewayStream(t, g.js())
	if c := st.CachedInfo().Config; c.MaxAge != replay.DefaultMaxAge || c.RePublish.Destination != "ssegate.live.>" {
		t.Fatalf("the stream was rewritten: max_age %v, republish %q", c.MaxAge, c.RePublish.Destination)
	}
	publish(t, g.js(), "events.shared", "", "still live")
	if ev := s.next(t, 5*time.Second); ev.Data != "still live" {
		t.Fatalf("the first gateway's client got %+v", ev)
	}
	// The first gateway's own health: its config is the stream's.
	if h := getHealth(t, g.httpURL); h.body.Stream != "ok" {
		t.Fatalf("health %+v", h.body)
	}
	// A gateway (here the reloaded one) whose config differs says so in
	// its health, and serves on.
	g = startGateway(t, ns, gatewayConfig{noTLS: true, handler: map[string]any{"health_path": "/events/health"}, stream: map[string]any{"max_age": int64(time.Minute)}})
	if h := getHealth(t, g.httpURL); h.status != 200 || h.body.Stream != "config_differs" {
		t.Fatalf("health of a gateway whose config differs: %d %+v", h.status, h.body)
	}
	if g.metric("ssegate_stream_config_differs") != 1 {
		t.Fatal("stream_config_differs is not 1")
	}
}

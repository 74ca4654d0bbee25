package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ssegate/ssegate/auth"
	"github.com/ssegate/ssegate/internal/natstest"
)

// Minted tokens against the gateway's own checks (package auth), with
// their defaults.

// TestTicketAccepted checks the default -ticket against the gateway's own
// checks with their defaults: the gateway redeems it once.
func TestTicketAccepted(t *testing.T) {
	t.Setenv("SSEGATE_JWT_SECRET", testSecret)
	ns := natstest.Server(t)
	_, js := natstest.Connect(t, ns)
	gate, err := auth.NewGate(auth.Config{HMACKeys: []auth.HMACKey{{Secret: testSecret}}},
		auth.WithJetStream(func(context.Context) (jetstream.JetStream, error) { return js, nil }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = gate.Close() })
	tok, _, _ := mint(t, testSecret, "-sub", "alice", "-channel", "user.{sub}", "-ticket")
	admit := func() *auth.Error {
		r, err := http.NewRequest(http.MethodGet, "/events?channel=user.alice&ticket="+url.QueryEscape(tok), nil)
		if err != nil {
			t.Fatal(err)
		}
		a, e := gate.Admit(r, []string{"user.alice"})
		if a != nil {
			a.Release()
		}
		return e
	}
	if e := admit(); e != nil {
		t.Fatalf("the gateway refused the default ticket: %v", e)
	}
	if e := admit(); e == nil || e.Code != auth.CodeTicketUsed {
		t.Fatalf("second use: %v, want ticket_used", e)
	}
}

// TestPublishGrant: -publish (repeatable) becomes the gateway's publish
// claim, which its publish endpoint honours for the patterns named and no
// others; without it, a token grants no publishing.
func TestPublishGrant(t *testing.T) {
	t.Setenv("SSEGATE_JWT_SECRET", testSecret)
	gate, err := auth.NewGate(auth.Config{HMACKeys: []auth.HMACKey{{Secret: testSecret}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = gate.Close() })
	pubs, err := gate.Publishers(nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, claims, _ := mint(t, testSecret, "-sub", "backend", "-publish", "demo", "-publish", "orders.*")
	if got := fmt.Sprint(claims["publish"]); got != "[demo orders.*]" {
		t.Errorf("publish claim %s, want [demo orders.*]", got)
	}
	readOnly, _, _ := mint(t, testSecret, "-sub", "alice", "-channel", "demo")
	for _, tt := range []struct {
		tok, channel string
		want         string // "" for allowed, else the refusal's code
	}{
		{tok, "demo", ""},
		{tok, "orders.eu", ""},
		{tok, "orders.eu.paris", auth.CodeChannelForbidden},
		{tok, "user.alice", auth.CodeChannelForbidden},
		{readOnly, "demo", auth.CodeForbidden},
	} {
		r, err := http.NewRequest(http.MethodPost, "/events/publish?channel="+tt.channel, nil)
		if err != nil {
			t.Fatal(err)
		}
		r.Header.Set("Authorization", "Bearer "+tt.tok)
		_, e := pubs.Authorize(r, tt.channel)
		switch {
		case tt.want == "" && e != nil:
			t.Errorf("publishing to %s: refused with %v", tt.channel, e)
		case tt.want != "" && (e == nil || e.Code != tt.want):
			t.Errorf("publishing to %s: %v, want %s", tt.channel, e, tt.want)
		}
	}
}

package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ssegate/ssegate/auth"
	"github.com/ssegate/ssegate/internal/devsecret"
	"github.com/ssegate/ssegate/internal/natstest"
	"github.com/ssegate/ssegate/internal/version"
)

const testSecret = "a-test-secret-that-is-long-enough-for-hs256"

func TestBadArguments(t *testing.T) {
	for _, tt := range []struct {
		args   []string
		secret string // SSEGATE_JWT_SECRET
		want   string
	}{
		{nil, testSecret, "-sub is required"},
		{[]string{"-ttl", "x", "-sub", "a"}, testSecret, "invalid value"},
		{[]string{"-sub", "a", "-nosuchflag"}, testSecret, "flag provided but not defined"},
		{[]string{"-sub", "a", "-ttl", "-1s"}, testSecret, "-ttl cannot be negative"},
		{[]string{"-sub", "a", "user.a"}, testSecret, `unexpected argument "user.a"`},
		{[]string{"-sub", "a", "-publish", ""}, testSecret, "an empty pattern grants nothing"},
		{[]string{"-sub", "a", "-channel", " "}, testSecret, "an empty pattern grants nothing"},
		{[]string{"-sub", "a", "-ticket", "-publish", "demo"}, testSecret, "-ticket and -publish exclude each other"},
		// Set but empty or short: the gateway would answer invalid_token.
		{[]string{"-sub", "a"}, "", "SSEGATE_JWT_SECRET is 0 bytes"},
		{[]string{"-sub", "a"}, "short", "SSEGATE_JWT_SECRET is 5 bytes"},
	} {
		t.Setenv("SSEGATE_JWT_SECRET", tt.secret)
		var stdout bytes.Buffer
		err := run(tt.args, &stdout, new(bytes.Buffer))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("run(%q) = %v, want an error mentioning %q", tt.args, err, tt.want)
		}
		if stdout.Len() > 0 {
			t.Errorf("run(%q) printed %q on an error", tt.args, stdout.String())
		}
	}
}

// mint runs the command and parses the token it prints with secret.
func mint(t *testing.T, secret string, args ...string) (string, jwt.MapClaims, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if err := run(args, &stdout, &stderr); err != nil {
		t.Fatalf("run(%q): %v", args, err)
	}
	tok := strings.TrimSpace(stdout.String())
	claims := jwt.MapClaims{}
	if _, err := jwt.ParseWithClaims(tok, claims, func(*jwt.Token) (any, error) { return []byte(secret), nil },
		jwt.WithValidMethods([]string{"HS256"})); err != nil {
		t.Fatalf("parsing %q: %v", tok, err)
	}
	return tok, claims, stderr.String()
}

func lifetime(t *testing.T, c jwt.MapClaims) time.Duration {
	t.Helper()
	iat, err1 := c.GetIssuedAt()
	exp, err2 := c.GetExpirationTime()
	if err1 != nil || err2 != nil || iat == nil || exp == nil {
		t.Fatalf("claims %v: no iat or exp", c)
	}
	return exp.Sub(iat.Time)
}

func TestLifetimes(t *testing.T) {
	t.Setenv("SSEGATE_JWT_SECRET", testSecret)
	for _, tt := range []struct {
		args     []string
		want     time.Duration
		ticket   bool
		warnings string
	}{
		{[]string{"-sub", "a"}, time.Hour, false, ""},
		{[]string{"-sub", "a", "-ttl", "5m"}, 5 * time.Minute, false, ""},
		{[]string{"-sub", "a", "-ticket"}, 30 * time.Second, true, ""},
		{[]string{"-sub", "a", "-ticket", "-ttl", "10s"}, 10 * time.Second, true, ""},
		{[]string{"-sub", "a", "-ticket", "-ttl", "2m"}, 2 * time.Minute, true, "ticket_max_lifetime"},
	} {
		_, claims, stderr := mint(t, testSecret, tt.args...)
		if got := lifetime(t, claims); got != tt.want {
			t.Errorf("run(%q): lifetime %v, want %v", tt.args, got, tt.want)
		}
		if _, ok := claims["jti"]; ok != tt.ticket {
			t.Errorf("run(%q): jti present %v, want %v", tt.args, ok, tt.ticket)
		}
		if tt.warnings == "" && stderr != "" || !strings.Contains(stderr, tt.warnings) {
			t.Errorf("run(%q): stderr %q, want %q", tt.args, stderr, tt.warnings)
		}
	}
}

func TestDevelopmentSecret(t *testing.T) {
	// The command must see the variable unset, not empty; t.Setenv
	// restores it afterwards.
	t.Setenv("SSEGATE_JWT_SECRET", "")
	if err := os.Unsetenv("SSEGATE_JWT_SECRET"); err != nil {
		t.Fatal(err)
	}
	_, claims, stderr := mint(t, devsecret.Secret, "-sub", "a", "-channel", "user.{sub}")
	if !strings.Contains(stderr, "development secret") {
		t.Errorf("stderr %q does not say the development secret signed the token", stderr)
	}
	if claims["sub"] != "a" {
		t.Errorf("claims %v", claims)
	}
}

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

func TestVersion(t *testing.T) {
	var stdout bytes.Buffer
	// -version needs neither -sub nor a secret.
	t.Setenv("SSEGATE_JWT_SECRET", "short")
	if err := run([]string{"-version"}, &stdout, new(bytes.Buffer)); err != nil {
		t.Fatal(err)
	}
	if got, want := stdout.String(), "token: ssegate "+version.Release+"\n"; got != want {
		t.Errorf("-version printed %q, want %q", got, want)
	}
}

package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ssegate/ssegate/internal/devsecret"
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

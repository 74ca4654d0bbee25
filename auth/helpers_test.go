package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/golang-jwt/jwt/v5"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ssegate/ssegate/internal/natstest"
)

const (
	testSecret = "test-secret-that-is-long-enough-0123456789"
	testAud    = "ssegate"
	testIss    = "https://idp.test"
)

// testNow is fixed per process run but close to real time, because the
// NATS server's TTLs run on the real clock.
func testNow() time.Time { return time.Now().Truncate(time.Second) }

func pemPublic(t testing.TB, pub crypto.PublicKey) string {
	t.Helper()
	return pemEncode(t, "PUBLIC KEY", x509.MarshalPKIXPublicKey, pub)
}

func pemPrivate(t testing.TB, priv crypto.PrivateKey) string {
	t.Helper()
	return pemEncode(t, "PRIVATE KEY", x509.MarshalPKCS8PrivateKey, priv)
}

// pemEncode is key as PEM of type typ, in the DER that marshal makes.
func pemEncode(t testing.TB, typ string, marshal func(any) ([]byte, error), key any) string {
	t.Helper()
	der, err := marshal(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
}

func genEd(t testing.TB) ed25519.PrivateKey {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func genEC(t testing.TB) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func genRSA(t testing.TB) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// tok signs claims; "kid" in hdr goes to the header.
func tok(t testing.TB, m jwt.SigningMethod, key any, c jwt.MapClaims, kid string) string {
	t.Helper()
	tk := jwt.NewWithClaims(m, c)
	if kid != "" {
		tk.Header["kid"] = kid
	}
	s, err := tk.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// claimsFor is a valid claim set at now; override by setting keys.
// hmacToken is c signed with the test secret, as hmacConfig verifies.
func hmacToken(t testing.TB, c jwt.MapClaims) string {
	t.Helper()
	return tok(t, jwt.SigningMethodHS256, []byte(testSecret), c, "")
}

func claimsFor(now time.Time, sub string, channels ...string) jwt.MapClaims {
	return jwt.MapClaims{
		"sub": sub, "aud": testAud, "iss": testIss,
		"iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(),
		"channels": channels,
	}
}

type logs = *observer.ObservedLogs

func newTestGate(t testing.TB, cfg Config, now time.Time, opts ...Option) (*Gate, logs) {
	t.Helper()
	core, obs := observer.New(zapcore.DebugLevel)
	opts = append([]Option{WithLogger(zap.New(core)), WithClock(func() time.Time { return now })}, opts...)
	g, err := NewGate(cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Close() })
	return g, obs
}

// ticketConfig is hmacConfig with a ticket endpoint.
func ticketConfig() Config {
	cfg := hmacConfig()
	cfg.TicketPath = "/events/ticket"
	return cfg
}

func hmacConfig() Config {
	return Config{
		HMACKeys: []HMACKey{{Secret: testSecret}},
		Audience: []string{testAud},
		Issuer:   testIss,
		Public:   []string{"demo", "news.*"},
	}
}

func req(method, target string, hdr ...string) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Add(hdr[i], hdr[i+1])
	}
	return r
}

func bearer(token string) []string { return []string{"Authorization", "Bearer " + token} }

// assertNoSecrets fails if any log entry, message or field, contains one
// of the secrets.
func assertNoSecrets(t *testing.T, obs logs, secrets ...string) {
	t.Helper()
	for _, e := range obs.All() {
		b, _ := json.Marshal(e.ContextMap())
		text := e.Message + " " + string(b)
		for _, s := range secrets {
			if s != "" && strings.Contains(text, s) {
				t.Errorf("log entry %q leaks a secret: %s", e.Message, text)
			}
		}
	}
}

// refusalLogged finds the "auth refused" entry with this code.
func refusalLogged(obs logs, code string) bool {
	for _, e := range obs.FilterMessage("auth refused").All() {
		if e.ContextMap()["code"] == code {
			return true
		}
	}
	return false
}

// runJetStream starts an embedded nats-server with JetStream on a random
// loopback port.
func runJetStream(t testing.TB) func(context.Context) (jetstream.JetStream, error) {
	t.Helper()
	_, js := natstest.Connect(t, natstest.Server(t))
	return func(context.Context) (jetstream.JetStream, error) { return js, nil }
}

func mustAdmit(t *testing.T, g *Gate, r *http.Request, chans ...string) *Admission {
	t.Helper()
	a, e := g.Admit(r, chans)
	if e != nil {
		t.Fatalf("Admit: %d %s %s", e.Status, e.Code, e.Detail)
	}
	return a
}

func wantErr(t *testing.T, e *Error, status int, code string) {
	t.Helper()
	if e == nil {
		t.Fatalf("want %d %s, got admission", status, code)
	}
	if e.Status != status || e.Code != code {
		t.Fatalf("want %d %s, got %d %s (%s)", status, code, e.Status, e.Code, e.Detail)
	}
}

func caddyDur(d time.Duration) caddy.Duration { return caddy.Duration(d) }

func checkErrorResponse(t *testing.T, rec *httptest.ResponseRecorder, status int, code string) {
	t.Helper()
	if rec.Code != status {
		t.Errorf("status %d, want %d", rec.Code, status)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("content-type %q", ct)
	}
	if cc := rec.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("cache-control %q", cc)
	}
	checkChallenge(t, rec.Header(), status, code)
	var body struct{ Error, Detail string }
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Error != code || body.Detail == "" {
		t.Errorf("body %q (err %v), want code %s", rec.Body.String(), err, code)
	}
}

// checkChallenge: every 401 carries an RFC 6750 Bearer challenge; error=
// only when a credential was presented and refused.
func checkChallenge(t *testing.T, h http.Header, status int, code string) {
	t.Helper()
	got := h.Get("WWW-Authenticate")
	var want string
	switch {
	case status == http.StatusUnauthorized && code == CodeUnauthenticated:
		want = `Bearer realm="ssegate"`
	case status == http.StatusUnauthorized:
		want = `Bearer realm="ssegate", error="invalid_token", error_description="` + code + `"`
	case code == CodeChannelForbidden:
		want = `Bearer realm="ssegate", error="insufficient_scope", error_description="` + code + `"`
	}
	if got != want {
		t.Errorf("WWW-Authenticate %q, want %q", got, want)
	}
}

package auth

import (
	"crypto/x509"
	"net/http"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

const testPublishKey = "publish-key-for-auth-tests-0123456789ab"

func TestPublishersAuthorize(t *testing.T) {
	now := testNow()
	cfg := hmacConfig()
	ec := genEC(t)
	cfg.PublicKeys = []PublicKey{{Key: pemPublic(t, ec.Public()), Alg: "ES256", KID: "pub"}}
	g, obs := newTestGate(t, cfg, now)
	p, err := g.Publishers([]PublishKey{{Secret: testPublishKey, Channels: []string{"orders.>"}}, {Secret: testPublishKey + "-all"}})
	if err != nil {
		t.Fatal(err)
	}
	pub := func(sub string, patterns ...string) jwt.MapClaims {
		c := claimsFor(now, sub)
		c["publish"] = patterns
		return c
	}
	hs := func(c jwt.MapClaims) string { return hmacToken(t, c) }
	es := tok(t, jwt.SigningMethodES256, ec, pub("billing", "orders.*"), "pub")
	ticket := pub("alice", "demo")
	ticket["token_use"] = "ticket"
	ticket["jti"] = "x"
	tests := []struct {
		name, channel string
		hdr           []string
		sub           string // "" when refused
		status        int
		code          string
	}{
		{name: "key within its channels", channel: "orders.eu.north", hdr: bearer(testPublishKey), sub: "key:0"},
		{name: "key outside its channels", channel: "demo", hdr: bearer(testPublishKey), status: 403, code: CodeChannelForbidden},
		{name: "second key, every channel", channel: "anything.at.all", hdr: bearer(testPublishKey + "-all"), sub: "key:1"},
		{name: "key in lower-case scheme", channel: "orders.eu", hdr: []string{"Authorization", "bearer " + testPublishKey}, sub: "key:0"},
		{name: "ES256 JWT", channel: "orders.eu", hdr: bearer(es), sub: "billing"},
		{name: "HS256 JWT with {sub}", channel: "user.alice.inbox", hdr: bearer(hs(pub("alice", "user.{sub}.>"))), sub: "alice"},
		// A sub that is not one token must not widen {sub} into a wildcard.
		{name: "JWT with a dotted sub", channel: "user.a.b", hdr: bearer(hs(pub("a.b", "user.{sub}"))), status: 403, code: CodeChannelForbidden},
		{name: "JWT with channels only", channel: "demo", hdr: bearer(hs(claimsFor(now, "alice", "demo"))), status: 403, code: CodeForbidden},
		{name: "ticket", channel: "demo", hdr: bearer(hs(ticket)), status: 401, code: CodeInvalidToken},
		{name: "wrong audience", channel: "demo", hdr: bearer(hs(func() jwt.MapClaims { c := pub("alice", "demo"); c["aud"] = "other"; return c }())), status: 401, code: CodeInvalidToken},
		{name: "none", channel: "demo", hdr: bearer(tok(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, pub("alice", "demo"), "")), status: 401, code: CodeInvalidToken},
		{name: "too large", channel: "demo", hdr: bearer(string(make([]byte, 5000))), status: 401, code: CodeTokenTooLarge},
		{name: "no credential", channel: "demo", status: 401, code: CodeUnauthenticated},
		{name: "two Authorization headers", channel: "orders.eu", hdr: append(bearer(testPublishKey), bearer(testPublishKey)...), status: 400, code: CodeBadRequest},
		{name: "cookie", channel: "demo", hdr: []string{"Cookie", "ssegate_token=" + hs(pub("alice", "demo"))}, status: 401, code: CodeUnauthenticated},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pub, e := p.Authorize(req(http.MethodPost, "/publish", tc.hdr...), tc.channel)
			if tc.status == 0 {
				if e != nil || pub.Sub != tc.sub {
					t.Fatalf("got %q %v, want %q", pub.Sub, e, tc.sub)
				}
				return
			}
			wantErr(t, e, tc.status, tc.code)
		})
	}
	assertNoSecrets(t, obs, testPublishKey, es)
}

func TestPublishersConfig(t *testing.T) {
	g, _ := newTestGate(t, hmacConfig(), testNow())
	for name, k := range map[string]PublishKey{
		"empty":       {Secret: ""},
		"unset env":   {Secret: "{env.SSEGATE_TEST_SURELY_UNSET}"},
		"short":       {Secret: "0123456789"},
		"bad pattern": {Secret: testPublishKey, Channels: []string{"a..b"}},
	} {
		if _, err := g.Publishers([]PublishKey{k}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	t.Setenv("SSEGATE_TEST_PUBLISH_KEY", testPublishKey)
	if _, err := g.Publishers([]PublishKey{{Secret: "{env.SSEGATE_TEST_PUBLISH_KEY}"}}); err != nil {
		t.Fatal(err)
	}
}

// TestPublisherScopes: Idempotency-Keys map to ids that are the same on
// every gateway with the same config, different for any two credentials
// whatever their names, and not computable from public facts.
func TestPublisherScopes(t *testing.T) {
	now := testNow()
	ec := genEC(t)
	cfg := hmacConfig()
	cfg.PublicKeys = []PublicKey{{Key: pemPublic(t, ec.Public()), Alg: "ES256", KID: "pub"}}
	other := testPublishKey + "-other"
	publishers := func(keys ...string) *Publishers {
		g, _ := newTestGate(t, cfg, now)
		var pk []PublishKey
		for _, k := range keys {
			pk = append(pk, PublishKey{Secret: k})
		}
		p, err := g.Publishers(pk)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	id := func(p *Publishers, bearerToken string) string {
		t.Helper()
		pub, e := p.Authorize(req(http.MethodPost, "/publish", bearer(bearerToken)...), "demo")
		if e != nil {
			t.Fatal(e)
		}
		return pub.MsgID("k")
	}
	claims := func(sub string) jwt.MapClaims { c := claimsFor(now, sub); c["publish"] = []string{"demo"}; return c }
	es := tok(t, jwt.SigningMethodES256, ec, claims("billing"), "pub")
	hsKey0 := hmacToken(t, claims("key:0"))

	a, b, c := publishers(testPublishKey), publishers(testPublishKey), publishers(other)
	if id(a, testPublishKey) != id(b, testPublishKey) || id(a, es) != id(b, es) || id(a, hsKey0) != id(b, hsKey0) {
		t.Fatal("the same credential got another id on another gateway")
	}
	if id(a, testPublishKey) == id(c, other) {
		t.Fatal("two configs' key:0 share ids")
	}
	if id(a, testPublishKey) == id(a, hsKey0) {
		t.Fatal("a JWT named key:0 shares publish key 0's ids")
	}
	// What a NATS publisher could compute from the public key, iss and sub.
	der, err := x509.MarshalPKIXPublicKey(ec.Public())
	if err != nil {
		t.Fatal(err)
	}
	if guess := (Publisher{scope: jwtScope(der, nil, "", "billing")}).MsgID("k"); guess == id(a, es) {
		t.Fatal("an ES256 publisher's id is computable from public facts")
	}
}

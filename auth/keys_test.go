package auth

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/lestrrat-go/jwx/v3/jwk"
)

func TestAsymmetricPEMKeys(t *testing.T) {
	now := testNow()
	ed, ec, rs := genEd(t), genEC(t), genRSA(t)
	dir := t.TempDir()
	edFile := filepath.Join(dir, "ed.pem")
	if err := os.WriteFile(edFile, []byte(pemPublic(t, ed.Public())), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := Config{PublicKeys: []PublicKey{
		{Key: edFile, Alg: "EdDSA"},
		{Key: pemPublic(t, &ec.PublicKey), Alg: "ES256", KID: "ec1"},
		{Key: pemPublic(t, &rs.PublicKey), Alg: "RS256"},
	}}
	g, _ := newTestGate(t, cfg, now)
	for name, tk := range map[string]string{
		"EdDSA": tok(t, jwt.SigningMethodEdDSA, ed, claimsFor(now, "a", "x"), ""),
		"ES256": tok(t, jwt.SigningMethodES256, ec, claimsFor(now, "a", "x"), "ec1"),
		"RS256": tok(t, jwt.SigningMethodRS256, rs, claimsFor(now, "a", "x"), ""),
	} {
		t.Run(name, func(t *testing.T) { mustAdmit(t, g, req("GET", "/", bearer(tk)...), "x").Release() })
	}
	// RS256 key must not verify PS256 even though it is the same RSA key.
	ps := tok(t, jwt.SigningMethodPS256, rs, claimsFor(now, "a", "x"), "")
	_, e := g.Admit(req("GET", "/", bearer(ps)...), []string{"x"})
	wantErr(t, e, 401, CodeInvalidToken)
}

func TestConfigKeyErrors(t *testing.T) {
	ec := genEC(t)
	bad := map[string]Config{
		"short secret":            {HMACKeys: []HMACKey{{Secret: "short"}}},
		"unset env secret":        {HMACKeys: []HMACKey{{Secret: "{env.SSEGATE_TEST_UNSET_VAR}"}}},
		"hs512 short":             {HMACKeys: []HMACKey{{Secret: testSecret, Alg: "HS512"}}},
		"bad hmac alg":            {HMACKeys: []HMACKey{{Secret: testSecret, Alg: "none"}}},
		"ec key as RS256":         {PublicKeys: []PublicKey{{Key: pemPublic(t, &ec.PublicKey), Alg: "RS256"}}},
		"ec key as ES384":         {PublicKeys: []PublicKey{{Key: pemPublic(t, &ec.PublicKey), Alg: "ES384"}}},
		"missing file":            {PublicKeys: []PublicKey{{Key: "/nonexistent.pem", Alg: "ES256"}}},
		"nothing":                 {},
		"ticket no signer":        {PublicKeys: []PublicKey{{Key: pemPublic(t, &ec.PublicKey), Alg: "ES256"}}, TicketPath: "/t"},
		"cors star":               {Public: []string{"demo"}, CORSOrigins: []string{"*"}},
		"bad public":              {Public: []string{"a..b"}},
		"lifetime over cap":       {Public: []string{"demo"}, TicketLifetime: caddyDur(2 * time.Minute)},
		"jwks symmetric":          {JWKS: []JWKSSource{{URL: "https://x/jwks", Algs: []string{"HS256"}}}},
		"jwks not url":            {JWKS: []JWKSSource{{URL: "file:///etc/passwd"}}},
		"bad session cookie":      {AuthURL: &Callout{URL: "http://x/", SessionCookies: []string{"a;b"}}},
		"negative max_concurrent": {AuthURL: &Callout{URL: "http://x/", MaxConcurrent: -1}},
	}
	for name, cfg := range bad {
		t.Run(name, func(t *testing.T) {
			if g, err := NewGate(cfg); err == nil {
				g.Close()
				t.Fatal("accepted")
			}
		})
	}
	t.Setenv("SSEGATE_TEST_SECRET", testSecret)
	g, err := NewGate(Config{HMACKeys: []HMACKey{{Secret: "{env.SSEGATE_TEST_SECRET}"}}})
	if err != nil {
		t.Fatal(err)
	}
	g.Close()
}

// jwksServer serves whatever set is current and counts fetches.
type jwksServer struct {
	body atomic.Value
	hits atomic.Int32
	*httptest.Server
}

func newJWKSServer(t *testing.T) *jwksServer {
	s := &jwksServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(s.body.Load().([]byte))
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) publish(t *testing.T, keys map[string]any) {
	set := jwk.NewSet()
	for kid, pub := range keys {
		k, err := jwk.Import(pub)
		if err != nil {
			t.Fatal(err)
		}
		_ = k.Set(jwk.KeyIDKey, kid)
		_ = set.AddKey(k)
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	s.body.Store(b)
}

func TestJWKSRotation(t *testing.T) {
	now := testNow()
	srv := newJWKSServer(t)
	k1, k2 := genEC(t), genEd(t)
	srv.publish(t, map[string]any{"k1": &k1.PublicKey})
	var skew atomic.Int64
	clock := func() time.Time { return now.Add(time.Duration(skew.Load())) }
	g, obs := newTestGate(t, Config{JWKS: []JWKSSource{{URL: srv.URL}}}, now, WithHTTPClient(srv.Client()), WithClock(clock))

	t1 := tok(t, jwt.SigningMethodES256, k1, claimsFor(now, "a", "x"), "k1")
	mustAdmit(t, g, req("GET", "/", bearer(t1)...), "x").Release()

	// The IdP rotates to k2; the first k2 token forces a refresh, once the
	// rate limit allows one.
	skew.Store(int64(forcedRefreshEvery))
	srv.publish(t, map[string]any{"k2": k2.Public()})
	t2 := tok(t, jwt.SigningMethodEdDSA, k2, claimsFor(now, "a", "x"), "k2")
	mustAdmit(t, g, req("GET", "/", bearer(t2)...), "x").Release()

	// An unknown kid right after is refused without another fetch.
	before := srv.hits.Load()
	t3 := tok(t, jwt.SigningMethodEdDSA, genEd(t), claimsFor(now, "a", "x"), "k3")
	_, e := g.Admit(req("GET", "/", bearer(t3)...), []string{"x"})
	wantErr(t, e, 401, CodeUnknownKey)
	if srv.hits.Load() != before {
		t.Fatal("forced refreshes are not rate limited")
	}
	// HS256 with a kid from the set is refused: JWKS only serve asymmetric algs.
	t4 := tok(t, jwt.SigningMethodHS256, []byte(testSecret), claimsFor(now, "a", "x"), "k2")
	_, e = g.Admit(req("GET", "/", bearer(t4)...), []string{"x"})
	wantErr(t, e, 401, CodeInvalidToken)
	assertNoSecrets(t, obs, t1, t2, t3, t4)
}

package auth

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestRefusals checks status, JSON code and the log line of each bad
// input, and that no credential or secret reaches the log.
func TestRefusals(t *testing.T) {
	now := testNow()
	js := runJetStream(t)
	key := []byte(testSecret)
	hs := func(c jwt.MapClaims) string { return tok(t, jwt.SigningMethodHS256, key, c, "") }
	with := func(c jwt.MapClaims, kv ...any) jwt.MapClaims {
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(c, kv[i].(string))
			} else {
				c[kv[i].(string)] = kv[i+1]
			}
		}
		return c
	}
	ticket := func(kv ...any) string {
		c := with(claimsFor(now, "alice", "user.{sub}"), "jti", "j-"+t.Name(), "exp", now.Add(30*time.Second).Unix())
		return hs(with(c, kv...))
	}

	rsaKey := genRSA(t)
	rsaPEM := pemPublic(t, &rsaKey.PublicKey)

	hmacCfg := hmacConfig()
	hmacKid := hmacConfig()
	hmacKid.HMACKeys[0].KID = "k1"
	rsaCfg := Config{PublicKeys: []PublicKey{{Key: rsaPEM, Alg: "RS256"}}}
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	jwksCfg := Config{JWKS: []JWKSSource{{URL: down.URL}}}

	blocking := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	t.Cleanup(blocking.Close)
	garbage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("<html>")) }))
	t.Cleanup(garbage.Close)
	status := func(code int) *httptest.Server {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(code) }))
		t.Cleanup(s.Close)
		return s
	}
	callout := func(u string) Config {
		return Config{AuthURL: &Callout{URL: u, Timeout: caddyDur(50 * time.Millisecond), SessionCookies: []string{"sid"}}}
	}

	big := hs(with(claimsFor(now, "alice", "user.alice"), "pad", strings.Repeat("x", 5000)))
	noneTok, err := jwt.NewWithClaims(jwt.SigningMethodNone, claimsFor(now, "alice", "user.alice")).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	critical := jwt.NewWithClaims(jwt.SigningMethodHS256, claimsFor(now, "alice", "user.alice"))
	critical.Header["crit"] = []string{"exp"}
	criticalTok, err := critical.SignedString([]byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	confused := tok(t, jwt.SigningMethodHS256, []byte(rsaPEM), jwt.MapClaims{"sub": "alice", "exp": now.Add(time.Minute).Unix(), "channels": []string{"x"}}, "")
	minted := func() string {
		g, _ := newTestGate(t, hmacCfg, now)
		s, err := g.signer.mint(mintRequest{sub: "alice", channels: []string{"user.alice"}, now: now, life: 30 * time.Second, audience: []string{testAud}, issuer: testIss})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}()

	cases := []struct {
		name   string
		cfg    Config
		token  string // goes to the bearer header unless placed by r
		r      func(token string) *http.Request
		chans  []string
		status int
		code   string
	}{
		{name: "expired", cfg: hmacCfg, token: hs(with(claimsFor(now, "alice", "user.alice"), "exp", now.Add(-time.Minute).Unix())), chans: []string{"user.alice"}, status: 401, code: CodeTokenExpired},
		{name: "not yet valid", cfg: hmacCfg, token: hs(with(claimsFor(now, "alice", "user.alice"), "nbf", now.Add(time.Minute).Unix())), chans: []string{"user.alice"}, status: 401, code: CodeTokenNotYetValid},
		{name: "issued in future", cfg: hmacCfg, token: hs(with(claimsFor(now, "alice", "user.alice"), "iat", now.Add(time.Minute).Unix())), chans: []string{"user.alice"}, status: 401, code: CodeTokenNotYetValid},
		{name: "wrong signature", cfg: hmacCfg, token: tok(t, jwt.SigningMethodHS256, []byte(strings.Repeat("z", 40)), claimsFor(now, "alice", "user.alice"), ""), chans: []string{"user.alice"}, status: 401, code: CodeInvalidToken},
		{name: "alg none", cfg: hmacCfg, token: noneTok, chans: []string{"user.alice"}, status: 401, code: CodeInvalidToken},
		{name: "crit header", cfg: hmacCfg, token: criticalTok, chans: []string{"user.alice"}, status: 401, code: CodeInvalidToken},
		{name: "alg confusion HS256 with RSA public key", cfg: rsaCfg, token: confused, chans: []string{"x"}, status: 401, code: CodeInvalidToken},
		{name: "wrong audience", cfg: hmacCfg, token: hs(with(claimsFor(now, "alice", "user.alice"), "aud", "other")), chans: []string{"user.alice"}, status: 401, code: CodeInvalidToken},
		{name: "wrong issuer", cfg: hmacCfg, token: hs(with(claimsFor(now, "alice", "user.alice"), "iss", "https://evil")), chans: []string{"user.alice"}, status: 401, code: CodeInvalidToken},
		{name: "no exp", cfg: hmacCfg, token: hs(with(claimsFor(now, "alice", "user.alice"), "exp", nil)), chans: []string{"user.alice"}, status: 401, code: CodeInvalidToken},
		{name: "no sub", cfg: hmacCfg, token: hs(with(claimsFor(now, "alice", "user.alice"), "sub", nil)), chans: []string{"user.alice"}, status: 401, code: CodeInvalidToken},
		{name: "oversized token", cfg: hmacCfg, token: big, chans: []string{"user.alice"}, status: 401, code: CodeTokenTooLarge},
		{name: "malformed cookie", cfg: hmacCfg, token: "not.a.jwt", r: func(s string) *http.Request {
			r := req("GET", "/events")
			r.AddCookie(&http.Cookie{Name: "ssegate_token", Value: s})
			return r
		}, chans: []string{"user.alice"}, status: 401, code: CodeInvalidToken},
		{name: "invalid credential with private and public channels", cfg: hmacCfg, token: "garbage", chans: []string{"demo", "user.alice"}, status: 401, code: CodeInvalidToken},
		{name: "channel not permitted", cfg: hmacCfg, token: hs(claimsFor(now, "alice", "user.{sub}")), chans: []string{"user.bob"}, status: 403, code: CodeChannelForbidden},
		{name: "no credentials private channel", cfg: hmacCfg, r: func(string) *http.Request { return req("GET", "/events") }, chans: []string{"user.alice"}, status: 401, code: CodeUnauthenticated},
		{name: "no channel", cfg: hmacCfg, token: hs(claimsFor(now, "alice", "rooms.*")), status: 400, code: CodeNoChannel},
		{name: "requested star", cfg: hmacCfg, token: hs(claimsFor(now, "alice", ">")), chans: []string{"*"}, status: 400, code: CodeInvalidChannel},
		{name: "requested gt", cfg: hmacCfg, token: hs(claimsFor(now, "alice", ">")), chans: []string{"user.>"}, status: 400, code: CodeInvalidChannel},
		{name: "requested double dot", cfg: hmacCfg, token: hs(claimsFor(now, "alice", ">")), chans: []string{"user..alice"}, status: 400, code: CodeInvalidChannel},
		{name: "requested empty token", cfg: hmacCfg, token: hs(claimsFor(now, "alice", ">")), chans: []string{"user."}, status: 400, code: CodeInvalidChannel},
		{name: "requested empty", cfg: hmacCfg, token: hs(claimsFor(now, "alice", ">")), chans: []string{""}, status: 400, code: CodeInvalidChannel},
		{name: "sub star with {sub}", cfg: hmacCfg, token: hs(claimsFor(now, "*", "user.{sub}")), chans: []string{"user.bob"}, status: 403, code: CodeChannelForbidden},
		{name: "sub gt with {sub}", cfg: hmacCfg, token: hs(claimsFor(now, ">", "user.{sub}")), chans: []string{"user.bob"}, status: 403, code: CodeChannelForbidden},
		{name: "dotted sub with {sub}", cfg: hmacCfg, token: hs(claimsFor(now, "bob.x", "user.{sub}")), chans: []string{"user.bob.x"}, status: 403, code: CodeChannelForbidden},
		{name: "sub with empty tokens", cfg: hmacCfg, token: hs(claimsFor(now, "..", "user.{sub}.>")), chans: []string{"user.a.b"}, status: 403, code: CodeChannelForbidden},
		{name: "pattern with empty token", cfg: hmacCfg, token: hs(claimsFor(now, "alice", "user..>")), chans: []string{"user.a"}, status: 403, code: CodeChannelForbidden},
		{name: "unknown kid", cfg: hmacKid, token: tok(t, jwt.SigningMethodHS256, key, claimsFor(now, "alice", "user.alice"), "k2"), chans: []string{"user.alice"}, status: 401, code: CodeUnknownKey},
		{name: "kid that no key has, key without kid", cfg: hmacCfg, token: tok(t, jwt.SigningMethodHS256, key, claimsFor(now, "alice", "user.alice"), "k9"), chans: []string{"user.alice"}, status: 401, code: CodeUnknownKey},
		{name: "ticket after a semicolon", cfg: hmacCfg, token: ticket(), r: func(s string) *http.Request { return req("GET", "/events?channel=user.alice;ticket="+s) }, chans: []string{"user.alice"}, status: 400, code: CodeBadRequest},
		{name: "ticket repeated", cfg: hmacCfg, token: ticket(), r: func(s string) *http.Request { return req("GET", "/events?ticket="+s+"&ticket="+s) }, chans: []string{"user.alice"}, status: 400, code: CodeBadRequest},
		{name: "ticket name in capitals", cfg: hmacCfg, token: ticket(), r: func(s string) *http.Request { return req("GET", "/events?TICKET="+s) }, chans: []string{"user.alice"}, status: 400, code: CodeBadRequest},
		{name: "ticket in an encoded value", cfg: hmacCfg, token: ticket(), r: func(s string) *http.Request { return req("GET", "/events?channel=user.alice%26ticket%3D"+s) }, chans: []string{"user.alice"}, status: 400, code: CodeBadRequest},
		{name: "ticket as a path parameter", cfg: hmacCfg, token: ticket(), r: func(s string) *http.Request { return req("GET", "/events;ticket="+s+"?channel=user.alice") }, chans: []string{"user.alice"}, status: 400, code: CodeBadRequest},
		{name: "ambiguous ticket on a public channel", cfg: hmacCfg, token: ticket(), r: func(s string) *http.Request { return req("GET", "/events?channel=demo;ticket="+s) }, chans: []string{"demo"}, status: 400, code: CodeBadRequest},
		{name: "jwks endpoint down", cfg: jwksCfg, token: tok(t, jwt.SigningMethodRS256, rsaKey, claimsFor(now, "alice", "x"), "k1"), chans: []string{"x"}, status: 401, code: CodeKeysUnavailable},
		{name: "ticket as bearer", cfg: hmacCfg, token: minted, chans: []string{"user.alice"}, status: 401, code: CodeInvalidToken},
		{name: "ticket without jti", cfg: hmacCfg, token: ticket("jti", nil), r: ticketReq, chans: []string{"user.alice"}, status: 401, code: CodeTicketInvalid},
		{name: "ticket without iat", cfg: hmacCfg, token: ticket("iat", nil), r: ticketReq, chans: []string{"user.alice"}, status: 401, code: CodeTicketInvalid},
		{name: "ticket over lifetime cap", cfg: hmacCfg, token: ticket("exp", now.Add(61*time.Second).Unix()), r: ticketReq, chans: []string{"user.alice"}, status: 401, code: CodeTicketInvalid},
		{name: "ticket bad signature", cfg: hmacCfg, token: ticket() + "x", r: ticketReq, chans: []string{"user.alice"}, status: 401, code: CodeTicketInvalid},
		{name: "empty ticket", cfg: hmacCfg, token: "", r: ticketReq, chans: []string{"user.alice"}, status: 401, code: CodeTicketInvalid},
		{name: "callout timeout", cfg: callout(blocking.URL), r: sessionReq, chans: []string{"x"}, status: 503, code: CodeAuthUnavailable},
		{name: "callout garbage", cfg: callout(garbage.URL), r: sessionReq, chans: []string{"x"}, status: 503, code: CodeAuthUnavailable},
		{name: "callout 500", cfg: callout(status(500).URL), r: sessionReq, chans: []string{"x"}, status: 503, code: CodeAuthUnavailable},
		{name: "callout 401", cfg: callout(status(401).URL), r: sessionReq, chans: []string{"x"}, status: 401, code: CodeUnauthenticated},
		{name: "callout 403", cfg: callout(status(403).URL), r: sessionReq, chans: []string{"x"}, status: 403, code: CodeForbidden},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g, obs := newTestGate(t, tc.cfg, now, WithJetStream(js))
			r := req("GET", "/events", bearer(tc.token)...)
			if tc.r != nil {
				r = tc.r(tc.token)
			}
			ScrubTicket(r, "ticket")
			_, e := g.Admit(r, tc.chans)
			wantErr(t, e, tc.status, tc.code)
			rec := httptest.NewRecorder()
			e.Write(rec)
			checkErrorResponse(t, rec, tc.status, tc.code)
			if !refusalLogged(obs, tc.code) {
				t.Errorf("no 'auth refused' log with code %s: %v", tc.code, obs.All())
			}
			assertNoSecrets(t, obs, tc.token, testSecret, "session-secret-cookie")
		})
	}
}

func ticketReq(token string) *http.Request {
	return req("GET", "/events?channel=user.alice&ticket="+token)
}

func sessionReq(string) *http.Request {
	return req("GET", "/events", "Cookie", "sid=session-secret-cookie")
}

package auth

import (
	"net/http"
	"testing"
	"time"
)

func TestAdmitHappyHMAC(t *testing.T) {
	now := testNow()
	g, obs := newTestGate(t, hmacConfig(), now)
	tk := hmacToken(t, claimsFor(now, "alice", "user.{sub}", "rooms.*"))

	a := mustAdmit(t, g, req("GET", "/events", bearer(tk)...), "user.alice", "rooms.x", "demo")
	defer a.Release()
	if a.Subject != "alice" || len(a.Channels) != 3 || !a.Expires.Equal(now.Add(10*time.Minute+defaultLeeway)) {
		t.Fatalf("admission %+v", a)
	}
	// Empty request: concrete patterns only.
	b := mustAdmit(t, g, req("GET", "/events", bearer(tk)...))
	defer b.Release()
	if len(b.Channels) != 1 || b.Channels[0] != "user.alice" {
		t.Fatalf("channels %v", b.Channels)
	}
	// Cookie.
	r := req("GET", "/events")
	r.AddCookie(&http.Cookie{Name: "ssegate_token", Value: tk})
	c := mustAdmit(t, g, r, "user.alice")
	c.Release()
	// Anonymous public.
	d := mustAdmit(t, g, req("GET", "/events"), "demo", "news.today")
	if d.Subject != "" || !d.Expires.IsZero() {
		t.Fatalf("anon %+v", d)
	}
	d.Release()
	assertNoSecrets(t, obs, tk, testSecret)
}

// TestAdmitRefusesTwoAuthorizationHeaders: whatever they hold, and even
// for public channels, as a ticket in two forms is: the request is
// ambiguous, not a credential that failed. So too beside a ticket or a
// cookie, with bearer tokens off, and for the control key.
func TestAdmitRefusesTwoAuthorizationHeaders(t *testing.T) {
	now := testNow()
	g, _ := newTestGate(t, hmacConfig(), now)
	tk := hmacToken(t, claimsFor(now, "alice", "user.{sub}"))
	two := append(bearer(tk), bearer(tk)...)
	for _, ch := range []string{"user.alice", "demo"} {
		_, e := g.Admit(req("GET", "/events", two...), []string{ch})
		wantErr(t, e, http.StatusBadRequest, CodeBadRequest)
	}
	ticket, err := g.signer.mint(mintRequest{sub: "alice", channels: []string{"user.alice"}, now: now, life: 30 * time.Second, audience: []string{testAud}, issuer: testIss})
	if err != nil {
		t.Fatal(err)
	}
	_, e := g.Admit(req("GET", "/events?ticket="+ticket, two...), []string{"user.alice"})
	wantErr(t, e, http.StatusBadRequest, CodeBadRequest)

	cfg := hmacConfig()
	cfg.DisableBearer = true
	off, _ := newTestGate(t, cfg, now)
	r := req("GET", "/events", two...)
	r.AddCookie(&http.Cookie{Name: "ssegate_token", Value: tk})
	_, e = off.Admit(r, []string{"user.alice"})
	wantErr(t, e, http.StatusBadRequest, CodeBadRequest)

	ctl, err := g.Controllers([]string{testPublishKey})
	if err != nil {
		t.Fatal(err)
	}
	if !ctl.Key(req("GET", "/", bearer(testPublishKey)...)) || ctl.Key(req("GET", "/", append(bearer(testPublishKey), bearer("x")...)...)) {
		t.Error("the control key is taken from one Authorization header only")
	}
}

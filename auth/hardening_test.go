package auth

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// TestPublicChannelsWithAuthURL: a request for public channels only is
// served whatever its cookies are, and never calls out for cookies that
// are not meant for the gateway.
func TestPublicChannelsWithAuthURL(t *testing.T) {
	now := testNow()
	var hits atomic.Int32
	verdict := atomic.Int32{}
	verdict.Store(200)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if strings.Contains(r.Header.Get("Cookie"), "_ga") {
			t.Errorf("an unrelated cookie was forwarded: %q", r.Header.Get("Cookie"))
		}
		if code := int(verdict.Load()); code != 200 {
			w.WriteHeader(code)
			return
		}
		fmt.Fprint(w, `{"sub": "alice", "channels": ["user.{sub}"]}`)
	}))
	t.Cleanup(backend.Close)
	cfg := hmacConfig()
	cfg.AuthURL = &Callout{URL: backend.URL, SessionCookies: []string{"sid"}, CacheTTL: caddyDur(-1)}
	g, obs := newTestGate(t, cfg, now)

	for i := range 50 {
		a := mustAdmit(t, g, req("GET", "/events", "Cookie", fmt.Sprintf("_ga=GA1.%d; theme=dark", i)), "demo")
		if a.Subject != "" {
			t.Fatalf("anonymous reader got sub %q", a.Subject)
		}
		a.Release()
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("%d callouts for requests without a session cookie", n)
	}
	// The same cookies on a private channel: no callout either, 401.
	_, e := g.Admit(req("GET", "/events", "Cookie", "_ga=GA1.1"), []string{"user.alice"})
	wantErr(t, e, 401, CodeUnauthenticated)
	if hits.Load() != 0 {
		t.Fatal("an unrelated cookie caused a callout")
	}

	// A session cookie on a public channel is asked about, and names the
	// reader; whatever the backend answers, the public stream opens.
	a := mustAdmit(t, g, req("GET", "/events", "Cookie", "_ga=1; sid=s1"), "demo")
	if a.Subject != "alice" || hits.Load() != 1 {
		t.Fatalf("sub %q after %d callouts", a.Subject, hits.Load())
	}
	a.Release()
	for _, code := range []int32{401, 403, 500} {
		verdict.Store(code)
		a := mustAdmit(t, g, req("GET", "/events", "Cookie", "sid=s1"), "demo", "news.x")
		if a.Subject != "" {
			t.Fatalf("backend %d: sub %q", code, a.Subject)
		}
		a.Release()
		// A private channel still gets the backend's verdict.
		_, e := g.Admit(req("GET", "/events", "Cookie", "sid=s1"), []string{"demo", "user.alice"})
		if e == nil || e.Status == 200 {
			t.Fatalf("backend %d: private channel admitted", code)
		}
	}
	// So does a bad JWT: public channels are served anonymously.
	a = mustAdmit(t, g, req("GET", "/events", bearer("garbage")...), "demo")
	a.Release()
	if len(obs.FilterMessage("credential ignored for public channels").All()) == 0 {
		t.Fatal("an ignored credential is not logged")
	}
	assertNoSecrets(t, obs, "s1", "GA1", "garbage")
}

// TestCalloutFloodIsBounded: random session cookies cause at most
// max_concurrent callouts at once, the rest are refused with 503 and
// Retry-After, and a refused session is asked about once.
func TestCalloutFloodIsBounded(t *testing.T) {
	now := testNow()
	var hits, inFlight, peak atomic.Int32
	release := make(chan struct{})
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
		w.WriteHeader(401)
	}))
	t.Cleanup(backend.Close)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	const limit, flood = 4, 64
	cfg := Config{Public: []string{"demo"}, AuthURL: &Callout{URL: backend.URL, SessionCookies: []string{"sid"}, MaxConcurrent: limit,
		// Long enough that no slot frees itself while the flood is counted.
		Timeout: caddyDur(time.Minute)}}
	g, obs := newTestGate(t, cfg, now)

	var wg sync.WaitGroup
	var busy atomic.Int32
	for i := range flood {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, e := g.Admit(req("GET", "/events", "Cookie", fmt.Sprintf("sid=random-%d", i)), []string{"user.x"})
			if e != nil && e.Status == 503 {
				busy.Add(1)
				rec := httptest.NewRecorder()
				e.Write(rec)
				if rec.Header().Get("Retry-After") == "" {
					t.Error("503 without Retry-After")
				}
			}
		}()
	}
	deadline := time.Now().Add(10 * time.Second)
	for busy.Load() < flood-limit && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := busy.Load(); got != flood-limit {
		t.Fatalf("%d requests refused as busy, want %d", got, flood-limit)
	}
	// A public channel is served even while every slot is taken.
	mustAdmit(t, g, req("GET", "/events", "Cookie", "sid=another"), "demo").Release()
	close(release)
	wg.Wait()
	if p := peak.Load(); p > limit {
		t.Fatalf("%d callouts at once, cap %d", p, limit)
	}
	if h := hits.Load(); h != limit {
		t.Fatalf("%d callouts for %d requests, want %d", h, flood, limit)
	}
	// A refused session is cached: asking again makes no callout.
	before := hits.Load()
	for range 10 {
		_, e := g.Admit(req("GET", "/events", "Cookie", "sid=random-0; _ga=x"), []string{"user.x"})
		if e == nil {
			t.Fatal("admitted")
		}
	}
	if after := hits.Load(); after-before > 1 {
		t.Fatalf("%d callouts for one refused session", after-before)
	}
	assertNoSecrets(t, obs, "random-")
}

func TestStreamPreflight(t *testing.T) {
	now := testNow()
	cfg := hmacConfig()
	cfg.CORSOrigins = []string{"https://app.example"}
	g, _ := newTestGate(t, cfg, now)
	preflight := func(origin string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		g.Preflight(rec, req("OPTIONS", "/events?channel=demo", "Origin", origin,
			"Access-Control-Request-Method", "GET", "Access-Control-Request-Headers", "authorization,last-event-id"))
		return rec
	}
	rec := preflight("https://app.example")
	h := rec.Header()
	if rec.Code != 204 || h.Get("Access-Control-Allow-Origin") != "https://app.example" ||
		h.Get("Access-Control-Allow-Credentials") != "true" || h.Get("Access-Control-Allow-Methods") != "GET" ||
		!strings.Contains(h.Get("Access-Control-Allow-Headers"), "Authorization") ||
		!strings.Contains(h.Get("Access-Control-Allow-Headers"), "Last-Event-ID") ||
		h.Get("Access-Control-Max-Age") == "" || !strings.Contains(strings.Join(h.Values("Vary"), ","), "Origin") {
		t.Fatalf("allowed origin: %d %v", rec.Code, h)
	}
	rec = preflight("https://evil.example")
	checkErrorResponse(t, rec, 403, CodeOriginForbidden)
	for k := range rec.Header() {
		if strings.HasPrefix(k, "Access-Control-") {
			t.Fatalf("disallowed origin got %s", k)
		}
	}
}

// TestSameOriginIncludesScheme: the ticket endpoint's same-origin check
// compares scheme, host and port.
func TestSameOriginIncludesScheme(t *testing.T) {
	cases := []struct {
		origin string
		tls    bool
		host   string
		want   bool
	}{
		{"http://host", false, "host", true},
		{"http://host:80", false, "host", true},
		{"https://host", true, "host", true},
		{"https://host", true, "host:443", true},
		{"https://host", false, "host", false},
		{"http://host", true, "host", false},
		{"https://host:8443", true, "host:8443", true},
		{"https://host:8443", true, "host", false},
		{"http://[::1]:8080", false, "[::1]:8080", true},
		{"https://other", true, "host", false},
		{"https://user@host", true, "host", false},
		{"null", true, "host", false},
	}
	for _, c := range cases {
		r := req("POST", "/events/ticket")
		r.Host = c.host
		if c.tls {
			r.TLS = &tls.ConnectionState{}
		}
		if got := sameOrigin(c.origin, r); got != c.want {
			t.Errorf("origin %s, tls %v, host %s: %v", c.origin, c.tls, c.host, got)
		}
	}
	// X-Forwarded-Proto counts only from a trusted proxy.
	for _, trusted := range []bool{false, true} {
		r := req("POST", "/events/ticket", "X-Forwarded-Proto", "https")
		r.Host = "host"
		r = r.WithContext(context.WithValue(r.Context(), caddyhttp.VarsCtxKey, map[string]any{caddyhttp.TrustedProxyVarKey: trusted}))
		if got := sameOrigin("https://host", r); got != trusted {
			t.Errorf("X-Forwarded-Proto from a proxy trusted %v: same origin %v", trusted, got)
		}
	}
	now := testNow()
	cfg := ticketConfig()
	g, _ := newTestGate(t, cfg, now)
	session := hmacToken(t, claimsFor(now, "alice", "user.{sub}"))
	r := req("POST", "/events/ticket?channel=user.alice", append(bearer(session), "Origin", "https://example.com")...)
	r.Host = "example.com"
	rec := httptest.NewRecorder()
	g.ServeTicket(rec, r)
	checkErrorResponse(t, rec, 403, CodeOriginForbidden)
}

// TestMintRefusesWhatRedemptionWould: the ticket endpoint applies the
// stream's channel bound and the token size bound to what it mints.
func TestMintRefusesWhatRedemptionWould(t *testing.T) {
	now := testNow()
	js := runJetStream(t)
	cfg := ticketConfig()
	session := hmacToken(t, claimsFor(now, "alice", "rooms.*", "user.{sub}"))
	rooms := func(n int) string {
		q := make([]string, n)
		for i := range q {
			q[i] = fmt.Sprintf("channel=rooms.r%d", i)
		}
		return strings.Join(q, "&")
	}
	mint := func(g *Gate, query string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		g.ServeTicket(rec, req("POST", "/events/ticket?"+query, bearer(session)...))
		return rec
	}
	bounded, obs := newTestGate(t, cfg, now, WithMaxChannels(16), WithJetStream(js))
	checkErrorResponse(t, mint(bounded, rooms(17)), 400, CodeTooManyChannels)
	checkErrorResponse(t, mint(bounded, rooms(1000)), 400, CodeTooManyChannels)
	if !refusalLogged(obs, CodeTooManyChannels) {
		t.Fatal("not logged")
	}
	// Sixteen is fine, and redeems.
	ticket, _ := mintVia(t, bounded, req("POST", "/events/ticket?"+rooms(16), bearer(session)...))
	r := req("GET", "/events?ticket="+ticket)
	ScrubTicket(r, "ticket")
	mustAdmit(t, bounded, r).Release()

	// Without a channel bound, the size bound still holds.
	unbounded, _ := newTestGate(t, cfg, now, WithJetStream(js))
	checkErrorResponse(t, mint(unbounded, rooms(1000)), 401, CodeTokenTooLarge)
	// A credential with more concrete channels than a stream may carry.
	many := make([]string, 17)
	for i := range many {
		many[i] = fmt.Sprintf("rooms.r%d", i)
	}
	wide := hmacToken(t, claimsFor(now, "alice", many...))
	rec := httptest.NewRecorder()
	bounded.ServeTicket(rec, req("POST", "/events/ticket", bearer(wide)...))
	checkErrorResponse(t, rec, 400, CodeTooManyChannels)
}

// TestAmbiguousTicketIsSpent: a ticket sent in a form that another parser
// could read is refused and can no longer be used.
func TestAmbiguousTicketIsSpent(t *testing.T) {
	now := testNow()
	js := runJetStream(t)
	cfg := ticketConfig()
	g, obs := newTestGate(t, cfg, now, WithJetStream(js))
	session := hmacToken(t, claimsFor(now, "alice", "user.{sub}"))
	for _, form := range []string{"/events?channel=user.alice;ticket=%s", "/events?channel=user.alice&TICKET=%s", "/events?ticket=%s&ticket=%[1]s"} {
		ticket, _ := mintVia(t, g, req("POST", "/events/ticket?channel=user.alice", bearer(session)...))
		r := req("GET", fmt.Sprintf(form, ticket))
		ScrubTicket(r, "ticket")
		_, e := g.Admit(r, []string{"user.alice"})
		wantErr(t, e, 400, CodeBadRequest)
		r = req("GET", "/events?ticket="+ticket)
		ScrubTicket(r, "ticket")
		_, e = g.Admit(r, []string{"user.alice"})
		wantErr(t, e, 401, CodeTicketUsed)
		assertNoSecrets(t, obs, ticket)
	}
}

// TestTokenInLeewayLivesUntilLeewayEnds: a token past exp but inside the
// leeway is admitted, and its stream may run until exp+leeway, not end
// at once.
func TestTokenInLeewayLivesUntilLeewayEnds(t *testing.T) {
	now := testNow()
	g, _ := newTestGate(t, hmacConfig(), now)
	c := claimsFor(now, "alice", "user.{sub}")
	c["exp"] = now.Add(-3 * time.Second).Unix()
	a := mustAdmit(t, g, req("GET", "/events", bearer(hmacToken(t, c))...), "user.alice")
	defer a.Release()
	if want := now.Add(-3*time.Second + defaultLeeway); !a.Expires.Equal(want) {
		t.Fatalf("stream ends at %v, want %v (exp+leeway)", a.Expires, want)
	}
	c["exp"] = now.Add(-defaultLeeway - time.Second).Unix()
	_, e := g.Admit(req("GET", "/events", bearer(hmacToken(t, c))...), []string{"user.alice"})
	wantErr(t, e, 401, CodeTokenExpired)
}

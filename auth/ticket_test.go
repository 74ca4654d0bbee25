package auth

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/nats-io/nats.go/jetstream"
)

func mintVia(t *testing.T, g *Gate, r *http.Request) (string, int) {
	t.Helper()
	rec := httptest.NewRecorder()
	g.ServeTicket(rec, r)
	if rec.Code != 200 {
		t.Fatalf("ticket endpoint: %d %s", rec.Code, rec.Body.String())
	}
	if rec.Header().Get("Cache-Control") != "no-store" {
		t.Fatal("ticket response must be no-store")
	}
	var out struct {
		Ticket    string `json:"ticket"`
		ExpiresIn int    `json:"expires_in"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	return out.Ticket, out.ExpiresIn
}

func TestTicketRedeemedOnceAcrossInstances(t *testing.T) {
	now := testNow()
	js := runJetStream(t)
	cfg := ticketConfig()
	a, obsA := newTestGate(t, cfg, now, WithJetStream(js))
	b, obsB := newTestGate(t, cfg, now, WithJetStream(js))
	session := hmacToken(t, claimsFor(now, "alice", "user.{sub}", "rooms.*"))

	r := req("POST", "/events/ticket?channel=user.alice", bearer(session)...)
	ticket, exp := mintVia(t, a, r)
	if exp != 30 {
		t.Fatalf("expires_in %d", exp)
	}

	sse := func() *http.Request {
		r := req("GET", "/events?channel=user.alice&ticket="+ticket)
		ScrubTicket(r, "ticket")
		return r
	}
	adm := mustAdmit(t, a, sse(), "user.alice")
	if adm.Subject != "alice" || !adm.Expires.Equal(now.Add(10*time.Minute+defaultLeeway)) {
		t.Fatalf("admission %+v (stream must end with the session)", adm)
	}
	adm.Release()
	_, e := a.Admit(sse(), []string{"user.alice"})
	wantErr(t, e, 401, CodeTicketUsed)
	_, e = b.Admit(sse(), []string{"user.alice"})
	wantErr(t, e, 401, CodeTicketUsed)
	if !refusalLogged(obsA, CodeTicketUsed) || !refusalLogged(obsB, CodeTicketUsed) {
		t.Fatal("ticket_used not logged")
	}
	// The ticket was narrowed to user.alice.
	t2, _ := mintVia(t, a, req("POST", "/events/ticket?channel=user.alice", bearer(session)...))
	r2 := req("GET", "/events?ticket="+t2)
	ScrubTicket(r2, "ticket")
	_, e = b.Admit(r2, []string{"rooms.x"})
	wantErr(t, e, 403, CodeChannelForbidden)
	assertNoSecrets(t, obsA, ticket, t2, session, testSecret)
	assertNoSecrets(t, obsB, ticket, t2, session, testSecret)

	// The key is stored hashed with a TTL and the bucket has limit markers.
	jsh, _ := js(context.Background())
	kv, err := jsh.KeyValue(context.Background(), "ssegate_tickets")
	if err != nil {
		t.Fatal(err)
	}
	st, err := kv.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.LimitMarkerTTL() <= 0 || st.TTL() < 60*time.Second {
		t.Fatalf("bucket ttl %v marker %v", st.TTL(), st.LimitMarkerTTL())
	}
	stream, err := jsh.Stream(context.Background(), "KV_ssegate_tickets")
	if err != nil {
		t.Fatal(err)
	}
	var jti string
	if _, err := jwt.NewParser().ParseWithClaims(ticket, &claims{}, func(tk *jwt.Token) (any, error) {
		jti = tk.Claims.(*claims).ID
		return []byte(testSecret), nil
	}); err != nil {
		t.Fatal(err)
	}
	msg, err := stream.GetLastMsgForSubject(context.Background(), "$KV.ssegate_tickets."+keyFor(jti))
	if err != nil {
		t.Fatal(err)
	}
	if ttl := msg.Header.Get("Nats-TTL"); ttl == "" || ttl == "0" {
		t.Fatalf("redeemed key has no per-key TTL (header %q)", ttl)
	}
}

func TestTicketConcurrentRedeemExactlyOnce(t *testing.T) {
	now := testNow()
	js := runJetStream(t)
	cfg := hmacConfig()
	gates := make([]*Gate, 3)
	for i := range gates {
		gates[i], _ = newTestGate(t, cfg, now, WithJetStream(js))
	}
	ticket := hmacToken(t, jwt.MapClaims{
		"sub": "alice", "aud": testAud, "iss": testIss, "jti": "with spaces.and.dots *>",
		"iat": now.Unix(), "exp": now.Add(30 * time.Second).Unix(), "channels": []string{"user.alice"},
	})
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := req("GET", "/events?ticket="+ticket)
			ScrubTicket(r, "ticket")
			a, e := gates[i%3].Admit(r, []string{"user.alice"})
			if e == nil {
				wins.Add(1)
				a.Release()
			} else if e.Code != CodeTicketUsed {
				t.Errorf("unexpected %s", e.Code)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d redemptions", wins.Load())
	}
}

func TestTicketStoreUnavailable(t *testing.T) {
	now := testNow()
	broken := func(context.Context) (jetstream.JetStream, error) { return nil, context.DeadlineExceeded }
	for name, opts := range map[string][]Option{"no jetstream": nil, "jetstream down": {WithJetStream(broken)}} {
		t.Run(name, func(t *testing.T) {
			g, obs := newTestGate(t, hmacConfig(), now, opts...)
			ticket := hmacToken(t, jwt.MapClaims{
				"sub": "alice", "aud": testAud, "iss": testIss, "jti": "j1",
				"iat": now.Unix(), "exp": now.Add(30 * time.Second).Unix(), "channels": []string{"user.alice"},
			})
			r := req("GET", "/events?ticket="+ticket)
			ScrubTicket(r, "ticket")
			_, e := g.Admit(r, []string{"user.alice"})
			wantErr(t, e, 503, CodeTicketStoreUnavailable)
			if total, _ := g.limits.counts("alice"); total != 0 {
				t.Fatal("slot leaked on store failure")
			}
			assertNoSecrets(t, obs, ticket, testSecret)
		})
	}
}

func TestTicketEndpoint(t *testing.T) {
	now := testNow()
	cfg := ticketConfig()
	cfg.CORSOrigins = []string{"https://app.example"}
	g, obs := newTestGate(t, cfg, now)
	session := hmacToken(t, claimsFor(now, "alice", "user.{sub}"))

	if !g.IsTicketPath(req("POST", "/events/ticket")) || g.IsTicketPath(req("GET", "/events")) {
		t.Fatal("IsTicketPath")
	}
	serve := func(r *http.Request) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		g.ServeTicket(rec, r)
		return rec
	}

	t.Run("no credentials", func(t *testing.T) {
		rec := serve(req("POST", "/events/ticket"))
		checkErrorResponse(t, rec, 401, CodeUnauthenticated)
		if !refusalLogged(obs, CodeUnauthenticated) {
			t.Fatal("not logged")
		}
	})
	t.Run("ticket is not a credential here", func(t *testing.T) {
		rec := serve(req("POST", "/events/ticket?ticket="+session))
		checkErrorResponse(t, rec, 401, CodeUnauthenticated)
	})
	t.Run("wrong method", func(t *testing.T) {
		rec := serve(req("GET", "/events/ticket", bearer(session)...))
		checkErrorResponse(t, rec, 405, CodeMethodNotAllowed)
		if rec.Header().Get("Allow") != "POST, OPTIONS" {
			t.Fatalf("Allow %q", rec.Header().Get("Allow"))
		}
	})
	t.Run("preflight listed origin", func(t *testing.T) {
		rec := serve(req("OPTIONS", "/events/ticket", "Origin", "https://app.example", "Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "authorization,content-type"))
		h := rec.Header()
		if rec.Code != 204 || h.Get("Access-Control-Allow-Origin") != "https://app.example" ||
			h.Get("Access-Control-Allow-Credentials") != "true" ||
			!strings.Contains(h.Get("Access-Control-Allow-Headers"), "Authorization") ||
			!strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") ||
			!strings.Contains(strings.Join(h.Values("Vary"), ","), "Origin") {
			t.Fatalf("%d %v", rec.Code, h)
		}
	})
	t.Run("preflight unlisted origin", func(t *testing.T) {
		rec := serve(req("OPTIONS", "/events/ticket", "Origin", "https://evil.example", "Access-Control-Request-Method", "POST"))
		if rec.Header().Get("Access-Control-Allow-Origin") != "" || rec.Header().Get("Access-Control-Allow-Credentials") != "" {
			t.Fatalf("CORS headers for unlisted origin: %v", rec.Header())
		}
	})
	t.Run("post from unlisted origin", func(t *testing.T) {
		rec := serve(req("POST", "/events/ticket", append(bearer(session), "Origin", "https://evil.example")...))
		checkErrorResponse(t, rec, 403, CodeOriginForbidden)
	})
	t.Run("cookie, listed origin, JSON body", func(t *testing.T) {
		r := httptest.NewRequest("POST", "/events/ticket", strings.NewReader(`{"channels":["user.alice"]}`))
		r.Header.Set("Origin", "https://app.example")
		r.Header.Set("Content-Type", "application/json")
		r.AddCookie(&http.Cookie{Name: "ssegate_token", Value: session})
		rec := serve(r)
		if rec.Code != 200 || rec.Header().Get("Access-Control-Allow-Origin") != "https://app.example" {
			t.Fatalf("%d %s %v", rec.Code, rec.Body.String(), rec.Header())
		}
	})
	t.Run("channel not allowed", func(t *testing.T) {
		rec := serve(req("POST", "/events/ticket?channel=user.bob", bearer(session)...))
		checkErrorResponse(t, rec, 403, CodeChannelForbidden)
	})
	t.Run("bad body", func(t *testing.T) {
		r := httptest.NewRequest("POST", "/events/ticket", strings.NewReader(`{"channels":`))
		r.Header.Set("Authorization", "Bearer "+session)
		checkErrorResponse(t, serve(r), 400, CodeBadRequest)
	})
	assertNoSecrets(t, obs, session, testSecret)
}

func TestTicketSigningKeyEdDSA(t *testing.T) {
	now := testNow()
	js := runJetStream(t)
	priv := genEd(t)
	cfg := Config{
		JWKS:             nil,
		PublicKeys:       nil,
		TicketPath:       "/t",
		TicketSigningKey: &SigningKey{Key: pemPrivate(t, priv), Alg: "EdDSA", KID: "tk1"},
		AuthURL:          nil,
	}
	// The session comes from an IdP key; tickets are signed by our key.
	idp := genEC(t)
	cfg.PublicKeys = []PublicKey{{Key: pemPublic(t, &idp.PublicKey), Alg: "ES256", KID: "idp"}}
	g, _ := newTestGate(t, cfg, now, WithJetStream(js))
	session := tok(t, jwt.SigningMethodES256, idp, jwt.MapClaims{"sub": "bob", "exp": now.Add(time.Hour).Unix(), "channels": []string{"user.{sub}"}}, "idp")
	ticket, _ := mintVia(t, g, req("POST", "/t", bearer(session)...))
	r := req("GET", "/events?ticket="+ticket)
	ScrubTicket(r, "ticket")
	a := mustAdmit(t, g, r)
	if a.Subject != "bob" || len(a.Channels) != 1 || a.Channels[0] != "user.bob" {
		t.Fatalf("%+v", a)
	}
	a.Release()
}

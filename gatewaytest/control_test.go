package gatewaytest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ssegate/ssegate/internal/natstest"
)

type controlReply struct {
	status int
	ID     string `json:"id"`
	Error  string `json:"error"`
	Detail string `json:"detail"`
}

func postControl(t testing.TB, g *gateway, action, bearer, body string) controlReply {
	t.Helper()
	return postControlWith(t, g, action, body, func(r *http.Request) {
		if bearer != "" {
			r.Header.Set("Authorization", "Bearer "+bearer)
		}
	})
}

func postControlWith(t testing.TB, g *gateway, action, body string, set func(*http.Request)) controlReply {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, g.httpURL+"/events/control/"+action, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	set(req)
	var out controlReply
	out.status = answerJSON(t, g, req, &out)
	return out
}

// endsDisconnected waits for a stream's last lines: the end comment and a
// retry the client may use.
func endsDisconnected(t *testing.T, lines <-chan string, within time.Duration) {
	t.Helper()
	deadline := time.After(within)
	var end bool
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				if !end {
					t.Fatal("stream ended without ': end: disconnected'")
				}
				return
			}
			if l == ": end: disconnected" {
				end = true
			} else if end && strings.HasPrefix(l, "retry: ") {
				return
			}
		case <-deadline:
			t.Fatalf("stream not ended within %v", within)
		}
	}
}

// openRaw opens a stream and returns its raw lines, comments included.
func openRaw(t *testing.T, g *gateway, channels []string, hdr http.Header) (<-chan string, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, eventsURL(g.httpURL, channels, nil), nil)
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := g.h1Client().Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		cancel()
		resp.Body.Close()
		t.Fatalf("stream: %s", resp.Status)
	}
	stop := func() { cancel(); resp.Body.Close() }
	t.Cleanup(stop)
	return rawLines(resp.Body), stop
}

// TestControlBadInput is the table of refusals: nothing here ends a
// stream, and each gets its status and code.
func TestControlBadInput(t *testing.T) {
	g := watchGateway(t, nil, "")
	reader := token(t, jwt.MapClaims{"sub": "alice", "channels": []string{"demo"}})
	controller := token(t, jwt.MapClaims{"sub": "ops", "control": true})
	ticket := mintTicket(t, g, reader, "demo")
	ctlTicket := mintTicket(t, g, token(t, jwt.MapClaims{"sub": "ops", "control": true, "channels": []string{"demo"}}), "demo")
	lines, _ := openRaw(t, g, []string{"demo"}, bearerHeader(reader))

	cookie := func(r *http.Request) {
		r.AddCookie(&http.Cookie{Name: "ssegate_token", Value: controller})
	}
	inQuery := func(r *http.Request) {
		r.URL.RawQuery = "ticket=" + url.QueryEscape(ctlTicket)
	}
	cases := []struct {
		name, action, body string
		set                func(*http.Request)
		status             int
		code               string
	}{
		{"unknown field", "disconnect", `{"sub":"alice","reason":"x"}`, nil, 400, "bad_request"},
		{"empty selector", "disconnect", `{}`, nil, 400, "bad_request"},
		{"empty sub", "disconnect", `{"sub":""}`, nil, 400, "bad_request"},
		{"sub with *", "disconnect", `{"sub":"ali*"}`, nil, 400, "bad_request"},
		{"sub with >", "revoke", `{"sub":">","issued_before":1}`, nil, 400, "bad_request"},
		{"two selectors", "disconnect", `{"sub":"alice","jti":"j"}`, nil, 400, "bad_request"},
		{"not JSON", "disconnect", `sub=alice`, nil, 400, "bad_request"},
		{"two values", "disconnect", `{"sub":"alice"}{"sub":"bob"}`, nil, 400, "bad_request"},
		{"huge body", "disconnect", `{"sub":"` + strings.Repeat("a", 5000) + `"}`, nil, 400, "bad_request"},
		{"wildcard channel", "disconnect", `{"sub":"alice","channels":["*"]}`, nil, 400, "bad_request"},
		{"revoke a connection", "revoke", `{"connection":"abc"}`, nil, 400, "bad_request"},
		{"revoke a sub without time", "revoke", `{"sub":"alice"}`, nil, 400, "bad_request"},
		{"revoke with channels", "revoke", `{"jti":"j","channels":["demo"]}`, nil, 400, "bad_request"},
		{"issued_before on disconnect", "disconnect", `{"sub":"alice","issued_before":1}`, nil, 400, "bad_request"},
		{"unknown action", "kick", `{"sub":"alice"}`, nil, 404, "not_found"},
		{"reader's token", "disconnect", `{"sub":"alice"}`, func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+reader) }, 403, "forbidden"},
		{"ticket as bearer", "disconnect", `{"sub":"alice"}`, func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+ticket) }, 401, "invalid_token"},
		{"control ticket as bearer", "disconnect", `{"sub":"alice"}`, func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+ctlTicket) }, 401, "invalid_token"},
		{"ticket in the query", "disconnect", `{"sub":"alice"}`, inQuery, 401, "unauthenticated"},
		{"control token in a cookie", "disconnect", `{"sub":"alice"}`, cookie, 401, "unauthenticated"},
		{"publish key", "disconnect", `{"sub":"alice"}`, func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+testPublishKey) }, 401, "invalid_token"},
		{"no credential", "disconnect", `{"sub":"alice"}`, func(*http.Request) {}, 401, "unauthenticated"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			set := c.set
			if set == nil {
				set = func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+testControlKey) }
			}
			before := storedRefusals(g, c.code)
			got := postControlWith(t, g, c.action, c.body, set)
			if got.status != c.status || got.Error != c.code || got.Detail == "" {
				t.Fatalf("got %+v, want %d %q with a detail", got, c.status, c.code)
			}
			if n := storedRefusals(g, c.code) - before; n != 1 {
				t.Fatalf("counted %v times under %s, want once", n, c.code)
			}
		})
	}
	req, _ := http.NewRequest(http.MethodGet, g.httpURL+"/events/control/disconnect", nil)
	req.Header.Set("Authorization", "Bearer "+testControlKey)
	if resp, _ := answer(t, g, req); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET: %d", resp.StatusCode)
	}
	// Nothing above ended alice's stream.
	flows(t, g, lines, "still here")
}

// TestControlDisconnectBySubAndChannels ends the named user's streams,
// and with channels only those that carry one of them.
func TestControlDisconnectBySubAndChannels(t *testing.T) {
	g := watchGateway(t, nil, "")
	alice := token(t, jwt.MapClaims{"sub": "alice", "channels": []string{"demo", "room.1"}})
	bob := token(t, jwt.MapClaims{"sub": "bob", "channels": []string{"demo"}})
	aDemo, _ := openRaw(t, g, []string{"demo"}, bearerHeader(alice))
	aRoom, _ := openRaw(t, g, []string{"room.1"}, bearerHeader(alice))
	bDemo, _ := openRaw(t, g, []string{"demo"}, bearerHeader(bob))
	const ended = `ssegate_streams_ended_total{reason="disconnected"}`
	before := g.metric(ended)

	if r := postControl(t, g, "disconnect", testControlKey, `{"sub":"alice","channels":["room.1"]}`); r.status != 202 || r.ID == "" {
		t.Fatalf("disconnect: %+v", r)
	}
	endsDisconnected(t, aRoom, time.Second)
	if r := postControl(t, g, "disconnect", token(t, jwt.MapClaims{"sub": "ops", "control": true}), `{"sub":"alice"}`); r.status != 202 {
		t.Fatalf("disconnect: %+v", r)
	}
	endsDisconnected(t, aDemo, time.Second)
	eventually(t, time.Second, "two disconnects counted", func() bool { return g.metric(ended) == before+2 })
	publish(t, g.js(), "events.demo", "", "bob stays")
	for l := range bDemo {
		if l == "data: bob stays" {
			break
		}
		if strings.HasPrefix(l, ": end") {
			t.Fatalf("bob's stream ended: %s", l)
		}
	}
}

// TestControlRevokeRefusesEveryUse: a revoked jti ends its stream and is
// refused as bearer, as cookie, at the ticket endpoint, and as a ticket
// minted before the revocation; another jti of the same sub is not.
func TestControlRevokeRefusesEveryUse(t *testing.T) {
	g := watchGateway(t, nil, "")
	exp := time.Now().Add(time.Hour).Unix()
	revoked := token(t, jwt.MapClaims{"sub": "alice", "jti": "leaked-1", "exp": exp, "iat": time.Now().Unix(), "channels": []string{"room.1"}})
	other := token(t, jwt.MapClaims{"sub": "alice", "jti": "fine-2", "channels": []string{"room.1"}})
	early := mintTicket(t, g, revoked, "room.1")
	lines, _ := openRaw(t, g, []string{"room.1"}, bearerHeader(revoked))

	r := postControl(t, g, "revoke", testControlKey, fmt.Sprintf(`{"jti":"leaked-1","expires":%d}`, exp))
	if r.status != 202 {
		t.Fatalf("revoke: %+v", r)
	}
	endsDisconnected(t, lines, time.Second)
	refused := func(what string, resp *http.Response) {
		t.Helper()
		defer resp.Body.Close()
		var body struct{ Error string }
		_ = json.NewDecoder(resp.Body).Decode(&body)
		if resp.StatusCode != 401 || body.Error != "token_revoked" {
			t.Errorf("%s: %d %q, want 401 token_revoked", what, resp.StatusCode, body.Error)
		}
	}
	_, resp := tryOpen(t, g.h1Client(), eventsURL(g.httpURL, []string{"room.1"}, nil), bearerHeader(revoked))
	refused("bearer", resp)
	_, resp = tryOpen(t, g.h1Client(), eventsURL(g.httpURL, []string{"room.1"}, nil), http.Header{"Cookie": {"ssegate_token=" + revoked}})
	refused("cookie", resp)
	_, resp = tryOpen(t, g.h1Client(), eventsURL(g.httpURL, []string{"room.1"}, url.Values{"ticket": {early}}), nil)
	refused("ticket minted before", resp)
	req, _ := http.NewRequest(http.MethodPost, g.httpURL+"/events/ticket", strings.NewReader(`{"channels":["room.1"]}`))
	req.Header.Set("Authorization", "Bearer "+revoked)
	resp, err := g.h1Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	refused("ticket mint", resp)
	open(t, g.h1Client(), eventsURL(g.httpURL, []string{"room.1"}, nil), bearerHeader(other))
}

// TestControlRevokeBySubIssuedBefore: logging a user out everywhere
// refuses the credentials issued before, and not a later login.
func TestControlRevokeBySubIssuedBefore(t *testing.T) {
	g := watchGateway(t, nil, "")
	before := time.Now().Add(-time.Minute)
	old := token(t, jwt.MapClaims{"sub": "alice", "iat": before.Unix(), "channels": []string{"room.1"}})
	lines, _ := openRaw(t, g, []string{"room.1"}, bearerHeader(old))
	r := postControl(t, g, "revoke", testControlKey, fmt.Sprintf(`{"sub":"alice","issued_before":%d}`, time.Now().Add(-time.Second).Unix()))
	if r.status != 202 {
		t.Fatalf("revoke: %+v", r)
	}
	endsDisconnected(t, lines, time.Second)
	if _, resp := tryOpen(t, g.h1Client(), eventsURL(g.httpURL, []string{"room.1"}, nil), bearerHeader(old)); resp == nil || resp.StatusCode != 401 {
		t.Fatalf("old credential admitted")
	}
	fresh := token(t, jwt.MapClaims{"sub": "alice", "iat": time.Now().Unix(), "channels": []string{"room.1"}})
	open(t, g.h1Client(), eventsURL(g.httpURL, []string{"room.1"}, nil), bearerHeader(fresh))
}

// TestControlRevokeForGood: the latest issued_before the endpoint takes
// is stored to be kept a century (it wrapped to a one-second TTL, and the
// revocation was gone a second later); a time in milliseconds is refused.
func TestControlRevokeForGood(t *testing.T) {
	g := watchGateway(t, nil, "")
	if r := postControl(t, g, "revoke", testControlKey, `{"sub":"ms","issued_before":1796312151000}`); r.status != 400 || r.Error != "bad_request" {
		t.Fatalf("milliseconds: %+v", r)
	}
	if r := postControl(t, g, "revoke", testControlKey, `{"sub":"forever","issued_before":253402300799}`); r.status != 202 {
		t.Fatalf("revoke: %+v", r)
	}
	stream := natstest.Stream(t, g.js(), "KV_ssegate_revoked")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var ttl time.Duration
	eventually(t, 5*time.Second, "the revocation stored", func() bool {
		m, err := stream.GetLastMsgForSubject(ctx, "$KV.ssegate_revoked.sub."+base64.RawURLEncoding.EncodeToString([]byte("forever")))
		if err != nil {
			return false
		}
		ttl, err = time.ParseDuration(m.Header.Get("Nats-TTL"))
		return err == nil
	})
	if ttl < 99*365*24*time.Hour {
		t.Fatalf("kept for %v", ttl)
	}
	forever := token(t, jwt.MapClaims{"sub": "forever", "iat": time.Now().Unix(), "channels": []string{"room.1"}})
	if _, resp := tryOpen(t, g.h1Client(), eventsURL(g.httpURL, []string{"room.1"}, nil), bearerHeader(forever)); resp == nil || resp.StatusCode != 401 {
		t.Fatal("a credential of a sub revoked for good was admitted")
	}
}

// TestControlTenThousandRevocations: a flood of revocations is taken,
// every one holds, and other credentials still get in.
func TestControlTenThousandRevocations(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 requests")
	}
	g := watchGateway(t, nil, "")
	const n = 10000
	var failed atomic.Int64
	var wg sync.WaitGroup
	work := make(chan int)
	client := g.h1Client()
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, g.httpURL+"/events/control/revoke",
					strings.NewReader(fmt.Sprintf(`{"jti":"flood-%d"}`, i)))
				req.Header.Set("Authorization", "Bearer "+testControlKey)
				resp, err := client.Do(req)
				if err != nil || resp.StatusCode != 202 {
					failed.Add(1)
				}
				if err == nil {
					resp.Body.Close()
				}
			}
		}()
	}
	start := time.Now()
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	t.Logf("%d revocations in %v", n, time.Since(start))
	if failed.Load() != 0 {
		t.Fatalf("%d of %d revocations failed", failed.Load(), n)
	}
	kv, err := g.js().KeyValue(context.Background(), "ssegate_revoked")
	if err != nil {
		t.Fatal(err)
	}
	if st, err := kv.Status(context.Background()); err != nil || st.Values() != n {
		t.Fatalf("bucket holds %v revocations (%v), want %d", st, err, n)
	}
	refusedJTI := func(i int) bool {
		tok := token(t, jwt.MapClaims{"sub": "x", "jti": fmt.Sprintf("flood-%d", i), "channels": []string{"room.1"}})
		_, resp := tryOpen(t, g.h1Client(), eventsURL(g.httpURL, []string{"room.1"}, nil), bearerHeader(tok))
		return resp != nil && resp.StatusCode == 401
	}
	eventually(t, 10*time.Second, "the last revocation held", func() bool { return refusedJTI(n - 1) })
	for _, i := range []int{0, 1, n / 2, n - 2} {
		if !refusedJTI(i) {
			t.Fatalf("flood-%d admitted", i)
		}
	}
	open(t, g.h1Client(), eventsURL(g.httpURL, []string{"room.1"}, nil), bearerHeader(token(t, jwt.MapClaims{"sub": "x", "jti": "other", "channels": []string{"room.1"}})))
}

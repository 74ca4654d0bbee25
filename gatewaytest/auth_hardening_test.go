package gatewaytest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// rawGet sends one request line as written, since Go's client would
// normalise the forms under test, and returns the status and body.
func rawGet(t *testing.T, base, target string, hdr ...string) (int, string) {
	t.Helper()
	u, _ := url.Parse(base)
	conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", target, u.Host)
	for i := 0; i+1 < len(hdr); i += 2 {
		fmt.Fprintf(&b, "%s: %s\r\n", hdr[i], hdr[i+1])
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(conn, b.String()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, string(body)
}

func errorCode(body string) string {
	var e struct{ Error string }
	_ = json.Unmarshal([]byte(body), &e)
	return e.Error
}

// TestAmbiguousTicketsAtTheGateway sends a ticket in every form that
// some parser reads as a ticket, through Caddy with its access log on,
// then searches the log for the tickets: each such request is refused,
// its ticket is spent, and no ticket is in any log line.
func TestAmbiguousTicketsAtTheGateway(t *testing.T) {
	logFile := caddyLogFile(t)
	g := authGateway(t, nil, logFile)
	bearer := token(t, jwt.MapClaims{"sub": "alice", "channels": []string{"user.{sub}"}})
	forms := []string{
		"/events?channel=user.alice;ticket=%s",
		"/events?channel=user.alice&tick%%65t=%s&ticket=%[1]s",
		"/events?channel=user.alice&TICKET=%s",
		"/events?channel=user.alice&ticket[]=%s",
		"/events?channel=user.alice%%26ticket%%3D%s",
		"/events?channel=user.alice&amp;ticket=%s",
		"/events?channel=user.alice#ticket=%s",
		"/events/x;ticket=%s?channel=user.alice",
	}
	var tickets []string
	for _, form := range forms {
		ticket := mintTicket(t, g, bearer, "user.alice")
		tickets = append(tickets, ticket)
		target := fmt.Sprintf(form, ticket)
		status, body := rawGet(t, g.httpURL, target)
		if status != 400 || errorCode(body) != "bad_request" {
			t.Errorf("%s: %d %s", form, status, body)
		}
		status, body = rawGet(t, g.httpURL, "/events?channel=user.alice&ticket="+ticket)
		if status != 401 || errorCode(body) != "ticket_used" {
			t.Errorf("%s: the ticket is still usable: %d %s", form, status, body)
		}
	}
	// The plain form still works, and is the control for the log search.
	plain := mintTicket(t, g, bearer, "user.alice")
	open(t, g.h1Client(), eventsURL(g.httpURL, []string{"user.alice"}, url.Values{"ticket": {plain}}), nil).close()

	logs := logsAfterStreamClosed(t, logFile)
	if !bytes.Contains(logs, []byte(`"logger":"http.log.access`)) || !bytes.Contains(logs, []byte(`"auth refused"`)) {
		t.Fatalf("no access or refusal lines; the search proves nothing:\n%s", logs)
	}
	for i, ticket := range append(tickets, plain) {
		// A ticket's signature is its least likely part to be cut.
		sig := ticket[strings.LastIndexByte(ticket, '.')+1:]
		if bytes.Contains(logs, []byte(sig)) {
			t.Errorf("ticket %d appears in the logs", i)
		}
	}
}

// TestPreflightAtTheGateway: a fetch-based SSE client on a listed origin
// gets its preflight answered, then its stream.
func TestPreflightAtTheGateway(t *testing.T) {
	const origin = "https://app.example"
	g := authGateway(t, map[string]any{"cors_origins": []string{origin}}, "")
	preflight := func(o string) *http.Response {
		req, _ := http.NewRequest(http.MethodOptions, g.httpURL+"/events?channel=user.alice", nil)
		req.Header.Set("Origin", o)
		req.Header.Set("Access-Control-Request-Method", "GET")
		req.Header.Set("Access-Control-Request-Headers", "authorization,last-event-id")
		resp, err := g.h1Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	resp := preflight(origin)
	h := resp.Header
	if resp.StatusCode != 204 || h.Get("Access-Control-Allow-Origin") != origin ||
		h.Get("Access-Control-Allow-Methods") != "GET" || h.Get("Access-Control-Allow-Credentials") != "true" ||
		!strings.Contains(h.Get("Access-Control-Allow-Headers"), "Authorization") ||
		!strings.Contains(h.Get("Access-Control-Allow-Headers"), "Last-Event-ID") || h.Get("Access-Control-Max-Age") == "" {
		t.Fatalf("listed origin: %d %v", resp.StatusCode, h)
	}
	resp = preflight("https://evil.example")
	if resp.StatusCode != 403 || resp.Header.Get("Access-Control-Allow-Origin") != "" || resp.Header.Get("Access-Control-Allow-Methods") != "" {
		t.Fatalf("unlisted origin: %d %v", resp.StatusCode, resp.Header)
	}
	// The request the preflight was for.
	alice := token(t, jwt.MapClaims{"sub": "alice", "channels": []string{"user.{sub}"}})
	s := open(t, g.h1Client(), eventsURL(g.httpURL, []string{"user.alice"}, nil), http.Header{
		"Origin": {origin}, "Authorization": {"Bearer " + alice}, "Last-Event-Id": {"0"},
	})
	defer s.close()
	if s.resp.Header.Get("Access-Control-Allow-Origin") != origin {
		t.Fatalf("stream without CORS headers: %v", s.resp.Header)
	}
}

// TestTicketEndpointAtTheGateway: what the endpoint mints, redemption
// accepts; a page on another scheme is another origin.
func TestTicketEndpointAtTheGateway(t *testing.T) {
	g := authGateway(t, nil, "")
	bearer := token(t, jwt.MapClaims{"sub": "alice", "channels": []string{"rooms.*"}})
	post := func(origin string, channels int) (int, string) {
		q := url.Values{}
		for i := range channels {
			q.Add("channel", fmt.Sprintf("rooms.r%d", i))
		}
		req, _ := http.NewRequest(http.MethodPost, g.httpURL+"/events/ticket?"+q.Encode(), nil)
		req.Header.Set("Authorization", "Bearer "+bearer)
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := g.h1Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if st, body := post("", 17); st != 400 || errorCode(body) != "too_many_channels" {
		t.Errorf("17 channels: %d %s", st, body)
	}
	if st, body := post("", 1000); st != 400 || errorCode(body) != "too_many_channels" {
		t.Errorf("1000 channels: %d %s", st, body)
	}
	if st, body := post("", 16); st != 200 {
		t.Errorf("16 channels: %d %s", st, body)
	}
	host := strings.TrimPrefix(g.httpURL, "http://")
	if st, body := post("https://"+host, 1); st != 403 || errorCode(body) != "origin_forbidden" {
		t.Errorf("https page minting over http: %d %s", st, body)
	}
	if st, body := post("http://"+host, 1); st != 200 {
		t.Errorf("same origin: %d %s", st, body)
	}
}

// TestTokenInLeewayAtTheGateway: a token a little past exp, inside the
// leeway, gets a stream that lasts until the leeway ends, instead of one
// that ends at once and makes the client loop.
func TestTokenInLeewayAtTheGateway(t *testing.T) {
	const leeway = 6 * time.Second
	g := authGateway(t, map[string]any{"leeway": int64(leeway)}, "")
	exp := time.Now().Add(-time.Second).Unix()
	late := token(t, jwt.MapClaims{"sub": "carol", "exp": exp, "channels": []string{"user.{sub}"}})
	start := time.Now()
	lines := cookieStream(t, g, "user.carol", late)
	awaitLine(t, lines, ": end: expired", 15*time.Second)
	// exp+leeway is 4 to 5 s after start.
	if end := time.Unix(exp, 0).Add(leeway); time.Now().Before(end.Add(-500 * time.Millisecond)) {
		t.Fatalf("stream ended after %v, before the leeway ended at %v", time.Since(start), end)
	}
}

// TestAuthURLAtTheGateway: unrelated cookies never reach auth_url and
// never cost a public reader its stream; 401s carry a challenge.
func TestAuthURLAtTheGateway(t *testing.T) {
	var hits atomic.Int32
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(401)
	}))
	t.Cleanup(backend.Close)
	g := authGateway(t, map[string]any{"auth_url": map[string]any{"url": backend.URL, "session_cookies": []string{"sid"}}}, "")
	for i := range 20 {
		s := open(t, g.h1Client(), eventsURL(g.httpURL, []string{"demo"}, nil), http.Header{"Cookie": {fmt.Sprintf("_ga=GA1.2.%d", i)}})
		s.close()
	}
	// A stale session on a public channel: asked about, refused, served.
	open(t, g.h1Client(), eventsURL(g.httpURL, []string{"demo"}, nil), http.Header{"Cookie": {"sid=stale"}}).close()
	if n := hits.Load(); n != 1 {
		t.Fatalf("%d callouts, want 1 (for the session cookie only)", n)
	}
	cases := []struct {
		name, cookie, bearer, challenge string
	}{
		{"no credential", "_ga=1", "", `Bearer realm="ssegate"`},
		{"bad bearer", "", "garbage", `Bearer realm="ssegate", error="invalid_token", error_description="invalid_token"`},
	}
	for _, c := range cases {
		hdr := http.Header{}
		if c.cookie != "" {
			hdr.Set("Cookie", c.cookie)
		}
		if c.bearer != "" {
			hdr.Set("Authorization", "Bearer "+c.bearer)
		}
		_, resp := tryOpen(t, g.h1Client(), eventsURL(g.httpURL, []string{"user.alice"}, nil), hdr)
		if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != c.challenge {
			t.Errorf("%s: %d, WWW-Authenticate %q", c.name, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
	}
}

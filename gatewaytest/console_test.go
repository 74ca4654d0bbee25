package gatewaytest

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ssegate/ssegate/console"
)

func consoleGateway(t *testing.T) *gateway {
	t.Helper()
	return publishGateway(t, nil, map[string]any{"console_path": "/events/console", "health_path": "/events/health"})
}

func get(t *testing.T, url string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	// No redirects followed: the test checks them.
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestConsoleServesItsPage(t *testing.T) {
	g := consoleGateway(t)
	base := g.httpURL + "/events/console"

	resp, _ := get(t, base+"?channel=demo", nil)
	if resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != "/events/console/?channel=demo" {
		t.Fatalf("bare console path: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	for path, want := range map[string]string{"/": "text/html", "/console.js": "text/javascript", "/console.css": "text/css", "/chart.js": "text/javascript"} {
		resp, body := get(t, base+path, nil)
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), want) || len(body) < 500 {
			t.Errorf("%s: %d %q, %d bytes", path, resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("%s: CSP %q", path, csp)
		}
		if resp.Header.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("%s: Referrer-Policy %q", path, resp.Header.Get("Referrer-Policy"))
		}
	}
	resp, body := get(t, base+"/config.json", nil)
	var cfg console.Settings
	if err := json.Unmarshal([]byte(body), &cfg); err != nil || resp.StatusCode != 200 {
		t.Fatalf("config.json: %d %q", resp.StatusCode, body)
	}
	if cfg != (console.Settings{Stream: "/events/console/stream", ChannelParam: "channel", Publish: "/events/publish", Ticket: "/events/ticket"}) {
		t.Fatalf("config.json: %+v", cfg)
	}
	// Bad requests under the console path: short JSON errors.
	for path, want := range map[string]int{"/../plugin.go": 404, "/nope.js": 404, "/console": 404} {
		resp, body := get(t, base+path, nil)
		if resp.StatusCode != want || !strings.Contains(body, `"error"`) {
			t.Errorf("%s: %d %q", path, resp.StatusCode, body)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, base+"/", strings.NewReader("x"))
	if r := do(t, req); r.status != 405 || r.Error != "method_not_allowed" {
		t.Errorf("POST: %+v", r)
	}
	// The console's stream is a stream like any other, with the same checks.
	s := open(t, g.h1Client(), base+"/stream?channel=demo", nil)
	id := post(t, g.httpURL, "channel=demo&event=hi", "there", bearer(testPublishKey)).ID
	if ev := s.next(t, 5*time.Second); ev.LastEventID != id || ev.Type != "hi" {
		t.Fatalf("console stream got %+v", ev)
	}
	if resp, body := get(t, base+"/stream?channel=private", nil); resp.StatusCode != 401 || !strings.Contains(body, "unauthenticated") {
		t.Fatalf("console stream of a private channel without credentials: %d %q", resp.StatusCode, body)
	}
}

// TestConsoleStatsAreAggregatesForSignedInUsers: the figures need a
// credential, and hold counts only, never a channel name.
func TestConsoleStatsAreAggregatesForSignedInUsers(t *testing.T) {
	g := consoleGateway(t)
	url := g.httpURL + "/events/console/stats"
	if resp, body := get(t, url, nil); resp.StatusCode != 401 || !strings.Contains(body, "unauthenticated") {
		t.Fatalf("anonymous stats: %d %q", resp.StatusCode, body)
	}
	if resp, _ := get(t, url, bearer("not.a.jwt")); resp.StatusCode != 401 {
		t.Fatalf("stats with a bad token: %d", resp.StatusCode)
	}
	reader := bearer(token(t, jwt.MapClaims{"sub": "alice", "channels": []string{"demo"}}))
	open(t, g.h1Client(), eventsURL(g.httpURL, []string{"orders.secretcustomer"}, nil), nil)
	open(t, g.h1Client(), eventsURL(g.httpURL, []string{"orders.secretcustomer", "demo"}, nil), nil)

	var st console.Stats
	var body string
	eventually(t, 10*time.Second, "figures with events per second", func() bool {
		post(t, g.httpURL, "channel=demo", "tick", bearer(testPublishKey))
		var resp *http.Response
		resp, body = get(t, url, reader)
		if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &st) != nil {
			t.Fatalf("stats: %d %q", resp.StatusCode, body)
		}
		return st.EventsPerSecond > 0
	})
	if st.Clients != 2 || st.Channels != 2 || st.NATS != "connected" || st.JetStream != "ok" {
		t.Fatalf("stats %+v", st)
	}
	if strings.Contains(body, "secretcustomer") || strings.Contains(body, "demo") {
		t.Fatalf("stats name a channel: %s", body)
	}
}

package gatewaytest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const testSecret = "test-secret-for-ssegate-0123456789abcdef"

func token(t *testing.T, claims jwt.MapClaims) string {
	t.Helper()
	if _, ok := claims["exp"]; !ok {
		claims["exp"] = time.Now().Add(time.Hour).Unix()
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func authGateway(t *testing.T, extra map[string]any, logFile string) *gateway {
	t.Helper()
	authCfg := map[string]any{
		"hmac_keys":   []any{map[string]any{"secret": testSecret}},
		"ticket_path": "/events/ticket",
	}
	for k, v := range extra {
		authCfg[k] = v
	}
	return startGateway(t, natsServer(t), gatewayConfig{
		noTLS:   true,
		handler: map[string]any{"public": []string{"demo"}, "auth": authCfg},
		logFile: logFile,
	})
}

func mintTicket(t *testing.T, g *gateway, bearer string, channels ...string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"channels": channels})
	req, _ := http.NewRequest(http.MethodPost, g.httpURL+"/events/ticket", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+bearer)
	req.Header.Set("Content-Type", "application/json")
	resp, err := g.h1Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Ticket    string `json:"ticket"`
		ExpiresIn int    `json:"expires_in"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 || out.Ticket == "" || out.ExpiresIn <= 0 {
		t.Fatalf("ticket endpoint: %d %+v %v", resp.StatusCode, out, err)
	}
	return out.Ticket
}

// TestTicketFlowLeavesNoSecretInLogs runs the two-step flow against a real
// Caddy that writes every log, access log included, to a file, then
// searches the file for every credential used.
func TestTicketFlowLeavesNoSecretInLogs(t *testing.T) {
	logFile := caddyLogFile(t)
	g := authGateway(t, nil, logFile)
	bearer := token(t, jwt.MapClaims{"sub": "alice", "channels": []string{"user.{sub}"}})
	ticket := mintTicket(t, g, bearer, "user.alice")

	u := eventsURL(g.httpURL, []string{"user.alice"}, url.Values{"ticket": {ticket}})
	s := open(t, g.h1Client(), u, nil)
	seq := publish(t, g.js(), "events.user.alice", "", "for alice")
	if ev := s.next(t, 5*time.Second); seqOf(t, ev.LastEventID) != seq {
		t.Fatalf("got %+v", ev)
	}
	s.close()

	// A second use, here or on any instance, is refused.
	resp, body := getAnswer(t, g, u)
	if resp.StatusCode != 401 || !strings.Contains(string(body), `"ticket_used"`) {
		t.Fatalf("reused ticket: %d %s", resp.StatusCode, body)
	}
	garbage := "not-a-ticket-but-secret-looking-AAAA"
	if resp, _ = getAnswer(t, g, eventsURL(g.httpURL, []string{"user.alice"}, url.Values{"ticket": {garbage}})); resp.StatusCode != 401 {
		t.Fatalf("garbage ticket: %d", resp.StatusCode)
	}

	logs := logsAfterStreamClosed(t, logFile)
	for name, secret := range map[string]string{"ticket": ticket, "bearer": bearer, "garbage ticket": garbage, "hmac secret": testSecret} {
		if bytes.Contains(logs, []byte(secret)) {
			t.Errorf("the %s appears in the logs", name)
		}
	}
	// The access log is on: the ticket endpoint's request is in it.
	if !bytes.Contains(logs, []byte(`"logger":"http.log.access`)) || !bytes.Contains(logs, []byte(`"uri":"/events/ticket"`)) {
		t.Errorf("no access log line; the search above proves nothing:\n%s", logs)
	}
	if !bytes.Contains(logs, []byte(`"auth refused"`)) || !bytes.Contains(logs, []byte(`"ticket_used"`)) {
		t.Errorf("the refusals are not logged:\n%s", logs)
	}
}

func TestAuthAtTheGateway(t *testing.T) {
	g := authGateway(t, nil, "")
	alice := token(t, jwt.MapClaims{"sub": "alice", "channels": []string{"user.{sub}", "rooms.*"}})
	expired := token(t, jwt.MapClaims{"sub": "alice", "exp": time.Now().Add(-time.Hour).Unix(), "channels": []string{"user.{sub}"}})
	tests := []struct {
		name     string
		channels []string
		bearer   string
		cookie   string
		status   int
		code     string
	}{
		{"no credential", []string{"user.alice"}, "", "", 401, "unauthenticated"},
		{"public needs none", []string{"demo"}, "", "", 200, ""},
		{"bearer", []string{"user.alice", "rooms.lobby"}, alice, "", 200, ""},
		{"cookie", []string{"user.alice"}, "", alice, 200, ""},
		{"channels from the credential", nil, "", alice, 200, ""},
		{"another user's channel", []string{"user.bob"}, alice, "", 403, "channel_forbidden"},
		{"wildcard in the request", []string{"user.*"}, alice, "", 400, "invalid_channel"},
		{"expired", []string{"user.alice"}, expired, "", 401, "token_expired"},
		{"malformed cookie", []string{"user.alice"}, "", "a.b.c", 401, "invalid_token"},
		{"alg none", []string{"user.alice"}, noneToken(t), "", 401, "invalid_token"},
		{"kid that no key has", []string{"user.alice"}, kidToken(t, "k9"), "", 401, "unknown_key"},
		{"malformed cookie, public channel", []string{"demo"}, "", "a.b.c", 200, ""},
		{"expired bearer, public channel", []string{"demo"}, expired, "", 200, ""},
		{"expired bearer, public and private", []string{"demo", "user.alice"}, expired, "", 401, "token_expired"},
		{"too many channels", []string{"demo", "a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8", "a9", "b1", "b2", "b3", "b4", "b5", "b6", "b7"}, "", "", 400, "too_many_channels"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hdr := http.Header{}
			if tc.bearer != "" {
				hdr.Set("Authorization", "Bearer "+tc.bearer)
			}
			if tc.cookie != "" {
				hdr.Set("Cookie", "ssegate_token="+tc.cookie)
			}
			s, resp := tryOpen(t, g.h1Client(), eventsURL(g.httpURL, tc.channels, nil), hdr)
			if tc.status == 200 {
				if s == nil {
					body, _ := io.ReadAll(resp.Body)
					t.Fatalf("status %d: %s", resp.StatusCode, body)
				}
				s.close()
				return
			}
			if s != nil {
				t.Fatalf("a stream was opened; want %d", tc.status)
			}
			var e struct{ Error string }
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status || json.Unmarshal(body, &e) != nil || e.Error != tc.code {
				t.Fatalf("got %d %s; want %d %s", resp.StatusCode, body, tc.status, tc.code)
			}
			if ch := resp.Header.Get("WWW-Authenticate"); tc.status == 401 && !strings.HasPrefix(ch, `Bearer realm="ssegate"`) {
				t.Fatalf("401 with WWW-Authenticate %q", ch)
			}
		})
	}
	t.Run("per-subject limit", func(t *testing.T) {
		// A gateway of its own: the metrics gauge drops before the
		// handler releases its slot, so a shared one made cases flaky.
		g := authGateway(t, map[string]any{"max_connections_per_subject": 1}, "")
		hdr := http.Header{"Authorization": {"Bearer " + alice}}
		first := open(t, g.h1Client(), eventsURL(g.httpURL, []string{"user.alice"}, nil), hdr)
		defer first.close()
		_, resp := tryOpen(t, g.h1Client(), eventsURL(g.httpURL, []string{"user.alice"}, nil), hdr)
		if resp == nil || resp.StatusCode != 429 {
			t.Fatalf("second connection: %v", resp)
		}
	})
}

func kidToken(t *testing.T, kid string) string {
	tk := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": "alice", "exp": time.Now().Add(time.Hour).Unix(), "channels": []string{"user.{sub}"},
	})
	tk.Header["kid"] = kid
	s, err := tk.SignedString([]byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func noneToken(t *testing.T) string {
	s, err := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{
		"sub": "alice", "exp": time.Now().Add(time.Hour).Unix(), "channels": []string{"user.{sub}"},
	}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestExpiringCredentialEndsTheStream: the stream ends when the cookie
// does, with a retry hint, so the browser comes back with a fresh one.
func TestExpiringCredentialEndsTheStream(t *testing.T) {
	g := authGateway(t, map[string]any{"leeway": int64(time.Second)}, "")
	short := token(t, jwt.MapClaims{"sub": "carol", "exp": time.Now().Add(2 * time.Second).Unix(), "channels": []string{"user.{sub}"}})
	lines := cookieStream(t, g, "user.carol", short)
	var sawEnd, sawRetry bool
	deadline := time.After(10 * time.Second)
	for l := range lines {
		sawEnd = sawEnd || l == ": end: expired"
		sawRetry = sawRetry || (sawEnd && strings.HasPrefix(l, "retry: "))
		select {
		case <-deadline:
			t.Fatal("the stream outlived its credential")
		default:
		}
	}
	if !sawEnd || !sawRetry {
		t.Fatalf("stream ended without the expiry note and retry hint (end %v, retry %v)", sawEnd, sawRetry)
	}
}

// TestTooManyChannelsLeavesTheTicketUnspent: a ticket whose credential
// names more channels than a stream may carry is refused before it is
// redeemed, so a narrower request can still use it.
func TestTooManyChannelsLeavesTheTicketUnspent(t *testing.T) {
	g := authGateway(t, nil, "")
	many := make([]string, 20)
	for i := range many {
		many[i] = fmt.Sprintf("room.r%d", i)
	}
	ticket := token(t, jwt.MapClaims{
		"sub": "dave", "jti": "t-1", "iat": time.Now().Unix(), "exp": time.Now().Add(30 * time.Second).Unix(),
		"channels": many,
	})
	resp, body := getAnswer(t, g, g.httpURL+"/events?ticket="+ticket)
	if resp.StatusCode != 400 || !strings.Contains(string(body), `"too_many_channels"`) {
		t.Fatalf("got %d %s", resp.StatusCode, body)
	}
	open(t, g.h1Client(), eventsURL(g.httpURL, []string{"room.r1"}, url.Values{"ticket": {ticket}}), nil)
}

// cookieStream opens a stream of channel with tok in the auth cookie, and
// returns its lines as they arrive; the body closes when the test ends.
func cookieStream(t *testing.T, g *gateway, channel, tok string) <-chan string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, eventsURL(g.httpURL, []string{channel}, nil), nil)
	req.Header.Set("Cookie", "ssegate_token="+tok)
	resp, err := g.h1Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	return rawLines(resp.Body)
}

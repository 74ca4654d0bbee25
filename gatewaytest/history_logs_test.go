package gatewaytest

import (
	"bytes"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestHistoryAndPollLeaveNoTicketInLogs reads history and polls with
// tickets, good and bad, against a Caddy that writes every log, access
// log included, to a file, and searches the file for them.
func TestHistoryAndPollLeaveNoTicketInLogs(t *testing.T) {
	logFile := caddyLogFile(t)
	g := startGateway(t, natsServer(t), gatewayConfig{noTLS: true, logFile: logFile, handler: map[string]any{
		"public":  []string{},
		"history": map[string]any{"path": "/events/history"},
		"poll":    map[string]any{"path": "/events/poll"},
		"auth":    map[string]any{"hmac_keys": []any{map[string]any{"secret": testSecret}}, "ticket_path": "/events/ticket"},
	}})
	bearer := token(t, jwt.MapClaims{"sub": "alice", "channels": []string{"user.alice"}})
	publish(t, g.js(), "events.user.alice", "", "x")
	var tickets []string
	for _, path := range []string{"/events/history", "/events/poll"} {
		ticket := mintTicket(t, g, bearer, "user.alice")
		tickets = append(tickets, ticket)
		status, _, body := getJSON(t, g, path, url.Values{"channel": {"user.alice"}, "ticket": {ticket}, "wait": {"10ms"}, "after": {"0"}})
		if status != 200 {
			t.Fatalf("%s: %d %s", path, status, body)
		}
		// Spent: refused, and logged as refused.
		if status, _, body := getJSON(t, g, path, url.Values{"channel": {"user.alice"}, "ticket": {ticket}}); status != 401 {
			t.Fatalf("%s with a spent ticket: %d %s", path, status, body)
		}
	}
	garbage := "not-a-ticket-but-secret-looking-BBBB"
	tickets = append(tickets, garbage)
	getJSON(t, g, "/events/history", url.Values{"channel": {"user.alice"}, "ticket": {garbage}})
	// A bad limit with a good ticket: refused after admission.
	spent := mintTicket(t, g, bearer, "user.alice")
	tickets = append(tickets, spent)
	if status, _, body := getJSON(t, g, "/events/history", url.Values{"channel": {"user.alice"}, "ticket": {spent}, "limit": {"0"}}); status != 400 {
		t.Fatalf("limit=0: %d %s", status, body)
	}
	var logs []byte
	eventually(t, 5*time.Second, "an access, an auth refused and a history refused line", func() bool {
		logs, _ = os.ReadFile(logFile)
		return bytes.Contains(logs, []byte(`"logger":"http.log.access`)) && bytes.Contains(logs, []byte(`"auth refused"`)) &&
			bytes.Contains(logs, []byte(`"history refused"`))
	})
	for _, secret := range append(tickets, bearer, testSecret) {
		if bytes.Contains(logs, []byte(secret)) {
			t.Errorf("a credential appears in the logs: %.12s…", secret)
		}
	}
}

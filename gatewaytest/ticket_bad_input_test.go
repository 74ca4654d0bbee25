package gatewaytest

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestTicketBadInput: every refusal of the ticket endpoint gets its status
// and a short JSON body, and is counted in refusals_total under its code.
func TestTicketBadInput(t *testing.T) {
	g := authGateway(t, nil, "")
	alice := token(t, jwt.MapClaims{"sub": "alice", "channels": []string{"rooms.*"}})
	expired := token(t, jwt.MapClaims{"sub": "alice", "channels": []string{"rooms.*"}, "exp": time.Now().Add(-time.Hour).Unix()})
	ticket := mintTicket(t, g, alice, "rooms.a")
	many := url.Values{}
	for i := range 17 {
		many.Add("channel", fmt.Sprintf("rooms.r%d", i))
	}
	tests := []struct {
		name, method, query, body, bearer, origin string
		status                                    int
		code                                      string
	}{
		{name: "GET", method: http.MethodGet, bearer: alice, status: 405, code: "method_not_allowed"},
		{name: "no credential", query: "channel=rooms.a", status: 401, code: "unauthenticated"},
		{name: "a ticket for a ticket", query: "channel=rooms.a", bearer: ticket, status: 401, code: "invalid_token"},
		{name: "expired token", query: "channel=rooms.a", bearer: expired, status: 401, code: "token_expired"},
		{name: "garbage token", query: "channel=rooms.a", bearer: "garbage", status: 401, code: "invalid_token"},
		{name: "channel not permitted", query: "channel=users.bob", bearer: alice, status: 403, code: "channel_forbidden"},
		{name: "invalid channel", query: "channel=rooms..a", bearer: alice, status: 400, code: "invalid_channel"},
		{name: "more channels than a stream may have", query: many.Encode(), bearer: alice, status: 400, code: "too_many_channels"},
		{name: "body not JSON", body: "{", bearer: alice, status: 400, code: "bad_request"},
		{name: "body too large", body: `{"channels":["` + strings.Repeat("a", 17<<10) + `"]}`, bearer: alice, status: 413, code: "body_too_large"},
		{name: "foreign origin", query: "channel=rooms.a", bearer: alice, origin: "https://evil.example", status: 403, code: "origin_forbidden"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(cmpOr(tc.method, http.MethodPost), g.httpURL+"/events/ticket?"+tc.query, strings.NewReader(tc.body))
			if tc.bearer != "" {
				req.Header.Set("Authorization", "Bearer "+tc.bearer)
			}
			if tc.origin != "" {
				req.Header.Set("Origin", tc.origin)
			}
			counted := storedRefusals(g, tc.code)
			r := do(t, req)
			if r.status != tc.status || r.Error != tc.code || r.Detail == "" {
				t.Fatalf("got %d %q %q, want %d %q", r.status, r.Error, r.Detail, tc.status, tc.code)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("content type %q", ct)
			}
			if got := storedRefusals(g, tc.code); got != counted+1 {
				t.Errorf("refusals_total{code=%q} went from %v to %v", tc.code, counted, got)
			}
		})
	}
	if status := declaredTooLarge(t, g, "/events/ticket", "Bearer "+alice); status != http.StatusRequestEntityTooLarge {
		t.Errorf("a body declared over 16 KiB: %d", status)
	}
}

package gatewaytest

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestHistoryAndPollRefuseBadInput sends each endpoint the inputs a
// careless or hostile client sends, and checks the status and the error
// code of the short JSON answer.
func TestHistoryAndPollRefuseBadInput(t *testing.T) {
	g := pastGateway(t, map[string]any{
		"public":        []string{"pub.*"},
		"write_timeout": "2s",
		"auth":          map[string]any{"hmac_keys": []any{map[string]any{"secret": testSecret}}},
	})
	publish(t, g.js(), "events.pub.a", "", "x")
	bearer := "Bearer " + token(t, jwt.MapClaims{"sub": "alice", "channels": []string{"user.alice"}})
	many := make([]string, 17)
	for i := range many {
		many[i] = "pub.c" + strings.Repeat("x", i)
	}
	tests := []struct {
		name   string
		paths  []string
		q      url.Values
		auth   string
		method string
		status int
		code   string
	}{
		{name: "limit zero", q: url.Values{"channel": {"pub.a"}, "limit": {"0"}}, status: 400, code: "invalid_limit"},
		{name: "limit negative", q: url.Values{"channel": {"pub.a"}, "limit": {"-1"}}, status: 400, code: "invalid_limit"},
		{name: "limit huge", q: url.Values{"channel": {"pub.a"}, "limit": {"1000000000"}}, status: 400, code: "invalid_limit"},
		{name: "limit not a number", q: url.Values{"channel": {"pub.a"}, "limit": {"ten"}}, status: 400, code: "invalid_limit"},
		{name: "limit twice", q: url.Values{"channel": {"pub.a"}, "limit": {"1", "2"}}, status: 400, code: "invalid_limit"},
		{name: "last zero", paths: []string{"/events/history"}, q: url.Values{"channel": {"pub.a"}, "last": {"0"}}, status: 400, code: "invalid_last"},
		{name: "after and last", paths: []string{"/events/history"}, q: url.Values{"channel": {"pub.a"}, "after": {"1"}, "last": {"5"}}, status: 400, code: "conflicting_params"},
		{name: "last on poll", paths: []string{"/events/poll"}, q: url.Values{"channel": {"pub.a"}, "last": {"5"}}, status: 400, code: "invalid_last"},
		{name: "wait not a duration", paths: []string{"/events/poll"}, q: url.Values{"channel": {"pub.a"}, "wait": {"soon"}}, status: 400, code: "invalid_wait"},
		{name: "wait negative", paths: []string{"/events/poll"}, q: url.Values{"channel": {"pub.a"}, "wait": {"-1s"}}, status: 400, code: "invalid_wait"},
		{name: "no channel", q: url.Values{}, status: 400, code: "no_channel"},
		{name: "invalid channel", q: url.Values{"channel": {"pub.*"}}, status: 400, code: "invalid_channel"},
		{name: "unknown channel without credential", q: url.Values{"channel": {"nowhere"}}, status: 401, code: "unauthenticated"},
		{name: "channel the credential may not read", q: url.Values{"channel": {"user.bob"}}, auth: bearer, status: 403, code: "channel_forbidden"},
		{name: "17 channels", q: url.Values{"channel": many}, status: 400, code: "too_many_channels"},
		{name: "POST", q: url.Values{"channel": {"pub.a"}}, method: http.MethodPost, status: 405, code: "method_not_allowed"},
	}
	for _, tt := range tests {
		paths := tt.paths
		if paths == nil {
			paths = []string{"/events/history", "/events/poll"}
		}
		for _, path := range paths {
			t.Run(tt.name+" "+path, func(t *testing.T) {
				req, _ := http.NewRequest(cmpOr(tt.method, http.MethodGet), g.httpURL+path+"?"+tt.q.Encode(), nil)
				if tt.auth != "" {
					req.Header.Set("Authorization", tt.auth)
				}
				resp, err := g.h1Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				var body struct{ Error, Detail string }
				derr := json.NewDecoder(resp.Body).Decode(&body)
				if resp.StatusCode != tt.status || derr != nil || body.Error != tt.code || body.Detail == "" {
					t.Fatalf("got %d %+v (%v), want %d %s", resp.StatusCode, body, derr, tt.status, tt.code)
				}
			})
		}
	}
	// Asking for a longer wait is not an error: it is capped.
	t.Run("wait 1h is capped at write_timeout", func(t *testing.T) {
		start := time.Now()
		status, a, body := getJSON(t, g, "/events/poll", url.Values{"channel": {"pub.quiet"}, "wait": {"1h"}})
		if took := time.Since(start); status != 200 || len(a.Events) != 0 || took < 1500*time.Millisecond || took > 10*time.Second {
			t.Fatalf("%d %s after %v", status, body, took)
		}
	})
	t.Run("unknown channel with access is empty", func(t *testing.T) {
		status, a, body := getJSON(t, g, "/events/history", url.Values{"channel": {"pub.never"}})
		if status != 200 || len(a.Events) != 0 || a.More {
			t.Fatalf("%d %s", status, body)
		}
	})
}

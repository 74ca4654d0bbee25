package gatewaytest

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/nats-io/nats-server/v2/server"

	"github.com/ssegate/ssegate/internal/natstest"
)

const testPublishKey = "publish-key-for-tests-0123456789abcdef"

// publishGateway runs a gateway with the publish endpoint: a key for
// orders.* and demo, and JWT publishers verified by the auth keys.
func publishGateway(t *testing.T, ns *server.Server, extra map[string]any) *gateway {
	t.Helper()
	return publishGatewayLogging(t, ns, extra, "")
}

func publishGatewayLogging(t *testing.T, ns *server.Server, extra map[string]any, logFile string) *gateway {
	t.Helper()
	if ns == nil {
		ns = natsServer(t)
	}
	handler := map[string]any{
		"public": []string{"demo", "orders.*"},
		"auth": map[string]any{
			"hmac_keys":   []any{map[string]any{"secret": testSecret}},
			"ticket_path": "/events/ticket",
		},
		"publish": map[string]any{
			"path":     "/events/publish",
			"keys":     []any{map[string]any{"secret": testPublishKey, "channels": []string{"orders.*", "demo"}}},
			"max_body": 1024,
		},
	}
	for k, v := range extra {
		handler[k] = v
	}
	return startGateway(t, ns, gatewayConfig{noTLS: true, handler: handler, logFile: logFile})
}

type publishReply struct {
	status int
	header http.Header
	ID     string `json:"id"`
	Dup    bool   `json:"duplicate"`
	Error  string `json:"error"`
	Detail string `json:"detail"`
}

// post publishes as curl would: POST with a body and a few headers.
func post(t *testing.T, base, query, body string, hdr map[string]string) publishReply {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/events/publish?"+query, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	return do(t, req)
}

func do(t *testing.T, req *http.Request) publishReply {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := publishReply{status: resp.StatusCode, header: resp.Header}
	if req.Method != http.MethodHead && len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s %s: %d, body %q is not JSON", req.Method, req.URL.Path, resp.StatusCode, raw)
		}
	}
	return out
}

func bearer(v string) map[string]string { return map[string]string{"Authorization": "Bearer " + v} }

func TestPublishOverHTTPReachesStreams(t *testing.T) {
	g := publishGateway(t, nil, nil)
	s := open(t, g.h1Client(), eventsURL(g.httpURL, []string{"orders.eu", "demo"}, nil), nil)

	// A configured key, with the event name as a query parameter.
	r := post(t, g.httpURL, "channel=orders.eu&event=order.created", "line 1\nline 2", bearer(testPublishKey))
	if r.status != http.StatusCreated || !strings.Contains(r.ID, "-") {
		t.Fatalf("publish with key: %+v", r)
	}
	ev := s.next(t, 5*time.Second)
	if ev.LastEventID != r.ID || ev.Type != "order.created" || ev.Data != "line 1\nline 2" {
		t.Fatalf("stream got %+v, want id %s", ev, r.ID)
	}

	// A JWT whose publish claim covers the channel, with the event name as
	// a header.
	tok := token(t, jwt.MapClaims{"sub": "billing", "publish": []string{"{sub}.>", "demo"}})
	r = post(t, g.httpURL, "channel=demo", `{"n":1}`, map[string]string{"Authorization": "Bearer " + tok, "Sse-Event": "any name at all"})
	if r.status != http.StatusCreated {
		t.Fatalf("publish with JWT: %+v", r)
	}
	ev = s.next(t, 5*time.Second)
	if ev.LastEventID != r.ID || ev.Type != "any name at all" || ev.Data != `{"n":1}` {
		t.Fatalf("stream got %+v, want id %s", ev, r.ID)
	}
	if seqOf(t, r.ID) != 2 {
		t.Fatalf("id %s: want the stream's second sequence", r.ID)
	}
}

func TestPublishIdempotencyKeyStoresOnce(t *testing.T) {
	g := publishGateway(t, nil, nil)
	s := open(t, g.h1Client(), eventsURL(g.httpURL, []string{"demo"}, nil), nil)
	hdr := map[string]string{"Authorization": "Bearer " + testPublishKey, "Idempotency-Key": "order-42"}
	first := post(t, g.httpURL, "channel=demo", "once", hdr)
	again := post(t, g.httpURL, "channel=demo", "once", hdr)
	if first.status != http.StatusCreated || again.status != http.StatusOK || again.ID != first.ID || !again.Dup {
		t.Fatalf("first %+v, retry %+v: want 201 then 200 with the same id", first, again)
	}
	// Another publisher's identical key is its own: stored, with a new id.
	tok := token(t, jwt.MapClaims{"sub": "other", "publish": []string{"demo"}})
	other := post(t, g.httpURL, "channel=demo", "other's", map[string]string{"Authorization": "Bearer " + tok, "Idempotency-Key": "order-42"})
	if other.status != http.StatusCreated || other.ID == first.ID {
		t.Fatalf("another publisher's key: %+v", other)
	}
	got := s.collect(t, 2, 5*time.Second)
	if got[0].Data != "once" || got[1].Data != "other's" {
		t.Fatalf("stream got %+v: the retry must not be stored twice", got)
	}
}

// TestPublishForwardsNoRequestHeaders sends forged NATS headers; none may
// reach the stored message, whose position headers the gateway trusts.
func TestPublishForwardsNoRequestHeaders(t *testing.T) {
	g := publishGateway(t, nil, nil)
	hdr := bearer(testPublishKey)
	for _, h := range []string{"Nats-Sequence", "Nats-Subject", "Nats-Msg-Id", "Nats-Expected-Last-Sequence", "Nats-Time-Stamp", "X-Other"} {
		hdr[h] = "forged"
	}
	r := post(t, g.httpURL, "channel=demo&event=e", "data", hdr)
	if r.status != http.StatusCreated {
		t.Fatalf("publish: %+v", r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := g.js().Stream(ctx, "SSEGATE")
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.GetMsg(ctx, seqOf(t, r.ID))
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range m.Header {
		for _, v := range vs {
			if v == "forged" {
				t.Errorf("stored header %s: %q came from the request", k, v)
			}
		}
	}
	if m.Header.Get("Sse-Event") != "e" || string(m.Data) != "data" {
		t.Fatalf("stored %v %q", m.Header, m.Data)
	}
}

func TestPublishBadInput(t *testing.T) {
	// max_payload a little over max_body: a body within max_body whose
	// headers take it over max_payload is refused as too large.
	g := publishGateway(t, natstest.Server(t, func(o *server.Options) { o.MaxPayload = 1100 }), nil)
	key := "Bearer " + testPublishKey
	// One event stored with an Idempotency-Key, which the table reuses.
	if r := post(t, g.httpURL, "channel=demo&event=e", "first", map[string]string{"Authorization": key, "Idempotency-Key": "used"}); r.status != http.StatusCreated {
		t.Fatalf("the event whose key is reused: %+v", r)
	}
	reader := token(t, jwt.MapClaims{"sub": "alice", "channels": []string{"demo"}})
	narrow := token(t, jwt.MapClaims{"sub": "alice", "publish": []string{"orders.us"}})
	expired := token(t, jwt.MapClaims{"sub": "alice", "publish": []string{"demo"}, "exp": time.Now().Add(-time.Hour).Unix()})
	ticket := mintTicket(t, g, token(t, jwt.MapClaims{"sub": "alice", "channels": []string{"demo"}}), "demo")
	tests := []struct {
		name    string
		method  string
		query   string
		body    string
		hdr     map[string]string
		status  int
		code    string
		wwwAuth bool
	}{
		{name: "GET", method: http.MethodGet, query: "channel=demo", hdr: map[string]string{"Authorization": key}, status: 405, code: "method_not_allowed"},
		{name: "no channel", query: "", body: "x", hdr: map[string]string{"Authorization": key}, status: 400, code: "no_channel"},
		{name: "two channels", query: "channel=demo&channel=orders.eu", body: "x", hdr: map[string]string{"Authorization": key}, status: 400, code: "no_channel"},
		{name: "wildcard channel", query: "channel=orders.*", body: "x", hdr: map[string]string{"Authorization": key}, status: 400, code: "invalid_channel"},
		{name: "empty token in channel", query: "channel=orders..eu", body: "x", hdr: map[string]string{"Authorization": key}, status: 400, code: "invalid_channel"},
		{name: "event with line break", query: "channel=demo&event=" + url.QueryEscape("a\nid: 1"), body: "x", hdr: map[string]string{"Authorization": key}, status: 400, code: "invalid_event"},
		{name: "event reset", query: "channel=demo&event=reset", body: "x", hdr: map[string]string{"Authorization": key}, status: 400, code: "invalid_event"},
		{name: "event reset with a trailing space", query: "channel=demo&event=reset%20", body: "x", hdr: map[string]string{"Authorization": key}, status: 400, code: "invalid_event"},
		{name: "event reset with a leading space", query: "channel=demo&event=%20reset", body: "x", hdr: map[string]string{"Authorization": key}, status: 400, code: "invalid_event"},
		{name: "event reset with a tab", query: "channel=demo&event=reset%09", body: "x", hdr: map[string]string{"Authorization": key}, status: 400, code: "invalid_event"},
		{name: "event with a trailing space", query: "channel=demo&event=update%20", body: "x", hdr: map[string]string{"Authorization": key}, status: 400, code: "invalid_event"},
		{name: "long event", query: "channel=demo&event=" + strings.Repeat("e", 129), body: "x", hdr: map[string]string{"Authorization": key}, status: 400, code: "invalid_event"},
		{name: "idempotency key with space", query: "channel=demo", body: "x", hdr: map[string]string{"Authorization": key, "Idempotency-Key": "a b"}, status: 400, code: "invalid_idempotency_key"},
		{name: "no credential", query: "channel=demo", body: "x", status: 401, code: "unauthenticated", wwwAuth: true},
		{name: "basic auth", query: "channel=demo", body: "x", hdr: map[string]string{"Authorization": "Basic YTpi"}, status: 401, code: "unauthenticated", wwwAuth: true},
		{name: "cookie only", query: "channel=demo", body: "x", hdr: map[string]string{"Cookie": "ssegate_token=" + narrow}, status: 401, code: "unauthenticated", wwwAuth: true},
		{name: "wrong key", query: "channel=demo", body: "x", hdr: bearer("not-the-key-but-just-as-long-0123456789"), status: 401, code: "invalid_token", wwwAuth: true},
		{name: "expired JWT", query: "channel=demo", body: "x", hdr: bearer(expired), status: 401, code: "token_expired", wwwAuth: true},
		{name: "ticket", query: "channel=demo", body: "x", hdr: bearer(ticket), status: 401, code: "invalid_token", wwwAuth: true},
		{name: "key outside its channels", query: "channel=users.bob", body: "x", hdr: map[string]string{"Authorization": key}, status: 403, code: "channel_forbidden", wwwAuth: true}, // insufficient_scope, RFC 6750
		{name: "reader JWT", query: "channel=demo", body: "x", hdr: bearer(reader), status: 403, code: "forbidden"},
		{name: "JWT outside its publish patterns", query: "channel=orders.eu", body: "x", hdr: bearer(narrow), status: 403, code: "channel_forbidden", wwwAuth: true}, // insufficient_scope, RFC 6750
		{name: "empty body", query: "channel=demo", body: "", hdr: map[string]string{"Authorization": key}, status: 400, code: "empty_data"},
		{name: "body over max_body", query: "channel=demo", body: strings.Repeat("x", 1025), hdr: map[string]string{"Authorization": key}, status: 413, code: "body_too_large"},
		{name: "body not UTF-8", query: "channel=demo", body: "\xff\xfe", hdr: map[string]string{"Authorization": key}, status: 400, code: "invalid_data"},
		{name: "headers take the body over max_payload", query: "channel=demo&event=e", body: strings.Repeat("x", 1000), hdr: map[string]string{"Authorization": key, "Idempotency-Key": "big"}, status: 413, code: "body_too_large"},
		{name: "two event names", query: "channel=demo&event=a", body: "x", hdr: map[string]string{"Authorization": key, "Sse-Event": "b"}, status: 400, code: "invalid_event"},
		{name: "key reused on another channel", query: "channel=orders.eu&event=e", body: "first", hdr: map[string]string{"Authorization": key, "Idempotency-Key": "used"}, status: 422, code: "idempotency_key_reused"},
		{name: "key reused with another event", query: "channel=demo&event=f", body: "first", hdr: map[string]string{"Authorization": key, "Idempotency-Key": "used"}, status: 422, code: "idempotency_key_reused"},
		{name: "key reused with another body", query: "channel=demo&event=e", body: "second", hdr: map[string]string{"Authorization": key, "Idempotency-Key": "used"}, status: 422, code: "idempotency_key_reused"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(cmpOr(tc.method, http.MethodPost), g.httpURL+"/events/publish?"+tc.query, strings.NewReader(tc.body))
			for k, v := range tc.hdr {
				req.Header.Set(k, v)
			}
			counted := storedRefusals(g, tc.code)
			r := do(t, req)
			if r.status != tc.status || r.Error != tc.code || r.Detail == "" {
				t.Fatalf("got %d %q %q, want %d %q", r.status, r.Error, r.Detail, tc.status, tc.code)
			}
			if got := storedRefusals(g, tc.code); got != counted+1 {
				t.Errorf("refusals_total{code=%q} went from %v to %v", tc.code, counted, got)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("content type %q", ct)
			}
			if got := r.header.Get("WWW-Authenticate") != ""; got != tc.wwwAuth {
				t.Errorf("WWW-Authenticate present: %v, want %v", got, tc.wwwAuth)
			}
		})
	}
	twoKeys, _ := http.NewRequest(http.MethodPost, g.httpURL+"/events/publish?channel=demo", strings.NewReader("x"))
	twoKeys.Header.Set("Authorization", key)
	twoKeys.Header.Add("Idempotency-Key", "a")
	twoKeys.Header.Add("Idempotency-Key", "b")
	if r := do(t, twoKeys); r.status != 400 || r.Error != "invalid_idempotency_key" {
		t.Errorf("two Idempotency-Keys: %+v", r)
	}
	if status := declaredTooLarge(t, g, "/events/publish?channel=demo", key); status != http.StatusRequestEntityTooLarge {
		t.Errorf("a body declared over max_body: %d", status)
	}
	// None of these stored anything.
	st := gatewayStream(t, g.js())
	if n := st.CachedInfo().State.Msgs; n != 1 {
		t.Fatalf("%d messages stored by refused requests", n-1)
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// TestPublishFromNode publishes with Node's global fetch, as the README's
// Node snippet does. CI must have node: there it fails instead of skipping.
func TestPublishFromNode(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("node is not on PATH (CI=true: failing instead of skipping)")
		}
		t.Skip("node is not on PATH")
	}
	g := publishGateway(t, nil, nil)
	s := open(t, g.h1Client(), eventsURL(g.httpURL, []string{"orders.eu"}, nil), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join("..", "testdata", "publish_client.mjs"))
	cmd.Env = append(os.Environ(), "SSEGATE_URL="+g.httpURL+"/events/publish", "SSEGATE_PUBLISH_KEY="+testPublishKey)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, out)
	}
	var res struct {
		First, Retry struct {
			Status int    `json:"status"`
			ID     string `json:"id"`
		}
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("node output %q: %v", out, err)
	}
	if res.First.Status != 201 || res.Retry.Status != 200 || res.First.ID != res.Retry.ID {
		t.Fatalf("node: %+v", res)
	}
	ev := s.next(t, 5*time.Second)
	if ev.LastEventID != res.First.ID || ev.Type != "order.created" || ev.Data != `{"order":42}` {
		t.Fatalf("stream got %+v", ev)
	}
}

// TestPublishLeavesNoSecretInLogs publishes with a key and a JWT, and fails
// with others, against a Caddy that logs everything, access logs included.
func TestPublishLeavesNoSecretInLogs(t *testing.T) {
	logFile := caddyLogFile(t)
	g := publishGatewayLogging(t, nil, nil, logFile)
	tok := token(t, jwt.MapClaims{"sub": "billing", "publish": []string{"demo"}})
	wrong := "wrong-publish-key-that-is-long-0123456789"
	if r := post(t, g.httpURL, "channel=demo", "a", bearer(testPublishKey)); r.status != 201 {
		t.Fatalf("key: %+v", r)
	}
	if r := post(t, g.httpURL, "channel=demo", "b", bearer(tok)); r.status != 201 {
		t.Fatalf("JWT: %+v", r)
	}
	if r := post(t, g.httpURL, "channel=demo", "c", bearer(wrong)); r.status != 401 {
		t.Fatalf("wrong key: %+v", r)
	}
	if r := post(t, g.httpURL, "channel=users.x", "d", bearer(testPublishKey)); r.status != 403 {
		t.Fatalf("forbidden: %+v", r)
	}
	var log string
	eventually(t, 5*time.Second, "the refusals in the log", func() bool {
		b, _ := os.ReadFile(logFile)
		log = string(b)
		return strings.Count(log, `"auth refused"`) >= 2 && strings.Count(log, "/events/publish") >= 4
	})
	for name, secret := range map[string]string{"key": testPublishKey, "JWT": tok, "wrong key": wrong, "JWT signature": tok[strings.LastIndex(tok, ".")+1:]} {
		if strings.Contains(log, secret) {
			t.Errorf("the log holds the %s", name)
		}
	}
}

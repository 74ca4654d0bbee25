package gatewaytest

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/ssegate/ssegate/internal/natstest"
)

// storedCount is how many messages the gateway's stream holds.
func storedCount(t *testing.T, g *gateway) uint64 {
	t.Helper()
	st := gatewayStream(t, g.js())
	return st.CachedInfo().State.Msgs
}

func withIdem(hdr map[string]string, key string) map[string]string {
	out := map[string]string{"Idempotency-Key": key}
	for k, v := range hdr {
		out[k] = v
	}
	return out
}

// TestPublishIdsCannotBeComputedByNATSPublishers: a NATS publisher that
// may write to the stream's subjects sends the id the gateway used to
// derive from the public name key:0. The gateway's event is stored all the
// same: its ids are keyed by the publish key's secret.
func TestPublishIdsCannotBeComputedByNATSPublishers(t *testing.T) {
	g := publishGateway(t, nil, nil)
	nc, _ := natstest.Connect(t, g.nats)
	who := sha256.Sum256([]byte("key:0"))
	junk := nats.NewMsg("events.orders.junk")
	junk.Data = []byte("junk")
	junk.Header.Set("Nats-Msg-Id", hex.EncodeToString(who[:8])+":order-7")
	if _, err := nc.RequestMsg(junk, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	s := open(t, g.h1Client(), eventsURL(g.httpURL, []string{"demo"}, nil), nil)
	r := post(t, g.httpURL, "channel=demo", "alice's", withIdem(bearer(testPublishKey), "order-7"))
	if r.status != http.StatusCreated || r.Dup {
		t.Fatalf("publish: %+v; a NATS publisher suppressed it", r)
	}
	if ev := s.next(t, 5*time.Second); ev.Data != "alice's" || ev.LastEventID != r.ID {
		t.Fatalf("stream got %+v", ev)
	}
}

// TestPublishJWTNamedLikeAKeyHasItsOwnScope: a JWT whose sub is "key:0"
// does not share the ids of publish key 0.
func TestPublishJWTNamedLikeAKeyHasItsOwnScope(t *testing.T) {
	g := publishGateway(t, nil, nil)
	first := post(t, g.httpURL, "channel=demo", "same", withIdem(bearer(testPublishKey), "k-1"))
	tok := token(t, jwt.MapClaims{"sub": "key:0", "publish": []string{"demo"}})
	second := post(t, g.httpURL, "channel=demo", "same", withIdem(bearer(tok), "k-1"))
	if first.status != http.StatusCreated || second.status != http.StatusCreated || second.ID == first.ID {
		t.Fatalf("key %+v, JWT named key:0 %+v: want both stored", first, second)
	}
	// The same JWT publisher again is a retry.
	again := post(t, g.httpURL, "channel=demo", "same", withIdem(bearer(token(t, jwt.MapClaims{"sub": "key:0", "publish": []string{"demo"}})), "k-1"))
	if again.status != http.StatusOK || again.ID != second.ID {
		t.Fatalf("retry with a fresh token: %+v, want 200 %s", again, second.ID)
	}
}

// TestPublishKeysOfTwoConfigsHaveTheirOwnScopes: two configs, each with one
// publish key (both are key:0), on the same stream. The same key in the
// next config keeps its ids (a reload or a rolling deploy); another key
// does not share them.
func TestPublishKeysOfTwoConfigsHaveTheirOwnScopes(t *testing.T) {
	ns := natsServer(t)
	otherKey := "another-publish-key-for-tests-0123456789"
	withKey := func(secret string) map[string]any {
		return map[string]any{"publish": map[string]any{"path": "/events/publish", "keys": []any{map[string]any{"secret": secret}}}}
	}
	g := publishGateway(t, ns, withKey(testPublishKey))
	a := post(t, g.httpURL, "channel=orders.a", "for a", withIdem(bearer(testPublishKey), "shared"))
	if a.status != http.StatusCreated {
		t.Fatalf("a: %+v", a)
	}
	g = publishGateway(t, ns, withKey(testPublishKey))
	if r := post(t, g.httpURL, "channel=orders.a", "for a", withIdem(bearer(testPublishKey), "shared")); r.status != http.StatusOK || r.ID != a.ID {
		t.Fatalf("the same key after a reload: %+v, want 200 %s", r, a.ID)
	}
	g = publishGateway(t, ns, withKey(otherKey))
	s := open(t, g.h1Client(), eventsURL(g.httpURL, []string{"orders.b"}, nil), nil)
	b := post(t, g.httpURL, "channel=orders.b", "for b", withIdem(bearer(otherKey), "shared"))
	if b.status != http.StatusCreated || b.ID == a.ID {
		t.Fatalf("another config's key:0: %+v", b)
	}
	if ev := s.next(t, 5*time.Second); ev.Data != "for b" {
		t.Fatalf("b got %+v", ev)
	}
}

// TestPublishReusedIdempotencyKey: a key reused for another channel, event
// name or data is refused with 422 and stores nothing; the same event
// again is a retry.
func TestPublishReusedIdempotencyKey(t *testing.T) {
	g := publishGateway(t, nil, nil)
	key := withIdem(bearer(testPublishKey), "order-9")
	first := post(t, g.httpURL, "channel=orders.eu&event=created", "body", key)
	if first.status != http.StatusCreated {
		t.Fatalf("first: %+v", first)
	}
	for name, q := range map[string][2]string{
		"another channel": {"channel=orders.us&event=created", "body"},
		"another event":   {"channel=orders.eu&event=updated", "body"},
		"no event":        {"channel=orders.eu", "body"},
		"another body":    {"channel=orders.eu&event=created", "body2"},
	} {
		r := post(t, g.httpURL, q[0], q[1], key)
		if r.status != http.StatusUnprocessableEntity || r.Error != "idempotency_key_reused" || r.Detail == "" {
			t.Errorf("%s: %+v, want 422 idempotency_key_reused", name, r)
		}
	}
	if r := post(t, g.httpURL, "channel=orders.eu&event=created", "body", key); r.status != http.StatusOK || r.ID != first.ID || !r.Dup {
		t.Fatalf("retry: %+v", r)
	}
	if n := storedCount(t, g); n != 1 {
		t.Fatalf("%d events stored, want 1", n)
	}
	if got := storedRefusals(g, "idempotency_key_reused"); got < 4 {
		t.Fatalf("refusals_total{code=idempotency_key_reused} %v", got)
	}
}

// TestPublishSizeCountsHeaders: NATS's max_payload bounds headers and data
// together. A body under it whose headers take it over is refused with 413,
// not a 503 that no retry could cure.
func TestPublishSizeCountsHeaders(t *testing.T) {
	ns := natstest.Server(t, func(o *server.Options) { o.MaxPayload = 1024 })
	g := publishGateway(t, ns, nil)
	r := post(t, g.httpURL, "channel=demo&event=created", strings.Repeat("x", 1000), withIdem(bearer(testPublishKey), "big"))
	if r.status != http.StatusRequestEntityTooLarge || r.Error != "body_too_large" {
		t.Fatalf("%+v, want 413 body_too_large", r)
	}
	if r := post(t, g.httpURL, "channel=demo", strings.Repeat("x", 800), bearer(testPublishKey)); r.status != http.StatusCreated {
		t.Fatalf("a body that fits with its headers: %+v", r)
	}
}

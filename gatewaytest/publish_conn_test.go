package gatewaytest

import (
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/ssegate/ssegate/internal/natstest"
)

// TestPublishDuringOutageIsNeverStoredLater: publishes answered 503 while
// NATS is away are not stored once it is back. nats.go used to keep them
// and send them after the reconnect, so a "could not be stored" event
// reached every client, and its retry was stored a second time.
func TestPublishDuringOutageIsNeverStoredLater(t *testing.T) {
	_, portStr, _ := net.SplitHostPort(freePort(t))
	port, _ := strconv.Atoi(portStr)
	store := t.TempDir()
	ns := natstest.Server(t, natstest.OnPort(port), natstest.StoringIn(store))
	g := startGateway(t, ns, gatewayConfig{
		noTLS:   true,
		handler: map[string]any{"public": []string{"demo"}, "publish": map[string]any{"path": "/events/publish", "keys": []any{map[string]any{"secret": testPublishKey}}}},
		stream:  map[string]any{"storage": "file"},
		nats:    map[string]any{"urls": []string{ns.ClientURL()}, "reconnect_wait": int64(100 * time.Millisecond)},
	})
	if r := post(t, g.httpURL, "channel=demo", "before", bearer(testPublishKey)); r.status != http.StatusCreated {
		t.Fatalf("before the outage: %+v", r)
	}
	ns.Shutdown()
	ns.WaitForShutdown()
	eventually(t, 5*time.Second, "the gateway sees NATS gone", func() bool { return !g.natsUp() })
	// Not timed: a publish sent before its connection noticed the outage
	// waits for its ack until the publish timeout, and is lost with the
	// connection, never sent again.
	for i := range 2 {
		r := post(t, g.httpURL, "channel=demo", "during "+strconv.Itoa(i), bearer(testPublishKey))
		if r.status != http.StatusServiceUnavailable || r.Error != "unavailable" {
			t.Fatalf("publish %d while NATS is down: %+v", i, r)
		}
	}
	ns2 := natstest.Server(t, natstest.OnPort(port), natstest.StoringIn(store))
	var after publishReply
	eventually(t, 15*time.Second, "a publish stored after NATS is back", func() bool {
		after = post(t, g.httpURL, "channel=demo", "after", bearer(testPublishKey))
		return after.status == http.StatusCreated
	})
	_ = ns2
	if n := storedCount(t, g); n != 2 {
		t.Fatalf("%d events stored, want 2 (before and after): refused publishes were stored", n)
	}
	if seq := seqOf(t, after.ID); seq != 2 {
		t.Fatalf("the event after the outage has sequence %d, want 2", seq)
	}
}

package gatewaytest

import (
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/nats-io/nats-server/v2/server"

	"github.com/ssegate/ssegate/upstream"
)

// TestReloadKeepsTheReplayConnection: the replay connection is pooled
// with the live one, so a config reload keeps it, and the last stop
// closes it.
func TestReloadKeepsTheReplayConnection(t *testing.T) {
	ns := natsServer(t)
	startGateway(t, ns, gatewayConfig{noTLS: true})
	rc := natsConn(t, ns, upstream.ReplayName).Cid
	if n := replayConns(t, ns); n != 1 {
		t.Fatalf("%d replay connections", n)
	}
	startGateway(t, ns, gatewayConfig{noTLS: true, handler: map[string]any{"heartbeat": int64(time.Minute)}})
	if natsConn(t, ns, upstream.ReplayName).Cid != rc || replayConns(t, ns) != 1 {
		t.Fatal("the reload dialled a second replay connection, or closed the first")
	}
	if err := caddy.Stop(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "replay connection closed", func() bool { return replayConns(t, ns) == 0 })
}

// replayConns counts the connections named as the replay connection.
func replayConns(t *testing.T, ns *server.Server) int {
	t.Helper()
	n := 0
	for _, name := range natsConns(t, ns) {
		if name == upstream.ReplayName {
			n++
		}
	}
	return n
}

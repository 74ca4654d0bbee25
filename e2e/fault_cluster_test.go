package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/ssegate/ssegate/internal/faulttest"
)

// TestFaultClusterLeaderKilled: two gateways on a 3-node NATS cluster
// with an R3 stream. Clients on several channels alternate between the
// gateways while the stream's leader node is shut down mid-run; a new
// leader is elected and every acked event still reaches every client
// exactly once, in order.
func TestFaultClusterLeaderKilled(t *testing.T) {
	bin := buildCommands(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cl := startNATSCluster(t)
	var gws [2]*clusterGateway
	for i, name := range []string{"A", "B"} {
		// One after the other: started together, they can hang creating
		// the stream (TestGatewaysStartTogetherOnFreshNATSCluster).
		gws[i] = launchClusterGateway(t, bin, name, cl.clientURLs(), "")
		if err := gws[i].waitReady(ctx); err != nil {
			t.Fatalf("gateway %s not ready: %v\n%s", name, err, gws[i].logTail())
		}
	}
	base := func(n int) string { return gws[n%2].url }
	js := cl.connect(t, "fault-publisher")
	pub := &faulttest.Publisher{JS: js, Channels: []string{"room.a", "room.b", "room.c"}}
	stopPub, fleet := startFaultLoad(t, ctx, pub, base, 25, 30*time.Second)
	waitFaultAcked(t, ctx, pub, pub.Count()+150, 30*time.Second)

	leader := streamLeader(ctx, js)
	if leader == "" {
		t.Fatal("the stream has no leader")
	}
	cl.mu.Lock()
	cl.down[leader] = true
	cl.mu.Unlock()
	killedAt := pub.Count()
	cl.server(leader).Shutdown()
	var now string
	if err := pollUntil(ctx, 30*time.Second, func() bool {
		now = streamLeader(ctx, js)
		return now != "" && now != leader
	}); err != nil {
		t.Fatalf("no new stream leader after shutting down %s: %v", leader, err)
	}
	t.Logf("stream leader %s shut down after %d acked events; %s leads now", leader, killedAt, now)
	waitFaultAcked(t, ctx, pub, pub.Count()+300, 60*time.Second)

	if delivered := finishFault(t, ctx, stopPub, pub, fleet); delivered < 1500 {
		t.Errorf("only %d events delivered", delivered)
	}
	for _, g := range gws {
		if !g.Running() {
			t.Errorf("gateway %s exited during the test", g.name)
		}
		if t.Failed() {
			t.Logf("gateway %s, notable log lines:\n%s", g.name, g.notableLogLines(40))
		}
	}
}

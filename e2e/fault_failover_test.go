package e2e

import (
	"testing"
	"time"
)

// The cluster failover tests of issue 14. Each runs the harness of
// failover_test.go, proves that its fault happened, and ends with the
// shared checker: every acked event reaches every client exactly once and
// in order. Run each 25 times with e2e/failover25.sh.

// TestFaultClusterLeaderSIGKILL: the stream leader is SIGKILLed and
// restarted after 2 s; another node is elected meanwhile.
func TestFaultClusterLeaderSIGKILL(t *testing.T) {
	h := newFailover(t)
	killed := h.bounce(h.leader(), newChannels[0])
	h.newLeader(killed)
	h.finish()
}

// TestFaultClusterLeaderKilledFourTimes: whichever node leads the stream
// is SIGKILLed, and restarted 2 s later, four times 5 s apart (or, when an
// election takes longer, as soon as a new leader is elected); new clients
// join a new channel at each kill.
func TestFaultClusterLeaderKilledFourTimes(t *testing.T) {
	h := newFailover(t)
	for i := range 4 {
		killed := h.bounce(h.leader(), newChannels[i])
		h.newLeader(killed)
		h.pause(5*time.Second - time.Since(killed))
	}
	h.finish()
}

// TestFaultClusterServingNodeKilled: the node that gateway A's live
// connection is on is SIGKILLed, and restarted after 2 s; the gateway's
// connection moves to another node.
func TestFaultClusterServingNodeKilled(t *testing.T) {
	h := newFailover(t)
	g := h.gws[0]
	node := h.liveNode(g)
	if node == "" {
		t.Fatalf("gateway A's log names no node it is connected to:\n%s", g.p.logTail())
	}
	h.note("gateway A's live connection is on %s; %s leads the stream", node, h.leader())
	h.kill(node)
	h.join(newChannels[0])
	var moved string
	if err := pollUntil(h.ctx, 20*time.Second, func() bool {
		moved = h.liveNode(g)
		return moved != node && moved != ""
	}); err != nil {
		t.Fatalf("gateway A's live connection did not move off %s: %v", node, err)
	}
	h.note("gateway A's live connection moved to %s", moved)
	h.pause(2 * time.Second)
	h.restart(node)
	h.finish()
}

// TestFaultClusterTwoKillsUnsettled: the leader is SIGKILLed and
// restarted after 2 s; at once, before it has caught up and before a new
// leader is elected, another node is SIGKILLed too, and restarted 2 s
// later. For those 2 s only one node has the whole stream.
func TestFaultClusterTwoKillsUnsettled(t *testing.T) {
	h := newFailover(t)
	first := h.leader()
	killed := h.bounce(first, newChannels[0])
	h.bounce(h.other(first), newChannels[1])
	h.newLeader(killed)
	h.finish()
}

// TestFaultClusterGatewayKilledNodeDown: while the stream leader is down,
// gateway A is SIGKILLed; it comes back on its port after 1 s, then the
// node.
func TestFaultClusterGatewayKilledNodeDown(t *testing.T) {
	h := newFailover(t)
	leader := h.leader()
	killed := h.kill(leader)
	h.join(newChannels[0])
	h.pause(500 * time.Millisecond)
	pid := h.gws[0].kill(t)
	h.note("SIGKILLed gateway A (pid %d, gone) while %s is down", pid, leader)
	h.pause(time.Second)
	h.gws[0].launch(t, h.ctx)
	h.note("gateway A serves again")
	h.restart(leader)
	h.newLeader(killed)
	h.finish()
}

// bounce SIGKILLs node, has new clients join channel while it is down,
// and restarts it 2 s later. It returns when node was killed.
func (h *failover) bounce(node, channel string) time.Time {
	killed := h.kill(node)
	h.join(channel)
	h.pause(2 * time.Second)
	h.restart(node)
	return killed
}

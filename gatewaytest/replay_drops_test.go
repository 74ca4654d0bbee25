package gatewaytest

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/ssegate/ssegate/internal/natstest"
)

// TestReplayConnectionDropsAreCounted: a nats-server whose max_pending is
// below one replay pull cuts the replay connection as a slow consumer, as
// the 64 MiB budget against the default 64 MiB max_pending did at
// scale. Each cut is counted in the metric and in health.
func TestReplayConnectionDropsAreCounted(t *testing.T) {
	ns := natstest.Server(t, func(o *server.Options) { o.MaxPending, o.MaxPayload = 256<<10, 128<<10 })
	g := startGateway(t, ns, gatewayConfig{noTLS: true, handler: map[string]any{"health_path": "/events/health"}})
	drops := func() float64 { return g.metric("ssegate_replay_connection_drops_total") }
	before := drops()
	big := strings.Repeat("x", 60<<10)
	for range 20 {
		publish(t, g.js(), "events.big", "", big)
	}
	s := open(t, g.h1Client(), eventsURL(g.httpURL, []string{"big"}, url.Values{"last_event_id": {"0"}}), nil)
	defer s.close()
	eventually(t, 10*time.Second, "the replay connection's cut counted", func() bool {
		return drops() > before
	})
	if h := getHealth(t, g.httpURL); h.body.ReplayDrops == 0 {
		t.Fatalf("health %+v does not count the cut", h.body)
	}
}

// TestReplaysWithinMaxPendingAreNotCut is the setup scaled down:
// events stored, many clients replaying from 0 while events are
// published, against a server whose max_pending is scaled down with them.
// With the replay budget at half of max_pending, as the default is of
// nats-server's default, the replay connection is never cut and every
// stream delivers everything.
func TestReplaysWithinMaxPendingAreNotCut(t *testing.T) {
	ns := natstest.Server(t, func(o *server.Options) { o.MaxPending, o.MaxPayload = 1<<20, 16<<10 })
	g := startGateway(t, ns, gatewayConfig{noTLS: true, app: map[string]any{"replay_pull_bytes": 128 << 10, "replay_budget": 512 << 10}})
	slowEnded := func() float64 { return g.metric(`ssegate_streams_ended_total{reason="slow"}`) }
	before, slowBefore := g.metric("ssegate_replay_connection_drops_total"), slowEnded()
	const stored, live, clients = 60, 40, 16
	event := strings.Repeat("x", 12<<10)
	for range stored {
		publish(t, g.js(), "events.wide", "", event)
	}
	streams := make([]*stream, clients)
	for i := range streams {
		streams[i] = open(t, g.h1Client(), eventsURL(g.httpURL, []string{"wide"}, url.Values{"last_event_id": {"0"}}), nil)
		defer streams[i].close()
	}
	for range live {
		publish(t, g.js(), "events.wide", "", event)
	}
	for i, s := range streams {
		if got := s.collect(t, stored+live, 30*time.Second); len(got) != stored+live {
			t.Fatalf("stream %d got %d events", i, len(got))
		}
	}
	if d := g.metric("ssegate_replay_connection_drops_total") - before; d != 0 {
		t.Fatalf("the replay connection was cut %v times", d)
	}
	if d := slowEnded() - slowBefore; d != 0 {
		t.Fatalf("%v streams ended slow", d)
	}
}

package gatewaytest

import (
	"net/http"
	"testing"
	"time"
)

// TestMetricsSurviveReloads: the counters go on across a config reload,
// the streams the reload ends are counted, and every known label exists
// before its first event.
func TestMetricsSurviveReloads(t *testing.T) {
	ns := natsServer(t)
	g := startGateway(t, ns, gatewayConfig{noTLS: true})
	const (
		ended     = "ssegate_streams_ended_total"
		shutdown  = ended + `{reason="shutdown"}`
		refusals  = "ssegate_refusals_total"
		invalid   = refusals + `{code="invalid_channel"}`
		delivered = "ssegate_delivered_events_total"
		latency   = "ssegate_delivery_latency_seconds_bucket"
	)
	if n := g.seriesOf(ended); n < 7 {
		t.Fatalf("%d ending reasons exist before any stream ended", n)
	}
	if n := g.seriesOf(refusals); n < 20 {
		t.Fatalf("%d refusal codes exist before any refusal", n)
	}
	if !g.natsUp() {
		t.Fatal("nats_connected is not 1")
	}

	refusedBefore := g.metric(invalid)
	resp, err := g.h1Client().Get(g.httpURL + "/events?channel=bad*")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || g.metric(invalid) != refusedBefore+1 {
		t.Fatalf("status %d; refusal not counted", resp.StatusCode)
	}

	deliveredBefore := g.metric(delivered)
	latencies := g.seriesOf(latency)
	s := open(t, g.h1Client(), eventsURL(g.httpURL, []string{"metered"}, nil), nil)
	defer s.close()
	eventually(t, 5*time.Second, "stream counted", func() bool {
		return g.metric(`ssegate_streams{proto="HTTP/1.1"}`) >= 1 && g.metric(mChannels) >= 1
	})
	publish(t, g.js(), "events.metered", "", "x")
	s.next(t, 5*time.Second)
	eventually(t, 5*time.Second, "delivery counted", func() bool {
		return g.metric(delivered) == deliveredBefore+1 && g.metric("ssegate_written_bytes_total") > 0
	})
	if g.seriesOf(latency) != latencies {
		t.Fatal("the latency histogram changed shape")
	}

	shutdowns := g.metric(shutdown)
	// The new config serves /metrics on its own port; had the reload made
	// new collectors, its counters would start again from zero.
	g2 := startGateway(t, ns, gatewayConfig{noTLS: true})
	eventually(t, 5*time.Second, "the reload's ending counted", func() bool {
		return g2.metric(shutdown) == shutdowns+1
	})
	if g2.metric(delivered) < deliveredBefore+1 {
		t.Fatal("delivered_events_total went back: the reload made new collectors")
	}
	eventually(t, 5*time.Second, "old channels released", func() bool { return g2.metric(mChannels) == 0 })
}

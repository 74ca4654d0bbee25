package ssegate

import (
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestMetricsSurviveReloads: the counters go on across a config reload,
// the streams the reload ends are counted, and every known label exists
// before its first event.
func TestMetricsSurviveReloads(t *testing.T) {
	ns := natsServer(t)
	g := startGateway(t, ns, gatewayConfig{noTLS: true})
	m := g.app.metrics
	if n := testutil.CollectAndCount(m.ended); n < 7 {
		t.Fatalf("%d ending reasons exist before any stream ended", n)
	}
	if n := testutil.CollectAndCount(m.refusals); n < 20 {
		t.Fatalf("%d refusal codes exist before any refusal", n)
	}
	if testutil.ToFloat64(m.natsConnected) != 1 {
		t.Fatal("nats_connected is not 1")
	}

	refusedBefore := testutil.ToFloat64(m.refusals.WithLabelValues("invalid_channel"))
	resp, err := g.h1Client().Get(g.httpURL + "/events?channel=bad*")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || testutil.ToFloat64(m.refusals.WithLabelValues("invalid_channel")) != refusedBefore+1 {
		t.Fatalf("status %d; refusal not counted", resp.StatusCode)
	}

	delivered := testutil.ToFloat64(m.delivered)
	latencies := testutil.CollectAndCount(m.latency)
	s := open(t, g.h1Client(), eventsURL(g.httpURL, []string{"metered"}, nil), nil)
	defer s.close()
	eventually(t, 5*time.Second, "stream counted", func() bool {
		return testutil.ToFloat64(m.connections.WithLabelValues("HTTP/1.1")) >= 1 && testutil.ToFloat64(m.channels) >= 1
	})
	publish(t, g.js(), "events.metered", "", "x")
	s.next(t, 5*time.Second)
	eventually(t, 5*time.Second, "delivery counted", func() bool {
		return testutil.ToFloat64(m.delivered) == delivered+1 && testutil.ToFloat64(m.bytes) > 0
	})
	if testutil.CollectAndCount(m.latency) != latencies {
		t.Fatal("the latency histogram changed shape")
	}

	shutdowns := testutil.ToFloat64(m.ended.WithLabelValues("shutdown"))
	g2 := startGateway(t, ns, gatewayConfig{noTLS: true})
	if g2.app.metrics != m {
		t.Fatal("the reload made new collectors; counters would start again from zero")
	}
	eventually(t, 5*time.Second, "the reload's ending counted", func() bool {
		return testutil.ToFloat64(m.ended.WithLabelValues("shutdown")) == shutdowns+1
	})
	if testutil.ToFloat64(m.delivered) < delivered+1 {
		t.Fatal("delivered_events_total went back")
	}
	eventually(t, 5*time.Second, "old channels released", func() bool { return testutil.ToFloat64(m.channels) == 0 })
}

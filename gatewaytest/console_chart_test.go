package gatewaytest

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ssegate/ssegate/console"
)

// TestConsoleStatsLatency: the figures carry the delivery latency
// histogram that the console's chart draws p50 and p99 from; it counts
// each delivered event once, in buckets that only grow.
func TestConsoleStatsLatency(t *testing.T) {
	g := consoleGateway(t)
	url := g.httpURL + "/events/console/stats"
	reader := bearer(token(t, jwt.MapClaims{"sub": "alice", "channels": []string{"demo"}}))
	read := func() console.Stats {
		t.Helper()
		resp, body := get(t, url, reader)
		var st console.Stats
		if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &st) != nil {
			t.Fatalf("stats: %d %q", resp.StatusCode, body)
		}
		return st
	}
	before := read().Latency
	if !slices.Equal(before.LE, []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}) || len(before.Counts) != len(before.LE) {
		t.Fatalf("latency buckets %+v, want those of delivery_latency_seconds", before)
	}
	s := open(t, g.h1Client(), eventsURL(g.httpURL, []string{"demo"}, nil), nil)
	const n = 5
	for range n {
		post(t, g.httpURL, "channel=demo", "tick", bearer(testPublishKey))
		s.next(t, 5*time.Second)
	}
	var after console.Latency
	eventually(t, 5*time.Second, "the deliveries counted", func() bool {
		after = read().Latency
		return after.Count >= before.Count+n
	})
	if after.Count != before.Count+n {
		t.Errorf("latency count went from %d to %d after %d deliveries", before.Count, after.Count, n)
	}
	for i, c := range after.Counts {
		if c < before.Counts[i] || (i > 0 && c < after.Counts[i-1]) || c > after.Count {
			t.Errorf("bucket %d: %d (before %d), counts %v of %d: not cumulative", i, c, before.Counts[i], after.Counts, after.Count)
		}
	}
}

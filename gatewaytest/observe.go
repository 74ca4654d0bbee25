package gatewaytest

import (
	"bufio"
	"bytes"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ssegate/ssegate"
	"github.com/ssegate/ssegate/internal/natstest"
)

// scrape reads Caddy's /metrics on the plain server: each series, as the
// exposition writes it (`ssegate_clients`,
// `ssegate_refusals_total{code="invalid_channel"}`), to its value.
func (g *gateway) scrape() map[string]float64 {
	g.t.Helper()
	// A connection per scrape, closed after it, so that a test counting
	// goroutines or connections sees none of the scrape's.
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(g.httpURL + "/metrics")
	if err != nil {
		g.t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		g.t.Fatalf("GET /metrics: %s", resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			g.t.Fatalf("/metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		g.t.Fatalf("reading /metrics: %v", err)
	}
	return out
}

// metric is one series' value on /metrics; a series that is absent reads
// as zero, as a counter that has not counted yet would.
func (g *gateway) metric(series string) float64 {
	g.t.Helper()
	return g.scrape()[series]
}

// seriesOf counts the series of a metric family on /metrics.
func (g *gateway) seriesOf(name string) int {
	g.t.Helper()
	n := 0
	for k := range g.scrape() {
		if k == name || strings.HasPrefix(k, name+"{") {
			n++
		}
	}
	return n
}

// The series the tests read.
const (
	mClients    = "ssegate_clients"
	mSlow       = "ssegate_slow_client_disconnects_total"
	mBackfilled = "ssegate_backfilled_events_total"
	mReplayed   = "ssegate_replayed_events_total"
	mChannels   = "ssegate_channel_subscriptions"
)

// More series the tests read.
const (
	mRecovering   = "ssegate_channels_recovering"
	mPollsWaiting = "ssegate_polls_waiting"
)

// natsUp reports whether the gateway says its NATS connection is up.
func (g *gateway) natsUp() bool { return g.inspect().Connected }

// reconnects counts the gateway's NATS connection's reconnections.
func (g *gateway) reconnects() uint64 { return g.inspect().Reconnects }

// inspect is what the running app shows of itself beyond its endpoints.
func (g *gateway) inspect() ssegate.Inspection {
	g.t.Helper()
	in, ok := g.app.Inspect()
	if !ok {
		g.t.Fatal("app not running")
	}
	return in
}

func (g *gateway) epoch() string { return g.inspect().Epoch }

// natsConns lists the connections the NATS server holds, by id, with
// their names, so that a test can tell whether the gateway dialled again.
func natsConns(t testing.TB, ns *server.Server) map[uint64]string {
	t.Helper()
	cz, err := ns.Connz(&server.ConnzOptions{Limit: 1 << 16})
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[uint64]string, len(cz.Conns))
	for _, c := range cz.Conns {
		out[c.Cid] = c.Name
	}
	return out
}

// natsConn is the server's view of the one connection named name.
func natsConn(t testing.TB, ns *server.Server, name string) *server.ConnInfo {
	t.Helper()
	cz, err := ns.Connz(&server.ConnzOptions{Limit: 1 << 16})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cz.Conns {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("the server has no connection named %q", name)
	return nil
}

// logsAfterStreamClosed waits for the gateway's log file to hold a
// "stream closed" line, and returns the file.
func logsAfterStreamClosed(t testing.TB, logFile string) []byte {
	t.Helper()
	eventually(t, 5*time.Second, "stream closed line", func() bool {
		b, _ := os.ReadFile(logFile)
		return bytes.Contains(b, []byte(`"stream closed"`))
	})
	logs, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	return logs
}

// gatewayStream is the gateway's stream, SSEGATE, as js sees it.
func gatewayStream(t testing.TB, js jetstream.JetStream) jetstream.Stream {
	t.Helper()
	return natstest.Stream(t, js, "SSEGATE")
}

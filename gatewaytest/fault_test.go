package gatewaytest

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ssegate/ssegate"
	"github.com/ssegate/ssegate/internal/faulttest"
	"github.com/ssegate/ssegate/internal/natstest"
)

// The fault suite: one test per fault, each with a publisher that counts
// only acked events and several EventSource-like clients on overlapping
// channels, some quiet or empty. Each checks that every acked event
// reaches every client exactly once and in order, that the fault really
// happened, and that events flowed. The e2e package has the faults that
// need built binaries: SIGTERM, a killed gateway, a NATS cluster.

// faultJS connects a publisher that reconnects quickly and for ever, so
// that it rides out a NATS restart.
func faultJS(t testing.TB, url string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	return natstest.ConnectURL(t, url, natstest.Reconnecting())
}

// runPublisher runs pub until the returned stop is called; stop returns
// the publisher's error.
func runPublisher(ctx context.Context, pub *faulttest.Publisher) (stop func() error) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- pub.Run(ctx) }()
	return func() error {
		cancel()
		return <-done
	}
}

// waitAcked waits until pub has acked n events in all.
func waitAcked(t testing.TB, pub *faulttest.Publisher, n int64, timeout time.Duration) {
	t.Helper()
	eventually(t, timeout, fmt.Sprintf("%d acked events (%s)", n, pub.Summary()), func() bool { return pub.Count() >= n })
}

// client makes a fault-suite client of g.
func (g *gateway) faultClient(name string, h *http.Client, lastID string, channels ...string) *faulttest.Client {
	return &faulttest.Client{Name: name, Channels: channels, Base: func(int) string { return g.httpURL }, HTTP: h, LastID: lastID}
}

// finish stops publishing, waits for the clients to get every acked
// event, stops them and checks what each got. It returns the events
// delivered, which the test compares with a minimum.
func finish(t testing.TB, stopPub func() error, pub *faulttest.Publisher, fleet *faulttest.Fleet, timeout time.Duration) int {
	t.Helper()
	if err := stopPub(); err != nil {
		t.Errorf("publisher: %v", err)
	}
	waited, err := faulttest.WaitDelivered(context.Background(), pub, fleet.Clients, timeout)
	if err != nil {
		t.Error(err)
	}
	fleet.Stop()
	delivered := faulttest.CheckAll(t, pub, fleet.Clients)
	t.Logf("%s; %d events delivered to %d clients, the last %v after publishing stopped", pub.Summary(), delivered, len(fleet.Clients), waited.Round(time.Millisecond))
	return delivered
}

// restartNATS shuts ns down, waits until the gateway noticed, and starts
// it again on the same port and store. Before the gateway is back (its
// reconnect_wait is seconds), it stores an event on channel through pub:
// only the gateway's recovery from JetStream can deliver that one, so it
// is the fault. Should the gateway come back before the event's ack, it
// restarts NATS again, up to three times. It returns how many events
// recovery delivered.
func restartNATS(t testing.TB, g *gateway, ns *natstest.Restartable, pub *faulttest.Publisher, channel string) (backfilled float64) {
	t.Helper()
	reconnects := g.reconnects()
	before := g.metric(mBackfilled)
	for attempt := 1; ; attempt++ {
		ns.Stop()
		eventually(t, 5*time.Second, "the gateway notices NATS is down", func() bool { return !g.natsUp() })
		ns.Start()
		if _, err := pub.Publish(context.Background(), channel); err != nil {
			t.Fatalf("storing an event while the gateway is away: %v", err)
		}
		if !g.natsUp() {
			break
		}
		if attempt == 3 {
			t.Fatalf("the gateway came back before an event was stored without it, %d times", attempt)
		}
		eventually(t, 10*time.Second, "the gateway reconnects", g.natsUp)
	}
	eventually(t, 10*time.Second, "the gateway reconnects", g.natsUp)
	if n := g.reconnects(); n <= reconnects {
		t.Fatalf("the gateway's NATS connection did not reconnect (%v reconnects)", n)
	}
	eventually(t, 20*time.Second, "the gateway recovers events stored while it was away", func() bool {
		return g.metric(mBackfilled) > before
	})
	return g.metric(mBackfilled) - before
}

// logProblems shows the gateway's warnings and errors when t failed.
func logProblems(t testing.TB, logFile string) {
	if !t.Failed() {
		return
	}
	raw, err := os.ReadFile(logFile)
	if err != nil {
		t.Logf("reading the gateway log: %v", err)
		return
	}
	var lines []string
	counts := map[string]int{}
	for _, l := range strings.Split(string(raw), "\n") {
		if strings.Contains(l, `"level":"warn"`) || strings.Contains(l, `"level":"error"`) {
			var e struct{ Msg, Error string }
			_ = json.Unmarshal([]byte(l), &e)
			key := e.Msg + ": " + e.Error
			if counts[key]++; counts[key] <= 3 {
				lines = append(lines, l)
			}
		}
	}
	t.Logf("gateway warnings and errors (3 of each):\n%s\ncounts: %v", strings.Join(lines, "\n"), counts)
}

// TestFaultNATSRestart restarts nats-server on the same port and store
// under load. Clients on busy, quiet and empty channels, with and
// without a position, get every acked event once and in order, and none
// of the history from before they connected.
func TestFaultNATSRestart(t *testing.T) {
	restartable := natstest.NewRestartable(t)
	ns := restartable.Start()
	g := startGateway(t, ns, gatewayConfig{
		noTLS:   true,
		handler: map[string]any{"heartbeat": int64(200 * time.Millisecond), "retry": int64(100 * time.Millisecond)},
		stream:  map[string]any{"storage": "file"},
		nats:    map[string]any{"urls": []string{ns.ClientURL()}, "reconnect_wait": int64(3 * time.Second)},
	})
	_, js := faultJS(t, ns.ClientURL())
	pub := &faulttest.Publisher{JS: js, Channels: []string{"a", "b", "c"}}
	ctx := context.Background()
	for range 3 { // old history on the quiet channel
		if _, err := pub.Publish(ctx, "quiet"); err != nil {
			t.Fatal(err)
		}
	}
	stopPub := runPublisher(ctx, pub)
	waitAcked(t, pub, 30, 10*time.Second)
	mid := strconv.FormatUint(pub.LastSeq(), 10)
	h1, h2c := g.h1Client(), g.h2cClient()
	fleet, err := faulttest.StartAll(ctx, pub, []*faulttest.Client{
		g.faultClient("live-a-quiet", h1, "", "a", "quiet"),
		g.faultClient("from0-b-c-empty", h1, "0", "b", "c", "empty"),
		g.faultClient("mid-all", h2c, mid, "a", "b", "c", "quiet", "empty"),
		g.faultClient("live-quiet-empty", h2c, "", "quiet", "empty"),
		g.faultClient("live-c", h1, "", "c"),
		g.faultClient("live-a-c", h2c, "", "a", "c"),
	}, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer fleet.Stop()
	waitAcked(t, pub, pub.Count()+100, 10*time.Second)

	t.Logf("recovery delivered %v events stored while the gateway was away", restartNATS(t, g, restartable, pub, "a"))
	after := pub.Count()
	waitAcked(t, pub, after+100, 20*time.Second)
	if _, err := pub.Publish(ctx, "quiet"); err != nil {
		t.Fatal(err)
	}
	waitAcked(t, pub, pub.Count()+20, 10*time.Second)
	if delivered := finish(t, stopPub, pub, fleet, 20*time.Second); delivered < 400 {
		t.Errorf("only %d events delivered", delivered)
	}
}

// TestFaultSlowClient: one client stops reading for a while among fast
// ones on the same channels. The gateway cuts it as slow; it resumes from
// its last id and loses nothing. The fast ones lose nothing, are never
// cut, and get each event within a bound of its ack.
func TestFaultSlowClient(t *testing.T) {
	ns := natsServer(t)
	g := startGateway(t, ns, gatewayConfig{noTLS: true, handler: map[string]any{
		"queue_size": 32, "write_timeout": int64(time.Second), "retry": int64(100 * time.Millisecond),
	}})
	_, js := faultJS(t, ns.ClientURL())
	// Events of 1 KiB fill the slow client's buffers within a second.
	pub := &faulttest.Publisher{JS: js, Channels: []string{"a", "b", "c"}, Pad: 1000}
	ctx := context.Background()
	stopPub := runPublisher(ctx, pub)
	waitAcked(t, pub, 20, 10*time.Second)

	// A small HTTP/2 stream window makes the gateway's writes block soon
	// after the client stops reading, rather than after megabytes of
	// socket buffers.
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	small := &http.Client{Transport: &http.Transport{Protocols: p, DisableCompression: true,
		HTTP2: &http.HTTP2Config{MaxReceiveBufferPerStream: 8 << 10}}}
	slow := g.faultClient("slow-a-b", small, "", "a", "b")
	slow.StallAfter, slow.StallFor = 20, 4*time.Second
	fast := []*faulttest.Client{
		g.faultClient("fast-a-b", g.h1Client(), "", "a", "b"),
		g.faultClient("fast-a", g.h2cClient(), "", "a"),
		g.faultClient("fast-b-c", g.h1Client(), "", "b", "c"),
		g.faultClient("fast-all-empty", g.h2cClient(), "", "a", "b", "c", "empty"),
	}
	slowBefore := g.metric(mSlow)
	fleet, err := faulttest.StartAll(ctx, pub, append(fast, slow), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer fleet.Stop()
	// The end comment may never reach a client that stopped reading: the
	// gateway's counter says it was cut, the client's second stream that
	// it came back.
	defer func() { t.Logf("slow: %+v, counter %v", slow.Stats(), g.metric(mSlow)) }()
	eventually(t, 20*time.Second, "the slow client is cut and comes back", func() bool {
		return g.metric(mSlow) > slowBefore && slow.Stats().Streams > 1
	})
	waitAcked(t, pub, pub.Count()+200, 10*time.Second)
	if delivered := finish(t, stopPub, pub, fleet, 20*time.Second); delivered < 1000 {
		t.Errorf("only %d events delivered", delivered)
	}
	if n := g.metric(mSlow) - slowBefore; n < 1 {
		t.Errorf("the slow-client counter did not move")
	}
	if st := slow.Stats(); !st.Stalled || st.Streams < 2 {
		t.Errorf("the slow client did not stall and resume: %+v", st)
	}
	checkFastClients(t, pub, fast, 2*time.Second)
}

// TestFaultReloadTwice reloads the Caddy config twice under load, on the
// same listener, changing the handler each time. The old config ends its
// streams with a retry hint; clients resume on the new one from their
// ids, and the NATS connection is kept.
func TestFaultReloadTwice(t *testing.T) {
	ns := natsServer(t)
	addr := freePort(t)
	config := func(heartbeat time.Duration) gatewayConfig {
		return gatewayConfig{noTLS: true, httpAddr: addr, handler: map[string]any{
			"heartbeat": int64(heartbeat), "retry": int64(100 * time.Millisecond),
		}}
	}
	g := startGateway(t, ns, config(time.Second))
	_, js := faultJS(t, ns.ClientURL())
	pub := &faulttest.Publisher{JS: js, Channels: []string{"a", "b", "c"}}
	ctx := context.Background()
	if _, err := pub.Publish(ctx, "quiet"); err != nil {
		t.Fatal(err)
	}
	stopPub := runPublisher(ctx, pub)
	waitAcked(t, pub, 30, 10*time.Second)
	mid := strconv.FormatUint(pub.LastSeq()-10, 10)
	fleet, err := faulttest.StartAll(ctx, pub, []*faulttest.Client{
		g.faultClient("live-a-b", g.h1Client(), "", "a", "b"),
		g.faultClient("mid-b-c-quiet", g.h2cClient(), mid, "b", "c", "quiet"),
		g.faultClient("live-c-empty", g.h1Client(), "", "c", "empty"),
		g.faultClient("from0-all", g.h2cClient(), "0", "a", "b", "c", "quiet", "empty"),
		g.faultClient("live-quiet-empty", g.h1Client(), "", "quiet", "empty"),
	}, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer fleet.Stop()
	apps := []*ssegate.App{g.app}
	for i, hb := range []time.Duration{2 * time.Second, 3 * time.Second} {
		waitAcked(t, pub, pub.Count()+100, 10*time.Second)
		conns := natsConns(t, ns)
		g2 := startGateway(t, ns, config(hb))
		if g2.app == apps[len(apps)-1] || !maps.Equal(natsConns(t, ns), conns) {
			t.Fatalf("reload %d: same app %v, or NATS dialled again", i+1, g2.app == apps[len(apps)-1])
		}
		apps = append(apps, g2.app)
	}
	waitAcked(t, pub, pub.Count()+100, 10*time.Second)
	if _, err := pub.Publish(ctx, "quiet"); err != nil {
		t.Fatal(err)
	}
	if delivered := finish(t, stopPub, pub, fleet, 20*time.Second); delivered < 800 {
		t.Errorf("only %d events delivered", delivered)
	}
	for _, c := range fleet.Clients {
		if st := c.Stats(); st.Ends["shutdown"] < 2 || st.Streams < 3 {
			t.Errorf("%s was not asked back by both reloads: %+v", c.Name, st)
		}
	}
}

// checkFastClients: none of fast was cut, and each got every event
// within bound of its ack.
func checkFastClients(t testing.TB, pub *faulttest.Publisher, fast []*faulttest.Client, bound time.Duration) {
	t.Helper()
	for _, c := range fast {
		st := c.Stats()
		if st.Streams != 1 || len(st.Ends) > 0 {
			t.Errorf("%s was cut: %+v", c.Name, st)
		}
		var worst time.Duration
		for _, ev := range c.Received() {
			if at, ok := pub.AckedAt(ev.Seq); ok {
				worst = max(worst, ev.At.Sub(at))
			}
		}
		if worst > bound {
			t.Errorf("%s got an event %v after its ack; the bound is %v", c.Name, worst, bound)
		}
		t.Logf("%s: slowest event %v after its ack", c.Name, worst.Round(time.Millisecond))
	}
}

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ssegate/ssegate/internal/faulttest"
	"github.com/ssegate/ssegate/internal/natstest"
)

// The fault suite's cases that need built binaries: the gateway stopped
// with SIGTERM and started again, and one of two gateways killed. They use
// the same publisher, clients and checker as the in-process cases in the
// root package (internal/faulttest).

// faultGateway starts the built caddy as gateway name on port, on the
// NATS servers conf names, and waits until it serves; it can be killed and
// started again on its port.
func faultGateway(t *testing.T, ctx context.Context, bin, name string, port int, conf externalConf) *gatewaySlot {
	t.Helper()
	dir := t.TempDir()
	conf.port = port
	g := &gatewaySlot{name: name, bin: bin, port: port, dir: dir, conf: conf.caddyfile(dir)}
	g.launch(t, ctx)
	return g
}

// faultPublisher publishes to room.a, room.b and room.c through a
// connection that rides out node failures.
func faultPublisher(t *testing.T, urls string) (*faulttest.Publisher, jetstream.JetStream) {
	t.Helper()
	_, js := natstest.ConnectURL(t, urls, nats.Name("fault-publisher"), natstest.Reconnecting())
	return &faulttest.Publisher{JS: js, Channels: []string{"room.a", "room.b", "room.c"}}, js
}

// faultClients are clients on overlapping channels, with and without a
// position, some on a quiet channel (room.q, one event before they
// connect and one at the end) and an empty one (room.e). base picks the
// gateway of each connection.
func faultClients(base func(int) string, from string, sessionEvents int) []*faulttest.Client {
	specs := []struct {
		lastID   string
		channels []string
	}{
		{"", []string{"room.a", "room.q"}},
		{from, []string{"room.b", "room.c", "room.e"}},
		{"", []string{"room.a", "room.b", "room.c", "room.q", "room.e"}},
		{from, []string{"room.q", "room.e", "room.a"}},
		{"", []string{"room.c"}},
		{"0", []string{"room.a", "room.c"}},
	}
	var out []*faulttest.Client
	for i, s := range specs {
		h := &http.Client{Transport: &http.Transport{DisableCompression: true}}
		out = append(out, &faulttest.Client{Name: fmt.Sprintf("client%d", i), Channels: s.channels, Base: base,
			HTTP: h, LastID: s.lastID, SessionEvents: sessionEvents})
	}
	return out
}

// runFaultPublisher runs pub until stop is called; stop returns its error.
func runFaultPublisher(pub *faulttest.Publisher) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- pub.Run(ctx) }()
	return func() error {
		cancel()
		return <-done
	}
}

// waitFaultAcked waits for n acked events in all.
func waitFaultAcked(t *testing.T, ctx context.Context, pub *faulttest.Publisher, n int64, timeout time.Duration) {
	t.Helper()
	if err := pollUntil(ctx, timeout, func() bool { return pub.Count() >= n }); err != nil {
		t.Fatalf("waiting for %d acked events: %v (%s)", n, err, pub.Summary())
	}
}

// startFaultLoad runs pub (after one event on the quiet channel) and,
// from 50 acked events on, faultClients on base that start 20 events
// back. The test stops the clients when it ends; stop stops pub.
func startFaultLoad(t *testing.T, ctx context.Context, pub *faulttest.Publisher, base func(int) string, sessionEvents int, within time.Duration) (stop func() error, fleet *faulttest.Fleet) {
	t.Helper()
	if _, err := pub.Publish(ctx, "room.q"); err != nil {
		t.Fatal(err)
	}
	stop = runFaultPublisher(pub)
	waitFaultAcked(t, ctx, pub, 50, within)
	from := strconv.FormatUint(pub.LastSeq()-20, 10)
	fleet, err := faulttest.StartAll(ctx, pub, faultClients(base, from, sessionEvents), within)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fleet.Stop)
	return stop, fleet
}

// finishFault stops publishing (after one last event on the quiet
// channel), waits for every client to catch up, and checks them all. It
// returns the events delivered.
func finishFault(t *testing.T, ctx context.Context, stopPub func() error, pub *faulttest.Publisher, fleet *faulttest.Fleet) int {
	t.Helper()
	if _, err := pub.Publish(ctx, "room.q"); err != nil {
		t.Errorf("publishing to the quiet channel: %v", err)
	}
	if err := stopPub(); err != nil {
		t.Errorf("publisher: %v", err)
	}
	waited, err := faulttest.WaitDelivered(ctx, pub, fleet.Clients, 30*time.Second)
	if err != nil {
		t.Error(err)
	}
	fleet.Stop()
	delivered := faulttest.CheckAll(t, pub, fleet.Clients)
	t.Logf("%s; %d events delivered to %d clients, the last %v after publishing stopped",
		pub.Summary(), delivered, len(fleet.Clients), waited.Round(time.Millisecond))
	for _, c := range fleet.Clients {
		st := c.Stats()
		t.Logf("%s on %v: %d streams, %d network errors, ends %v", c.Name, c.Channels, st.Streams, st.NetErrors, st.Ends)
	}
	return delivered
}

// TestFaultGatewaySIGTERMAndRestart stops the gateway process with
// SIGTERM under load and starts it again on the same port. Its streams
// end with a retry hint; clients retry through the refused connections
// until the new process answers, and resume from their ids.
func TestFaultGatewaySIGTERMAndRestart(t *testing.T) {
	bin := buildCommands(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ns := natstest.Server(t)
	port := freePorts(t, 1)[0]
	gw := faultGateway(t, ctx, bin, "A", port, externalConf{nats: []string{ns.ClientURL()}})

	pub, _ := faultPublisher(t, ns.ClientURL())
	stopPub, fleet := startFaultLoad(t, ctx, pub, func(int) string { return gw.url() }, 0, 20*time.Second)
	waitFaultAcked(t, ctx, pub, pub.Count()+150, 20*time.Second)

	if !gw.p.Signal(syscall.SIGTERM, 15*time.Second) {
		t.Fatal("the gateway did not exit within 15s of SIGTERM")
	}
	stopped := pub.Count()
	// Events stored while no gateway runs reach the clients by replay.
	waitFaultAcked(t, ctx, pub, stopped+50, 20*time.Second)
	gw.launch(t, ctx)
	waitFaultAcked(t, ctx, pub, pub.Count()+150, 20*time.Second)

	if delivered := finishFault(t, ctx, stopPub, pub, fleet); delivered < 1000 {
		t.Errorf("only %d events delivered", delivered)
	}
	for _, c := range fleet.Clients {
		if st := c.Stats(); st.Ends["shutdown"] < 1 || st.Streams < 2 {
			t.Errorf("%s was not asked back by the shutdown, or did not come back: %+v", c.Name, st)
		}
	}
}

// TestFaultGatewayKilled runs two gateways on one NATS. Clients alternate
// between them, a few events per stream, and one gateway is killed with
// SIGKILL mid-run: its streams break without an end, and connections to
// it are refused; clients go on with the other one.
func TestFaultGatewayKilled(t *testing.T) {
	bin := buildCommands(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ns := natstest.Server(t)
	ports := freePorts(t, 2)
	conf := externalConf{nats: []string{ns.ClientURL()}}
	gws := []*gatewaySlot{
		faultGateway(t, ctx, bin, "A", ports[0], conf),
		faultGateway(t, ctx, bin, "B", ports[1], conf),
	}
	base := func(n int) string { return gws[n%2].url() }

	pub, _ := faultPublisher(t, ns.ClientURL())
	stopPub, fleet := startFaultLoad(t, ctx, pub, base, 25, 20*time.Second)
	waitFaultAcked(t, ctx, pub, pub.Count()+200, 20*time.Second)

	netErrs := 0
	for _, c := range fleet.Clients {
		netErrs += c.Stats().NetErrors
	}
	gws[0].kill(t)
	waitFaultAcked(t, ctx, pub, pub.Count()+300, 30*time.Second)

	if delivered := finishFault(t, ctx, stopPub, pub, fleet); delivered < 1500 {
		t.Errorf("only %d events delivered", delivered)
	}
	after := 0
	for _, c := range fleet.Clients {
		after += c.Stats().NetErrors
	}
	if after <= netErrs {
		t.Errorf("no client met the killed gateway: %d network errors before the kill, %d after", netErrs, after)
	}
}

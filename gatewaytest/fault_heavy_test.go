//go:build !race || faultheavy

package gatewaytest

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/ssegate/ssegate/internal/faulttest"
	"github.com/ssegate/ssegate/internal/natstest"
)

// The heavy faults: hundreds of thousands of events through thousands of
// streams. The race detector slows them several times over, past what
// CI can afford, so they build without it and .ci/run runs them in a
// second, race-free `go test`. `-race -tags faultheavy` runs them with
// the race detector too.

// TestFaultReconnectStorm: 1,000 clients come back at once, each 500
// events behind on its channels, over HTTP/2 (a few connections carry
// them all), while events keep flowing. Every replay ends and hands over
// to live delivery with no loss and no duplicate.
func TestFaultReconnectStorm(t *testing.T) {
	const clients, behind = 1000, 500
	ns := natsServer(t)
	logFile := caddyLogFile(t)
	g := startGateway(t, ns, gatewayConfig{noTLS: true, logFile: logFile, handler: map[string]any{"retry": int64(100 * time.Millisecond)}})
	defer logProblems(t, logFile)
	_, js := faultJS(t, ns.ClientURL())
	channels := []string{"a", "b", "c", "d"}
	// Each client reads two of four channels, which carry half the events.
	pub := &faulttest.Publisher{JS: js, Channels: channels, Interval: time.Millisecond}
	ctx := context.Background()
	stopPub := runPublisher(ctx, pub)
	waitAcked(t, pub, 2*behind+50, 30*time.Second)
	from := strconv.FormatUint(pub.LastSeq()-2*behind, 10)
	h2c := g.h2cClient()
	var cs []*faulttest.Client
	for i := range clients {
		pair := []string{channels[i%4], channels[(i/4+i%4+1)%4]}
		if pair[0] == pair[1] {
			pair[1] = channels[(i+2)%4]
		}
		cs = append(cs, g.faultClient(fmt.Sprintf("storm-%d", i), h2c, from, pair...))
	}
	replayedBefore := g.metric(mReplayed)
	start := time.Now()
	fleet, err := faulttest.StartAll(ctx, pub, cs, 60*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer fleet.Stop()
	t.Logf("%d streams open in %v", clients, time.Since(start).Round(time.Millisecond))
	waitAcked(t, pub, pub.Count()+200, 30*time.Second)
	if delivered := finish(t, stopPub, pub, fleet, 120*time.Second); delivered < clients*behind {
		t.Errorf("only %d events delivered", delivered)
	}
	t.Logf("storm caught up in %v", time.Since(start).Round(time.Millisecond))
	if n := g.metric(mReplayed) - replayedBefore; n < clients*behind*9/10 {
		t.Errorf("only %v events replayed; the clients did not come back from behind", n)
	}
}

// TestFaultScaleNATSRestart: 5,000 clients, each on its own channel, as
// HTTP/2 streams (25 connections of 200), through a NATS restart on the
// same port and store. Each channel gets an event before the restart,
// others while NATS comes back and after; every client gets its own
// events exactly once.
func TestFaultScaleNATSRestart(t *testing.T) {
	const conns, perConn = 25, 200
	restartable := natstest.NewRestartable(t)
	ns := restartable.Start()
	logFile := caddyLogFile(t)
	g := startGateway(t, ns, gatewayConfig{
		noTLS:   true,
		logFile: logFile,
		// Reconnects spread over [1s, 2s), as a browser honours the hint.
		handler: map[string]any{"heartbeat": int64(time.Second), "retry": int64(time.Second)},
		stream:  map[string]any{"storage": "file"},
		nats:    map[string]any{"urls": []string{ns.ClientURL()}, "reconnect_wait": int64(3 * time.Second)},
	})
	defer logProblems(t, logFile)
	_, js := faultJS(t, ns.ClientURL())
	channels := make([]string, conns*perConn)
	for i := range channels {
		channels[i] = fmt.Sprintf("user.u%04d", i)
	}
	pub := &faulttest.Publisher{JS: js, Channels: channels, Interval: 50 * time.Microsecond}
	ctx := context.Background()
	var cs []*faulttest.Client
	for c := range conns {
		h := g.h2cClient() // one connection each: a transport per 200 streams
		for s := range perConn {
			ch := channels[c*perConn+s]
			cs = append(cs, g.faultClient(ch, h, "", ch))
		}
	}
	start := time.Now()
	fleet, err := faulttest.StartAll(ctx, pub, cs, 120*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer fleet.Stop()
	t.Logf("%d streams on %d channels open in %v", len(cs), len(channels), time.Since(start).Round(time.Millisecond))

	stopPub := runPublisher(ctx, pub)
	waitAcked(t, pub, int64(len(channels)), 120*time.Second)
	down := time.Now()
	backfilled := restartNATS(t, g, restartable, pub, channels[0])
	t.Logf("recovery delivered %v events stored while the gateway was away, %v after NATS went down",
		backfilled, time.Since(down).Round(time.Millisecond))
	waitAcked(t, pub, pub.Count()+int64(len(channels)), 120*time.Second)
	if delivered := finish(t, stopPub, pub, fleet, 120*time.Second); delivered < 2*len(channels) {
		t.Errorf("only %d events delivered", delivered)
	}
	t.Logf("whole run %v", time.Since(start).Round(time.Millisecond))
}

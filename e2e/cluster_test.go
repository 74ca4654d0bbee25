package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/ssegate/ssegate/internal/testkit"
	gosse "github.com/tmaxmax/go-sse"
)

// The cluster test's bounds. Everything it waits for has a deadline.
const (
	clusterTimeout    = 20 * time.Second       // the NATS cluster and its JetStream meta leader
	clusterTestLimit  = 90 * time.Second       // the whole test once the binary is built
	publishRetryFor   = 20 * time.Second       // one event may take this long to be acked
	totalEvents       = 600                    // at least this many events are published…
	afterKill         = 200                    // …and at least this many after the node shutdown
	maxEvents         = 3000                   // but never more
	killAfter         = 150                    // acked events before a NATS node is shut down
	sessionEvents     = 40                     // a client session ends after this many events…
	sessionTime       = 600 * time.Millisecond // …or after this long
	gatewayStreamName = "SSEGATE"              // the gateway's default stream
)

var clusterSubjects = []string{"events.room.a", "events.room.b"}

// TestResumeOnAnotherInstanceWithNATSCluster runs two gateway processes
// against a 3-node NATS cluster with an R3 stream. One client alternates
// between them, resuming each time with Last-Event-ID, while a publisher
// publishes to two channels and the NATS node that serves the client's
// gateway (made the stream leader first) is shut down. The client must get
// every stored event of both channels exactly once, in stream order, and
// the replays must leave no consumers behind.
func TestResumeOnAnotherInstanceWithNATSCluster(t *testing.T) {
	bin := buildCommands(t)

	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), clusterTestLimit)
	defer cancel()

	cl := startNATSCluster(t)
	t.Logf("NATS cluster ready in %v: %s", time.Since(start).Round(time.Millisecond), strings.Join(cl.clientURLs(), " "))

	// Two gateways, one after the other: A creates the R3 stream, B finds
	// it. (Started together, they can both hang creating it; see
	// TestGatewaysStartTogetherOnFreshNATSCluster.)
	var gws [2]*clusterGateway
	for i, name := range []string{"A", "B"} {
		gws[i] = launchClusterGateway(t, bin, name, cl.clientURLs(), "")
		if err := gws[i].waitReady(ctx); err != nil {
			t.Fatalf("gateway %s not ready: %v\ngateway %s log:\n%s", name, err, name, gws[i].logTail())
		}
	}
	t.Logf("gateways ready in %v: A %s, B %s", time.Since(start).Round(time.Millisecond), gws[0].url, gws[1].url)

	js := cl.connect(t, "e2e-publisher")

	// The client opens its first stream, with no Last-Event-ID, before
	// anything is published; then it alternates A, B, A, … resuming from the
	// last id it saw.
	client := &clusterClient{gws: gws[:], http: &http.Client{Transport: &http.Transport{DisableCompression: true}}}
	defer client.http.CloseIdleConnections()
	opened := make(chan struct{})
	clientDone := make(chan error, 1)
	go func() { clientDone <- client.run(ctx, opened) }()
	select {
	case <-opened:
	case err := <-clientDone:
		t.Fatalf("client: %v", err)
	case <-ctx.Done():
		t.Fatal("the client's first stream did not open")
	}

	pub := &publisher{js: js, acked: make(map[string][]uint64)}
	pubDone := make(chan error, 1)
	go func() { pubDone <- pub.run(ctx) }()

	// Mid-publish, shut down the NATS node that the gateway serving the
	// client is connected to, after making it the stream leader.
	killed := make(chan string, 1)
	go func() {
		if err := pollUntil(ctx, 20*time.Second, func() bool { return pub.count.Load() >= killAfter }); err != nil {
			pub.stopAfter.Store(1)
			killed <- fmt.Sprintf("not done: publisher stuck at %d events", pub.count.Load())
			return
		}
		report := cl.killServingNode(ctx, js, pub.count.Load, &client.killedAt)
		pub.stopAfter.Store(pub.count.Load() + afterKill)
		killed <- report
	}()

	select {
	case err := <-pubDone:
		if err != nil {
			t.Errorf("publisher: %v", err)
		}
	case err := <-clientDone:
		t.Fatalf("client stopped while publishing: %v\n%s", err, client.summary())
	}
	kill := <-killed
	t.Logf("node shutdown: %s", kill)
	t.Logf("published %d events in %v with %d failed publish attempts (%d acks flagged duplicate)",
		pub.count.Load(), time.Since(start).Round(time.Millisecond), pub.failures.Load(), pub.dups.Load())

	// What the stream holds is what the client must get.
	stored, err := readStream(ctx, js)
	if err != nil {
		t.Fatalf("reading the stream: %v", err)
	}
	if len(stored) == 0 {
		t.Fatal("the stream holds no events")
	}
	client.target.Store(stored[len(stored)-1].seq)
	if err := <-clientDone; err != nil {
		t.Errorf("client: %v", err)
	}
	t.Logf("client sessions:\n%s", client.summary())

	// Every acked publish is stored once (the msg id dedupes retries).
	storedSeqs := make(map[uint64]storedMsg, len(stored))
	for _, m := range stored {
		storedSeqs[m.seq] = m
	}
	for subj, seqs := range pub.snapshot() {
		for _, seq := range seqs {
			if m, ok := storedSeqs[seq]; !ok || m.subject != subj {
				t.Errorf("acked %s seq %d is not in the stream as %s", subj, seq, subj)
			}
		}
	}
	if n := pub.count.Load(); int64(len(stored)) != n {
		t.Errorf("the stream holds %d events, %d were acked", len(stored), n)
	}

	checkReceived(t, stored, client.received)
	if len(client.resets) > 0 {
		t.Errorf("the client got reset events, so its positions were not honoured:\n  %s", strings.Join(client.resets, "\n  "))
	}
	if !strings.HasPrefix(kill, "shut down") {
		t.Errorf("no NATS node was shut down during the test: %s", kill)
	}

	// Replay consumers exist only while a replay runs.
	var consumers int
	if err := pollUntil(ctx, 15*time.Second, func() bool {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		s, err := js.Stream(cctx, gatewayStreamName)
		if err != nil {
			return false
		}
		// An R1 replay consumer that was placed on the node shut down
		// has no leader: the server cannot remove it until that node is
		// back, whatever the gateway does. Every other one must be gone.
		consumers = 0
		for info := range s.ListConsumers(cctx).Info() {
			if info.Cluster == nil || info.Cluster.Leader != "" {
				consumers++
			}
		}
		return consumers == 0
	}); err != nil {
		t.Errorf("the stream still has %d consumers: %v", consumers, err)
		cl.logConsumers(t, js)
	}

	// Each gateway still delivers live events after the failover: a new
	// client that starts live gets an event published after it attached.
	for i, g := range gws {
		if err := liveProbe(ctx, g, pub, fmt.Sprintf("probe%d", i)); err != nil {
			t.Errorf("gateway %s after the NATS node shutdown: %v", g.name, err)
		}
	}

	for _, g := range gws {
		if !g.Running() {
			t.Errorf("gateway %s exited during the test", g.name)
		}
		if notable := g.notableLogLines(30); notable != "" {
			t.Logf("gateway %s, NATS and stream events in its log:\n%s", g.name, notable)
		}
	}
	t.Logf("test body took %v", time.Since(start).Round(time.Millisecond))
}

// TestGatewaysStartTogetherOnFreshNATSCluster starts three gateways at
// once against a new cluster, as a deployment of several replicas does:
// each creates the R3 stream. All of them must start.
//
// With nats-server 2.15.2, concurrent creates of the same clustered stream
// often get no reply at all (the stream is created; see nats-io/nats.go#949
// and nats-io/nats-server#3677), so a single unbounded create request in
// the gateway's start hangs until start_timeout and Caddy exits.
func TestGatewaysStartTogetherOnFreshNATSCluster(t *testing.T) {
	bin := buildCommands(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl := startNATSCluster(t)

	const startTimeout = 10 * time.Second // the gateway's own bound
	gws := make([]*clusterGateway, 3)
	for i := range gws {
		gws[i] = launchClusterGateway(t, bin, string(rune('A'+i)), cl.clientURLs(),
			fmt.Sprintf("\n\t\tstart_timeout %s", startTimeout))
	}
	errs := make([]error, len(gws))
	var wg sync.WaitGroup
	for i, g := range gws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = g.waitReady(ctx)
		}()
	}
	wg.Wait()
	var failed []string
	for i, g := range gws {
		if errs[i] == nil {
			continue
		}
		why := errs[i].Error()
		for _, line := range strings.Split(g.log.String(), "\n") {
			if strings.Contains(line, "loading initial config") {
				why = line
			}
		}
		failed = append(failed, fmt.Sprintf("gateway %s: %s", g.name, why))
	}
	if len(failed) > 0 {
		t.Errorf("%d of %d gateways started together did not start; the stream exists now, so a restart would succeed:\n  %s",
			len(failed), len(gws), strings.Join(failed, "\n  "))
	}
}

// liveProbeWait bounds how long a live event may take to arrive.
const liveProbeWait = 3 * time.Second

// liveProbe opens a stream on a channel of its own without a position,
// publishes one event to it and waits for it.
func liveProbe(ctx context.Context, g *clusterGateway, pub *publisher, channel string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := openEvents(ctx, http.DefaultClient, g.url+"/events?channel=room."+channel)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	got := make(chan string, 1)
	go func() {
		for ev, err := range gosse.Read(resp.Body, nil) {
			if err != nil {
				return
			}
			if ev.Data != "" {
				got <- ev.Data
				return
			}
		}
	}()
	msg := nats.NewMsg("events.room." + channel)
	msg.Data = []byte("live " + channel)
	ack, err := pub.publish(ctx, msg)
	if err != nil {
		return fmt.Errorf("publishing the probe: %w", err)
	}
	select {
	case data := <-got:
		if data != string(msg.Data) {
			return fmt.Errorf("probe got %q", data)
		}
		return nil
	case <-time.After(liveProbeWait):
		return fmt.Errorf("a live event (seq %d on %s) did not arrive within %v; its live path is stalled", ack.Sequence, msg.Subject, liveProbeWait)
	}
}

// checkReceived compares what the client got with what the stream holds.
func checkReceived(t *testing.T, stored []storedMsg, got []receivedEvent) {
	t.Helper()
	want := make(map[uint64]storedMsg, len(stored))
	for _, m := range stored {
		want[m.seq] = m
	}
	seen := make(map[uint64]int, len(got))
	var problems []string
	report := func(format string, args ...any) {
		if len(problems) < 40 {
			problems = append(problems, fmt.Sprintf(format, args...))
		}
	}
	var prev receivedEvent
	for i, ev := range got {
		if j, dup := seen[ev.seq]; dup {
			report("duplicate: seq %d again at #%d (session %d on %s); first at #%d (session %d on %s)",
				ev.seq, i, ev.session, ev.gateway, j, got[j].session, got[j].gateway)
		} else {
			seen[ev.seq] = i
		}
		if i > 0 && ev.seq <= prev.seq {
			report("out of order: seq %d (session %d on %s) after seq %d (session %d on %s)",
				ev.seq, ev.session, ev.gateway, prev.seq, prev.session, prev.gateway)
		}
		m, ok := want[ev.seq]
		switch {
		case !ok:
			report("unknown: seq %d (session %d on %s) is not an event of the channels", ev.seq, ev.session, ev.gateway)
		case ev.data != m.data:
			report("wrong data for seq %d (session %d on %s): %q, stored %q", ev.seq, ev.session, ev.gateway, ev.data, m.data)
		}
		prev = ev
	}
	var missing []uint64
	for _, m := range stored {
		if _, ok := seen[m.seq]; !ok {
			missing = append(missing, m.seq)
		}
	}
	if len(missing) > 0 {
		report("missing %d of %d events: %s", len(missing), len(stored), seqRanges(missing))
	}
	if len(problems) > 0 {
		t.Errorf("the client got %d events, the stream holds %d; problems:\n  %s", len(got), len(stored), strings.Join(problems, "\n  "))
		return
	}
	t.Logf("the client got all %d events (seq %d to %d) exactly once, in stream order", len(got), stored[0].seq, stored[len(stored)-1].seq)
}

// seqRanges formats sorted sequences as ranges: "3-7, 9".
func seqRanges(seqs []uint64) string {
	var b strings.Builder
	for i := 0; i < len(seqs); {
		j := i
		for j+1 < len(seqs) && seqs[j+1] == seqs[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteString(", ")
		}
		if i == j {
			fmt.Fprintf(&b, "%d", seqs[i])
		} else {
			fmt.Fprintf(&b, "%d-%d", seqs[i], seqs[j])
		}
		i = j + 1
	}
	return b.String()
}

// pollUntil polls cond every 20ms until it holds, within timeout.
func pollUntil(ctx context.Context, timeout time.Duration, cond func() bool) error {
	return testkit.PollUntil(ctx, timeout, cond)
}

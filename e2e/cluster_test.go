package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
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
		consumers = s.CachedInfo().State.Consumers
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
		if !g.running() {
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
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.url+"/events?channel=room."+channel, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", req.URL, resp.Status)
	}
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

// waitUntil polls cond every 20ms until it holds, within timeout.
func pollUntil(ctx context.Context, timeout time.Duration, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("condition not met within %v: %w", timeout, ctx.Err())
		case <-tick.C:
		}
	}
	return nil
}

// buildGateway builds cmd/caddy into a temporary directory, with the race
// detector when the test has it.
// ---------------------------------------------------------------------------
// The NATS cluster.

type natsCluster struct {
	servers []*server.Server
	log     *lockedBuffer

	mu   sync.Mutex
	down map[string]bool // servers shut down by the test
}

// startNATSCluster starts three JetStream servers, s1 to s3, routed to each
// other on loopback, and waits until JetStream has a meta leader.
func startNATSCluster(t *testing.T) *natsCluster {
	t.Helper()
	cl := &natsCluster{log: new(lockedBuffer), down: make(map[string]bool)}
	ports := freePorts(t, 3)
	routes := make([]string, len(ports))
	for i, p := range ports {
		routes[i] = fmt.Sprintf("nats-route://127.0.0.1:%d", p)
	}
	for i, p := range ports {
		name := fmt.Sprintf("s%d", i+1)
		ns, err := server.NewServer(&server.Options{
			ServerName: name,
			Host:       "127.0.0.1",
			Port:       -1,
			JetStream:  true,
			StoreDir:   t.TempDir(),
			NoSigs:     true,
			Cluster: server.ClusterOpts{
				Name: "ssegate-e2e",
				Host: "127.0.0.1",
				Port: p,
			},
			Routes: server.RoutesFromStr(strings.Join(routes, ",")),
		})
		if err != nil {
			t.Fatalf("nats-server %s: %v", name, err)
		}
		ns.SetLoggerV2(natsLogger{name: name, w: cl.log}, false, false, false)
		ns.Start()
		cl.servers = append(cl.servers, ns)
	}
	t.Cleanup(func() {
		for _, ns := range cl.servers {
			ns.Shutdown()
		}
		for _, ns := range cl.servers {
			ns.WaitForShutdown()
		}
		if t.Failed() {
			t.Logf("nats-server log:\n%s", logTailOf(cl.log.String(), 12000))
		}
	})
	for _, ns := range cl.servers {
		if !ns.ReadyForConnections(clusterTimeout) {
			t.Fatalf("nats-server %s did not start; log:\n%s", ns.Name(), cl.log.String())
		}
	}
	// JetStream answers account info only once the meta group has a leader
	// that knows the account.
	nc, err := nats.Connect(strings.Join(cl.clientURLs(), ","), nats.Name("e2e-probe"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	var last error
	if err := pollUntil(context.Background(), clusterTimeout, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, last = js.AccountInfo(ctx)
		return last == nil
	}); err != nil {
		t.Fatalf("JetStream meta leader: %v (last error: %v); log:\n%s", err, last, logTailOf(cl.log.String(), 12000))
	}
	return cl
}

func (cl *natsCluster) clientURLs() []string {
	urls := make([]string, len(cl.servers))
	for i, ns := range cl.servers {
		urls[i] = ns.ClientURL()
	}
	return urls
}

// connect returns a JetStream client of the cluster that reconnects
// forever, quickly.
func (cl *natsCluster) connect(t *testing.T, name string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(strings.Join(cl.clientURLs(), ","),
		nats.Name(name), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func (cl *natsCluster) server(name string) *server.Server {
	for _, ns := range cl.servers {
		if ns.Name() == name {
			return ns
		}
	}
	return nil
}

// servingNode finds the node holding a gateway connection subscribed to
// the live subject of room.a: the connection of the gateway that the
// client is reading from.
func (cl *natsCluster) servingNode() string {
	live := "ssegate.live.events.room.a"
	for _, ns := range cl.servers {
		cl.mu.Lock()
		down := cl.down[ns.Name()]
		cl.mu.Unlock()
		if down {
			continue
		}
		cz, err := ns.Connz(&server.ConnzOptions{Subscriptions: true})
		if err != nil {
			continue
		}
		for _, c := range cz.Conns {
			if c.Name == "ssegate" && slices.Contains(c.Subs, live) {
				return ns.Name()
			}
		}
	}
	return ""
}

// killServingNode makes the node the serving gateway is connected to the
// stream leader, then shuts it down. It says what it did. It runs in its
// own goroutine, so it reports instead of logging.
func (cl *natsCluster) killServingNode(ctx context.Context, js jetstream.JetStream, published func() int64, at *atomic.Pointer[time.Time]) string {
	begin := time.Now()
	var notes []string
	var target string
	if err := pollUntil(ctx, 10*time.Second, func() bool {
		target = cl.servingNode()
		return target != ""
	}); err != nil {
		target = "s1"
		notes = append(notes, fmt.Sprintf("no node has the serving gateway's subscription (%v), so s1 was chosen", err))
	} else {
		notes = append(notes, "it held the connection of the gateway serving the client")
	}
	leader := streamLeader(ctx, js)
	if leader != target {
		// A leader stepdown may name the preferred new leader (server 2.11+).
		if err := stepDown(ctx, js, target); err != nil {
			notes = append(notes, fmt.Sprintf("moving the stream leader from %s to it failed: %v", leader, err))
		} else if err := pollUntil(ctx, 10*time.Second, func() bool {
			leader = streamLeader(ctx, js)
			return leader == target
		}); err != nil {
			notes = append(notes, fmt.Sprintf("the stream leader did not move to it: %v", err))
		} else {
			notes = append(notes, "it was made the stream leader first")
		}
	}
	ns := cl.server(target)
	cl.mu.Lock()
	cl.down[target] = true
	cl.mu.Unlock()
	now := time.Now()
	at.Store(&now)
	n := published()
	ns.Shutdown()
	ns.WaitForShutdown()
	return fmt.Sprintf("shut down %s after %d acked events (%v after choosing it), stream leader %q at the time; %s",
		target, n, now.Sub(begin).Round(time.Millisecond), leader, strings.Join(notes, "; "))
}

func streamLeader(ctx context.Context, js jetstream.JetStream) string {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, gatewayStreamName)
	if err != nil || s.CachedInfo().Cluster == nil {
		return ""
	}
	return s.CachedInfo().Cluster.Leader
}

func stepDown(ctx context.Context, js jetstream.JetStream, preferred string) error {
	req, _ := json.Marshal(map[string]any{"placement": map[string]any{"preferred": preferred}})
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	msg, err := js.Conn().RequestWithContext(ctx, "$JS.API.STREAM.LEADER.STEPDOWN."+gatewayStreamName, req)
	if err != nil {
		return err
	}
	var resp struct {
		Success bool `json:"success"`
		Error   *struct {
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return err
	}
	if !resp.Success {
		if resp.Error != nil {
			return errors.New(resp.Error.Description)
		}
		return fmt.Errorf("stepdown refused: %s", msg.Data)
	}
	return nil
}

// logConsumers lists the stream's consumers, for a failed consumer check.
func (cl *natsCluster) logConsumers(t *testing.T, js jetstream.JetStream) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, gatewayStreamName)
	if err != nil {
		t.Logf("listing consumers: %v", err)
		return
	}
	lister := s.ListConsumers(ctx)
	for info := range lister.Info() {
		cluster := ""
		if info.Cluster != nil {
			cluster = fmt.Sprintf(" leader %s", info.Cluster.Leader)
		}
		t.Logf("leftover consumer %s: created %v, delivered %d, pending %d, filters %v%s",
			info.Name, info.Created.Format(time.RFC3339Nano), info.Delivered.Stream, info.NumPending, info.Config.FilterSubjects, cluster)
	}
	if err := lister.Err(); err != nil {
		t.Logf("listing consumers: %v", err)
	}
}

// natsLogger collects the servers' log lines, prefixed with their names.
type natsLogger struct {
	name string
	w    io.Writer
}

func (l natsLogger) logf(level, format string, v ...any) {
	fmt.Fprintf(l.w, "%s [%s] %s %s\n", time.Now().Format("15:04:05.000"), l.name, level, fmt.Sprintf(format, v...))
}
func (l natsLogger) Noticef(format string, v ...any) { l.logf("INF", format, v...) }
func (l natsLogger) Warnf(format string, v ...any)   { l.logf("WRN", format, v...) }
func (l natsLogger) Fatalf(format string, v ...any)  { l.logf("FTL", format, v...) }
func (l natsLogger) Errorf(format string, v ...any)  { l.logf("ERR", format, v...) }
func (l natsLogger) Debugf(format string, v ...any)  {}
func (l natsLogger) Tracef(format string, v ...any)  {}

func logTailOf(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// ---------------------------------------------------------------------------
// The gateways.

type clusterGateway struct {
	*caddyProcess
	url string // http://127.0.0.1:port
}

// goroutineDump cuts the runtime's SIGQUIT dump out of a log, leaving out
// the goroutines that every Caddy has and that say nothing about a hang.
func goroutineDump(log string) string {
	i := strings.Index(log, "SIGABRT: abort")
	if i < 0 {
		return "(no dump in the log)"
	}
	var keep []string
	for _, g := range strings.Split(log[i:], "\n\n") {
		if strings.Contains(g, "ssegate") || strings.Contains(g, "nats.go") || strings.Contains(g, "caddy.(*") || strings.Contains(g, "caddyhttp") {
			keep = append(keep, g)
		}
	}
	return logTailOf(strings.Join(keep, "\n\n"), 60000)
}

// notableLogLines picks the log lines about NATS and about streams that
// did not end normally.
func (g *clusterGateway) notableLogLines(limit int) string {
	var out []string
	for _, line := range strings.Split(g.log.String(), "\n") {
		if strings.Contains(line, `"logger":"ssegate`) && !strings.Contains(line, `"nats connected"`) && !strings.Contains(line, `"ssegate ready"`) && !strings.Contains(line, `"stream closed"`) ||
			strings.Contains(line, `"level":"warn"`) && strings.Contains(line, "ssegate") ||
			strings.Contains(line, `"level":"error"`) {
			out = append(out, "  "+line)
		}
	}
	if len(out) > limit {
		out = append(out[:limit], fmt.Sprintf("  … %d more", len(out)-limit))
	}
	return strings.Join(out, "\n")
}

// clusterCaddyfile: one plain HTTP site with the event route, the app on
// the external cluster with an R3 file stream.
const clusterCaddyfile = `{
	admin off
	persist_config off
	storage file_system %[1]s
	auto_https off
	log {
		level DEBUG
	}
	ssegate {
		url %[2]s
		reconnect_wait 100ms%[4]s
		stream {
			replicas 3
			storage file
		}
	}
}

http://127.0.0.1:%[3]d {
	bind 127.0.0.1
	ssegate /events* {
		public room.*
		heartbeat 1s
		retry 100ms
	}
}
`

// launchClusterGateway starts the built caddy with its own port and state
// directory; waitReady says when it serves. extra is put in the ssegate
// global option.
func launchClusterGateway(t *testing.T, bin, name string, natsURLs []string, extra string) *clusterGateway {
	t.Helper()
	port := freePorts(t, 1)[0]
	dir := t.TempDir()
	return &clusterGateway{
		caddyProcess: runCaddy(t, bin, "gateway "+name, dir, fmt.Sprintf(clusterCaddyfile,
			filepath.Join(dir, "caddy"), strings.Join(natsURLs, " "), port, extra)),
		url: fmt.Sprintf("http://127.0.0.1:%d", port),
	}
}

// waitReady waits until the app has connected and set up the stream, and
// the event route answers 200 with an event stream.
func (g *clusterGateway) waitReady(ctx context.Context) error {
	var last error
	err := pollUntil(ctx, startTimeout, func() bool {
		if !g.running() {
			last = errors.New("the process exited")
			return true
		}
		if !strings.Contains(g.log.String(), "ssegate ready") {
			last = errors.New(`no "ssegate ready" in the log yet`)
			return false
		}
		last = probeEvents(ctx, g.url+"/events?channel=room.a")
		return last == nil
	})
	if err != nil {
		return fmt.Errorf("%w (last error: %v)", err, last)
	}
	return last
}

func probeEvents(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		return fmt.Errorf("GET %s: content type %q", url, ct)
	}
	return nil
}

// ---------------------------------------------------------------------------
// The publisher.

type publisher struct {
	js       jetstream.JetStream
	count    atomic.Int64 // events acked
	failures atomic.Int64 // publish attempts that failed and were retried
	dups     atomic.Int64 // acks that said the message was stored already
	// stopAfter, once set, is how many events to publish at least; until
	// then the publisher goes on past totalEvents.
	stopAfter atomic.Int64

	mu    sync.Mutex
	acked map[string][]uint64 // by subject, in publish order
}

// run publishes events alternating between the subjects, at least
// totalEvents and at least stopAfter once that is set. Each carries a
// message id, so a retry after a lost ack is not stored twice.
func (p *publisher) run(ctx context.Context) error {
	pace := time.NewTicker(5 * time.Millisecond)
	defer pace.Stop()
	for i := 0; ; i++ {
		if stop := p.stopAfter.Load(); i >= totalEvents && stop != 0 && int64(i) >= stop {
			return nil
		}
		if i >= maxEvents {
			return fmt.Errorf("published %d events and the node shutdown has not happened", i)
		}
		subj := clusterSubjects[i%len(clusterSubjects)]
		if i%5 == 4 { // not strictly alternating
			subj = clusterSubjects[0]
		}
		msg := nats.NewMsg(subj)
		msg.Data = []byte(fmt.Sprintf("%s #%d", subj, i))
		msg.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("e2e-%d", i))
		ack, err := p.publish(ctx, msg)
		if err != nil {
			return fmt.Errorf("event %d on %s: %w", i, subj, err)
		}
		if ack.Duplicate {
			p.dups.Add(1)
		}
		p.mu.Lock()
		p.acked[subj] = append(p.acked[subj], ack.Sequence)
		p.mu.Unlock()
		p.count.Add(1)
		select {
		case <-pace.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// publish retries until the stream acks, within publishRetryFor: while a
// node is down, the stream may be electing a leader.
func (p *publisher) publish(ctx context.Context, msg *nats.Msg) (*jetstream.PubAck, error) {
	ctx, cancel := context.WithTimeout(ctx, publishRetryFor)
	defer cancel()
	for {
		actx, acancel := context.WithTimeout(ctx, time.Second)
		ack, err := p.js.PublishMsg(actx, msg)
		acancel()
		if err == nil {
			return ack, nil
		}
		p.failures.Add(1)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("not acked within %v: %w", publishRetryFor, err)
		case <-time.After(50 * time.Millisecond): // a retry backoff
		}
	}
}

func (p *publisher) snapshot() map[string][]uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string][]uint64, len(p.acked))
	for k, v := range p.acked {
		out[k] = slices.Clone(v)
	}
	return out
}

type storedMsg struct {
	seq     uint64
	subject string
	data    string
}

// readStream reads every stored event of the channels, in stream order.
func readStream(ctx context.Context, js jetstream.JetStream) ([]storedMsg, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	cons, err := js.OrderedConsumer(ctx, gatewayStreamName, jetstream.OrderedConsumerConfig{FilterSubjects: clusterSubjects})
	if err != nil {
		return nil, err
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return nil, err
	}
	if info.NumPending == 0 {
		return nil, nil
	}
	it, err := cons.Messages()
	if err != nil {
		return nil, err
	}
	defer func() {
		// The consumer check at the end counts the gateways' consumers.
		it.Stop()
		dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = js.DeleteConsumer(dctx, gatewayStreamName, cons.CachedInfo().Name)
	}()
	var out []storedMsg
	for {
		m, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			return out, err
		}
		meta, err := m.Metadata()
		if err != nil {
			return out, err
		}
		out = append(out, storedMsg{seq: meta.Sequence.Stream, subject: m.Subject(), data: string(m.Data())})
		if meta.NumPending == 0 {
			return out, nil
		}
	}
}

// ---------------------------------------------------------------------------
// The client.

type receivedEvent struct {
	seq     uint64
	data    string
	gateway string
	session int
}

type sessionLog struct {
	gateway  string
	from     string // Last-Event-ID sent
	events   int
	first    uint64
	last     uint64
	end      string // the gateway's end comment, if it ended the stream
	rewind   string // an id-only frame: where the gateway asked to resume
	err      string
	start    time.Time
	duration time.Duration
}

// clusterClient reads the channels like an EventSource that is moved to
// the other gateway every few events.
type clusterClient struct {
	gws  []*clusterGateway
	http *http.Client
	// target is the stream's last sequence once publishing is over; the
	// client stops when it has reached it.
	target atomic.Uint64

	killedAt atomic.Pointer[time.Time] // when the NATS node was shut down

	// Written by run, read after it returns.
	received []receivedEvent
	sessions []sessionLog
	resets   []string
}

var eventIDRE = regexp.MustCompile(`^([0-9]+)-[a-z2-7]{4}$`)

func (c *clusterClient) run(ctx context.Context, opened chan<- struct{}) error {
	lastID := ""
	lastSeq := uint64(0)
	for i := 0; ; i++ {
		if t := c.target.Load(); t != 0 && lastSeq >= t {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("stopped at %s (seq %d, target %d): %w", lastID, lastSeq, c.target.Load(), ctx.Err())
		}
		gw := c.gws[i%len(c.gws)]
		sl, err := c.session(ctx, i, gw, &lastID, &lastSeq, opened)
		opened = nil
		c.sessions = append(c.sessions, sl)
		if err != nil {
			return err
		}
		if sl.events == 0 && sl.end != "" {
			// The gateway ended the stream at once (say, NATS unavailable):
			// come back after a pause, as an EventSource does.
			select {
			case <-time.After(100 * time.Millisecond):
			case <-ctx.Done():
			}
		}
	}
}

// session reads one stream from gw, starting after *lastID, until it has
// read sessionEvents events, sessionTime passed (after its first event
// when it has no position yet), the gateway ended it or the target is
// reached.
func (c *clusterClient) session(ctx context.Context, idx int, gw *clusterGateway, lastID *string, lastSeq *uint64, opened chan<- struct{}) (sl sessionLog, _ error) {
	sl = sessionLog{gateway: gw.name, from: *lastID, start: time.Now()}
	defer func() { sl.duration = time.Since(sl.start) }()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, gw.url+"/events?channel=room.a&channel=room.b", nil)
	if err != nil {
		return sl, err
	}
	if *lastID != "" {
		req.Header.Set("Last-Event-ID", *lastID)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		// Loopback to a running gateway: any failure here is a finding.
		sl.err = err.Error()
		return sl, fmt.Errorf("session %d on %s: %w", idx, gw.name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		// An EventSource gives up for good on these.
		return sl, fmt.Errorf("session %d on %s: %s %q: %s", idx, gw.name, resp.Status, resp.Header.Get("Content-Type"), body)
	}
	if opened != nil {
		close(opened)
	}
	var raw lockedBuffer
	events := make(chan gosse.Event, 64)
	readErr := make(chan error, 1)
	go func() {
		defer close(events)
		for ev, err := range gosse.Read(io.TeeReader(resp.Body, &raw), &gosse.ReadConfig{MaxEventSize: 1 << 16}) {
			if err != nil {
				readErr <- err
				return
			}
			select {
			case events <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	var timer <-chan time.Time
	armTimer := func() {
		if timer == nil {
			timer = time.After(sessionTime)
		}
	}
	if *lastID != "" {
		armTimer()
	}
	poll := time.NewTicker(50 * time.Millisecond)
	defer poll.Stop()
	defer func() { sl.end = endCommentOf(raw.String()) }()
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				select {
				case err := <-readErr:
					if ctx.Err() == nil {
						sl.err = err.Error()
					}
				default:
				}
				return sl, nil // the gateway ended the stream
			}
			if ev.LastEventID != "" {
				*lastID = ev.LastEventID
			}
			switch {
			case ev.Type == "reset":
				c.resets = append(c.resets, fmt.Sprintf("session %d on %s: reset %s to %s", idx, gw.name, ev.Data, ev.LastEventID))
				sl.rewind = "reset to " + ev.LastEventID
				continue
			case ev.Data == "" && ev.Type == "":
				sl.rewind = ev.LastEventID // an id-only frame moves the position
				if m := eventIDRE.FindStringSubmatch(ev.LastEventID); m != nil {
					*lastSeq, _ = strconv.ParseUint(m[1], 10, 64)
				}
				continue
			}
			m := eventIDRE.FindStringSubmatch(ev.LastEventID)
			if m == nil {
				return sl, fmt.Errorf("session %d on %s: event with id %q", idx, gw.name, ev.LastEventID)
			}
			seq, _ := strconv.ParseUint(m[1], 10, 64)
			c.received = append(c.received, receivedEvent{seq: seq, data: ev.Data, gateway: gw.name, session: idx})
			*lastSeq = seq
			if sl.events == 0 {
				sl.first = seq
			}
			sl.last = seq
			sl.events++
			armTimer()
			if sl.events >= sessionEvents {
				return sl, nil
			}
			if t := c.target.Load(); t != 0 && seq >= t {
				return sl, nil
			}
		case <-timer:
			return sl, nil
		case <-poll.C:
			if t := c.target.Load(); t != 0 && *lastSeq >= t {
				return sl, nil
			}
		case <-ctx.Done():
			return sl, nil
		}
	}
}

var endCommentRE = regexp.MustCompile(`(?m)^: end: (.*)$`)

func endCommentOf(raw string) string {
	if m := endCommentRE.FindStringSubmatch(raw); m != nil {
		return m[1]
	}
	return ""
}

func (c *clusterClient) summary() string {
	var b bytes.Buffer
	for i, s := range c.sessions {
		fmt.Fprintf(&b, "  #%-2d %s from %-10q %3d events", i, s.gateway, s.from, s.events)
		if s.events > 0 {
			fmt.Fprintf(&b, " (seq %d-%d)", s.first, s.last)
		}
		fmt.Fprintf(&b, " in %v", s.duration.Round(time.Millisecond))
		if k := c.killedAt.Load(); k != nil && !k.Before(s.start) && k.Before(s.start.Add(s.duration)) {
			b.WriteString("; the NATS node was shut down during it")
		}
		if s.end != "" {
			fmt.Fprintf(&b, "; gateway ended it: %s", s.end)
		}
		if s.rewind != "" {
			fmt.Fprintf(&b, "; resume from %s", s.rewind)
		}
		if s.err != "" {
			fmt.Fprintf(&b, "; error: %s", s.err)
		}
		b.WriteByte('\n')
	}
	for _, r := range c.resets {
		fmt.Fprintf(&b, "  %s\n", r)
	}
	return b.String()
}

package gatewaytest

import (
	"bytes"
	"fmt"
	"net"
	"net/url"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/ssegate/ssegate/replay"
	"github.com/ssegate/ssegate/upstream"
)

// TestReplayMemoryIsBounded: clients that ask for a large history and
// never read it hold the gateway's memory to the replay budget, and the
// live connection carries live events throughout.
//
// 16 raw TCP clients with a 4 KiB receive buffer each ask for a 30 MiB
// history (480 events of 64 KiB) from position 0, and never read. The
// process's resident memory (gateway and nats-server, both in this
// process) is sampled for 3 s, and the live heap is measured after a GC at
// the end. Before the byte budget (pulls of up to 512 events per replay, on
// the live connection) RSS grew by 770 MiB to 1 GiB, with or without -race,
// and the live heap by 454 MiB. With the defaults (2 MiB per replay) RSS
// grows by 65 to 160 MiB under -race (110 to 140 MiB without), and the
// live heap by 15 to 77 MiB.
//
// Cost: about 8 s, most of it publishing the history and the sampling.
func TestReplayMemoryIsBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("publishes 30 MiB")
	}
	const (
		clients  = 16
		eventLen = 64 << 10
		events   = 480
		// heapBound is the live heap's growth allowed, measured after a
		// GC while the replays are stalled. Each of the 16 replays has at
		// most one 2 MiB pull in flight, and with the nats-server in this
		// process each byte in flight is held twice: by the server, on its
		// way out, and by the client. 2 × 32 MiB, plus 64 MiB for the
		// streams' own buffers and whatever else this process (the whole
		// package's tests) does meanwhile. Measured: 15 to 77 MiB alone,
		// 98 MiB once with the other packages' tests running.
		heapBound = 2*clients*replay.DefaultPullBytes + 64<<20
	)
	// rssBound is the resident memory's growth allowed: the same, plus the
	// garbage the GC lets pile up between cycles (it lets the heap double)
	// and, under -race, the detector's shadow memory.
	rssBound := int64(200 << 20)
	if raceEnabled {
		rssBound = 384 << 20
	}
	ns := natsServer(t)
	g := startGateway(t, ns, gatewayConfig{noTLS: true})
	js := g.js()
	data := strings.Repeat("x", eventLen)
	for range events {
		publish(t, js, "events.bulk", "", data)
	}
	live := open(t, g.h1Client(), eventsURL(g.httpURL, []string{"live"}, nil), nil)

	heapBefore := liveHeap()
	debug.FreeOSMemory()
	before := rss(t)
	for range clients {
		stalled(t, g.httpURL, "bulk")
	}
	// The replays have started once their consumers exist.
	eventually(t, 10*time.Second, "replay consumers", func() bool {
		return ns.JetStreamEnabled() && consumers(t, ns) > 0
	})
	peak := before
	liveSeq := publish(t, js, "events.live", "", "still live")
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		peak = max(peak, rss(t))
	}
	if ev := live.next(t, 5*time.Second); seqOf(t, ev.LastEventID) != liveSeq {
		t.Fatalf("live client got %q, want the live event %d", ev.LastEventID, liveSeq)
	}
	heapAfter := liveHeap()
	growth := peak - before
	heapGrowth := int64(heapAfter) - int64(heapBefore)
	t.Logf("RSS %d MiB before, peak %d MiB, growth %d MiB (bound %d MiB); live heap growth %d MiB (bound %d MiB)",
		before>>20, peak>>20, growth>>20, rssBound>>20, heapGrowth>>20, heapBound>>20)
	if growth > rssBound {
		t.Errorf("RSS grew by %d MiB with %d stalled replays; the bound is %d MiB", growth>>20, clients, rssBound>>20)
	}
	if heapGrowth > heapBound {
		t.Errorf("the live heap grew by %d MiB with %d stalled replays; the bound is %d MiB", heapGrowth>>20, clients, heapBound>>20)
	}
	if n := g.reconnects(); n != 0 {
		t.Errorf("the live connection reconnected %v times", n)
	}
	if n := natsConn(t, ns, upstream.ReplayName).OutMsgs; n == 0 {
		t.Error("no message arrived on the replay connection: the replays did not use it")
	}
	names := map[string]bool{}
	if cz, err := ns.Connz(nil); err == nil {
		for _, c := range cz.Conns {
			names[c.Name] = true
		}
	}
	if !names[upstream.ReplayName] {
		t.Errorf("the server has no connection named %q: %v", upstream.ReplayName, names)
	}
	if v, err := ns.Varz(nil); err != nil || v.SlowConsumers != 0 {
		t.Errorf("server counted %d slow consumers (%v)", v.SlowConsumers, err)
	}
}

// stalled opens an event stream from position 0 over a connection with a
// tiny receive buffer, and never reads it.
func stalled(t *testing.T, base, channel string) {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.(*net.TCPConn).SetReadBuffer(4096); err != nil {
		t.Fatal(err)
	}
	req := fmt.Sprintf("GET /events?channel=%s HTTP/1.1\r\nHost: %s\r\nLast-Event-ID: 0\r\n\r\n", channel, u.Host)
	if _, err := c.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
}

// rss is this process's resident set size in bytes.
func rss(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status:", err)
	}
	for line := range bytes.Lines(b) {
		if rest, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(string(rest)), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS in /proc/self/status")
	return 0
}

// liveHeap is the bytes of live heap objects after a GC. The second GC
// empties what sync.Pools kept through the first.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// consumers counts the consumers of the gateway's stream.
func consumers(t *testing.T, ns *server.Server) int {
	t.Helper()
	jsz, err := ns.Jsz(&server.JSzOptions{Streams: true})
	if err != nil {
		t.Fatal(err)
	}
	return jsz.Consumers
}

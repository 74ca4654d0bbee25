package gatewaytest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ssegate/ssegate/history"
)

// BenchmarkHistory10k reads a channel's 10,000 stored events: in one
// answer, and paged by 1,000 and by 100.
func BenchmarkHistory10k(b *testing.B) {
	const events = 10_000
	ns := natsServer(b)
	g := startGateway(b, ns, gatewayConfig{noTLS: true, handler: map[string]any{
		"history": map[string]any{"path": "/events/history", "max_limit": events, "max_bytes": 64 << 20},
	}})
	pub := newBenchPublisher(b, ns.ClientURL())
	pad := strings.Repeat("x", 64)
	pub.publishAsync(events, func(i int) (string, []byte) {
		return "events.hist", fmt.Appendf(nil, `{"i":%d,"pad":"%s"}`, i, pad)
	})
	client := g.h1Client()
	for _, limit := range []int{events, 1000, 100} {
		b.Run(fmt.Sprintf("limit=%d", limit), func(b *testing.B) {
			var bytes, requests int64
			for b.Loop() {
				got := 0
				after := "0"
				for more := true; more; {
					resp, err := client.Get(g.httpURL + "/events/history?" + url.Values{"channel": {"hist"}, "after": {after}, "limit": {strconv.Itoa(limit)}}.Encode())
					if err != nil {
						b.Fatal(err)
					}
					body, err := io.ReadAll(resp.Body)
					resp.Body.Close()
					var a history.Answer
					if err != nil || json.Unmarshal(body, &a) != nil {
						b.Fatalf("%v %s", err, body)
					}
					got += len(a.Events)
					bytes += int64(len(body))
					requests++
					after, more = a.LastID, a.More
				}
				if got != events {
					b.Fatalf("read %d events, want %d", got, events)
				}
			}
			b.ReportMetric(float64(bytes)/float64(b.N), "resp_bytes/op")
			b.ReportMetric(float64(requests)/float64(b.N), "requests/op")
		})
	}
}

// BenchmarkPollVsStream runs the same 1,000 clients on 100 channels (10
// each) at 100 events/s, first as long-polls, then as streams, in one
// run: delivery latency (publish to receipt), process CPU per delivery,
// and memory per idle client. The clients run in this process, so the
// CPU and memory are the gateway's, NATS's and the clients' together;
// the comparison holds because the clients do the same work either way.
// Run with -benchtime=1x; SSEGATE_BENCH_WINDOW sets the load's length
// (default 10s).
func BenchmarkPollVsStream(b *testing.B) {
	window := 10 * time.Second
	if v := os.Getenv("SSEGATE_BENCH_WINDOW"); v != "" {
		var err error
		if window, err = time.ParseDuration(v); err != nil {
			b.Fatal(err)
		}
	}
	ns := natsServer(b)
	g := startGateway(b, ns, gatewayConfig{noTLS: true, handler: map[string]any{
		"poll":          map[string]any{"path": "/events/poll"},
		"write_timeout": "30s",
		"heartbeat":     "60s",
	}})
	for _, mode := range []string{"poll", "stream"} {
		b.Run(mode, func(b *testing.B) {
			for b.Loop() {
				benchLoad(b, g, mode, window)
			}
		})
	}
}

const (
	benchClients  = 1000
	benchChannels = 100
	benchRate     = 100
)

// benchLoad connects the clients, measures their idle memory, then
// publishes for window and measures deliveries.
func benchLoad(b *testing.B, g *gateway, mode string, window time.Duration) {
	tr := &http.Transport{MaxIdleConnsPerHost: benchClients, MaxConnsPerHost: 0, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var mu sync.Mutex
	var lat []time.Duration
	var ready atomic.Int64
	record := func(data string) {
		ns, err := strconv.ParseInt(data, 10, 64)
		if err != nil {
			return
		}
		d := time.Since(time.Unix(0, ns))
		mu.Lock()
		lat = append(lat, d)
		mu.Unlock()
	}
	memBefore := benchMem()
	for i := range benchClients {
		ch := fmt.Sprintf("bench.c%d", i%benchChannels)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if mode == "poll" {
				benchPoller(ctx, client, g.httpURL, ch, &ready, record)
			} else {
				benchStreamer(ctx, client, g.httpURL, ch, &ready, record)
			}
		}()
	}
	eventually(b, 60*time.Second, "clients ready", func() bool { return ready.Load() >= benchClients })
	if mode == "poll" {
		eventually(b, 30*time.Second, "polls waiting", func() bool { return g.metric(mPollsWaiting) >= benchClients })
	}
	idle := (benchMem() - memBefore) / benchClients
	mu.Lock()
	lat = lat[:0]
	mu.Unlock()
	api0 := apiRequests(b, g.nats)
	cpu0 := benchCPU()
	start := time.Now()
	nc, err := nats.Connect(g.nats.ClientURL())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	tick := time.NewTicker(time.Second / benchRate)
	published := 0
	for time.Since(start) < window {
		<-tick.C
		ch := fmt.Sprintf("events.bench.c%d", published%benchChannels)
		if err := nc.Publish(ch, strconv.AppendInt(nil, time.Now().UnixNano(), 10)); err != nil {
			b.Fatal(err)
		}
		published++
	}
	tick.Stop()
	want := published * benchClients / benchChannels
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		n := len(lat)
		mu.Unlock()
		if n >= want {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	cpu := benchCPU() - cpu0
	api := apiRequests(b, g.nats) - api0
	stop()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(lat)
	b.ReportMetric(float64(len(lat)), "deliveries")
	b.ReportMetric(float64(want-len(lat)), "missing")
	b.ReportMetric(benchMs(benchPct(lat, 0.50)), "p50_ms")
	b.ReportMetric(benchMs(benchPct(lat, 0.99)), "p99_ms")
	b.ReportMetric(float64(cpu.Microseconds())/float64(max(len(lat), 1)), "cpu_us/delivery")
	b.ReportMetric(float64(idle)/1024, "idle_KiB/client")
	b.ReportMetric(float64(api), "jetstream_api_requests")
}

// benchPoller is the documented poll loop.
func benchPoller(ctx context.Context, c *http.Client, base, ch string, ready *atomic.Int64, record func(string)) {
	after := ""
	first := true
	for ctx.Err() == nil {
		q := url.Values{"channel": {ch}, "wait": {"25s"}}
		if after != "" {
			q.Set("after", after)
		}
		if first {
			// The first poll only takes a position.
			q.Set("wait", "0s")
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/events/poll?"+q.Encode(), nil)
		resp, err := c.Do(req)
		if err != nil {
			return
		}
		var a history.Answer
		err = json.NewDecoder(resp.Body).Decode(&a)
		resp.Body.Close()
		if err != nil {
			return
		}
		for _, e := range a.Events {
			record(e.Data)
		}
		after = a.LastID
		if first {
			first = false
			ready.Add(1)
		}
	}
}

// benchStreamer reads a stream's data lines.
func benchStreamer(ctx context.Context, c *http.Client, base, ch string, ready *atomic.Int64, record func(string)) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/events?channel="+ch, nil)
	resp, err := c.Do(req)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	ready.Add(1)
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			record(d)
		}
	}
}

func benchCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchMem is the heap and stacks in use, after a collection.
func benchMem() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapInuse + ms.StackInuse)
}

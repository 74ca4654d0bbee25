package gatewaytest

import (
	"context"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/ssegate/ssegate/internal/natstest"
)

// BenchmarkPerUserChannels holds one stream per channel, as with
// `user.{sub}` channels: n streams over h2c, 200 to a connection, each on
// a channel of its own. It reports the time to subscribe them all and the
// JetStream API requests that cost per channel (settle probes included),
// the p99 latency of one event per channel published at a steady rate,
// and, after restarting nats-server on the same store, the time until
// every channel has recovered and until an event published to each after
// the restart has reached its client. Every client must get exactly its
// channel's events, in order.
//
//	go test -run '^$' -bench PerUserChannels -benchtime=1x ./gatewaytest/
func BenchmarkPerUserChannels(b *testing.B) {
	for _, n := range []int{5000, 20000, 50000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) { benchPerUser(b, n) })
	}
}

type perUserClient struct {
	mu   sync.Mutex
	seqs []uint64
	lat  []time.Duration
}

func benchPerUser(b *testing.B, n int) {
	restartable := natstest.NewRestartable(b)
	ns := restartable.Start()
	g := startGateway(b, ns, gatewayConfig{noTLS: true, stream: map[string]any{"storage": "file"}, logFile: os.Getenv("SSEGATE_BENCH_LOG"),
		nats: map[string]any{"urls": []string{ns.ClientURL()}, "reconnect_wait": int64(100 * time.Millisecond)}})
	defer benchSettle(b, g)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pool := benchH2CPool(b, g.httpURL, n/benchStreamsPerConn, nil)
	clients := make([]*perUserClient, n)
	failed := make(chan error, n)
	var readers sync.WaitGroup
	defer readers.Wait()
	defer cancel()

	apiBefore := jsAPITotal(b, ns)
	start := time.Now()
	next := make(chan int)
	var opening sync.WaitGroup
	for range 32 {
		opening.Add(1)
		go func() {
			defer opening.Done()
			for i := range next {
				resp, err := benchOpen(ctx, pool[i%len(pool)], eventsURL(g.httpURL, []string{"u" + strconv.Itoa(i)}, nil), "")
				if err != nil {
					failed <- err
					continue
				}
				cl := &perUserClient{}
				clients[i] = cl
				readers.Add(1)
				go func() {
					defer readers.Done()
					defer resp.Body.Close()
					err := benchReadEvents(resp.Body, math.MaxInt32, func(ev *benchEvent) bool {
						ts, _ := strconv.ParseInt(string(ev.data), 10, 64)
						cl.mu.Lock()
						cl.seqs = append(cl.seqs, ev.seq)
						cl.lat = append(cl.lat, time.Since(time.Unix(0, ts)))
						cl.mu.Unlock()
						return true
					})
					if ctx.Err() == nil {
						failed <- fmt.Errorf("client %d stopped: %v", i, err)
					}
				}()
			}
		}()
	}
	feedOpeners(b, next, n, &opening, failed)
	eventually(b, time.Minute, "streams attached", func() bool { return g.metric(mClients) == float64(n) })
	subscribe := time.Since(start)
	eventually(b, time.Minute, "settle probes done", func() bool { return g.inspect().Settled })
	apiPerChannel := float64(jsAPITotal(b, ns)-apiBefore) / float64(n)

	pub := newBenchPublisher(b, ns.ClientURL())
	want := make([]int, n) // events owed to each client
	b.ResetTimer()
	latStart := time.Now()
	pubPaced(b, pub, n, want)
	waitAll(b, clients, want, failed, time.Minute)
	latency := time.Since(latStart)

	restartable.Stop()
	ns = restartable.Start()
	restarted := time.Now()
	eventually(b, time.Minute, "gateway reconnects", g.natsUp)
	eventually(b, 2*time.Minute, "channels recovered", func() bool { return g.metric(mRecovering) == 0 })
	recovered := time.Since(restarted)
	pub = newBenchPublisher(b, ns.ClientURL())
	pubPaced(b, pub, n, want)
	waitAll(b, clients, want, failed, 2*time.Minute)
	delivered := time.Since(restarted)
	b.StopTimer()

	var lat []time.Duration
	for _, cl := range clients {
		cl.mu.Lock()
		lat = append(lat, cl.lat[:1]...)
		cl.mu.Unlock()
	}
	slices.Sort(lat)
	b.ReportMetric(subscribe.Seconds(), "subscribe_s")
	b.ReportMetric(apiPerChannel, "js_api_req/channel")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99_ms")
	b.ReportMetric(latency.Seconds(), "deliver_one_each_s")
	b.ReportMetric(recovered.Seconds(), "recover_after_restart_s")
	b.ReportMetric(delivered.Seconds(), "restart_to_all_delivered_s")
}

// pubPaced publishes one event, carrying its publish time, to each
// channel at 10,000 events/s, and counts them in want.
func pubPaced(b *testing.B, pub *benchPublisher, n int, want []int) {
	const rate = 10000
	tick := time.NewTicker(time.Second / 100)
	defer tick.Stop()
	for i := 0; i < n; i += rate / 100 {
		end := min(n, i+rate/100)
		base := i
		pub.publishAsync(end-i, func(j int) (string, []byte) {
			return "events.u" + strconv.Itoa(base+j), strconv.AppendInt(nil, time.Now().UnixNano(), 10)
		})
		for j := i; j < end; j++ {
			want[j]++
		}
		<-tick.C
	}
}

// waitAll waits until every client has as many events as it is owed, then
// checks that none has more and that each client's are in order.
func waitAll(b *testing.B, clients []*perUserClient, want []int, failed chan error, timeout time.Duration) {
	b.Helper()
	deadline := time.Now().Add(timeout)
	for i, cl := range clients {
		for {
			select {
			case err := <-failed:
				b.Fatal(err)
			default:
			}
			cl.mu.Lock()
			got := slices.Clone(cl.seqs)
			cl.mu.Unlock()
			if len(got) > want[i] {
				b.Fatalf("client %d got %d events, want %d: %v", i, len(got), want[i], got)
			}
			if !slices.IsSorted(got) || len(slices.Compact(got)) != len(got) {
				b.Fatalf("client %d got %v: out of order or repeated", i, got)
			}
			if len(got) == want[i] {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("client %d has %d of %d events", i, len(got), want[i])
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

func jsAPITotal(b testing.TB, ns *server.Server) uint64 {
	info, err := ns.Jsz(nil)
	if err != nil {
		b.Fatal(err)
	}
	return info.API.Total
}

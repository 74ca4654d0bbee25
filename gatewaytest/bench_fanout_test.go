package gatewaytest

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkFanOut holds 1,000 live clients on one channel over h2c and
// publishes events. Each event carries its publish time, so every delivery
// yields an end-to-end latency. "burst" publishes 500 events as fast as
// asynchronous JetStream publishes go, which measures capacity (and its
// latencies are mostly queueing); "paced" publishes 200 events at 50/s, a
// load this machine keeps up with, which measures latency (pub_events/s is
// the rate achieved). The client queue is raised
// to 1024 so the burst does not count the clients as slow; a slow
// disconnect fails the benchmark.
func BenchmarkFanOut(b *testing.B) {
	b.Run("burst", func(b *testing.B) { benchFanOut(b, 500, 0) })
	b.Run("paced", func(b *testing.B) { benchFanOut(b, 200, 50) })
}

// benchFanOut publishes events at rate events/s, or as fast as it can when
// rate is 0.
func benchFanOut(b *testing.B, events, rate int) {
	const clients = 1000
	ns := natsServer(b)
	g := startGateway(b, ns, gatewayConfig{noTLS: true, handler: map[string]any{"queue_size": 1024}})
	defer benchSettle(b, g)
	pub := newBenchPublisher(b, ns.ClientURL())
	var dials atomic.Int64
	pool := benchH2CPool(b, g.httpURL, clients/benchStreamsPerConn, &dials)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	u := eventsURL(g.httpURL, []string{"fan"}, nil)

	type fanClient struct {
		lat  []time.Duration
		last time.Time
	}
	var (
		target atomic.Int64 // events each client must have this round
		round  atomic.Pointer[sync.WaitGroup]
	)
	fc := make([]*fanClient, clients)
	failed := make(chan error, clients)
	var readers sync.WaitGroup
	defer readers.Wait()
	defer cancel()
	var opening sync.WaitGroup
	next := make(chan int)
	for range 8 {
		opening.Add(1)
		go func() {
			defer opening.Done()
			for i := range next {
				resp, err := benchOpen(ctx, pool[i%len(pool)], u, "")
				if err != nil {
					failed <- err
					continue
				}
				cl := &fanClient{lat: make([]time.Duration, 0, events)}
				fc[i] = cl
				readers.Add(1)
				go func() {
					defer readers.Done()
					defer resp.Body.Close()
					var got int64
					var prev uint64
					fail := ""
					err := benchReadEvents(resp.Body, math.MaxInt32, func(ev *benchEvent) bool {
						now := time.Now()
						ts, _ := strconv.ParseInt(string(ev.data), 10, 64)
						if prev != 0 && ev.seq != prev+1 {
							fail = fmt.Sprintf("sequence %d after %d", ev.seq, prev)
							return false
						}
						prev = ev.seq
						cl.lat = append(cl.lat, now.Sub(time.Unix(0, ts)))
						got++
						if got == target.Load() {
							cl.last = now
							round.Load().Done()
						}
						return true
					})
					if ctx.Err() == nil {
						failed <- fmt.Errorf("client %d stopped after %d events: %s %v", i, got, fail, err)
					}
				}()
			}
		}()
	}
	feedOpeners(b, next, clients, &opening, failed)
	// The gauge is shared with streams of an earlier gateway that may
	// still be ending; they only lower it.
	eventually(b, 10*time.Second, fmt.Sprint(clients, " clients attached"), func() bool {
		return g.metric(mClients) == clients
	})

	var elapsed, publishing time.Duration
	b.ResetTimer()
	for r := range b.N {
		wg := new(sync.WaitGroup)
		wg.Add(clients)
		round.Store(wg)
		target.Store(int64(events * (r + 1)))
		start := time.Now()
		if rate == 0 {
			pub.publishAsync(events, func(int) (string, []byte) {
				return "events.fan", strconv.AppendInt(nil, time.Now().UnixNano(), 10)
			})
		} else {
			pub.publishPaced(events, rate, "events.fan")
		}
		publishing += time.Since(start)
		all := make(chan struct{})
		go func() { wg.Wait(); close(all) }()
		select {
		case <-all:
		case err := <-failed:
			b.Fatal(err)
		case <-time.After(45 * time.Second):
			b.Fatalf("not every client got %d events within 45s", events)
		}
		var end time.Time
		for _, cl := range fc {
			if cl.last.After(end) {
				end = cl.last
			}
		}
		elapsed += end.Sub(start)
	}
	b.StopTimer()
	if n := g.metric(mSlow); n != 0 {
		b.Fatalf("%v slow-client disconnects", n)
	}
	var lat []time.Duration
	for _, cl := range fc {
		lat = append(lat, cl.lat...)
	}
	slices.Sort(lat)
	b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "deliveries/s")
	b.ReportMetric(float64(events*b.N)/publishing.Seconds(), "pub_events/s")
	b.ReportMetric(benchMs(benchPct(lat, 0.50)), "p50_ms")
	b.ReportMetric(benchMs(benchPct(lat, 0.99)), "p99_ms")
	b.ReportMetric(benchMs(lat[len(lat)-1]), "max_ms")
	b.ReportMetric(float64(dials.Load()), "tcp_conns")
}

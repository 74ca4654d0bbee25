package gatewaytest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// BenchmarkReplay100k measures one client replaying a channel's whole
// history of 100,000 events (last_event_id=0) over h2c. The stream uses
// memory storage (the harness default).
func BenchmarkReplay100k(b *testing.B) {
	const events = 100_000
	ns := natsServer(b)
	g := startGateway(b, ns, gatewayConfig{noTLS: true, handler: map[string]any{"replay_limit": 200_000}})
	defer benchSettle(b, g)
	pub := newBenchPublisher(b, ns.ClientURL())
	pad := strings.Repeat("x", 64)
	last := pub.publishAsync(events, func(i int) (string, []byte) {
		return "events.replay", fmt.Appendf(nil, `{"i":%d,"pad":"%s"}`, i, pad)
	})
	if last != events {
		b.Fatalf("last sequence %d after %d publishes to a fresh stream", last, events)
	}
	u := eventsURL(g.httpURL, []string{"replay"}, url.Values{"last_event_id": {"0"}})

	var bytesRead atomic.Int64
	var elapsed, firstEvent time.Duration
	var mallocs, allocBytes uint64
	var ms runtime.MemStats
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		c := benchH2C(nil)
		runtime.ReadMemStats(&ms)
		m0, a0 := ms.Mallocs, ms.TotalAlloc
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
		start := time.Now()
		resp, err := benchOpen(ctx, c, u, "")
		if err != nil {
			cancel()
			b.Fatal(err)
		}
		want := uint64(1)
		err = benchReadEvents(&benchCounter{r: resp.Body, n: &bytesRead}, events, func(ev *benchEvent) bool {
			if ev.seq != want {
				return false
			}
			if want == 1 {
				firstEvent += time.Since(start)
			}
			want++
			return want <= events
		})
		elapsed += time.Since(start)
		runtime.ReadMemStats(&ms)
		mallocs += ms.Mallocs - m0
		allocBytes += ms.TotalAlloc - a0
		b.StopTimer()
		cancel()
		resp.Body.Close()
		c.CloseIdleConnections()
		if want != events+1 {
			b.Fatalf("replay stopped at sequence %d of %d (want consecutive sequences): %v", want-1, events, err)
		}
		b.StartTimer()
	}
	total := float64(events * b.N)
	b.ReportMetric(total/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(bytesRead.Load())/elapsed.Seconds()/1e6, "MB/s")
	b.ReportMetric(float64(firstEvent.Microseconds())/1e3/float64(b.N), "ms_to_first")
	b.ReportMetric(float64(mallocs)/total, "allocs/event")
	b.ReportMetric(float64(allocBytes)/total, "B/event")
}

// BenchmarkHandoffLatency reconnects a client 100 events behind a channel
// that a publisher keeps busy (benchHandoffRate events/s), and measures the
// time from the request's start to the first live event: one published
// after the request started. Every reconnect is checked for gaps and
// duplicates from its position through 20 live events past the handoff.
//
// In "shared" another client stays on the channel, so each reconnect joins
// the hub's existing subscription. In "sole" the reconnecting client is the
// channel's only one, so every reconnect subscribes anew. A stream the
// gateway ends early (": end: ..." while the client reads promptly) is
// counted in early_ends and the client resumes from its last id, as an
// EventSource would; its latency sample is kept when the first live event
// had already arrived.
func BenchmarkHandoffLatency(b *testing.B) {
	b.Run("shared", func(b *testing.B) { benchHandoff(b, true) })
	b.Run("sole", func(b *testing.B) { benchHandoff(b, false) })
}

func benchHandoff(b *testing.B, shared bool) {
	const (
		reconnects = 100
		back       = 100
		afterLive  = 20
	)
	ns := natsServer(b)
	g := startGateway(b, ns, gatewayConfig{noTLS: true})
	defer benchSettle(b, g)
	js := g.js()

	var lastAcked atomic.Uint64
	var published atomic.Int64
	var pubErr atomic.Value
	stop := make(chan struct{})
	pubDone := make(chan struct{})
	go func() {
		defer close(pubDone)
		tick := time.NewTicker(time.Second / benchHandoffRate)
		defer tick.Stop()
		deadline := time.After(2 * time.Minute)
		for range 10_000_000 {
			select {
			case <-stop:
				return
			case <-deadline:
				return
			case <-tick.C:
			}
			msg := nats.NewMsg("events.handoff")
			msg.Data = strconv.AppendInt(nil, time.Now().UnixNano(), 10)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			ack, err := js.PublishMsg(ctx, msg)
			cancel()
			if err != nil {
				pubErr.Store(err)
				return
			}
			lastAcked.Store(ack.Sequence)
			published.Add(1)
		}
	}()
	defer func() { close(stop); <-pubDone }()
	eventually(b, 10*time.Second, "history to reconnect into", func() bool { return lastAcked.Load() > 2*back })

	c := benchH2C(nil)
	defer c.CloseIdleConnections()
	u := eventsURL(g.httpURL, []string{"handoff"}, nil)
	if shared {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		resp, err := benchOpen(ctx, c, u, "")
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		drained := make(chan struct{})
		go func() {
			defer close(drained)
			_ = benchReadEvents(resp.Body, math.MaxInt32, func(*benchEvent) bool { return true })
		}()
		defer func() { <-drained }()
		defer cancel()
	}
	var lat []time.Duration
	var before int
	earlyEnds := 0
	pubStart, pub0 := time.Now(), published.Load()
	backfilled0 := g.metric(mBackfilled)
	b.ResetTimer()
	for range b.N {
		for r := range reconnects {
			pos := lastAcked.Load() - back
			want := pos + 1
			start := time.Now()
			var first time.Duration
			live := 0
			// Each attempt resumes from the last event received.
			for attempt := 0; live <= afterLive; attempt++ {
				if attempt == 5 {
					b.Fatalf("reconnect %d from %d: ended early %d times in a row", r, pos, attempt)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				resp, err := benchOpen(ctx, c, u, strconv.FormatUint(want-1, 10))
				if err != nil {
					cancel()
					b.Fatal(err)
				}
				fail := ""
				err = benchReadEvents(resp.Body, math.MaxInt32, func(ev *benchEvent) bool {
					if ev.seq != want {
						fail = fmt.Sprintf("got sequence %d, want %d", ev.seq, want)
						return false
					}
					want++
					if live > 0 {
						live++
						return live <= afterLive
					}
					ts, _ := strconv.ParseInt(string(ev.data), 10, 64)
					if ts > start.UnixNano() {
						first = time.Since(start)
						before += int(ev.seq - pos - 1)
						live = 1
					}
					return true
				})
				cancel()
				resp.Body.Close()
				if fail != "" {
					b.Fatalf("reconnect %d from %d, attempt %d: %s (gap or duplicate)", r, pos, attempt, fail)
				}
				if live <= afterLive {
					var end *benchEndError
					if !errors.As(err, &end) {
						b.Fatalf("reconnect %d from %d: stream stopped at %d before %d live events: %v (publisher: %v)", r, pos, want-1, afterLive, err, pubErr.Load())
					}
					earlyEnds++
				}
			}
			if first > 0 {
				lat = append(lat, first)
			}
		}
	}
	b.StopTimer()
	rate := float64(published.Load()-pub0) / time.Since(pubStart).Seconds()
	slices.Sort(lat)
	b.ReportMetric(benchMs(benchPct(lat, 0.50)), "p50_ms")
	b.ReportMetric(benchMs(benchPct(lat, 0.99)), "p99_ms")
	b.ReportMetric(benchMs(lat[len(lat)-1]), "max_ms")
	b.ReportMetric(rate, "pub_events/s")
	b.ReportMetric(float64(before)/float64(len(lat)), "events_before_live")
	b.ReportMetric(float64(earlyEnds), "early_ends")
	b.ReportMetric(g.metric(mBackfilled)-backfilled0, "backfilled_events")
}

// benchHandoffRate is the publisher's pace in BenchmarkHandoffLatency.
const benchHandoffRate = 1000

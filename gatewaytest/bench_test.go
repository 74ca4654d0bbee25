package gatewaytest

// Benchmarks of the whole gateway: a JetStream nats-server, Caddy with the
// ssegate handler, and the HTTP clients all run in this process, so every
// figure includes the cost of all three sharing the machine's cores. The
// harness loads Caddy's global config, so one gateway runs at a time; each
// benchmark starts its servers once, before its timer starts.
//
//	go test -run '^$' -bench . -benchtime=1x -count=1 ./gatewaytest/
//
// See BENCHMARKS.md for results and what limits them.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
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

// BenchmarkReconnectStorm1000 reconnects 1,000 clients at once, each 1,000
// events behind on one of 4 channels whose events are interleaved in the
// stream, and measures the wall time until every client has all of them.
// Afterwards no replay consumer may be left on the stream.
func BenchmarkReconnectStorm1000(b *testing.B) {
	const (
		clients  = 1000
		channels = 4
		history  = 2000 // events per channel
		back     = 1000
	)
	ns := natsServer(b)
	g := startGateway(b, ns, gatewayConfig{noTLS: true})
	pub := newBenchPublisher(b, ns.ClientURL())
	payload := []byte(strings.Repeat("y", 64))
	if last := pub.publishAsync(channels*history, func(i int) (string, []byte) {
		return fmt.Sprintf("events.storm%d", i%channels), payload
	}); last != channels*history {
		b.Fatalf("last sequence %d, want %d", last, channels*history)
	}
	// Event j of channel k has sequence k+1+channels*j.
	position := func(k int) uint64 { return uint64(k + 1 + channels*(history-back-1)) }
	stream, err := pub.js.Stream(context.Background(), g.app.Stream.Name)
	if err != nil {
		b.Fatal(err)
	}
	consumers := func() (int, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		info, err := stream.Info(ctx)
		if err != nil {
			return -1, err
		}
		return info.State.Consumers, nil
	}

	var dials atomic.Int64
	var wall time.Duration
	var caughtUp []time.Duration
	var ends benchTally
	peak, after := 0, -1
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		pool := benchH2CPool(b, g.httpURL, clients/benchStreamsPerConn, &dials)
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
		go1 := make(chan struct{})
		errs := make(chan error, clients)
		done := make([]time.Duration, clients)
		bodies := make([][]io.Closer, clients)
		var wg sync.WaitGroup
		for i := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				k := i % channels
				c := pool[i%len(pool)]
				<-go1
				start := time.Now()
				want, got := position(k)+channels, 0
				// Like an EventSource: on an ended stream, wait the retry
				// delay the gateway sent and resume from the last id.
				for attempt := 0; got < back; attempt++ {
					if attempt == 10 {
						errs <- fmt.Errorf("client %d on storm%d: ended early %d times", i, k, attempt)
						return
					}
					resp, err := benchOpen(ctx, c, eventsURL(g.httpURL, []string{fmt.Sprint("storm", k)}, nil), strconv.FormatUint(want-channels, 10))
					if err != nil {
						errs <- err
						return
					}
					bodies[i] = append(bodies[i], resp.Body)
					err = benchReadEvents(resp.Body, back-got, func(ev *benchEvent) bool {
						if ev.seq != want {
							return false
						}
						want += channels
						got++
						return got < back
					})
					if got == back {
						break
					}
					var end *benchEndError
					if !errors.As(err, &end) {
						errs <- fmt.Errorf("client %d on storm%d: %d of %d events, next wanted %d: %v", i, k, got, back, want, err)
						return
					}
					ends.Add(end.reason, 1)
					select {
					case <-time.After(end.retry):
					case <-ctx.Done():
					}
				}
				done[i] = time.Since(start)
			}()
		}
		// Sample the consumer count while the storm runs.
		sampled := make(chan struct{})
		stopSampling := make(chan struct{})
		go func() {
			defer close(sampled)
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for range 5000 {
				if n, err := consumers(); err == nil {
					peak = max(peak, n)
				}
				select {
				case <-stopSampling:
					return
				case <-tick.C:
				}
			}
		}()
		b.StartTimer()
		start := time.Now()
		close(go1)
		wg.Wait()
		wall += time.Since(start)
		b.StopTimer()
		close(stopSampling)
		<-sampled
		close(errs)
		for err := range errs {
			cancel()
			b.Fatal(err)
		}
		caughtUp = append(caughtUp, done...)
		for _, bs := range bodies {
			for _, body := range bs {
				body.Close()
			}
		}
		cancel()
		for _, c := range pool {
			c.CloseIdleConnections()
		}
		// Replay consumers are deleted as clients catch up; none may stay.
		eventually(b, 30*time.Second, "replay consumers deleted", func() bool {
			n, err := consumers()
			after = n
			return err == nil && n == 0
		})
		eventually(b, 10*time.Second, "streams closed", func() bool {
			return g.metric(mClients) == 0 && g.metric(mChannels) == 0
		})
		b.StartTimer()
	}
	b.StopTimer()
	slices.Sort(caughtUp)
	b.ReportMetric(wall.Seconds()/float64(b.N), "s/storm")
	b.ReportMetric(float64(clients*back*b.N)/wall.Seconds(), "events/s")
	b.ReportMetric(benchMs(benchPct(caughtUp, 0.50)), "p50_ms")
	b.ReportMetric(benchMs(benchPct(caughtUp, 0.99)), "p99_ms")
	b.ReportMetric(float64(peak), "peak_consumers")
	b.ReportMetric(float64(after), "consumers_after")
	b.ReportMetric(float64(dials.Load())/float64(b.N), "tcp_conns")
	for reason, n := range ends.counts() {
		b.ReportMetric(float64(n)/float64(b.N), "ended_"+reason+"/storm")
	}
}

// benchTally counts by name, concurrently.
type benchTally struct {
	mu sync.Mutex
	m  map[string]int
}

func (t *benchTally) Add(name string, n int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = make(map[string]int)
	}
	t.m[name] += n
}

func (t *benchTally) counts() map[string]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return maps.Clone(t.m)
}

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

// benchSettle waits for the server side of every stream to end, so the
// next benchmark starts clean: the clients gauge lives in Caddy's metrics
// registry across config loads, and a handler may still be returning
// after its client has gone.
func benchSettle(b testing.TB, g *gateway) {
	eventually(b, 10*time.Second, "streams ended", func() bool {
		return g.metric(mClients) == 0
	})
}

// benchPublisher publishes to JetStream on its own connection.
type benchPublisher struct {
	b  testing.TB
	js jetstream.JetStream
}

func newBenchPublisher(b testing.TB, natsURL string) *benchPublisher {
	nc, err := nats.Connect(natsURL)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(2*benchPubWindow))
	if err != nil {
		b.Fatal(err)
	}
	return &benchPublisher{b: b, js: js}
}

// benchPubWindow is how many asynchronous publishes may await their ack.
const benchPubWindow = 1000

// publishAsync publishes n messages in windows of benchPubWindow, waiting
// for each window's acks, and returns the highest sequence acknowledged.
func (p *benchPublisher) publishAsync(n int, msg func(i int) (subject string, data []byte)) uint64 {
	var last uint64
	futures := make([]jetstream.PubAckFuture, 0, benchPubWindow)
	for i := 0; i < n; {
		futures = futures[:0]
		for ; i < n && len(futures) < benchPubWindow; i++ {
			subj, data := msg(i)
			f, err := p.js.PublishAsync(subj, data)
			if err != nil {
				p.b.Fatalf("publish %d: %v", i, err)
			}
			futures = append(futures, f)
		}
		select {
		case <-p.js.PublishAsyncComplete():
		case <-time.After(30 * time.Second):
			p.b.Fatalf("%d publishes not acknowledged within 30s", p.js.PublishAsyncPending())
		}
		for _, f := range futures {
			select {
			case ack := <-f.Ok():
				last = max(last, ack.Sequence)
			case err := <-f.Err():
				p.b.Fatalf("publish: %v", err)
			}
		}
	}
	return last
}

// publishPaced publishes n events to subject at rate events/s, each
// carrying its publish time, waiting for every acknowledgement.
func (p *benchPublisher) publishPaced(n, rate int, subject string) {
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	for i := range n {
		if i > 0 {
			<-tick.C
		}
		msg := nats.NewMsg(subject)
		msg.Data = strconv.AppendInt(nil, time.Now().UnixNano(), 10)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := p.js.PublishMsg(ctx, msg)
		cancel()
		if err != nil {
			p.b.Fatalf("publish %d: %v", i, err)
		}
	}
}

// benchH2C is an h2c client; dials, when not nil, counts its connections.
func benchH2C(dials *atomic.Int64) *http.Client {
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{
		Protocols:          p,
		DisableCompression: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if dials != nil {
				dials.Add(1)
			}
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}}
}

// benchH2CPool returns n h2c clients, each with one connection already
// open, for up to benchStreamsPerConn streams each. Go's transport dials a
// connection per request when many requests start at once on a cold
// client (it dialled ~2 per request here), so the connections are opened
// before the load starts. Caddy allows 250 concurrent streams per HTTP/2
// connection; past that a transport dials more.
func benchH2CPool(b testing.TB, base string, n int, dials *atomic.Int64) []*http.Client {
	cs := make([]*http.Client, n)
	for i := range cs {
		cs[i] = benchH2C(dials)
		resp, err := cs[i].Get(base + "/events") // no channel: a quick 400
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.ProtoMajor != 2 {
			b.Fatalf("warm-up used %s, want HTTP/2", resp.Proto)
		}
		b.Cleanup(cs[i].CloseIdleConnections)
	}
	return cs
}

// benchStreamsPerConn is how many streams the benchmarks put on one h2c
// connection, below Caddy's limit of 250.
const benchStreamsPerConn = 200

// benchOpen opens an event stream; lastID, when set, is sent as the
// Last-Event-ID header the way an EventSource resumes.
func benchOpen(ctx context.Context, c *http.Client, rawURL, lastID string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, err
	}
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: %s %q %s", rawURL, resp.Status, resp.Header.Get("Content-Type"), body)
	}
	return resp, nil
}

// benchEvent is one parsed event; its slices are reused for the next one.
type benchEvent struct {
	seq  uint64
	name []byte
	data []byte
}

// benchEndError is the gateway ending a stream with ": end: <reason>" and
// a retry delay, after which an EventSource reconnects.
type benchEndError struct {
	reason string
	retry  time.Duration
}

func (e *benchEndError) Error() string {
	return fmt.Sprintf("the gateway ended the stream (%s, retry %v)", e.reason, e.retry)
}

// benchReadEvents is a small event-stream parser for many concurrent
// streams (the harness's go-sse reader buffers 100,000 events per stream).
// It calls fn for at most max events and stops when fn returns false. A
// reset event is an error, and so is the gateway's "end" comment, reported
// as a *benchEndError once the stream has ended.
func benchReadEvents(r io.Reader, max int, fn func(*benchEvent) bool) error {
	br := bufio.NewReaderSize(r, 32<<10)
	var ev benchEvent
	var end *benchEndError
	hasData := false
	for n := 0; n < max; {
		line, err := br.ReadSlice('\n')
		if err != nil {
			if end != nil {
				return end
			}
			return err
		}
		line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
		if len(line) == 0 {
			if hasData && end == nil {
				if string(ev.name) == "reset" {
					return fmt.Errorf("reset event: %s", ev.data)
				}
				n++
				if !fn(&ev) {
					return nil
				}
			}
			ev.seq, ev.name, ev.data, hasData = 0, ev.name[:0], ev.data[:0], false
			continue
		}
		if reason, ok := bytes.CutPrefix(line, []byte(": end: ")); ok {
			end = &benchEndError{reason: string(reason)}
			continue
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "id":
			ev.seq = 0
			for _, c := range value {
				if c < '0' || c > '9' {
					break
				}
				ev.seq = ev.seq*10 + uint64(c-'0')
			}
		case "event":
			ev.name = append(ev.name, value...)
		case "data":
			if hasData {
				ev.data = append(ev.data, '\n')
			}
			ev.data = append(ev.data, value...)
			hasData = true
		case "retry":
			if ms, err := strconv.Atoi(string(value)); err == nil && end != nil {
				end.retry = time.Duration(ms) * time.Millisecond
			}
		}
	}
	return nil
}

// benchCounter counts the bytes read through it.
type benchCounter struct {
	r io.Reader
	n *atomic.Int64
}

func (c *benchCounter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// benchPct is the p-quantile of sorted durations (nearest rank).
func benchPct(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func benchMs(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// feedOpeners hands the indexes 0..n-1 to the goroutines opening streams,
// waits for them, and fails the benchmark if one of them failed.
func feedOpeners(b *testing.B, next chan<- int, n int, opening *sync.WaitGroup, failed <-chan error) {
	b.Helper()
	for i := range n {
		next <- i
	}
	close(next)
	opening.Wait()
	select {
	case err := <-failed:
		b.Fatal(err)
	default:
	}
}

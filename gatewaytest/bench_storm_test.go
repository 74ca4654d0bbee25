package gatewaytest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

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

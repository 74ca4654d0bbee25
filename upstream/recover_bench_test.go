package upstream

import (
	"context"
	"slices"
	"testing"
	"time"
)

// BenchmarkHealthyChannelDuringRecovery measures publish-to-queue latency
// on a healthy channel, first with nothing else going on, then while
// another channel's recovery read hangs, as it does while a stream leader
// is elected after a failover. The dispatcher never waits for recovery, so
// the two should match.
//
//	go test -run '^$' -bench HealthyChannelDuringRecovery -benchtime=2000x ./upstream/
func BenchmarkHealthyChannelDuringRecovery(b *testing.B) {
	for _, stalled := range []bool{false, true} {
		name := "idle"
		if stalled {
			name = "other_channel_recovering"
		}
		b.Run(name, func(b *testing.B) {
			r := &gatedReader{release: make(chan struct{})}
			hub, pub := gatedHub(b, r)
			defer close(r.release)
			healthy, err := hub.Attach(context.Background(), []string{"events.b"}, 1024, false)
			if err != nil {
				b.Fatal(err)
			}
			if stalled {
				if _, err := hub.Attach(context.Background(), []string{"events.a"}, 64, false); err != nil {
					b.Fatal(err)
				}
				loseNext(b, hub, pub, "events.a")
				if err := pub.Publish("events.a", nil); err != nil {
					b.Fatal(err)
				}
				select {
				case <-r.reading:
				case <-time.After(10 * time.Second):
					b.Fatal("no recovery read started")
				}
			}
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				start := time.Now()
				if err := pub.Publish("events.b", nil); err != nil {
					b.Fatal(err)
				}
				if _, ok := recv(healthy, 10*time.Second); !ok {
					b.Fatal("healthy channel stalled")
				}
				lat = append(lat, time.Since(start))
			}
			b.StopTimer()
			if stalled && hub.Recovering() == 0 {
				b.Fatal("the other channel was not recovering; the comparison proves nothing")
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50_µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99_µs")
		})
	}
}

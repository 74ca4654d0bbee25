package upstream

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ssegate/ssegate/internal/testkit"
)

// BenchmarkCatchUpAfterAGap measures how long the hub takes to be live
// again after core NATS lost a stretch of the stream on its way, while
// publishing goes on at a steady rate: the hub must read the stretch back
// from the stream faster than new events arrive. The gap is made for
// real: the dispatcher is stalled (the hub's lock held) until nats.go has
// dropped half a second of the stream beyond the subscription's pending
// limit.
//
// It reports the time from the end of the stall until the hub has
// dispatched everything the stream held at that moment and reads nothing
// back (catchup_s), and the events it dispatched per second meanwhile
// (catchup_events/s). A client on one channel of 100 checks that its
// frames come in stream order, each once.
//
//	go test -run '^$' -bench CatchUpAfterAGap -benchtime 1x ./upstream/
func BenchmarkCatchUpAfterAGap(b *testing.B) {
	for _, rate := range []int{5000, 20000} {
		b.Run("rate="+strconv.Itoa(rate), func(b *testing.B) {
			for range b.N {
				benchCatchUp(b, rate)
			}
		})
	}
}

func benchCatchUp(b *testing.B, rate int) {
	const pendingLimit = 4096
	hub, pub := hubFixture(b, WithPendingLimit(pendingLimit))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := hub.Attach(ctx, []string{"events.c0"}, 1<<16, false)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Detach()
	frames := make(chan error, 1)
	go func() { frames <- inOrder(ctx, c) }()

	stop := make(chan struct{})
	published := make(chan error, 1)
	go func() { published <- publishPaced(pub, rate, stop) }()
	defer func() {
		close(stop)
		if err := <-published; err != nil {
			b.Error(err)
		}
	}()
	testkit.Eventually(b, 10*time.Second, "the hub live at the rate", func() bool { return hub.Position() > uint64(rate/2) })

	// Stall the dispatcher until nats.go has dropped half a second of
	// the stream.
	hub.mu.Lock()
	deadline := time.Now().Add(10 * time.Second)
	for dropped(hub) < rate/2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	hub.mu.Unlock()
	if n := dropped(hub); n < rate/2 {
		b.Fatalf("%d messages dropped during the stall, want %d", n, rate/2)
	}
	released := time.Now()
	head, err := hub.history.Head(ctx)
	if err != nil {
		b.Fatal(err)
	}
	from := hub.Position()
	b.ResetTimer()
	testkit.Eventually(b, 30*time.Second, "caught up", func() bool { return hub.Position() >= head.LastSeq && hub.Recovering() == 0 })
	took := time.Since(released)
	b.StopTimer()
	b.ReportMetric(took.Seconds(), "catchup_s")
	b.ReportMetric(float64(hub.Position()-from)/took.Seconds(), "catchup_events/s")
	cancel()
	if err := <-frames; err != nil {
		b.Fatal(err)
	}
}

// publishPaced publishes to 100 channels round-robin at rate events/s,
// in batches every 10 ms, until stop is closed.
func publishPaced(pub *nats.Conn, rate int, stop <-chan struct{}) error {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	data := make([]byte, 64)
	for i := 0; ; {
		select {
		case <-stop:
			return pub.Flush()
		case <-tick.C:
		}
		for range rate / 100 {
			if err := pub.Publish("events.c"+strconv.Itoa(i%100), data); err != nil {
				return err
			}
			i++
		}
	}
}

// inOrder takes c's frames until ctx ends, and fails on one that is not
// after the one before.
func inOrder(ctx context.Context, c *Client) error {
	var last uint64
	var buf []Frame
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-c.Done():
			return fmt.Errorf("the client was ended: %v", c.Reason())
		case <-c.Ready():
		}
		for more := true; more; {
			buf, more = c.Take(buf[:0], 256)
			for _, f := range buf {
				if f.Seq <= last {
					return fmt.Errorf("frame %d after %d", f.Seq, last)
				}
				last = f.Seq
			}
		}
	}
}

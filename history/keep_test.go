package history

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/ssegate/ssegate/internal/natstest"
	"github.com/ssegate/ssegate/internal/testkit"
	"github.com/ssegate/ssegate/replay"
	"github.com/ssegate/ssegate/upstream"
)

// liveHub is a hub on a fresh nats-server, as the gateway runs one, and
// a JetStream client of that server.
func liveHub(t *testing.T) (*upstream.Hub, jetstream.JetStream) {
	t.Helper()
	ns := natstest.Server(t)
	conn, err := upstream.Acquire(upstream.Config{URLs: []string{ns.ClientURL()}}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Release() })
	cfg := replay.StreamConfig{Storage: "memory"}.WithDefaults()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := replay.Ensure(ctx, conn.JS, cfg)
	if err != nil {
		t.Fatal(err)
	}
	hub, err := upstream.NewHub(conn, cfg, replay.NewHistory(conn.JS, stream, 0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hub.Close)
	_, js := natstest.Connect(t, ns)
	return hub, js
}

func (k *keepers) count() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.m)
}

// TestKeeperLetsGoOfAChannelNobodyPolls: a keeper stays while its
// channel is polled, the same keeper each time, and detaches from the
// hub once nobody has polled the channel for its linger.
func TestKeeperLetsGoOfAChannelNobodyPolls(t *testing.T) {
	hub, _ := liveHub(t)
	k := &keepers{linger: 300 * time.Millisecond}
	ctx := context.Background()
	first := k.hold(ctx, hub, []string{"events.a"})[0]
	if first == nil || hub.Channels() != 1 {
		t.Fatalf("keeper %v, hub channels %d", first, hub.Channels())
	}
	// Polled for three lingers: kept, never replaced.
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for end := time.Now().Add(900 * time.Millisecond); time.Now().Before(end); <-tick.C {
		if kp := k.hold(ctx, hub, []string{"events.a"})[0]; kp != first {
			t.Fatal("a polled channel's keeper was replaced")
		}
	}
	testkit.Eventually(t, 5*time.Second, "the keeper of an unpolled channel to go", func() bool {
		return k.count() == 0 && hub.Channels() == 0
	})
	if frames, ok := first.between(0, 100); ok || frames != nil {
		t.Fatal("an ended keeper still answers")
	}
	// A later poll of the channel gets a new keeper.
	if kp := k.hold(ctx, hub, []string{"events.a"})[0]; kp == nil || kp == first {
		t.Fatalf("keeper after the linger: %p, first %p", kp, first)
	}
}

// TestKeepersStopAtTheirCap: past maxKeepers polled channels, a poll of
// another channel gets no keeper (and reads the stream when it is
// behind); keepers that go make room again.
func TestKeepersStopAtTheirCap(t *testing.T) {
	hub, _ := liveHub(t)
	k := &keepers{linger: 2 * time.Second}
	subjects := make([]string, maxKeepers+1)
	for i := range subjects {
		subjects[i] = fmt.Sprintf("events.c%d", i)
	}
	ctx := context.Background()
	keeps := k.hold(ctx, hub, subjects)
	for i, kp := range keeps[:maxKeepers] {
		if kp == nil {
			t.Fatalf("no keeper for channel %d of %d", i, maxKeepers)
		}
	}
	if keeps[maxKeepers] != nil || k.count() != maxKeepers || hub.Channels() != maxKeepers {
		t.Fatalf("past the cap: keeper %v, %d keepers, %d hub channels", keeps[maxKeepers], k.count(), hub.Channels())
	}
	if _, ok := recent(keeps[maxKeepers:], []string{"c"}, 0, 1); ok {
		t.Fatal("a channel without a keeper claims to know its events")
	}
	testkit.Eventually(t, 15*time.Second, "the keepers to go after their linger", func() bool {
		return k.count() == 0 && hub.Channels() == 0
	})
	if kp := k.hold(ctx, hub, subjects[maxKeepers:])[0]; kp == nil {
		t.Fatal("no keeper once the others went")
	}
}

// TestKeeperCutByTheHubIsReplaced: a channel that gets more events than
// a keeper's queue holds between two polls has its keeper cut by the
// hub. It then claims to know nothing (the poll reads the stream), and
// the next poll gets a new keeper while the cut one is let go.
func TestKeeperCutByTheHubIsReplaced(t *testing.T) {
	hub, js := liveHub(t)
	k := &keepers{linger: time.Minute}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	first := k.hold(ctx, hub, []string{"events.busy"})[0]
	if first == nil {
		t.Fatal("no keeper")
	}
	for i := range keepQueue + 10 {
		if _, err := js.PublishAsync("events.busy", []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		t.Fatal("publishes not acked")
	}
	testkit.Eventually(t, 10*time.Second, "the hub to cut the keeper", first.cut)
	if _, ok := first.between(0, 1<<62); ok {
		t.Fatal("a cut keeper claims to know its channel's events")
	}
	next := k.hold(ctx, hub, []string{"events.busy"})[0]
	if next == nil || next == first || k.count() != 1 || hub.Channels() != 1 {
		t.Fatalf("after the cut: keeper %p (first %p), %d keepers, %d hub channels", next, first, k.count(), hub.Channels())
	}
	if _, ok := next.between(next.from, next.from); !ok {
		t.Fatal("the new keeper does not know its channel from its start")
	}
}

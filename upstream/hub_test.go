package upstream

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"

	"github.com/ssegate/ssegate/internal/natstest"
	"github.com/ssegate/ssegate/replay"
)

// hubFixture connects a hub to a fresh server, as the app does.
func hubFixture(t testing.TB, opts ...HubOption) (*Hub, *nats.Conn) {
	return hubReading(t, func(h *replay.History) reader { return h }, opts...)
}

// hubReading is hubFixture with wrap standing between the hub and the
// stream's history.
func hubReading(t testing.TB, wrap func(*replay.History) reader, opts ...HubOption) (*Hub, *nats.Conn) {
	t.Helper()
	ns := natstest.Server(t)
	// The connection is closed asynchronously after the test, when a
	// zaptest logger would no longer accept lines.
	log := zap.NewNop()
	conn, err := Acquire(Config{URLs: []string{ns.ClientURL()}}, log)
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
	history := replay.NewHistory(conn.JS, stream, 0)
	hub := newHub(conn, cfg, wrap(history), stream.Epoch, append([]HubOption{WithLogger(log)}, opts...)...)
	t.Cleanup(hub.Close)
	pub, _ := natstest.Connect(t, ns)
	return hub, pub
}

// TestDroppedLiveMessagesAreBackfilled makes core NATS drop messages on
// their way to the hub, and checks that clients still get every event, in
// order, once.
func TestDroppedLiveMessagesAreBackfilled(t *testing.T) {
	hub, pub := hubFixture(t, WithPendingLimit(8))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := hub.Attach(ctx, []string{"events.a", "events.b"}, 1000, false)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Detach()

	// Holding the hub's lock stalls the dispatcher, so the eight-message
	// buffer overflows and nats.go drops what does not fit.
	const n = 200
	hub.mu.Lock()
	for i := 0; i < n; i++ {
		if err := pub.Publish(fmt.Sprintf("events.%c", "ab"[i%2]), []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := pub.Flush(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for dropped(hub) == 0 {
		if time.Now().After(deadline) {
			hub.mu.Unlock()
			t.Fatal("no message was dropped; the test proves nothing")
		}
		time.Sleep(time.Millisecond)
	}
	hub.mu.Unlock()

	for want := uint64(1); want <= n; want++ {
		f, ok := recv(c, 10*time.Second)
		if !ok {
			t.Fatalf("sequence %d never arrived", want)
		}
		if f.Seq != want {
			t.Fatalf("got sequence %d, want %d", f.Seq, want)
		}
	}
	quiet(t, c, "after every event")
}

func dropped(h *Hub) int {
	total := 0
	for _, t := range h.topics {
		n, _ := t.sub.Dropped()
		total += n
	}
	return total
}

func TestLastClientUnsubscribes(t *testing.T) {
	hub, _ := hubFixture(t)
	ctx := context.Background()
	// A first attach makes nats.go open its shared request inbox; count
	// subscriptions from there on.
	warm, err := hub.Attach(ctx, []string{"events.w"}, 8, false)
	if err != nil {
		t.Fatal(err)
	}
	warm.Detach()
	base := hub.conn.NC.NumSubscriptions()
	a, err := hub.Attach(ctx, []string{"events.x", "events.y"}, 8, false)
	if err != nil {
		t.Fatal(err)
	}
	b, err := hub.Attach(ctx, []string{"events.x"}, 8, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := hub.Channels(); got != 2 {
		t.Fatalf("%d channels, want 2", got)
	}
	a.Detach()
	a.Detach() // idempotent
	if got := hub.Channels(); got != 1 {
		t.Fatalf("%d channels after first detach, want 1", got)
	}
	b.Detach()
	if got := hub.Channels(); got != 0 {
		t.Fatalf("%d channels after last detach, want 0", got)
	}
	if n := hub.conn.NC.NumSubscriptions(); n != base {
		t.Fatalf("%d NATS subscriptions left", n)
	}
}

func TestCloseEndsClients(t *testing.T) {
	hub, _ := hubFixture(t)
	c, err := hub.Attach(context.Background(), []string{"events.z"}, 8, false)
	if err != nil {
		t.Fatal(err)
	}
	hub.Close()
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("client not ended by Close")
	}
	if r := c.Reason(); r != ReasonShutdown {
		t.Fatalf("reason %v", r)
	}
	if _, err := hub.Attach(context.Background(), []string{"events.z"}, 8, false); err != ErrClosed {
		t.Fatalf("attach after close: %v", err)
	}
}

// TestQuietChannelCheckFindsALostEvent: an event lost on its way to a new
// subscription, with no later event to reveal the gap, is found by the
// check that follows a new subscription.
func TestQuietChannelCheckFindsALostEvent(t *testing.T) {
	hub, pub := hubFixture(t)
	c, err := hub.Attach(context.Background(), []string{"events.quiet"}, 8, false)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Detach()
	marker, err := hub.Attach(context.Background(), []string{"events.marker"}, 8, false)
	if err != nil {
		t.Fatal(err)
	}
	defer marker.Detach()
	live := hub.stream.LiveSubject("events.quiet")

	// Hide the topic from the dispatcher so that the event is dropped as
	// if core NATS had lost it. The dispatcher handles messages in order,
	// so once the marker after it arrives, the event is gone.
	hub.mu.Lock()
	tp := hub.topics[live]
	delete(hub.topics, live)
	hub.mu.Unlock()
	for _, subj := range []string{"events.quiet", "events.marker"} {
		if err := pub.Publish(subj, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := recv(marker, 5*time.Second); !ok {
		t.Fatal("marker never arrived")
	}
	hub.mu.Lock()
	hub.topics[live] = tp
	hub.mu.Unlock()
	quiet(t, c, "before recovery; the test proves nothing")

	f, ok := recv(c, settleDelay+5*time.Second)
	if !ok {
		t.Fatal("the lost event was never recovered")
	}
	if f.Seq != 1 {
		t.Fatalf("got sequence %d", f.Seq)
	}
}

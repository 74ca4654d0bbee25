package upstream

import (
	"context"
	"fmt"
	"sync/atomic"
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
	hub, err := newHub(conn, cfg, wrap(history), stream.Epoch, append([]HubOption{WithLogger(log)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
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
	expect(t, c, seqs(1, n)...)
	quiet(t, c, "after every event")
}

func dropped(h *Hub) int {
	n, _ := h.sub.Dropped()
	return n
}

// countingReader counts the hub's requests to the stream.
type countingReader struct {
	reader
	heads, follows atomic.Int64
}

func (r *countingReader) Head(ctx context.Context) (replay.Head, error) {
	r.heads.Add(1)
	return r.reader.Head(ctx)
}

func (r *countingReader) Follow(ctx context.Context, after uint64, fn func(replay.Msg) error) error {
	r.follows.Add(1)
	return r.reader.Follow(ctx, after, fn)
}

// TestNewChannelsNeedNoRequest: a channel's baseline is the hub's
// position, so attaching to new channels subscribes nothing and asks the
// stream nothing, and the last client of a channel leaves nothing behind.
func TestNewChannelsNeedNoRequest(t *testing.T) {
	var counted *countingReader
	hub, _ := hubReading(t, func(h *replay.History) reader {
		counted = &countingReader{reader: h}
		return counted
	})
	ctx := context.Background()
	warm, err := hub.Attach(ctx, []string{"events.w"}, 8, false)
	if err != nil {
		t.Fatal(err)
	}
	warm.Detach()
	subs, heads := hub.conn.NC.NumSubscriptions(), counted.heads.Load()
	var clients []*Client
	for i := range 100 {
		c, err := hub.Attach(ctx, []string{fmt.Sprintf("events.n%d", i), "events.x"}, 8, false)
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
	}
	if got := hub.Channels(); got != 101 {
		t.Fatalf("%d channels, want 101", got)
	}
	if n := hub.conn.NC.NumSubscriptions(); n != subs {
		t.Fatalf("%d NATS subscriptions, want %d", n, subs)
	}
	if n := counted.heads.Load() - heads; n > 1 {
		// The idle check may ask once meanwhile; 100 channels did not.
		t.Fatalf("%d head requests for 100 new channels", n)
	}
	for _, c := range clients {
		c.Detach()
		c.Detach() // idempotent
	}
	if got := hub.Channels(); got != 0 {
		t.Fatalf("%d channels after the last detach, want 0", got)
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

// lose makes the hub miss whatever is published while fn runs, as core
// NATS does across a reconnect: its subscription is away meanwhile.
func lose(t *testing.T, hub *Hub, fn func()) {
	t.Helper()
	hub.mu.Lock()
	defer hub.mu.Unlock()
	if err := hub.sub.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	fn()
	sub, err := hub.conn.NC.ChanSubscribe(hub.stream.RepublishPrefix+".>", hub.msgs)
	if err != nil {
		t.Fatal(err)
	}
	hub.sub = sub
	if err := hub.conn.NC.Flush(); err != nil {
		t.Fatal(err)
	}
}

func publish(t *testing.T, pub *nats.Conn, subjects ...string) {
	t.Helper()
	js, err := pub.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range subjects {
		if _, err := js.Publish(s, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
}

// TestQuietChannelLossIsFoundByTheNextEventOfAnyChannel is the issue's
// case 2: a client of a quiet channel and a busy one. The quiet channel's
// event is lost; the busy channel's next event reveals it at once, and the
// client gets both, in order. Watching each channel apart, the client
// moved past the loss.
func TestQuietChannelLossIsFoundByTheNextEventOfAnyChannel(t *testing.T) {
	hub, pub := hubFixture(t)
	c, err := hub.Attach(context.Background(), []string{"events.quiet", "events.marker"}, 8, false)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Detach()
	lose(t, hub, func() { publish(t, pub, "events.quiet") })
	publish(t, pub, "events.marker")
	expect(t, c, 1, 2)
}

// TestLossWithNothingAfterIsFound: an event lost with no later event to
// reveal it is found by the idle check of the stream's head.
func TestLossWithNothingAfterIsFound(t *testing.T) {
	hub, pub := hubFixture(t)
	c, err := hub.Attach(context.Background(), []string{"events.quiet"}, 8, false)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Detach()
	lose(t, hub, func() { publish(t, pub, "events.quiet") })
	expect(t, c, 1)
}

func seqs(from, to uint64) []uint64 {
	var out []uint64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

// expect waits for c to be given exactly want, in order.
func expect(t *testing.T, c *Client, want ...uint64) {
	t.Helper()
	for _, w := range want {
		f, ok := recv(c, 10*time.Second)
		if !ok {
			t.Fatalf("sequence %d never arrived", w)
		}
		if f.Seq != w {
			t.Fatalf("got sequence %d, want %d", f.Seq, w)
		}
	}
}

func recv(c *Client, timeout time.Duration) (Frame, bool) {
	deadline := time.After(timeout)
	for {
		if fs, _ := c.Take(nil, 1); len(fs) == 1 {
			return fs[0], true
		}
		select {
		case <-c.Ready():
		case <-deadline:
			return Frame{}, false
		}
	}
}

// quiet checks that nothing more is given to c for a moment.
func quiet(t *testing.T, c *Client, what string) {
	t.Helper()
	if f, ok := recv(c, 200*time.Millisecond); ok {
		t.Fatalf("unexpected sequence %d %s", f.Seq, what)
	}
}

package upstream

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ssegate/ssegate/replay"
)

// gatedReader is the stream's history with a hand on its reads: a test can
// make recovery reads wait, or fail, or make head reads fail.
type gatedReader struct {
	*replay.History
	reading  chan struct{} // receives when a recovery read starts
	release  chan struct{} // closed to let recovery reads go on
	failRead bool
	headDown atomic.Bool // head reads fail while set
	// holdProbe, while set, makes a probe wait on probeRelease after it
	// has read the stream, and say so on probed.
	holdProbe    atomic.Bool
	probed       chan struct{}
	probeRelease chan struct{}
}

func (r *gatedReader) LastSequences(ctx context.Context, subjects []string) (map[string]uint64, error) {
	last, err := r.History.LastSequences(ctx, subjects)
	if r.holdProbe.Load() {
		r.probed <- struct{}{}
		<-r.probeRelease
	}
	return last, err
}

func (r *gatedReader) Backfill(ctx context.Context, subjects []string, after uint64, fn func(replay.Msg) error) error {
	select {
	case r.reading <- struct{}{}:
	default:
	}
	select {
	case <-r.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	if r.failRead {
		return errors.New("injected read failure")
	}
	return r.History.Backfill(ctx, subjects, after, fn)
}

func (r *gatedReader) Head(ctx context.Context) (replay.Head, error) {
	if r.headDown.Load() {
		return replay.Head{}, errors.New("injected head failure")
	}
	return r.History.Head(ctx)
}

func gatedHub(t testing.TB, r *gatedReader) (*Hub, *nats.Conn) {
	r.reading = make(chan struct{}, 1)
	return hubReading(t, func(h *replay.History) reader {
		r.History = h
		return r
	})
}

// loseNext makes the dispatcher miss the next live message on subject, as
// if core NATS had dropped it, by hiding the topic while it passes.
func loseNext(t testing.TB, hub *Hub, pub *nats.Conn, subject string) {
	t.Helper()
	live := hub.stream.LiveSubject(subject)
	hub.mu.Lock()
	tp := hub.topics[live]
	delete(hub.topics, live)
	hub.mu.Unlock()
	// A marker on a subject nobody reads tells when the lost message has
	// passed the dispatcher, which handles messages in order.
	marker, err := hub.Attach(context.Background(), []string{"events.marker"}, 8, false)
	if err != nil {
		t.Fatal(err)
	}
	defer marker.Detach()
	if err := pub.Publish(subject, []byte("lost")); err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish("events.marker", nil); err != nil {
		t.Fatal(err)
	}
	next(t, marker)
	hub.mu.Lock()
	hub.topics[live] = tp
	hub.mu.Unlock()
}

func next(t testing.TB, c *Client) Frame {
	t.Helper()
	f, ok := recv(c, 10*time.Second)
	if !ok {
		t.Fatalf("no frame within 10s (client ended: %v)", c.Reason())
	}
	return f
}

// recv waits for the client's next frame, until it ends or timeout.
func recv(c *Client, timeout time.Duration) (Frame, bool) {
	deadline := time.After(timeout)
	for {
		if fs, _ := c.Take(nil, 1); len(fs) == 1 {
			return fs[0], true
		}
		select {
		case <-c.Ready():
		case <-c.Done():
			return Frame{}, false
		case <-deadline:
			return Frame{}, false
		}
	}
}

func quiet(t *testing.T, c *Client, what string) {
	t.Helper()
	if fs, _ := c.Take(nil, 1); len(fs) > 0 {
		t.Fatalf("%s: got frame %d", what, fs[0].Seq)
	}
}

// TestRecoveryDoesNotHoldUpOtherChannels: while one channel's lost event is
// being read back, slowly, another channel's clients keep getting events
// at once, and a client of both waits so that its order holds.
func TestRecoveryDoesNotHoldUpOtherChannels(t *testing.T) {
	r := &gatedReader{release: make(chan struct{})}
	hub, pub := gatedHub(t, r)
	ctx := context.Background()
	healthy, err := hub.Attach(ctx, []string{"events.b"}, 64, false)
	if err != nil {
		t.Fatal(err)
	}
	both, err := hub.Attach(ctx, []string{"events.a", "events.b"}, 64, false)
	if err != nil {
		t.Fatal(err)
	}
	loseNext(t, hub, pub, "events.a") // seq 1 (the marker is 2)
	// The next event on a reveals the gap; recovery starts and waits.
	if err := pub.Publish("events.a", []byte("reveals")); err != nil { // 3
		t.Fatal(err)
	}
	select {
	case <-r.reading:
	case <-time.After(10 * time.Second):
		t.Fatal("no recovery read started")
	}
	for i := 0; i < 20; i++ {
		if err := pub.Publish("events.b", nil); err != nil { // 4..23
			t.Fatal(err)
		}
		start := time.Now()
		f := next(t, healthy)
		if f.Seq != uint64(4+i) {
			t.Fatalf("healthy client got %d, want %d", f.Seq, 4+i)
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("healthy channel waited %v behind a recovery", d)
		}
	}
	quiet(t, both, "client of the recovering channel")
	close(r.release)
	for _, want := range append([]uint64{1, 3}, seqs(4, 23)...) {
		if f := next(t, both); f.Seq != want {
			t.Fatalf("client of both got %d, want %d", f.Seq, want)
		}
	}
}

func seqs(from, to uint64) []uint64 {
	var out []uint64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

// TestFailedRecoveryEndsClientsWithoutAGap: when the missed events cannot
// be read, the clients are ended, and what they were queued is unbroken,
// so each resumes from its own last event.
func TestFailedRecoveryEndsClientsWithoutAGap(t *testing.T) {
	r := &gatedReader{release: make(chan struct{}), failRead: true}
	close(r.release)
	hub, pub := gatedHub(t, r)
	c, err := hub.Attach(context.Background(), []string{"events.a", "events.b"}, 64, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish("events.b", nil); err != nil { // 1
		t.Fatal(err)
	}
	if f := next(t, c); f.Seq != 1 {
		t.Fatalf("got %d", f.Seq)
	}
	loseNext(t, hub, pub, "events.a")                       // 2, marker 3
	for _, subj := range []string{"events.a", "events.b"} { // 4, 5
		if err := pub.Publish(subj, nil); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("client not ended")
	}
	if r := c.Reason(); r != ReasonResync {
		t.Fatalf("reason %v", r)
	}
	quiet(t, c, "after the failed recovery")
}

// TestFailuresLeaveNoTopicBehind: a subscription that fails part-way, or a
// channel whose baseline could not be read, leaves nothing in the hub, and
// the next attach starts afresh.
func TestFailuresLeaveNoTopicBehind(t *testing.T) {
	r := &gatedReader{release: make(chan struct{})}
	hub, _ := gatedHub(t, r)
	ctx := context.Background()
	if _, err := hub.Attach(ctx, []string{"events.ok", "events.bad subject"}, 8, false); err == nil {
		t.Fatal("attached to an invalid subject")
	}
	if n := hub.Channels(); n != 0 {
		t.Fatalf("%d channels left after a failed subscribe", n)
	}
	r.headDown.Store(true)
	if _, err := hub.Attach(ctx, []string{"events.x"}, 8, false); err == nil {
		t.Fatal("attach succeeded while the head read failed")
	}
	r.headDown.Store(false)
	if n := hub.Channels(); n != 0 {
		t.Fatalf("%d channels left after a failed baseline", n)
	}
	c, err := hub.Attach(ctx, []string{"events.x"}, 8, false)
	if err != nil {
		t.Fatalf("the error stuck to the channel: %v", err)
	}
	c.Detach()
}

// TestSuspicionDuringAProbeIsNotLost: a reconnect that comes while a probe
// of the same channel is under way, after it read the stream, makes the
// worker look again; otherwise an event lost during the outage on a quiet
// channel would never be found.
func TestSuspicionDuringAProbeIsNotLost(t *testing.T) {
	r := &gatedReader{release: make(chan struct{}), probed: make(chan struct{}), probeRelease: make(chan struct{})}
	close(r.release)
	hub, pub := gatedHub(t, r)
	c, err := hub.Attach(context.Background(), []string{"events.q"}, 8, false)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Detach()
	// Past the settle probe, nothing else looks at the channel by itself.
	deadline := time.Now().Add(10 * time.Second)
	for !hub.Settled() {
		if time.Now().After(deadline) {
			t.Fatal("the new channel never settled")
		}
		time.Sleep(10 * time.Millisecond)
	}

	r.holdProbe.Store(true)
	hub.suspectAll() // a first disconnect
	<-r.probed       // the probe has read the stream: nothing lost yet
	r.holdProbe.Store(false)
	loseNext(t, hub, pub, "events.q")
	hub.suspectAll() // the reconnect after the loss
	close(r.probeRelease)

	f, ok := recv(c, 5*time.Second)
	if !ok || f.Seq != 1 {
		t.Fatalf("got %v (%v); the event lost during the probe was never recovered", f.Seq, ok)
	}
}

// readRecorder is the stream's history, noting the subjects of every
// recovery read.
type readRecorder struct {
	*replay.History
	mu    sync.Mutex
	reads [][]string
}

func (r *readRecorder) Backfill(ctx context.Context, subjects []string, after uint64, fn func(replay.Msg) error) error {
	r.mu.Lock()
	r.reads = append(r.reads, slices.Clone(subjects))
	r.mu.Unlock()
	return r.History.Backfill(ctx, subjects, after, fn)
}

// TestManySuspectChannelsAreReadOnce: when more channels lost events than
// one filtered consumer can read (as after a reconnect), recovery reads the
// stream once, through all of it, and each client still gets what it
// missed exactly once. A filtered read per group of 64 channels made the
// server scan the same stretch once per group.
func TestManySuspectChannelsAreReadOnce(t *testing.T) {
	r := &readRecorder{}
	hub, pub := hubReading(t, func(h *replay.History) reader {
		r.History = h
		return r
	})
	const channels = 2*replay.MaxFilterSubjects + 2
	clients := make([]*Client, channels)
	for i := range clients {
		c, err := hub.Attach(context.Background(), []string{fmt.Sprintf("events.c%d", i)}, 8, false)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Detach()
		clients[i] = c
	}
	// The new channels' settle probe comes first, so that only the
	// recovery below reads.
	waitSettled(t, hub)
	for i := range clients {
		loseNext(t, hub, pub, fmt.Sprintf("events.c%d", i))
	}
	hub.suspectAll()
	for i, c := range clients {
		if f := next(t, c); !strings.Contains(string(f.Data), "lost") {
			t.Fatalf("client %d got %q, want its lost event", i, f.Data)
		}
		quiet(t, c, fmt.Sprintf("client %d after its lost event", i))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.reads) != 1 || !slices.Equal(r.reads[0], hub.stream.Subjects) {
		t.Fatalf("recovery read %d times, filtered on %v; want once, through the stream's subjects %v", len(r.reads), r.reads, hub.stream.Subjects)
	}
}

// TestClientAttachingDuringARecoveryReadGetsTheLostEvent: a probe finds
// that a channel lost an event; a client attaches while the read for the
// channel's other clients is under way, from a position before the lost
// event. A newer live event must not reach it first: it waits, and the
// next round reads it the lost one, then the newer one follows.
func TestClientAttachingDuringARecoveryReadGetsTheLostEvent(t *testing.T) {
	r := &gatedReader{release: make(chan struct{})}
	hub, pub := gatedHub(t, r)
	first, err := hub.Attach(context.Background(), []string{"events.q"}, 8, false)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Detach()
	waitSettled(t, hub)
	loseNext(t, hub, pub, "events.q")
	hub.suspectAll()
	<-r.reading // the worker chose its clients; the read waits
	late, err := hub.Attach(context.Background(), []string{"events.q"}, 8, false)
	if err != nil {
		t.Fatal(err)
	}
	defer late.Detach()
	r.release <- struct{}{}
	lost := next(t, first)
	if err := pub.Publish("events.q", []byte("after")); err != nil {
		t.Fatal(err)
	}
	<-r.reading // the next round, for the client that came
	r.release <- struct{}{}
	if f := next(t, late); f.Seq != lost.Seq {
		t.Fatalf("the late client got %d first, want the lost event %d", f.Seq, lost.Seq)
	}
	if f := next(t, late); !strings.Contains(string(f.Data), "after") {
		t.Fatalf("then %q, want the newer event", f.Data)
	}
	if f := next(t, first); !strings.Contains(string(f.Data), "after") {
		t.Fatalf("the first client then got %q, want the newer event", f.Data)
	}
}

// TestChannelLeftDuringRecoveryLeavesTheGaugeAtZero: a channel whose last
// client leaves while it is being recovered is counted out of the
// recovering gauge once, not once when it goes and again when the round
// ends.
func TestChannelLeftDuringRecoveryLeavesTheGaugeAtZero(t *testing.T) {
	var recovering atomic.Int64
	r := &gatedReader{release: make(chan struct{}), reading: make(chan struct{}, 1)}
	hub, pub := hubReading(t, func(h *replay.History) reader {
		r.History = h
		return r
	}, WithMetrics(Metrics{Recovering: func(d float64) { recovering.Add(int64(d)) }}))
	leaving, err := hub.Attach(context.Background(), []string{"events.gone"}, 8, false)
	if err != nil {
		t.Fatal(err)
	}
	staying, err := hub.Attach(context.Background(), []string{"events.kept"}, 8, false)
	if err != nil {
		t.Fatal(err)
	}
	defer staying.Detach()
	waitSettled(t, hub)
	loseNext(t, hub, pub, "events.gone")
	hub.suspectAll()
	<-r.reading // the round chose its clients; its read waits
	leaving.Detach()
	close(r.release)
	deadline := time.Now().Add(10 * time.Second)
	for hub.Recovering() > 0 { // the round ends with the kept channel
		if time.Now().After(deadline) {
			t.Fatal("the round did not end within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := recovering.Load(); n != 0 {
		t.Fatalf("recovering gauge at %d after the round, want 0", n)
	}
}

// waitSettled waits until the hub's new channels have had their settle
// probe and none is held, so that only what the test does next reads.
func waitSettled(t *testing.T, hub *Hub) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !hub.Settled() {
		if time.Now().After(deadline) {
			t.Fatal("the new channels were not probed within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

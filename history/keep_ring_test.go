package history

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ssegate/ssegate/internal/testkit"
	"github.com/ssegate/ssegate/upstream"
)

// publishN stores n events on subject and waits until the hub has them.
func publishN(t *testing.T, hub *upstream.Hub, js jetstream.JetStream, subject string, n int) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var last uint64
	for range n {
		ack, err := js.Publish(ctx, subject, []byte("x"))
		if err != nil {
			t.Fatal(err)
		}
		last = ack.Sequence
	}
	testkit.Eventually(t, 5*time.Second, "the hub at the last event", func() bool { return hub.Position() >= last })
	return last
}

// TestKeeperRingHasEveryFrameOnce: past keepRing frames the oldest are
// forgotten and the keeper says so for positions before them; from its
// first remembered position on, it gives every frame once, in order.
func TestKeeperRingHasEveryFrameOnce(t *testing.T) {
	hub, js := liveHub(t)
	k := &keepers{linger: time.Minute}
	kp := k.hold(context.Background(), hub, []string{"events.a"})[0]
	start := kp.from
	const n = keepRing + 44
	last := publishN(t, hub, js, "events.a", n)
	if _, ok := kp.between(start, last); ok {
		t.Fatal("a keeper that forgot its oldest frames answered for them")
	}
	kp.mu.Lock()
	from := kp.from
	kp.mu.Unlock()
	if from != last-keepRing {
		t.Fatalf("the ring starts after %d, want %d", from, last-keepRing)
	}
	for _, after := range []uint64{from, last - 10, last} {
		fs, ok := kp.between(after, last)
		if !ok || len(fs) != int(last-after) {
			t.Fatalf("between(%d, %d): %d frames, ok %v", after, last, len(fs), ok)
		}
		for i, f := range fs {
			if f.Seq != after+uint64(i)+1 {
				t.Fatalf("between(%d, %d): frame %d is %d", after, last, i, f.Seq)
			}
		}
	}
}

// TestPollDrainsItsKeeper: each poll of a channel moves its keeper's
// queued frames into the ring, where the ring's bounds hold them: a poll
// that is always level with the hub, and never asks the keeper for
// frames, does not leave them queued until the hub cuts the keeper.
func TestPollDrainsItsKeeper(t *testing.T) {
	hub, js := liveHub(t)
	k := &keepers{linger: time.Minute}
	kp := k.hold(context.Background(), hub, []string{"events.a"})[0]
	publishN(t, hub, js, "events.a", 100)
	if again := k.hold(context.Background(), hub, []string{"events.a"})[0]; again != kp {
		t.Fatal("the keeper was replaced")
	}
	kp.mu.Lock()
	held := len(kp.ring)
	kp.mu.Unlock()
	if held != 100 {
		t.Fatalf("after a poll the ring holds %d frames, want the 100 queued", held)
	}
}

// TestFirstPollsOfAChannelShareOneKeeper: polls that come together to a
// channel without a keeper end with one keeper, which all of them use.
func TestFirstPollsOfAChannelShareOneKeeper(t *testing.T) {
	hub, _ := liveHub(t)
	k := &keepers{linger: time.Minute}
	got := make([]*keeper, 8)
	var wg sync.WaitGroup
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i] = k.hold(context.Background(), hub, []string{"events.a"})[0]
		}()
	}
	wg.Wait()
	for i, kp := range got {
		if kp == nil || kp != got[0] {
			t.Fatalf("poll %d got keeper %p, poll 0 got %p", i, kp, got[0])
		}
	}
	if k.count() != 1 || hub.Channels() != 1 {
		t.Fatalf("%d keepers, %d hub channels", k.count(), hub.Channels())
	}
}

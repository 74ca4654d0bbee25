package upstream

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ssegate/ssegate/replay"
)

// script drives a hub's order by hand, with the simulation's fake effects.
type script struct {
	*sim
	t *testing.T
}

func newScript(t *testing.T, stored ...string) *script {
	return newScriptWith(t, nil, stored...)
}

func newScriptWith(t *testing.T, opts []HubOption, stored ...string) *script {
	s := &script{sim: &sim{now: time.Unix(1e9, 0), logf: t.Logf}, t: t}
	s.hub = newCore(replay.StreamConfig{}, nil, "sim", opts...)
	s.hub.io = s.sim
	s.stream = append(s.stream, stored...)
	s.locked(func() { s.hub.tickLocked(s.now, true) })
	s.headAnswer()
	return s
}

func (s *script) headAnswer() {
	s.headAsks = 0
	s.locked(func() { s.hub.headLocked(replay.Head{LastSeq: uint64(len(s.stream)), Epoch: "sim"}, nil, s.now) })
}

// store adds an event to the stream; live says whether core NATS delivers
// it to the hub.
func (s *script) store(subject string, live bool) {
	s.stream = append(s.stream, subject)
	if live {
		seq := uint64(len(s.stream))
		m := &nats.Msg{Header: nats.Header{}, Data: []byte("x")}
		s.locked(func() { s.hub.liveLocked(pending{seq: seq, subject: subject, msg: m}, s.now) })
	}
}

func (s *script) readNext() {
	s.t.Helper()
	if s.read == nil {
		s.t.Fatal("the hub is not reading")
	}
	s.applied = len(s.stream)
	s.deliverRead()
}

func (s *script) attach(subjects []string, replaying bool) *Client {
	s.t.Helper()
	c, err := s.hub.Attach(context.Background(), subjects, 64, replaying)
	if err != nil {
		s.t.Fatal(err)
	}
	return c
}

func taken(c *Client) []uint64 {
	fs, _ := c.Take(nil, 100)
	var out []uint64
	for _, f := range fs {
		out = append(out, f.Seq)
	}
	return out
}

// TestReplayEndingDuringAGapReadMissesNothing is the first code
// reading case: A is fresh on q and R replays q; q loses 2 and 3 on the
// way and 4 reveals it; R ends its replay at 2 while the hub reads the gap.
// R must get 3 before 4. (The per-channel hub marked R to read again but
// raised q's chain head as its read went, and R got 2, then 4.)
func TestReplayEndingDuringAGapReadMissesNothing(t *testing.T) {
	s := newScript(t, "events.q")
	a := s.attach([]string{"events.q"}, false)
	r := s.attach([]string{"events.q"}, true)
	if r.Start() != 1 {
		t.Fatalf("R must read through 1, the hub's position; Start is %d", r.Start())
	}
	s.store("events.q", false)
	s.store("events.q", false)
	s.store("events.q", true) // 4 reveals the gap: the hub reads from 2
	// R's replay read 1 and 2 (its server held them), passed through 1,
	// and ends while the hub's read is under way.
	if !r.EndReplay(2) {
		t.Fatal("EndReplay refused")
	}
	s.readNext() // 2
	s.readNext() // 3; then 4, waiting, follows
	if s.read != nil {
		t.Fatal("the read goes on once live delivery can take over")
	}
	if got := taken(r); !slices.Equal(got, []uint64{3, 4}) {
		t.Fatalf("R got %v after its replay of 1..2, want [3 4]", got)
	}
	if got := taken(a); !slices.Equal(got, []uint64{2, 3, 4}) {
		t.Fatalf("A got %v, want [2 3 4]", got)
	}
}

// TestNewChannelDuringAGapWaitsForTheLostEvent is the second case
// at the order's level: a client attaches to a quiet channel and a busy one
// while an event of the quiet one is lost; the busy one's next event
// reveals it, and the client gets the lost event first.
// The metrics count what they claim: channels with clients, channels
// waiting while the read runs, and events read back that a client got.
func TestNewChannelDuringAGapWaitsForTheLostEvent(t *testing.T) {
	var channels, recovering float64
	backfilled := 0
	s := newScriptWith(t, []HubOption{WithMetrics(Metrics{
		Backfilled: func(n int) { backfilled += n },
		Channels:   func(d float64) { channels += d },
		Recovering: func(d float64) { recovering += d },
	})})
	c := s.attach([]string{"events.quiet", "events.marker"}, false)
	other := s.attach([]string{"events.other"}, false)
	s.store("events.nobody", false)
	s.store("events.quiet", false)
	s.store("events.marker", true)
	if got := taken(c); len(got) != 0 {
		t.Fatalf("got %v before the lost event was read back", got)
	}
	if channels != 3 || recovering != 3 {
		t.Fatalf("gauges during the read: %v channels, %v recovering; want 3 and 3", channels, recovering)
	}
	s.readNext()
	s.readNext()
	if got := taken(c); !slices.Equal(got, []uint64{2, 3}) {
		t.Fatalf("got %v, want [2 3]", got)
	}
	other.Detach()
	if channels != 2 || recovering != 0 || backfilled != 1 {
		t.Fatalf("after the read: %v channels, %v recovering, %d backfilled; want 2, 0 and 1", channels, recovering, backfilled)
	}
}

// TestLiveDuplicatesAndStaleReadsAreDropped: a message at or below the
// position is never dispatched again, live or read.
func TestLiveDuplicatesAndStaleReadsAreDropped(t *testing.T) {
	s := newScript(t)
	c := s.attach([]string{"events.a"}, false)
	s.store("events.a", true)
	m := &nats.Msg{Header: nats.Header{}, Data: []byte("x")}
	s.locked(func() { s.hub.liveLocked(pending{seq: 1, subject: "events.a", msg: m}, s.now) })
	s.locked(func() { s.hub.readLocked(7, replay.Msg{Seq: 1, Subject: "events.a"}, s.now) })
	if got := taken(c); !slices.Equal(got, []uint64{1}) {
		t.Fatalf("got %v, want [1]", got)
	}
}

// TestReadEpochCheckIsNotTheHeadCheck: a read's own check of the epoch
// answers only that. A head check in flight stays in flight, so the hub
// does not ask the head a second time before the first answers.
func TestReadEpochCheckIsNotTheHeadCheck(t *testing.T) {
	s := newScript(t, "events.a")
	s.now = s.now.Add(2 * idleCheck)
	s.locked(func() { s.hub.tickLocked(s.now, false) })
	if s.headAsks != 1 {
		t.Fatalf("head asks %d after a quiet second, want 1", s.headAsks)
	}
	s.locked(func() {
		s.hub.resultLocked(result{head: replay.Head{LastSeq: 1, Epoch: "sim"}, epochOnly: true}, s.now)
		if !s.hub.order.asking {
			t.Fatal("a read's epoch check cleared the head check in flight")
		}
		s.hub.tickLocked(s.now.Add(2*idleCheck), false)
	})
	if s.headAsks != 1 {
		t.Fatalf("head asked %d times with one in flight", s.headAsks)
	}
}

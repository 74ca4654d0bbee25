package upstream

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ssegate/ssegate/replay"
)

// The hub's order under a hostile network, simulated step by step.
//
// One goroutine plays every part with one seeded random source: the
// stream (which stores what is published), core NATS (which delivers it
// live, dropping, duplicating and reordering, and loses whole bursts in a
// reconnect or a leader change), the hub's reads (which follow a server
// that may lag behind the leader), its head checks, and clients that
// attach with and without positions on one or several channels, replay,
// fall behind, leave and resume. Every frame a client takes, and every
// event its replay reads, must be the next event of its channels after
// its position: exactly once and in order. A failure names its seed, and
// -sim.seed reproduces it.

var (
	simSeed  = flag.Uint64("sim.seed", 0, "run only this seed of TestHubSimulation")
	simSeeds = flag.Int("sim.seeds", 2000, "how many seeds TestHubSimulation runs")
)

func TestHubSimulation(t *testing.T) {
	if *simSeed != 0 {
		if err := simulate(*simSeed, true); err != nil {
			t.Fatal(err)
		}
		return
	}
	n := *simSeeds
	if testing.Short() {
		n /= 10
	}
	for seed := uint64(1); seed <= uint64(n); seed++ {
		if err := simulate(seed, false); err != nil {
			t.Fatalf("seed %d: %v\nreproduce: go test ./upstream/ -run TestHubSimulation -sim.seed %d -v", seed, err, seed)
		}
	}
}

// sim is one simulated world.
type sim struct {
	rnd  *rand.Rand
	hub  *Hub
	now  time.Time
	logf func(string, ...any)

	stream   []string // stream[i] is the subject of sequence i+1
	applied  int      // how much of the stream the read's server holds
	inflight []uint64 // live messages on their way to the hub
	read     *simRead
	headAsks int

	clients []*simClient
	err     error
}

type simRead struct{ gen, next uint64 }

// simClient is one EventSource across its reconnects.
type simClient struct {
	channels []string
	pos      uint64 // its Last-Event-ID
	c        *Client
	// replay is set while its session reads history, past through.
	replay  bool
	through uint64
	view    uint64 // how far the replay read's server holds the stream
	seen    bool   // it has had a stream, so it comes back with a position
}

func (s *sim) follow(gen, after uint64) { s.read = &simRead{gen: gen, next: after + 1} }
func (s *sim) unfollow(gen uint64) {
	if s.read != nil && s.read.gen == gen {
		s.read = nil
	}
}
func (s *sim) askHead() { s.headAsks++ }

func simulate(seed uint64, verbose bool) error {
	s := &sim{rnd: rand.New(rand.NewPCG(seed, seed^0x5eed)), now: time.Unix(1e9, 0), logf: func(string, ...any) {}}
	if verbose {
		s.logf = func(f string, a ...any) { fmt.Printf(f+"\n", a...) }
	}
	s.hub = newCore(replay.StreamConfig{}, nil, "sim")
	s.hub.io = s
	// The stream holds some history before the hub starts.
	for range s.rnd.IntN(20) {
		s.publish(false)
	}
	s.locked(func() { s.hub.tickLocked(s.now, true) })
	steps := 300 + s.rnd.IntN(700)
	for i := 0; i < steps && s.err == nil; i++ {
		s.step()
	}
	if s.err == nil {
		s.settle()
	}
	return s.err
}

func (s *sim) locked(fn func()) {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	fn()
}

func (s *sim) channel() string { return "events.c" + strconv.Itoa(s.rnd.IntN(5)) }

// publish stores one event and sends it live, unless core NATS loses it.
func (s *sim) publish(live bool) {
	s.stream = append(s.stream, s.channel())
	seq := uint64(len(s.stream))
	if !live || s.rnd.IntN(20) == 0 {
		return
	}
	s.inflight = append(s.inflight, seq)
	if s.rnd.IntN(40) == 0 {
		s.inflight = append(s.inflight, seq) // sent twice
	}
}

// step is one random thing happening.
func (s *sim) step() {
	s.now = s.now.Add(time.Duration(s.rnd.IntN(200)) * time.Millisecond)
	switch r := s.rnd.IntN(100); {
	case r < 25:
		s.publish(true)
	case r < 45:
		s.deliverLive()
	case r < 60:
		s.deliverRead()
	case r < 63:
		s.answerHead()
	case r < 65:
		// A reconnect or a leader change: what was on its way is lost,
		// and the hub hears of the reconnect.
		s.logf("lose %d in flight", len(s.inflight))
		s.inflight = s.inflight[:0]
		s.locked(func() { s.hub.tickLocked(s.now, s.rnd.IntN(2) == 0) })
	case r < 72:
		s.attach()
	case r < 90:
		s.serve()
	default:
		s.leave()
	}
	s.applied = min(len(s.stream), s.applied+s.rnd.IntN(4))
	s.locked(func() { s.hub.tickLocked(s.now, false) })
}

func (s *sim) deliverLive() {
	if len(s.inflight) == 0 {
		return
	}
	i := 0
	if len(s.inflight) > 1 && s.rnd.IntN(10) == 0 {
		i = 1 // a short reordering
	}
	seq := s.inflight[i]
	s.inflight = slices.Delete(s.inflight, i, i+1)
	subject := s.stream[seq-1]
	m := &nats.Msg{Header: nats.Header{}, Data: []byte("x")}
	s.locked(func() { s.hub.liveLocked(pending{seq: seq, subject: subject, msg: m}, s.now) })
}

// deliverRead passes on the read's next message, if its server holds it.
func (s *sim) deliverRead() {
	if s.read == nil || s.read.next > uint64(s.applied) {
		return
	}
	r := s.read
	m := replay.Msg{Seq: r.next, Subject: s.stream[r.next-1]}
	r.next++
	s.locked(func() { s.hub.readLocked(r.gen, m, s.now) })
}

// answerHead answers a head check, from a leader that may lag a little.
func (s *sim) answerHead() {
	if s.headAsks == 0 {
		return
	}
	s.headAsks--
	last := max(0, len(s.stream)-s.rnd.IntN(2))
	s.locked(func() { s.hub.headLocked(replay.Head{LastSeq: uint64(last), Epoch: "sim"}, nil, s.now) })
}

func (s *sim) settle() {
	for range 10000 {
		for len(s.inflight) > 0 {
			s.deliverLive()
		}
		s.applied = len(s.stream)
		for s.read != nil && s.read.next <= uint64(s.applied) {
			s.deliverRead()
		}
		for s.headAsks > 0 {
			s.answerHead()
		}
		for _, c := range s.clients {
			s.serveOne(c)
		}
		s.now = s.now.Add(idleCheck)
		s.locked(func() { s.hub.tickLocked(s.now, false) })
		if s.err != nil || s.settled() {
			break
		}
	}
	if s.err == nil && !s.settled() {
		s.err = fmt.Errorf("did not settle: hub at %d of %d, reading %v", s.hub.order.pos, len(s.stream), s.read != nil)
	}
	for _, c := range s.clients {
		if c.c != nil && !c.replay && s.err == nil {
			if want := s.lastOf(c.channels); c.pos < want {
				s.err = fmt.Errorf("client %v ends at %d, its channels' last event is %d", c.channels, c.pos, want)
			}
		}
	}
}

func (s *sim) settled() bool {
	if s.hub.order.pos != uint64(len(s.stream)) || s.read != nil || len(s.inflight) > 0 {
		return false
	}
	for _, c := range s.clients {
		if c.c != nil && (c.replay || c.c.queue.len() > 0) {
			return false
		}
	}
	return true
}

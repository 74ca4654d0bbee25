package upstream

import (
	"context"
	"fmt"
	"slices"
)

// attach opens a stream: a new client without a position, or one that
// comes back with its Last-Event-ID and replays.
func (s *sim) attach() {
	if !s.hub.order.based {
		return
	}
	var c *simClient
	for _, old := range s.clients {
		if old.c == nil && s.rnd.IntN(2) == 0 {
			c = old
			break
		}
	}
	if c == nil {
		c = &simClient{channels: s.channels()}
		s.clients = append(s.clients, c)
	}
	resuming := c.seen
	c.seen = true
	queue := 2 + s.rnd.IntN(30)
	att, err := s.hub.Attach(context.Background(), c.channels, queue, resuming)
	if err != nil {
		s.err = fmt.Errorf("attach: %w", err)
		return
	}
	c.c, c.replay = att, resuming
	if resuming {
		s.locked(func() { att.holdCap = 2 + s.rnd.IntN(20) })
		c.through = att.Start()
		s.logf("resume %v from %d through %d", c.channels, c.pos, c.through)
		return
	}
	// The stream announces its start position at once.
	c.pos = att.Start()
	s.logf("attach %v at %d", c.channels, c.pos)
}

func (s *sim) channels() []string {
	var out []string
	for range 1 + s.rnd.IntN(3) {
		if ch := s.channel(); !slices.Contains(out, ch) {
			out = append(out, ch)
		}
	}
	return out
}

func (s *sim) serve() {
	if len(s.clients) > 0 {
		s.serveOne(s.clients[s.rnd.IntN(len(s.clients))])
	}
}

// serveOne is one turn of a client's session: a chunk of its replay, or
// the frames the hub queued for it.
func (s *sim) serveOne(c *simClient) {
	if c.c == nil {
		return
	}
	select {
	case <-c.c.Done():
		s.logf("client %v ended (%v) at %d", c.channels, c.c.Reason(), c.pos)
		c.c.Detach()
		c.c, c.replay, c.view = nil, false, 0
		return
	default:
	}
	if c.replay {
		s.replayChunk(c)
		return
	}
	frames, _ := c.c.Take(nil, 1+s.rnd.IntN(8))
	if len(frames) > 0 {
		s.logf("client %v takes %d..%d", c.channels, frames[0].Seq, frames[len(frames)-1].Seq)
	}
	for _, f := range frames {
		s.expect(c, f.Seq, "live")
	}
}

// replayChunk reads a few stored events after the client's position, as
// the read's server holds them. The read ends only once that server holds
// the read's through position (replay.History.Read's contract), but may
// end as soon as it does: its server can be anywhere from through to the
// stream's end.
func (s *sim) replayChunk(c *simClient) {
	if c.view == 0 {
		if uint64(s.applied) < c.through {
			return // the read's server has not got there yet
		}
		c.view = c.through + uint64(s.rnd.IntN(s.applied-int(c.through)+1))
	}
	for range 1 + s.rnd.IntN(5) {
		next := s.nextOf(c.channels, c.pos)
		if next == 0 || next > c.view {
			break
		}
		s.expect(c, next, "replay")
	}
	if next := s.nextOf(c.channels, c.pos); s.err != nil || next != 0 && next <= c.view {
		return // more to read
	}
	c.view = 0
	if c.c.EndReplay(c.pos) {
		c.replay = false
		s.logf("client %v live from %d (hub at %d, reading %v)", c.channels, c.pos, s.hub.order.pos, s.read != nil)
		return
	}
	c.through = c.c.Start()
	s.logf("client %v reads again from %d through %d", c.channels, c.pos, c.through)
}

// expect checks that seq is the next event of the client's channels after
// its position, and moves the position.
func (s *sim) expect(c *simClient, seq uint64, how string) {
	if s.err != nil {
		return
	}
	if want := s.nextOf(c.channels, c.pos); seq != want {
		s.err = fmt.Errorf("client %v at %d got %d (%s), want %d; stream %v", c.channels, c.pos, seq, how, want, s.tail(c.pos))
		return
	}
	c.pos = seq
}

// nextOf is the first event of channels after pos, 0 for none yet.
func (s *sim) nextOf(channels []string, pos uint64) uint64 {
	for seq := pos + 1; seq <= uint64(len(s.stream)); seq++ {
		if slices.Contains(channels, s.stream[seq-1]) {
			return seq
		}
	}
	return 0
}

func (s *sim) lastOf(channels []string) uint64 {
	for seq := uint64(len(s.stream)); seq > 0; seq-- {
		if slices.Contains(channels, s.stream[seq-1]) {
			return seq
		}
	}
	return 0
}

func (s *sim) tail(pos uint64) string {
	from := max(int(pos)-3, 0)
	to := min(from+10, len(s.stream))
	return fmt.Sprintf("from %d: %v", from+1, s.stream[from:to])
}

func (s *sim) leave() {
	if len(s.clients) == 0 {
		return
	}
	c := s.clients[s.rnd.IntN(len(s.clients))]
	if c.c != nil {
		c.c.Detach()
		c.c, c.replay, c.view = nil, false, 0
		s.logf("client %v left at %d", c.channels, c.pos)
	}
}

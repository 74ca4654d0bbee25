package history

import (
	"context"
	"net/http"
	"time"

	"github.com/ssegate/ssegate/auth"
	"github.com/ssegate/ssegate/replay"
	"github.com/ssegate/ssegate/upstream"
)

// ServePoll answers GET <poll path>: as soon as an event after the
// client's position exists, with the history answer's shape, or after
// the wait with no events.
//
// It is served from the live feed: a poll attaches to its channels as a
// stream does, takes the frames the hub queues, answers and detaches. The
// stream is read only for a client whose position lies behind what its
// channels' live feed starts from, and then it answers at once.
func (s *Server) ServePoll(w http.ResponseWriter, r *http.Request, req Request) {
	q := r.URL.Query()
	def, most, _ := s.history.limits()
	p, perr := parseParams(q, def, most)
	switch {
	case perr != nil:
	case p.last > 0:
		perr = badRequest(auth.CodeInvalidLast, "last is for history; a poll takes after")
	case p.since != "":
		perr = badRequest(auth.CodeInvalidSince, "since is for history and streams; a poll takes after")
	}
	if perr == nil {
		p.wait, perr = parseWait(q, s.poll.maxWait(s.writeTimeout))
	}
	if perr != nil {
		s.refuse(w, r, perr)
		return
	}
	if !req.Expires.IsZero() {
		// A poll ends with its credential, as a stream does.
		p.wait = max(min(p.wait, time.Until(req.Expires)), 0)
	}
	src, hub, err := s.backend(r.Context())
	if err != nil {
		s.unavailable(w, r, err)
		return
	}
	a, err := s.pollOnce(r.Context(), src, hub, req, p)
	if err != nil {
		s.unavailable(w, r, err)
		return
	}
	s.writeAnswer(w, a)
}

// pollOnce attaches, reads the stream if the client is behind, and
// otherwise waits for live frames.
func (s *Server) pollOnce(ctx context.Context, src Source, hub Hub, req Request, p params) (Answer, error) {
	var id replay.ID
	if p.hasAfter {
		var err error
		id, err = replay.Parse(p.after)
		if err != nil || (id.Epoch != "" && id.Epoch != src.Epoch()) {
			// Resolved as history resolves it: a reset, at once.
			a, _, err := s.page(ctx, src, req, p)
			return a, err
		}
	}
	keeps := s.keep.hold(ctx, hub, req.Subjects)
	wt, err := attach(ctx, hub, req)
	if err != nil {
		return Answer{}, err
	}
	defer wt.detach()
	pos := wt.start()
	// floor is where the client's id stays when a filter drops every
	// event it sees.
	floor := pos
	if p.hasAfter {
		floor = id.Seq
	}
	epoch := src.Epoch()
	if p.hasAfter {
		a, from, done, err := s.catchUp(ctx, src, req, p, keeps, id.Seq, pos, epoch)
		if done || err != nil {
			return a, err
		}
		pos = from
	}
	if !wt.endReplay(pos) {
		// Live frames overflowed while the stream was read; they come
		// from the stream on the next poll.
		c := newCollector(nil, nil, 0, 0, p.filter)
		c.floor = floor
		return c.answer(epoch, pos), nil
	}
	s.waiting(1)
	defer s.waiting(-1)
	return s.waitLive(ctx, wt, p, pos, floor, epoch), nil
}

// catchUp answers at once a poll whose position, after, differs from the
// hub's position at its attach, pos, when the client lacks events; done
// is false when it lacks none, and the poll waits live from from.
func (s *Server) catchUp(ctx context.Context, src Source, req Request, p params, keeps []*keeper, after, pos uint64, epoch string) (a Answer, from uint64, done bool, err error) {
	switch {
	case after < pos:
		// The hub moved on since the client's position: its channels'
		// keepers know whether they spoke meanwhile, else the stream.
		return s.behind(ctx, src, req, p, keeps, after, pos, epoch)
	case after > pos:
		// Past the hub's position: a hub that lags the stream by the
		// events in flight, or a forged position. The stream says which,
		// as it does for a stream's Last-Event-ID: a reset at once for a
		// position it does not hold, never a wait on it.
		a, reached, err := s.page(ctx, src, req, p)
		if err != nil || len(a.Events) > 0 || a.Reset != nil {
			return a, 0, true, err
		}
		return Answer{}, max(pos, reached), false, nil
	}
	return Answer{}, pos, false, nil
}

// behind answers a poll whose position after lies behind the hub's
// position at its attach, pos, when events came meanwhile; done is false
// when none did, and the poll waits live from reached.
func (s *Server) behind(ctx context.Context, src Source, req Request, p params, keeps []*keeper, after, pos uint64, epoch string) (a Answer, reached uint64, done bool, err error) {
	if frames, ok := recent(keeps, req.Channels, after, pos); ok {
		_, _, maxBytes := s.history.limits()
		c := newCollector(nil, nil, p.limit, maxBytes, p.filter)
		c.floor = after
		addFrames(c, frames)
		if len(c.events) > 0 {
			return c.answer(epoch, pos), 0, true, nil
		}
		return Answer{}, pos, false, nil
	}
	a, reached, err = s.page(ctx, src, req, p)
	if err != nil || len(a.Events) > 0 || a.Reset != nil {
		return a, 0, true, err
	}
	return Answer{}, max(pos, reached), false, nil
}

// addFrames adds live frames to c until it is full.
func addFrames(c *collector, frames []frame) {
	for _, f := range frames {
		var stored time.Time
		if f.Stored != 0 {
			stored = time.Unix(0, f.Stored)
		}
		if !c.addFrame(f.channel, f.Seq, f.Data, stored) {
			return
		}
	}
}

// waitLive waits for frames after pos and answers with them.
func (s *Server) waitLive(ctx context.Context, wt *waiter, p params, pos, floor uint64, epoch string) Answer {
	_, _, maxBytes := s.history.limits()
	deadline := time.Now().Add(p.wait)
	for {
		frames, complete, reason := wt.wait(ctx, time.Until(deadline))
		c := newCollector(nil, nil, p.limit, maxBytes, p.filter)
		c.floor = floor
		switch reason {
		case upstream.ReasonNone:
		case upstream.ReasonRecreated:
			a := c.answer(epoch, 0)
			a.LastID = replay.ID{Epoch: wt.clients[0].Epoch()}.String()
			a.Reset = &Reset{Reason: replay.ResetStreamRecreated}
			return a
		default:
			// Whatever ended the feed, the client resumes from pos.
			return c.answer(epoch, pos)
		}
		reached := pos
		if len(frames) > 0 {
			reached = frames[len(frames)-1].Seq
		}
		addFrames(c, frames)
		// Frames the filter dropped all, keep waiting; unless frames past
		// the last complete one were let go, which the next poll reads.
		if len(c.events) == 0 && complete && time.Now().Before(deadline) && ctx.Err() == nil {
			continue
		}
		return c.answer(epoch, reached)
	}
}

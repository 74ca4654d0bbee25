package upstream

import (
	"context"
	"maps"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/ssegate/ssegate/replay"
)

// The read step of recovery (see recover.go): which clients a round reads
// for, and the read that queues them what they missed.

// maxReadTime bounds a recovery read, however many groups it serves.
const maxReadTime = time.Minute

// readGroup is one recovery read: clients whose channels fit in one
// consumer, read from the lowest of their positions.
type readGroup struct {
	clients  []*Client
	subjects []string
	from     uint64
	heads    map[string]*topic // changed topics whose head the read moves
}

// groups chooses the clients to read for: every client of a changed topic
// that is not replaying (those read again by themselves).
func (h *Hub) groups(batch []batchItem) []*readGroup {
	h.mu.Lock()
	defer h.mu.Unlock()
	heads := make(map[string]*topic)
	seen := make(map[*Client]bool)
	var groups []*readGroup
	var g *readGroup
	for _, it := range batch {
		t := it.t
		if !t.changed {
			continue
		}
		t.inJob = true
		heads[t.subject] = t
		for c := range t.clients {
			if seen[c] || c.ended.Load() {
				continue
			}
			seen[c] = true
			if c.replaying {
				c.redo = true
				continue
			}
			subjects := c.subjects()
			if g == nil || len(union(g.subjects, subjects)) > replay.MaxFilterSubjects {
				g = &readGroup{from: c.pos, heads: heads}
				groups = append(groups, g)
			}
			g.clients = append(g.clients, c)
			g.subjects = union(g.subjects, subjects)
			g.from = min(g.from, c.pos)
		}
	}
	return groups
}

func (c *Client) subjects() []string {
	out := make([]string, len(c.topics))
	for i, t := range c.topics {
		out[i] = t.subject
	}
	return out
}

func union(a, b []string) []string {
	out := slices.Clone(a)
	for _, s := range b {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// read queues each client of the groups the events it is owed. Held
// clients get them ahead of their held frames, which are newer or
// duplicates: the read covers all of a client's channels.
//
// One group is read through a consumer filtered on its channels. Several
// are read together, once, through the whole stream from the lowest of
// their positions: after a reconnect every channel is suspect, and a
// filtered read per group makes the server test every block of that
// stretch against every filter, once per group. At 5,000 channels that
// took minutes; one pass takes what the stream stored meanwhile.
func (h *Hub) read(groups []*readGroup) {
	if len(groups) == 0 {
		return
	}
	subjects, from := groups[0].subjects, groups[0].from
	if len(groups) > 1 {
		subjects = h.stream.Subjects
	}
	owed, heads := h.readIndex(groups)
	for _, g := range groups {
		from = min(from, g.from)
	}
	// One pass for many groups may take long, so it is given readTimeout
	// per group, up to maxReadTime, and given up sooner if it makes no
	// progress for readTimeout.
	ctx, cancel := context.WithTimeout(h.ctx, min(time.Duration(len(groups))*readTimeout, maxReadTime))
	defer cancel()
	stalled := time.AfterFunc(readTimeout, cancel)
	defer stalled.Stop()
	n := 0
	err := h.history.Backfill(ctx, subjects, from, func(m replay.Msg) error {
		stalled.Reset(readTimeout)
		clients, head := owed[m.Subject], heads[m.Subject]
		if len(clients) == 0 && head == nil {
			return nil
		}
		f := Frame{Seq: m.Seq, Data: replay.Encode(nil, m, *h.epoch.Load())}
		h.mu.Lock()
		defer h.mu.Unlock()
		if head != nil {
			head.last = max(head.last, m.Seq)
		}
		for _, c := range clients {
			if f.Seq > c.pos {
				c.queueLocked(f)
				n++
			}
		}
		return nil
	})
	if n > 0 && h.metrics.Backfilled != nil {
		h.metrics.Backfilled(n)
	}
	if err != nil {
		h.log.Warn("recovery read failed; its clients will resume from their positions",
			zap.Int("channels", len(owed)), zap.Error(err))
		for _, g := range groups {
			for _, c := range g.clients {
				c.End(ReasonResync)
			}
		}
	}
}

// readIndex maps each subject the groups read to the clients owed its
// events, each client once, and to the changed topic whose head it moves.
func (h *Hub) readIndex(groups []*readGroup) (owed map[string][]*Client, heads map[string]*topic) {
	h.mu.Lock()
	defer h.mu.Unlock()
	owed, heads = make(map[string][]*Client), make(map[string]*topic)
	seen := make(map[*Client]bool)
	for _, g := range groups {
		maps.Copy(heads, g.heads)
		for _, c := range g.clients {
			if seen[c] {
				continue
			}
			seen[c] = true
			for _, t := range c.topics {
				owed[t.subject] = append(owed[t.subject], c)
			}
		}
	}
	return owed, heads
}

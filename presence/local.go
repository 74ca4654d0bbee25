package presence

import (
	"sync"
	"time"

	"github.com/ssegate/ssegate/internal/streams"
)

// entry is what one gateway stores for one channel: its connections, and
// the connection ids of each user. Anonymous connections are counted only.
type entry struct {
	Gateway     string              `json:"gateway"`
	Channel     string              `json:"channel"`
	Connections int                 `json:"connections"`
	Users       map[string][]string `json:"users,omitempty"`
}

// member is one user on one channel.
type member struct{ ch, sub string }

// local is this gateway's streams, by channel, and what has changed since
// the worker last wrote: the channels to write and the users whose first
// connection opened (join) or last closed (leave).
type local struct {
	mu    sync.Mutex
	chans map[string]*localChannel
	dirty map[string]bool
	// pending is the net change per member since the last flush: true a
	// join, false a leave. A join and a leave of one member in the same
	// flush cancel out: nobody else saw either.
	pending map[member]bool
	stopped bool
}

type localChannel struct {
	conns int
	users map[string]map[string]struct{}
	// written is when the channel's entry was last taken to be written.
	written time.Time
}

func newLocal() *local {
	return &local{chans: map[string]*localChannel{}, dirty: map[string]bool{}, pending: map[member]bool{}}
}

// open counts s; it reports whether anything is to be written.
func (l *local) open(s *streams.Info) bool {
	return l.update(s, func(ch string) {
		c := l.chans[ch]
		if c == nil {
			c = &localChannel{users: map[string]map[string]struct{}{}}
			l.chans[ch] = c
		}
		c.conns++
		l.dirty[ch] = true
		if s.Sub == "" {
			return
		}
		ids := c.users[s.Sub]
		if ids == nil {
			ids = map[string]struct{}{}
			c.users[s.Sub] = ids
			l.note(member{ch, s.Sub}, true)
		}
		ids[s.ID] = struct{}{}
	})
}

// close uncounts s. A gateway that stopped keeps its last entries until
// they expire: its clients are on their way to another gateway (or to
// its successor after a reload), which then holds their presence, so a
// restart is not a leave and a join.
func (l *local) close(s *streams.Info) bool {
	return l.update(s, func(ch string) {
		c := l.chans[ch]
		if c == nil {
			return
		}
		c.conns--
		l.dirty[ch] = true
		if ids := c.users[s.Sub]; ids != nil {
			delete(ids, s.ID)
			if len(ids) == 0 {
				delete(c.users, s.Sub)
				l.note(member{ch, s.Sub}, false)
			}
		}
	})
}

// update runs count for each of s's channels under the lock, unless the
// gateway stopped; it reports whether it ran.
func (l *local) update(s *streams.Info, count func(ch string)) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped {
		return false
	}
	for _, ch := range s.Channels {
		count(ch)
	}
	return true
}

func (l *local) note(m member, join bool) {
	if prev, ok := l.pending[m]; ok && prev != join {
		delete(l.pending, m)
		return
	}
	l.pending[m] = join
}

// batch is one flush's work.
type batch struct {
	leaves, joins []member
	entries       []*entry
}

// take returns what changed and forgets it. Channels left empty are
// written once, empty, and then dropped, so they are no longer refreshed.
// A refresh (staleBefore set) adds the entries written before it: one
// that changed since the last refresh needs none.
func (l *local) take(gateway string, staleBefore time.Time) batch {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b batch
	for m, join := range l.pending {
		if join {
			b.joins = append(b.joins, m)
		} else {
			b.leaves = append(b.leaves, m)
		}
	}
	clear(l.pending)
	for ch, c := range l.chans {
		if c.written.Before(staleBefore) {
			l.dirty[ch] = true
		}
	}
	now := time.Now()
	for ch := range l.dirty {
		c := l.chans[ch]
		if c == nil {
			continue
		}
		b.entries = append(b.entries, c.entry(gateway, ch))
		c.written = now
		if c.conns == 0 {
			delete(l.chans, ch)
		}
	}
	clear(l.dirty)
	return b
}

// retry puts back changes whose claim could not be written, unless a
// newer change of the same member came meanwhile.
func (l *local) retry(ms []member, join bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range ms {
		if _, newer := l.pending[m]; !newer {
			l.pending[m] = join
		}
	}
}

// reclaim queues a join for every user of ch, after this gateway's entry
// for it vanished: other gateways then published their leaves.
func (l *local) reclaim(ch string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.chans[ch]
	if c == nil {
		return
	}
	l.dirty[ch] = true
	for sub := range c.users {
		l.pending[member{ch, sub}] = true
	}
}

// snapshot is this gateway's entry for ch, or nil.
func (l *local) snapshot(gateway, ch string) *entry {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c := l.chans[ch]; c != nil {
		return c.entry(gateway, ch)
	}
	return nil
}

func (l *local) stop() {
	l.mu.Lock()
	l.stopped = true
	l.mu.Unlock()
}

func (c *localChannel) entry(gateway, ch string) *entry {
	e := &entry{Gateway: gateway, Channel: ch, Connections: c.conns}
	if len(c.users) > 0 {
		e.Users = make(map[string][]string, len(c.users))
		for sub, ids := range c.users {
			list := make([]string, 0, len(ids))
			for id := range ids {
				list = append(list, id)
			}
			e.Users[sub] = list
		}
	}
	return e
}

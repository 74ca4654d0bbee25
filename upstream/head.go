package upstream

import (
	"context"
	"sync"

	"github.com/ssegate/ssegate/replay"
)

// headReader shares stream-head reads among the channels subscribed at
// about the same time: a caller joins the next read that starts after it
// asked, so a thousand new channels cost one or two JetStream requests, not
// a thousand.
//
// "Starts after it asked" is what makes a read serve as a channel's
// baseline: the read starts with a flush of the live connection, which
// returns once the server has the channel's SUB, so every message stored
// after the answer was computed reaches the subscription.
type headReader struct {
	read func() (replay.Head, error)

	mu      sync.Mutex
	next    *headFlight // not sent yet; joined by new callers
	running bool
}

type headFlight struct {
	done chan struct{}
	head replay.Head
	err  error
}

// Read returns a head read that was sent after Read was called.
func (r *headReader) Read(ctx context.Context) (replay.Head, error) {
	r.mu.Lock()
	f := r.next
	if f == nil {
		f = &headFlight{done: make(chan struct{})}
		r.next = f
	}
	if !r.running {
		r.running = true
		go r.fly()
	}
	r.mu.Unlock()
	select {
	case <-f.done:
		return f.head, f.err
	case <-ctx.Done():
		return replay.Head{}, ctx.Err()
	}
}

// fly sends the waiting read, then the one that gathered meanwhile, until
// none is waiting. read bounds each request itself: no one caller's
// context may cut short a read that others share.
func (r *headReader) fly() {
	for {
		r.mu.Lock()
		f := r.next
		r.next = nil
		if f == nil {
			r.running = false
			r.mu.Unlock()
			return
		}
		r.mu.Unlock()
		f.head, f.err = r.read()
		close(f.done)
	}
}

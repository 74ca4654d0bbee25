package history

import (
	"cmp"
	"context"
	"reflect"
	"slices"
	"time"

	"github.com/ssegate/ssegate/upstream"
)

// waiter is a poll's attachment to the live feed: one hub client per
// channel, so that every frame is known by its channel. Frames carry no
// subject, and the hub queues a client's frames in stream order.
type waiter struct {
	clients  []*upstream.Client
	channels []string
}

// pollQueue bounds the frames one channel of a waiting poll holds. A
// poll answers at its first frames, so only a burst fills it; the queue
// grows only while frames wait.
const pollQueue = 1024

// attach attaches to every channel, holding live frames until endReplay.
func attach(ctx context.Context, hub Hub, req Request) (*waiter, error) {
	w := &waiter{channels: req.Channels}
	for _, subj := range req.Subjects {
		c, err := hub.Attach(ctx, []string{subj}, pollQueue, true)
		if err != nil {
			w.detach()
			return nil, err
		}
		w.clients = append(w.clients, c)
	}
	return w, nil
}

func (w *waiter) detach() {
	for _, c := range w.clients {
		c.Detach()
	}
}

// start is the position every channel's live feed starts after: no event
// of these channels up to it can arrive live.
func (w *waiter) start() uint64 {
	var s uint64
	for _, c := range w.clients {
		s = max(s, c.Start())
	}
	return s
}

// endReplay starts live delivery after pos on every channel. It reports
// false when a channel's held frames overflowed meanwhile.
func (w *waiter) endReplay(pos uint64) bool {
	ok := true
	for _, c := range w.clients {
		ok = c.EndReplay(pos) && ok
	}
	return ok
}

// frame is a live frame and its channel.
type frame struct {
	upstream.Frame
	channel string
}

// maxPasses bounds the rounds of taking while frames keep arriving.
const maxPasses = 4

// wait waits up to d for frames. It returns them in stream order, every
// frame of the channels up to the last one included, and whether no
// frame after those was let go; or the reason the hub ended a channel's
// feed.
func (w *waiter) wait(ctx context.Context, d time.Duration) ([]frame, bool, upstream.Reason) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	if len(w.clients) == 1 {
		// The common case, without reflect's allocations.
		c := w.clients[0]
		select {
		case <-timer.C:
			return nil, true, upstream.ReasonNone
		case <-ctx.Done():
			return nil, true, upstream.ReasonNone
		case <-c.Done():
			return nil, true, c.Reason()
		case <-c.Ready():
		}
		frames, complete := w.take()
		return frames, complete, upstream.ReasonNone
	}
	cases := make([]reflect.SelectCase, 0, 2+2*len(w.clients))
	cases = append(cases,
		reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(timer.C)},
		reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ctx.Done())})
	for _, c := range w.clients {
		cases = append(cases,
			reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(c.Ready())},
			reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(c.Done())})
	}
	chosen, _, _ := reflect.Select(cases)
	switch {
	case chosen < 2:
		return nil, true, upstream.ReasonNone
	case (chosen-2)%2 == 1:
		return nil, true, w.clients[(chosen-2)/2].Reason()
	}
	frames, complete := w.take()
	return frames, complete, upstream.ReasonNone
}

// take gathers the waiting frames of every channel. The hub offers each
// frame to all its clients before the next, so once a frame with sequence
// M has been taken from one channel, every frame before M has been queued
// on the others: one more round of taking finds them. Frames after the
// highest sequence seen before the last round are left for the next poll.
func (w *waiter) take() ([]frame, bool) {
	var got []frame
	var cut uint64
	buf := make([]upstream.Frame, 0, 64)
	for pass := 0; pass < maxPasses; pass++ {
		seenBefore := cut
		n := len(got)
		for i, c := range w.clients {
			for more := true; more; {
				buf, more = c.Take(buf[:0], cap(buf))
				for _, f := range buf {
					got = append(got, frame{Frame: f, channel: w.channels[i]})
					cut = max(cut, f.Seq)
				}
			}
		}
		if len(got) == n {
			cut = seenBefore
			break
		}
		if pass == maxPasses-1 {
			cut = seenBefore
		}
	}
	slices.SortFunc(got, func(a, b frame) int { return cmp.Compare(a.Seq, b.Seq) })
	i, _ := slices.BinarySearchFunc(got, cut+1, func(f frame, seq uint64) int { return cmp.Compare(f.Seq, seq) })
	return got[:i], i == len(got)
}

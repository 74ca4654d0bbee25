package upstream

import (
	"context"
	"errors"
	"sync"

	"go.uber.org/zap"

	"github.com/ssegate/ssegate/replay"
)

// liveEffects carries out the order's requests on the network, each in a
// goroutine of its own, and hands the results back to the dispatcher.
type liveEffects Hub

// follows tracks the read in progress, so that unfollow can stop it. At
// most one runs at a time; a stopped one's late messages carry an old
// generation and are ignored.
type follows struct {
	mu     sync.Mutex
	cancel map[uint64]context.CancelFunc
}

func (e *liveEffects) follow(gen, after uint64) {
	h := (*Hub)(e)
	ctx, cancel := context.WithCancel(h.ctx)
	h.follows.add(gen, cancel)
	go func() {
		// A read that ends by itself leaves no cancel func behind.
		defer h.follows.stop(gen)
		// A read first checks the stream's epoch: a recreated stream's
		// messages must not pass as the old one's. The answer is only
		// that: it is not the head check the hub may have in flight.
		hctx, hcancel := context.WithTimeout(ctx, requestTimeout)
		head, err := h.history.Head(hctx)
		hcancel()
		if err == nil {
			h.send(ctx, result{head: head, epochOnly: true})
		}
		err = h.history.Follow(ctx, after, func(m replay.Msg) error {
			return h.send(ctx, result{gen: gen, msg: m})
		})
		if err != nil && !errors.Is(err, context.Canceled) {
			h.log.Warn("reading back missed events", zap.Error(err))
		}
	}()
}

func (e *liveEffects) unfollow(gen uint64) { (*Hub)(e).follows.stop(gen) }

func (e *liveEffects) askHead() {
	h := (*Hub)(e)
	go func() {
		ctx, cancel := context.WithTimeout(h.ctx, requestTimeout)
		defer cancel()
		head, err := h.readHead(ctx)
		h.send(h.ctx, result{head: head, err: err})
	}()
}

// readHead reads the stream's head after a flush of the live connection:
// once the flush returns, the server has the hub's subscription, so every
// message stored after the head was read reaches it.
func (h *Hub) readHead(ctx context.Context) (replay.Head, error) {
	if err := h.conn.NC.FlushWithContext(ctx); err != nil {
		return replay.Head{}, err
	}
	return h.history.Head(ctx)
}

// send hands a result to the dispatcher unless ctx ends first.
func (h *Hub) send(ctx context.Context, r result) error {
	select {
	case h.results <- r:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (f *follows) add(gen uint64, cancel context.CancelFunc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cancel == nil {
		f.cancel = make(map[uint64]context.CancelFunc)
	}
	f.cancel[gen] = cancel
}

func (f *follows) stop(gen uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if cancel := f.cancel[gen]; cancel != nil {
		cancel()
		delete(f.cancel, gen)
	}
}

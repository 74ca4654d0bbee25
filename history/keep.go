package history

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/ssegate/ssegate/upstream"
)

// keepers watch each polled channel between its polls. A poll loop
// detaches between two polls, and the hub knows only its own position,
// not each channel's: without keepers, every poll whose position lies
// behind the hub's (because any channel spoke meanwhile) would have to
// read the stream to learn whether its channels did. A keeper stays
// attached to one channel for a while after its last poll and remembers
// its newest events, so such a poll is answered from memory.
type keepers struct {
	linger time.Duration
	mu     sync.Mutex
	m      map[string]*keeper
}

// keeper is one channel's hub client and its recent frames.
type keeper struct {
	hub    Hub
	client *upstream.Client

	mu    sync.Mutex
	until time.Time
	// ring holds every frame of the channel after from, oldest first.
	from  uint64
	ring  []upstream.Frame
	ended bool
	buf   []upstream.Frame
}

// Keeper sizes: a keeper's queue, the frames it remembers, and the most
// keepers at once. Past that many polled channels, polls of the others
// read the stream when they are behind, as they would without keepers:
// clients polling ever new channels must not hold unbounded memory.
const (
	keepQueue  = 1024
	keepRing   = 256
	keepBytes  = 256 << 10
	maxKeepers = 10_000
)

// hold returns a keeper for each subject on hub, attaching those that
// have none, and keeps them until linger after now. An entry is nil
// where the hub refused.
func (k *keepers) hold(ctx context.Context, hub Hub, subjects []string) []*keeper {
	until := time.Now().Add(k.linger)
	out := make([]*keeper, len(subjects))
	for i, subj := range subjects {
		k.mu.Lock()
		kp := k.m[subj]
		k.mu.Unlock()
		if kp != nil && kp.hub == hub && kp.extend(until) {
			out[i] = kp
			continue
		}
		k.mu.Lock()
		full := len(k.m) >= maxKeepers
		k.mu.Unlock()
		if full {
			continue
		}
		c, err := hub.Attach(ctx, []string{subj}, keepQueue, false)
		if err != nil {
			continue
		}
		kp = &keeper{hub: hub, client: c, until: until, from: c.Start()}
		k.mu.Lock()
		if k.m == nil {
			k.m = make(map[string]*keeper)
		}
		old := k.m[subj]
		k.m[subj] = kp
		k.mu.Unlock()
		if old != nil {
			old.client.End(upstream.ReasonShutdown)
		}
		out[i] = kp
		go k.run(subj, kp)
	}
	return out
}

// extend keeps kp until then, unless it has ended.
func (kp *keeper) extend(until time.Time) bool {
	kp.mu.Lock()
	defer kp.mu.Unlock()
	kp.until = until
	return !kp.ended
}

// run takes the keeper's frames as they come until it has been unused
// for linger, or the hub ends it.
func (k *keepers) run(subj string, kp *keeper) {
	defer func() {
		kp.mu.Lock()
		kp.ended, kp.ring = true, nil
		kp.mu.Unlock()
		kp.client.Detach()
		k.mu.Lock()
		if k.m[subj] == kp {
			delete(k.m, subj)
		}
		k.mu.Unlock()
	}()
	timer := time.NewTimer(k.linger)
	defer timer.Stop()
	for {
		select {
		case <-kp.client.Ready():
			kp.mu.Lock()
			kp.takeLocked()
			kp.mu.Unlock()
		case <-kp.client.Done():
			return
		case <-timer.C:
			kp.mu.Lock()
			rest := time.Until(kp.until)
			kp.mu.Unlock()
			if rest <= 0 {
				return
			}
			timer.Reset(rest)
		}
	}
}

// takeLocked moves the queued frames into the ring, forgetting the
// oldest beyond keepRing frames or keepBytes of data.
func (kp *keeper) takeLocked() {
	for more := true; more; {
		kp.buf, more = kp.client.Take(kp.buf[:0], keepQueue)
		kp.ring = append(kp.ring, kp.buf...)
		clear(kp.buf)
	}
	over := max(len(kp.ring)-keepRing, 0)
	size := 0
	for _, f := range kp.ring[over:] {
		size += len(f.Data)
	}
	for ; over < len(kp.ring) && size > keepBytes; over++ {
		size -= len(kp.ring[over].Data)
	}
	if over > 0 {
		kp.from = kp.ring[over-1].Seq
		kp.ring = slices.Delete(kp.ring, 0, over)
	}
}

// between returns the frames of the keeper's channel in (after, through],
// and whether it knows them all. Called after the poll attached at
// through: the hub offered every frame up to it to the keeper already,
// so taking the keeper's queue now completes its knowledge.
func (kp *keeper) between(after, through uint64) ([]upstream.Frame, bool) {
	if kp == nil {
		return nil, false
	}
	kp.mu.Lock()
	defer kp.mu.Unlock()
	kp.takeLocked()
	select {
	case <-kp.client.Done():
		// Ended, or cut as slow: its ring may lack a frame.
		return nil, false
	default:
	}
	if kp.ended || after < kp.from {
		return nil, false
	}
	var out []upstream.Frame
	for _, f := range kp.ring {
		if f.Seq > after && f.Seq <= through {
			out = append(out, f)
		}
	}
	return out, true
}

// recent gathers the frames of every channel in (after, through] from
// the keepers, in stream order, and whether they knew them all.
func recent(keeps []*keeper, channels []string, after, through uint64) ([]frame, bool) {
	var out []frame
	for i, kp := range keeps {
		fs, ok := kp.between(after, through)
		if !ok {
			return nil, false
		}
		for _, f := range fs {
			out = append(out, frame{Frame: f, channel: channels[i]})
		}
	}
	slices.SortFunc(out, func(a, b frame) int { return cmp.Compare(a.Seq, b.Seq) })
	return out, true
}

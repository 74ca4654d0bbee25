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

// keeper is one channel's hub client and its recent frames. It has no
// goroutine of its own: the polls of its channel move its queued frames
// into its ring as they ask, and a timer, which holds no goroutine while
// it waits, lets it go after linger without a poll. A channel polled by
// one client then costs no more goroutines than a stream of it.
type keeper struct {
	hub    Hub
	client *upstream.Client

	mu     sync.Mutex
	until  time.Time
	expiry *time.Timer
	// ring holds every frame of the channel after from, oldest first.
	from  uint64
	ring  []upstream.Frame
	ended bool
}

// Keeper sizes: a keeper's queue, the frames it remembers, and the most
// keepers at once. The queue holds the frames that came since the last
// poll of the channel; a channel that gets more than that between two
// polls has its keeper cut by the hub, and the next poll reads the stream
// and starts a new one, as a poll further behind than keepRing does. Past
// maxKeepers polled channels, polls of the others read the stream when
// they are behind, as they would without keepers: clients polling ever
// new channels must not hold unbounded memory.
const (
	keepQueue  = 1024
	keepRing   = 256
	keepBytes  = 256 << 10
	maxKeepers = 10_000
)

// hold returns a keeper for each subject on hub, attaching those that
// have none, and keeps them until linger after now. An entry is nil
// where the hub refused, or where maxKeepers are kept already.
func (k *keepers) hold(ctx context.Context, hub Hub, subjects []string) []*keeper {
	until := time.Now().Add(k.linger)
	out := make([]*keeper, len(subjects))
	for i, subj := range subjects {
		if kp, ok := k.kept(hub, subj, until); kp != nil || !ok {
			out[i] = kp
			continue
		}
		out[i] = k.start(ctx, hub, subj, until)
	}
	return out
}

// kept returns the keeper of subj, kept until then, or nil if it has none
// that lives; ok is false when there is none and no room for another.
func (k *keepers) kept(hub Hub, subj string, until time.Time) (kp *keeper, ok bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if kp := k.m[subj]; kp != nil && kp.hub == hub && kp.extend(until) {
		return kp, true
	}
	return nil, len(k.m) < maxKeepers || k.m[subj] != nil
}

// start attaches a keeper for subj, in place of one that ended; nil
// where the hub refused. Of two polls that start one at once, the first
// to be kept serves both: the other's is let go.
func (k *keepers) start(ctx context.Context, hub Hub, subj string, until time.Time) *keeper {
	c, err := hub.Attach(ctx, []string{subj}, keepQueue, false)
	if err != nil {
		return nil
	}
	kp := &keeper{hub: hub, client: c, until: until, from: c.Start()}
	kp.mu.Lock()
	kp.expiry = time.AfterFunc(k.linger, func() { k.expire(subj, kp) })
	kp.mu.Unlock()
	k.mu.Lock()
	if k.m == nil {
		k.m = make(map[string]*keeper)
	}
	old := k.m[subj]
	if old != nil && old.hub == hub && old.extend(until) {
		k.mu.Unlock()
		kp.close()
		return old
	}
	if old == nil && len(k.m) >= maxKeepers {
		k.mu.Unlock()
		kp.close()
		return nil
	}
	k.m[subj] = kp
	k.mu.Unlock()
	if old != nil {
		old.close()
	}
	return kp
}

// extend keeps kp until then, unless it has ended or the hub cut it.
// Each poll of the channel moves the keeper's queued frames into its
// ring, so that between two polls at most keepQueue frames wait, and the
// ring's bounds apply from the next poll on.
func (kp *keeper) extend(until time.Time) bool {
	kp.mu.Lock()
	defer kp.mu.Unlock()
	if kp.ended || kp.cut() {
		return false
	}
	kp.takeLocked()
	kp.until = until
	return true
}

// cut reports whether the hub ended the keeper's feed: its queue
// overflowed, or the hub closed.
func (kp *keeper) cut() bool {
	select {
	case <-kp.client.Done():
		return true
	default:
		return false
	}
}

// expire lets kp go once nobody has held it for linger, and otherwise
// waits for the rest.
func (k *keepers) expire(subj string, kp *keeper) {
	kp.mu.Lock()
	if rest := time.Until(kp.until); rest > 0 && !kp.ended && !kp.cut() {
		kp.expiry.Reset(rest)
		kp.mu.Unlock()
		return
	}
	kp.mu.Unlock()
	kp.close()
	k.mu.Lock()
	if k.m[subj] == kp {
		delete(k.m, subj)
	}
	k.mu.Unlock()
}

// close detaches kp from the hub and forgets its frames.
func (kp *keeper) close() {
	kp.mu.Lock()
	kp.ended, kp.ring = true, nil
	kp.expiry.Stop()
	kp.mu.Unlock()
	kp.client.Detach()
}

// takeLocked moves the queued frames into the ring, forgetting the
// oldest beyond keepRing frames or keepBytes of data.
func (kp *keeper) takeLocked() {
	for more := true; more; {
		kp.ring, more = kp.client.Take(kp.ring, keepQueue)
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
	if kp.ended {
		return nil, false
	}
	kp.takeLocked()
	select {
	case <-kp.client.Done():
		// Ended, or cut as slow: its ring may lack a frame.
		return nil, false
	default:
	}
	if after < kp.from {
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

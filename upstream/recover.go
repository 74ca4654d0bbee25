package upstream

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/ssegate/ssegate/replay"
)

// Recovery, in one place.
//
// A topic becomes suspect when it may have lost an event: a gap in its
// Nats-Last-Sequence chain (then it is also changed), a disconnect, a
// subscription that overflowed, or the settle probe of a new topic. A
// suspect topic holds its clients: their live frames wait, so that none of
// them sees a newer event of another channel before the lost one.
//
// The worker takes every suspect topic queued, in batches of at most
// replay.MaxFilterSubjects. For each batch it asks the stream for the
// newest sequence of each subject that is not known changed: one at or
// below the topic's chain head lost nothing. It groups the changed
// topics' clients so that each group's channels fit in one consumer, and
// reads every event after the lowest position, in stream order: one group
// through a consumer filtered on its channels, several in one pass
// through the stream. It queues each client the events past its own
// position (recover_read.go). Then it lifts the holds, and the held live
// frames follow in order. A client whose events cannot be read in time is
// ended, and resumes from the last event it wrote.
//
// Clients whose session is replaying are left to the session: they are
// marked to read again instead (Client.EndReplay).

// recoverTimeout is how long the worker keeps trying to reach JetStream
// while connected before it gives up on a batch.
const recoverTimeout = 30 * time.Second

func (h *Hub) suspectAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.checkEpoch = true
	for _, t := range h.topics {
		if t.isReady {
			h.suspectLocked(t)
		}
	}
	h.wakeLocked()
}

func (h *Hub) suspectSubject(live string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if t := h.topics[live]; t != nil && t.isReady {
		h.suspectLocked(t)
	}
}

// suspectLocked queues a topic for the worker. Each call moves the topic's
// generation on, so that a worker already busy with it looks again: what
// it saw may predate the reason for this call.
func (h *Hub) suspectLocked(t *topic) {
	t.gen++
	if !t.suspect {
		t.suspect = true
		h.metrics.add(h.metrics.Recovering, 1)
		for c := range t.clients {
			if t.holds(c) {
				c.suspect++
			}
		}
	}
	if !t.queued {
		t.queued = true
		h.queue = append(h.queue, t)
	}
	h.wakeLocked()
}

// holds reports whether a suspect topic holds c. A topic only being
// probed holds the clients of several channels: a newer event of another
// channel must not overtake one this channel may have lost. A client of
// this channel alone gets its events in order anyway, and is held only
// once an event is known lost (holdsAll): then a newer one of the same
// channel must wait for it.
func (t *topic) holds(c *Client) bool { return t.holdsAll || len(c.topics) > 1 }

// holdAllLocked makes a suspect topic hold its single-channel clients too.
func (t *topic) holdAllLocked() {
	if t.holdsAll {
		return
	}
	for c := range t.clients {
		if !t.holds(c) {
			c.suspect++
		}
	}
	t.holdsAll = true
}

func (h *Hub) wakeLocked() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// settleLocked schedules a new topic's settle probe. Topics that became
// ready together are probed together.
func (h *Hub) settleLocked(t *topic) {
	h.settling = append(h.settling, t)
	if h.settleTimer == nil && !h.closed {
		h.settleTimer = time.AfterFunc(settleDelay, h.settle)
	}
}

func (h *Hub) settle() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.settleTimer = nil
	cutoff := time.Now().Add(-settleDelay)
	rest := h.settling[:0]
	for _, t := range h.settling {
		switch {
		case h.topics[t.live] != t:
		case t.readyAt.After(cutoff):
			rest = append(rest, t)
		default:
			h.suspectLocked(t)
		}
	}
	clear(h.settling[len(rest):])
	h.settling = rest
	if len(rest) > 0 && !h.closed {
		h.settleTimer = time.AfterFunc(time.Until(rest[0].readyAt.Add(settleDelay)), h.settle)
	}
}

// askEpochLocked has the worker check, at most once a second, whether the
// stream was recreated.
func (h *Hub) askEpochLocked() {
	if time.Since(h.epochAsked) < time.Second {
		return
	}
	h.epochAsked = time.Now()
	h.checkEpoch = true
	h.wakeLocked()
}

// noteEpochLocked handles a stream that was deleted and created again: its
// sequences started again at 1, so every client's position and every
// chain head is void. Clients are ended with ReasonRecreated and resume
// from the start of the new stream.
func (h *Hub) noteEpochLocked(head replay.Head) {
	epoch := head.Epoch
	if epoch == *h.epoch.Load() {
		return
	}
	h.log.Warn("stream was recreated; ending every stream so that clients start again from its beginning",
		zap.String("stream", h.stream.Name), zap.String("epoch", epoch))
	h.epoch.Store(&epoch)
	for _, t := range h.topics {
		// Everything the new stream holds is read by the clients when
		// they come back; the chain goes on from its head.
		t.last = head.LastSeq
		for c := range t.clients {
			c.End(ReasonRecreated)
		}
	}
}

// Epoch is the epoch of the stream the hub is following.
func (h *Hub) Epoch() string { return *h.epoch.Load() }

func (h *Hub) recoverLoop() {
	for {
		select {
		case <-h.wake:
		case <-h.ctx.Done():
			return
		}
		for h.ctx.Err() == nil {
			// Nothing can be probed while NATS is away, and the reconnect
			// makes every topic suspect again: a round taken before it
			// would have to go round again, all of it.
			if !h.conn.NC.IsConnected() {
				break
			}
			h.verifyEpoch()
			// Every suspect topic at once: after a reconnect that is all
			// of them, and one read then covers them all (see read).
			batches := h.takeBatches()
			if len(batches) == 0 {
				break
			}
			h.recoverBatches(batches)
		}
	}
}

// probesAtOnce is how many probes the worker keeps in flight. After a
// reconnect every channel is probed; one at a time, 50,000 channels took
// 11 s here, mostly round trips.
const probesAtOnce = 4

func (h *Hub) verifyEpoch() {
	h.mu.Lock()
	asked := h.checkEpoch
	h.checkEpoch = false
	h.mu.Unlock()
	if !asked {
		return
	}
	head, err := retry(h, h.history.Head)
	if err != nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.noteEpochLocked(head)
}

// batchItem is a topic taken by the worker with the generation it had.
type batchItem struct {
	t   *topic
	gen uint64
}

// takeBatches takes every suspect topic queued, in batches of at most
// replay.MaxFilterSubjects, each with the generation it has now.
func (h *Hub) takeBatches() [][]batchItem {
	h.mu.Lock()
	defer h.mu.Unlock()
	var batches [][]batchItem
	var batch []batchItem
	for _, t := range h.queue {
		t.queued = false
		if h.topics[t.live] != t || !t.suspect {
			continue
		}
		batch = append(batch, batchItem{t, t.gen})
		if len(batch) == replay.MaxFilterSubjects {
			batches, batch = append(batches, batch), nil
		}
	}
	if len(batch) > 0 {
		batches = append(batches, batch)
	}
	clear(h.queue)
	h.queue = h.queue[:0]
	return batches
}

// recoverBatches probes the batches, probesAtOnce at a time, then reads
// what the changed channels' clients missed, and lifts the holds.
func (h *Hub) recoverBatches(batches [][]batchItem) {
	errs := make([]error, len(batches))
	slots := make(chan struct{}, probesAtOnce)
	var probes sync.WaitGroup
	for i, batch := range batches {
		probes.Go(func() {
			slots <- struct{}{}
			defer func() { <-slots }()
			errs[i] = h.probe(batch)
		})
	}
	probes.Wait()
	var groups []*readGroup
	var probed [][]batchItem
	for i, batch := range batches {
		if errs[i] != nil {
			h.log.Warn("cannot tell whether channels lost events; their clients will resume from their positions",
				zap.Int("channels", len(batch)), zap.Error(errs[i]))
			h.finish(batch, true)
			continue
		}
		groups = append(groups, h.groups(batch)...)
		probed = append(probed, batch)
	}
	h.read(groups)
	for _, batch := range probed {
		h.finish(batch, false)
	}
}

// probe marks changed every topic of the batch whose subject holds an
// event past its chain head.
func (h *Hub) probe(batch []batchItem) error {
	h.mu.Lock()
	var subjects []string
	for _, it := range batch {
		if !it.t.changed {
			subjects = append(subjects, it.t.subject)
		}
	}
	h.mu.Unlock()
	if len(subjects) == 0 {
		return nil
	}
	last, err := retry(h, func(ctx context.Context) (map[string]uint64, error) {
		return h.history.LastSequences(ctx, subjects)
	})
	if err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, it := range batch {
		if last[it.t.subject] > it.t.last {
			// Known lost, as through a gap: a client that attaches
			// before the read passes the lost event must wait for it.
			it.t.changed = true
			it.t.holdAllLocked()
		}
	}
	return nil
}

// finish lifts the holds of a batch. A topic that lost another event, or
// gained a client, since the worker looked at it goes round again. When
// the batch was abandoned, the clients still held are ended instead.
func (h *Hub) finish(batch []batchItem, abandon bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, it := range batch {
		t := it.t
		t.inJob = false
		if h.topics[t.live] != t {
			// Its last client left meanwhile, and removeLocked took it
			// out of the gauge.
			continue
		}
		if abandon {
			for c := range t.clients {
				c.End(ReasonResync)
			}
		} else if t.gen != it.gen {
			h.suspectLocked(t)
			continue
		}
		t.changed = false
		if !t.suspect {
			continue
		}
		for c := range t.clients {
			if t.holds(c) {
				c.suspect--
				c.releaseLocked()
			}
		}
		t.suspect, t.holdsAll = false, false
		h.metrics.add(h.metrics.Recovering, -1)
	}
}

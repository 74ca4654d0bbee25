package replay

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Msg is one stored event, as read from the stream.
type Msg struct {
	Seq     uint64
	Subject string
	Header  nats.Header
	Data    []byte
}

// ErrTooFarBehind is returned by Read when more events are pending than the
// caller's limit allows.
var ErrTooFarBehind = errors.New("too many events to replay")

// History reads stored events from one stream.
type History struct {
	js     jetstream.JetStream
	stream string
	// fetch is how many messages one pull request asks for.
	fetch int
	slots chan struct{}
	epoch atomic.Pointer[string]
}

// NewHistory reads from the stream s, as returned by Ensure, with at most
// concurrency reads at a time (0 means no limit). Each read creates and
// deletes a consumer; a burst of reconnects beyond what the server can
// create in its API timeout would fail them all, so they wait in line.
func NewHistory(js jetstream.JetStream, s Stream, concurrency int) *History {
	h := &History{js: js, stream: s.Name, fetch: 512}
	if concurrency > 0 {
		h.slots = make(chan struct{}, concurrency)
	}
	h.epoch.Store(&s.Epoch)
	return h
}

// Epoch is the epoch of the stream's current incarnation, for new ids.
func (h *History) Epoch() string { return *h.epoch.Load() }

// Read calls fn with every stored message on subjects whose sequence is
// greater than after, in stream order, until it has caught up with the
// stream. Messages published while it runs are included. When limit > 0 and
// more than limit messages are pending at the start, it returns
// ErrTooFarBehind without calling fn.
//
// It uses a short-lived consumer that is deleted on return: consumers cost
// the server a Raft proposal each in a cluster, so none outlives its replay.
func (h *History) Read(ctx context.Context, subjects []string, after uint64, limit int, fn func(Msg) error) error {
	if h.slots != nil {
		select {
		case h.slots <- struct{}{}:
			defer func() { <-h.slots }()
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return h.read(ctx, subjects, after, limit, fn)
}

// Backfill is Read without a limit and without waiting for a turn: it
// recovers live events that every client of a channel is waiting for, so
// it must not queue behind the clients' own replays.
func (h *History) Backfill(ctx context.Context, subjects []string, after uint64, fn func(Msg) error) error {
	return h.read(ctx, subjects, after, 0, fn)
}

func (h *History) read(ctx context.Context, subjects []string, after uint64, limit int, fn func(Msg) error) error {
	cons, err := h.js.CreateConsumer(ctx, h.stream, jetstream.ConsumerConfig{
		FilterSubjects:    subjects,
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       after + 1,
		AckPolicy:         jetstream.AckNonePolicy,
		InactiveThreshold: 30 * time.Second,
		MemoryStorage:     true,
		Replicas:          1,
	})
	if err != nil {
		return fmt.Errorf("creating replay consumer: %w", err)
	}
	defer h.deleteConsumer(cons.CachedInfo().Name)

	pending := cons.CachedInfo().NumPending
	if pending == 0 {
		return nil
	}
	if limit > 0 && pending > uint64(limit) {
		return ErrTooFarBehind
	}
	// Messages keeps pull requests in flight while fn writes, so a long
	// replay is not a series of round trips.
	it, err := cons.Messages(jetstream.PullMaxMessages(int(min(pending, uint64(h.fetch)))))
	if err != nil {
		return err
	}
	defer it.Stop()
	for {
		m, err := h.next(ctx, it)
		if errors.Is(err, errStalled) {
			// Nothing came for a while: either the pending messages were
			// removed meanwhile, or the server is too slow to say.
			info, ierr := cons.Info(ctx)
			if ierr == nil && info.NumPending == 0 {
				return nil
			}
			return fmt.Errorf("replay stalled with messages pending: %w", cmp.Or(ierr, err))
		}
		if err != nil {
			return err
		}
		meta, err := m.Metadata()
		if err != nil {
			return err
		}
		if err := fn(Msg{Seq: meta.Sequence.Stream, Subject: m.Subject(), Header: m.Headers(), Data: m.Data()}); err != nil {
			return err
		}
		if meta.NumPending == 0 {
			return nil
		}
	}
}

var errStalled = errors.New("no message within the wait")

// stallWait is how long Read waits for the next pending message before it
// asks the server whether any are left.
const stallWait = 2 * time.Second

func (h *History) next(ctx context.Context, it jetstream.MessagesContext) (jetstream.Msg, error) {
	wait, cancel := context.WithTimeout(ctx, stallWait)
	defer cancel()
	m, err := it.Next(jetstream.NextContext(wait))
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if wait.Err() != nil {
			return nil, errStalled
		}
	}
	return m, err
}

func (h *History) deleteConsumer(name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// The inactive threshold removes it anyway if this fails.
	_ = h.js.DeleteConsumer(ctx, h.stream, name)
}

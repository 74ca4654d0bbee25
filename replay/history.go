package replay

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/semaphore"
)

// Msg is one stored event, as read from the stream.
type Msg struct {
	Seq     uint64
	Subject string
	Header  nats.Header
	Data    []byte
	// Time is when the stream stored the message.
	Time time.Time
}

// ErrTooFarBehind is returned by Read when more events are pending than the
// caller's limit allows.
var ErrTooFarBehind = errors.New("too many events to replay")

// ErrTooManySubjects is returned by Read and Resolve when asked
// about more than MaxSubjects subjects at once.
var ErrTooManySubjects = fmt.Errorf("more than %d subjects in one read", MaxSubjects)

// MaxSubjects is the most subjects one Read or Resolve takes.
// Each read is one consumer filtering all of them, created by one
// JetStream API request, and Resolve looks at each subject: callers with
// more subjects read them in chunks of this size.
const MaxSubjects = 256

// Budget defaults; see WithPullBytes and WithBudget.
const (
	DefaultPullBytes = 2 << 20
	DefaultBudget    = 64 << 20
)

// History reads stored events from one stream.
type History struct {
	js     jetstream.JetStream
	stream string
	epoch  atomic.Pointer[string]

	// slots bounds the reads that hold a consumer; lookups bounds Resolve.
	// Both are nil for no limit.
	slots, lookups chan struct{}
	// pullBytes is what one read may hold in flight; reads and backfills
	// each take that much from their share of the budget while they run.
	pullBytes        int
	budget           int64
	reads, backfills *semaphore.Weighted
	// waiting, when set, hears of each read that starts (+1) and stops
	// (-1) waiting for its turn.
	waiting func(delta float64)
}

// Option configures a History.
type Option func(*History)

// WithPullBytes sets how many bytes of events one read may have in flight
// between the server and the caller: each pull asks for at most this
// much, and the next pull waits until the caller has taken the last one.
// It must hold the largest message the server accepts (its max_payload,
// plus subject and reply), or such a message stalls the read.
// Default DefaultPullBytes.
func WithPullBytes(n int) Option { return func(h *History) { h.pullBytes = n } }

// WithBudget sets the bytes in flight across every read and backfill at
// once. A quarter (at least one read's worth) is kept for backfills, so
// that live recovery never waits behind client replays; reads share the
// rest. A read that would overrun its share waits for a turn. It is raised
// to two reads' worth if smaller. Default DefaultBudget.
func WithBudget(n int64) Option { return func(h *History) { h.budget = n } }

// WithWaiting reports reads waiting for a slot or for budget, as changes to
// a count: +1 when one starts waiting, -1 when it stops.
func WithWaiting(gauge func(delta float64)) Option { return func(h *History) { h.waiting = gauge } }

// NewHistory reads from the stream s, as returned by Ensure, with at most
// concurrency reads at a time (0 means no limit) and as many Resolve calls.
// Each read creates and deletes a consumer; a burst of reconnects beyond
// what the server can create in its API timeout would fail them all, so
// they wait in line.
//
// js should be a connection of its own: replays pull large amounts of
// data, and a connection that falls behind is cut by the server as a slow
// consumer, which must never happen to the one carrying live events.
func NewHistory(js jetstream.JetStream, s Stream, concurrency int, opts ...Option) *History {
	h := &History{js: js, stream: s.Name, pullBytes: DefaultPullBytes, budget: DefaultBudget}
	for _, o := range opts {
		o(h)
	}
	if concurrency > 0 {
		h.slots = make(chan struct{}, concurrency)
		h.lookups = make(chan struct{}, concurrency)
	}
	h.pullBytes = max(h.pullBytes, 1)
	h.budget = max(h.budget, 2*int64(h.pullBytes))
	reserve := max(h.budget/4, int64(h.pullBytes))
	h.backfills = semaphore.NewWeighted(reserve)
	h.reads = semaphore.NewWeighted(h.budget - reserve)
	h.epoch.Store(&s.Epoch)
	return h
}

// Epoch is the epoch of the stream's current incarnation, for new ids.
func (h *History) Epoch() string { return *h.epoch.Load() }

// Limits are the effective bounds, for logs.
func (h *History) Limits() (concurrency, pullBytes int, budget int64) {
	return cap(h.slots), h.pullBytes, h.budget
}

// Read calls fn with every stored message on subjects whose sequence is
// greater than after, in stream order, until it has caught up with the
// stream and passed through. Messages published while it runs are
// included. When limit > 0 and more than limit messages are pending at the
// start, it returns ErrTooFarBehind without calling fn.
//
// through is the position the caller knows the stream has reached (the
// hub's, when the client attached). A consumer created during a failover
// can answer from a server that has not applied everything yet and report
// that nothing is pending: Read does not believe it until the consumer
// has looked at every sequence up to through.
//
// It waits for a slot and for its share of the byte budget. It never skips
// a message: one lost on the way is read again, and when that fails it
// returns an error (the caller resumes from the last message fn took),
// never a short read as success.
//
// It uses a short-lived consumer that is deleted on return: consumers cost
// the server a Raft proposal each in a cluster, so none outlives its replay.
func (h *History) Read(ctx context.Context, subjects []string, after, through uint64, limit int, fn func(Msg) error) error {
	if len(subjects) > MaxSubjects {
		return ErrTooManySubjects
	}
	release, err := h.turn(ctx)
	if err != nil {
		return err
	}
	defer release()
	return h.read(ctx, subjects, after, through, limit, fn)
}

// turn waits for a slot and for a read's share of the budget.
func (h *History) turn(ctx context.Context) (release func(), err error) {
	if h.waiting != nil {
		h.waiting(1)
		defer h.waiting(-1)
	}
	releaseSlot, err := acquire(ctx, h.slots)
	if err != nil {
		return nil, err
	}
	if err := h.reads.Acquire(ctx, int64(h.pullBytes)); err != nil {
		releaseSlot()
		return nil, err
	}
	return func() {
		h.reads.Release(int64(h.pullBytes))
		releaseSlot()
	}, nil
}

// Follow calls fn with every message of the stream after after, in stream
// order, and goes on with each message stored later, until ctx ends or fn
// fails. The hub follows the stream this way while it reads back what core
// NATS lost. It does not wait for a slot: clients' replays, which a slow
// client can hold for long, must not delay every live client. It takes its
// bytes from the share of the budget kept for it.
func (h *History) Follow(ctx context.Context, after uint64, fn func(Msg) error) error {
	if err := h.backfills.Acquire(ctx, int64(h.pullBytes)); err != nil {
		return err
	}
	defer h.backfills.Release(int64(h.pullBytes))
	r := &reader{h: h, fn: fn, last: after, follow: true}
	defer r.stop()
	return r.followAll(ctx)
}

// acquire takes a place in slots (nil: no limit) or gives up with ctx.
func acquire(ctx context.Context, slots chan struct{}) (release func(), err error) {
	if slots == nil {
		return func() {}, nil
	}
	select {
	case slots <- struct{}{}:
		return func() { <-slots }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

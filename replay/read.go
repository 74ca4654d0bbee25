package replay

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ErrIncomplete is wrapped by the error Read and Follow return when they
// could not verify that they missed nothing: messages were lost on the way
// and reading them again failed, or the consumer stopped delivering. What
// fn was given is complete and in order up to the last message it took.
var ErrIncomplete = errors.New("replay could not continue without a gap")

// Read tuning. A restart replaces the consumer with one that starts after
// the last message passed on; maxRestarts in a row without progress end
// the read.
const (
	// pullWait is how long one pull waits for messages. A pull that brings
	// none makes the reader ask the consumer where it stands.
	pullWait = 2 * time.Second
	// shortWait is how long a read with nothing pending waits for one
	// more message before it asks where it stands.
	shortWait = 50 * time.Millisecond
	// pullMessages caps the messages of one pull; its bytes are capped by
	// the pull budget.
	pullMessages = 1024
	maxRestarts  = 3
	// maxLagging is how many empty pulls in a row, lagWait each, a read
	// accepts from a consumer that has nothing pending but has not yet
	// looked at the read's through position: its server is still
	// applying what the stream leader committed. Then it restarts.
	maxLagging = 10
	lagWait    = 500 * time.Millisecond
	// followBackoff caps the wait between a follower's restarts; a
	// follower never gives up while its context lasts.
	followBackoff = time.Second
	// requestTimeout bounds each consumer create, info and delete.
	requestTimeout = 5 * time.Second
)

var (
	errGap     = errors.New("messages lost in flight")
	errStalled = errors.New("consumer stopped delivering with messages pending")
	errLagging = errors.New("consumer's server has not reached the position the read must pass")
)

// reader is one read in progress: the consumer it pulls from and how far
// it got. Continuity is checked on the consumer sequence, which grows by
// one for each message the server delivers: a jump, or a consumer that
// says it delivered more than arrived, means a message was lost on the way.
type reader struct {
	h        *History
	subjects []string // nil: the whole stream (a follower)
	fn       func(Msg) error
	cons     jetstream.Consumer
	// last is the stream sequence of the last message fn took, or the
	// starting position; delivered is the consumer sequence of the last
	// message that arrived from cons.
	last, delivered uint64
	// through is the position the read must have passed before it may
	// end (see Read).
	through uint64
	// restarts counts restarts since the last message fn took, and
	// lagging the empty pulls from a consumer short of through.
	restarts, lagging int
	// batch is the pull in progress, and got what it brought so far.
	batch jetstream.MessageBatch
	got   int
	// follow makes the reader go on for ever instead of ending when it
	// has caught up; short is set when nothing matching was pending after
	// the last message, though the read has not passed through; reached
	// once the consumer's server is known to hold through (see passed).
	follow, short, reached bool
}

func (h *History) read(ctx context.Context, subjects []string, after, through uint64, limit int, fn func(Msg) error) error {
	if len(subjects) == 0 {
		// A consumer without a filter would read the whole stream.
		return nil
	}
	r := &reader{h: h, subjects: subjects, fn: fn, last: after, through: through}
	defer r.stop()
	if err := r.start(ctx); err != nil {
		// In a cluster, a create can time out during an election; the
		// next attempt usually finds a leader.
		if err := r.restart(ctx, err); err != nil {
			return err
		}
	}
	pending := r.cons.CachedInfo().NumPending
	if pending == 0 && r.last >= r.through {
		return nil
	}
	r.short = pending == 0
	if limit > 0 && pending > uint64(limit) {
		return ErrTooFarBehind
	}
	for {
		done, err := r.pull(ctx)
		if err != nil || done {
			return err
		}
	}
}

// start creates a consumer for the messages after r.last.
func (r *reader) start(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	cons, err := r.h.js.CreateConsumer(cctx, r.h.stream, jetstream.ConsumerConfig{
		FilterSubjects:    r.subjects,
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       r.last + 1,
		AckPolicy:         jetstream.AckNonePolicy,
		InactiveThreshold: 30 * time.Second,
		MemoryStorage:     true,
		Replicas:          1,
	})
	if err != nil {
		return fmt.Errorf("creating replay consumer: %w", err)
	}
	r.cons, r.delivered, r.reached, r.batch = cons, 0, false, nil
	return nil
}

// stop deletes the consumer. The inactive threshold removes it anyway if
// this fails.
func (r *reader) stop() {
	if r.cons == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	_ = r.h.js.DeleteConsumer(ctx, r.h.stream, r.cons.CachedInfo().Name)
	r.cons = nil
}

// pull passes on one pull's messages, at most the pull budget, and
// reports whether the read has caught up. A pull stays open until its
// expiry, but once nothing matching is pending the read does not wait it
// out: after shortWait without a message it asks where it stands, and
// the next pull goes on with the same batch.
func (r *reader) pull(ctx context.Context) (done bool, err error) {
	if r.batch == nil {
		wait := pullWait
		if r.lagging > 0 {
			wait = lagWait
		}
		batch, err := r.cons.Fetch(pullMessages, jetstream.FetchMaxBytes(r.h.pullBytes), jetstream.FetchMaxWait(wait))
		if err != nil {
			return false, r.restart(ctx, err)
		}
		r.batch, r.got = batch, 0
	}
	for msgs := r.batch.Messages(); ; {
		var idle <-chan time.Time
		if r.short {
			idle = time.After(shortWait)
		}
		var m jetstream.Msg
		select {
		case m = <-msgs:
		case <-ctx.Done():
			return false, ctx.Err()
		case <-idle:
			return r.settle(ctx)
		}
		if m == nil {
			break
		}
		if done, err := r.take(ctx, m); done || err != nil || r.batch == nil {
			// A restart dropped the batch with its consumer.
			return done, err
		}
	}
	got, err := r.got, r.batch.Error()
	r.batch = nil
	if err != nil {
		return false, r.restart(ctx, err)
	}
	if got > 0 {
		// It ended on its byte or message cap, or at its expiry with
		// more to come: pull again. A slow client must not cost a new
		// consumer per pull, so only an empty pull asks where it stands.
		return false, nil
	}
	return r.settle(ctx)
}

// take passes on one message, checking that none was lost before it.
func (r *reader) take(ctx context.Context, m jetstream.Msg) (done bool, err error) {
	meta, err := m.Metadata()
	if err != nil {
		return false, err
	}
	if meta.Sequence.Consumer != r.delivered+1 || meta.Sequence.Stream <= r.last {
		return false, r.restart(ctx, errGap)
	}
	r.delivered = meta.Sequence.Consumer
	if err := r.fn(Msg{Seq: meta.Sequence.Stream, Subject: m.Subject(), Header: m.Headers(), Data: m.Data(), Time: meta.Timestamp}); err != nil {
		return false, err
	}
	r.last, r.restarts, r.lagging = meta.Sequence.Stream, 0, 0
	r.got++
	r.short = meta.NumPending == 0 && !r.follow
	return r.short && r.last >= r.through, nil
}

// settle asks the consumer where it stands after a pull that brought
// nothing: caught up if nothing is pending and everything it delivered
// arrived, else the read restarts.
func (r *reader) settle(ctx context.Context) (done bool, err error) {
	ictx, cancel := context.WithTimeout(ctx, requestTimeout)
	info, err := r.cons.Info(ictx)
	cancel()
	switch {
	case err != nil:
		return false, r.restart(ctx, err)
	case info.Delivered.Consumer > r.delivered:
		return false, r.restart(ctx, errGap)
	case info.NumPending != 0:
		return false, r.restart(ctx, errStalled)
	case r.follow:
		return false, nil
	case r.last >= r.through || r.reached:
		return true, nil
	}
	reached, err := r.passed(ctx, info)
	switch {
	case err != nil:
		return false, r.restart(ctx, err)
	case reached:
		// Messages its server applied since the consumer said nothing
		// was pending are delivered to it: one more empty pull proves
		// there are none.
		r.reached, r.short = true, true
		return false, nil
	case r.lagging < maxLagging:
		r.lagging++
		return false, nil
	}
	return false, r.restart(ctx, errLagging)
}

// passed reports whether the consumer's server holds every message up to
// the read's through position, so that its "nothing pending" covers them.
// The stream leader's info says how far the stream has got. An R1 consumer
// of a replicated stream lives on any of its peers, and a follower may
// still be applying what the leader committed before a failover: it must
// be current, with no lag.
func (r *reader) passed(ctx context.Context, info *jetstream.ConsumerInfo) (bool, error) {
	ictx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	s, err := r.h.js.Stream(ictx, r.h.stream)
	if err != nil {
		return false, err
	}
	si := s.CachedInfo()
	if si.State.LastSeq < r.through {
		return false, nil
	}
	if info.Cluster == nil || si.Cluster == nil || info.Cluster.Leader == si.Cluster.Leader {
		return true, nil
	}
	for _, p := range si.Cluster.Replicas {
		if p.Name == info.Cluster.Leader {
			return p.Current && p.Lag == 0, nil
		}
	}
	return false, nil
}

// follow passes on every message from r.last on, restarting the consumer
// as often as it must, until ctx ends or fn fails.
func (r *reader) followAll(ctx context.Context) error {
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, followBackoff) {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := r.start(ctx); err == nil {
			wait = 100 * time.Millisecond
			err = r.followConsumer(ctx)
			var stop stopError
			if errors.As(err, &stop) {
				return stop.err
			}
		}
		r.stop()
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// stopError carries fn's own error out of a follower, which otherwise
// restarts on every error.
type stopError struct{ err error }

func (e stopError) Error() string { return e.err.Error() }

// followConsumer pulls from one consumer until it fails.
func (r *reader) followConsumer(ctx context.Context) error {
	fn := r.fn
	r.fn = func(m Msg) error {
		if err := fn(m); err != nil {
			return stopError{err}
		}
		return nil
	}
	defer func() { r.fn = fn }()
	r.restarts = maxRestarts // a failure goes back to followAll, which retries
	for {
		if _, err := r.pull(ctx); err != nil {
			return err
		}
	}
}

// restart replaces the consumer with one that starts after the last
// message fn took, unless it has done so maxRestarts times in a row.
func (r *reader) restart(ctx context.Context, cause error) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if r.restarts >= maxRestarts {
			return fmt.Errorf("%w after sequence %d: %w", ErrIncomplete, r.last, cause)
		}
		r.restarts++
		r.stop()
		select {
		case <-time.After(time.Duration(r.restarts) * 100 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
		err := r.start(ctx)
		if err == nil {
			return nil
		}
		cause = err
	}
}

package replay

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ErrIncomplete is wrapped by the error Read and Backfill return when they
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
	// pullMessages caps the messages of one pull; its bytes are capped by
	// the pull budget.
	pullMessages = 1024
	maxRestarts  = 3
	// requestTimeout bounds each consumer create, info and delete.
	requestTimeout = 5 * time.Second
)

var (
	errGap     = errors.New("messages lost in flight")
	errStalled = errors.New("consumer stopped delivering with messages pending")
)

// reader is one read in progress: the consumer it pulls from and how far
// it got. Continuity is checked on the consumer sequence, which grows by
// one for each message the server delivers: a jump, or a consumer that
// says it delivered more than arrived, means a message was lost on the way.
type reader struct {
	h        *History
	subjects []string
	fn       func(Msg) error
	cons     jetstream.Consumer
	// last is the stream sequence of the last message fn took, or the
	// starting position; delivered is the consumer sequence of the last
	// message that arrived from cons.
	last, delivered uint64
	// restarts counts restarts since the last message fn took.
	restarts int
}

func (h *History) read(ctx context.Context, subjects []string, after uint64, limit int, fn func(Msg) error) error {
	if len(subjects) == 0 {
		// A consumer without a filter would read the whole stream.
		return nil
	}
	r := &reader{h: h, subjects: subjects, fn: fn, last: after}
	defer r.stop()
	if err := r.start(ctx); err != nil {
		// In a cluster, a create can time out during an election; the
		// next attempt usually finds a leader.
		if err := r.restart(ctx, err); err != nil {
			return err
		}
	}
	pending := r.cons.CachedInfo().NumPending
	if pending == 0 {
		return nil
	}
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
	r.cons, r.delivered = cons, 0
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
// reports whether the read has caught up.
func (r *reader) pull(ctx context.Context) (done bool, err error) {
	batch, err := r.cons.Fetch(pullMessages, jetstream.FetchMaxBytes(r.h.pullBytes), jetstream.FetchMaxWait(pullWait))
	if err != nil {
		return false, r.restart(ctx, err)
	}
	got := 0
	for msgs := batch.Messages(); ; {
		var m jetstream.Msg
		select {
		case m = <-msgs:
		case <-ctx.Done():
			return false, ctx.Err()
		}
		if m == nil {
			break
		}
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
		r.last, r.restarts = meta.Sequence.Stream, 0
		got++
		if meta.NumPending == 0 {
			return true, nil
		}
	}
	if err := batch.Error(); err != nil {
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
	case info.NumPending == 0:
		return true, nil
	}
	return false, r.restart(ctx, errStalled)
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

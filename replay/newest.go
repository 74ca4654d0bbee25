package replay

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// AfterNewest returns the position after which subjects hold their newest
// n events: reading after it gives those n events (and any stored since).
// A stream that holds n or fewer of them answers with the position before
// its first event.
//
// JetStream offers no way to read backwards, so it searches the sequence
// range for the start whose pending count is n. Each probe is one
// consumer created with the subjects as filter and deleted at once, so a
// call costs about 2·log2(stored events) API requests; it waits in line
// with Resolve calls.
func (h *History) AfterNewest(ctx context.Context, subjects []string, n int) (uint64, error) {
	if len(subjects) > MaxFilterSubjects {
		return 0, ErrTooManySubjects
	}
	if len(subjects) == 0 || n <= 0 {
		return 0, fmt.Errorf("AfterNewest: want subjects and n > 0")
	}
	release, err := acquire(ctx, h.lookups)
	if err != nil {
		return 0, err
	}
	defer release()
	s, err := h.js.Stream(ctx, h.stream)
	if err != nil {
		return 0, fmt.Errorf("reading stream %q: %w", h.stream, err)
	}
	state := s.CachedInfo().State
	lo, hi := max(state.FirstSeq, 1), state.LastSeq
	if hi < lo {
		return 0, nil
	}
	count := func(seq uint64) (uint64, error) { return h.pendingFrom(ctx, subjects, seq) }
	c, err := count(lo)
	if err != nil || c <= uint64(n) {
		return lo - 1, err
	}
	// Invariant: count(lo) >= n. Find the largest such start.
	for lo < hi {
		mid := lo + (hi-lo+1)/2
		c, err := count(mid)
		if err != nil {
			return 0, err
		}
		if c >= uint64(n) {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo - 1, nil
}

// pendingFrom counts the events on subjects at or after seq.
func (h *History) pendingFrom(ctx context.Context, subjects []string, seq uint64) (uint64, error) {
	cons, err := h.probeConsumer(ctx, jetstream.ConsumerConfig{
		FilterSubjects: subjects,
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    seq,
	})
	if err != nil {
		return 0, err
	}
	defer h.dropProbe(cons)
	return cons.CachedInfo().NumPending, nil
}

// probeConsumer creates a consumer that is only asked where it stands,
// or for a message or two; dropProbe deletes it.
func (h *History) probeConsumer(ctx context.Context, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	cfg.AckPolicy = jetstream.AckNonePolicy
	cfg.InactiveThreshold = 30 * time.Second
	cfg.MemoryStorage = true
	cfg.Replicas = 1
	cctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	cons, err := h.js.CreateConsumer(cctx, h.stream, cfg)
	if err != nil {
		return nil, fmt.Errorf("creating probe consumer: %w", err)
	}
	return cons, nil
}

// dropProbe deletes a probe consumer; its inactive threshold removes it
// anyway if this fails.
func (h *History) dropProbe(cons jetstream.Consumer) {
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	_ = h.js.DeleteConsumer(ctx, h.stream, cons.CachedInfo().Name)
}

// AfterTime returns the position after which lies the first event on
// subjects stored at or after t, for a client that resumes by time.
// expired reports that events stored after t may have been removed: t is
// before the oldest event kept and the stream has removed some. The
// position is then the one before the oldest event kept.
func (h *History) AfterTime(ctx context.Context, subjects []string, t time.Time) (after uint64, expired bool, err error) {
	if len(subjects) > MaxFilterSubjects {
		return 0, false, ErrTooManySubjects
	}
	release, err := acquire(ctx, h.lookups)
	if err != nil {
		return 0, false, err
	}
	defer release()
	s, err := h.js.Stream(ctx, h.stream)
	if err != nil {
		return 0, false, fmt.Errorf("reading stream %q: %w", h.stream, err)
	}
	st := s.CachedInfo().State
	switch {
	case st.Msgs == 0:
		return st.LastSeq, st.LastSeq > 0 && t.Before(st.LastTime), nil
	case t.Before(st.FirstTime):
		return st.FirstSeq - 1, st.FirstSeq > 1, nil
	case len(subjects) == 0:
		return st.LastSeq, false, nil
	}
	cons, err := h.probeConsumer(ctx, jetstream.ConsumerConfig{
		FilterSubjects: subjects,
		DeliverPolicy:  jetstream.DeliverByStartTimePolicy,
		OptStartTime:   &t,
		HeadersOnly:    true,
	})
	if err != nil {
		return 0, false, err
	}
	defer h.dropProbe(cons)
	if cons.CachedInfo().NumPending == 0 {
		// Nothing on subjects since t up to the consumer's creation,
		// which came after st was read.
		return st.LastSeq, false, nil
	}
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(pullWait))
	if err != nil {
		return 0, false, err
	}
	for m := range batch.Messages() {
		meta, err := m.Metadata()
		if err != nil {
			return 0, false, err
		}
		return meta.Sequence.Stream - 1, false, nil
	}
	if err := batch.Error(); err != nil {
		return 0, false, err
	}
	return 0, false, errors.New("time probe stalled with messages pending")
}

package replay

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Head is the stream's state at one moment: its newest sequence and the
// epoch of its current incarnation.
type Head struct {
	LastSeq uint64
	Epoch   string
}

// Head reads the stream's newest sequence and epoch. The answer comes from
// the stream leader, so every message stored before the call is at or
// below LastSeq.
func (h *History) Head(ctx context.Context) (Head, error) {
	s, err := h.js.Stream(ctx, h.stream)
	if err != nil {
		return Head{}, fmt.Errorf("reading stream %q: %w", h.stream, err)
	}
	info := s.CachedInfo()
	return Head{LastSeq: info.State.LastSeq, Epoch: Epoch(info.Created)}, nil
}

// MaxFilterSubjects bounds the filter subjects of one consumer the gateway
// creates. nats-server checks every pair of a consumer's filters for
// overlap when it creates it, on the JetStream API's queue: 1,000 filters
// took about a second here and held up every other API request behind
// them, 64 take a few milliseconds. Many small consumers cost less in all
// than a few large ones.
const MaxFilterSubjects = 64

// LastSequences returns, for each of subjects that holds any message, the
// sequence of its newest message. It reads headers only, through one
// short-lived consumer, so its cost grows with the number of subjects and
// not with their history.
func (h *History) LastSequences(ctx context.Context, subjects []string) (map[string]uint64, error) {
	if len(subjects) == 0 {
		return nil, nil
	}
	if len(subjects) > MaxFilterSubjects {
		return nil, fmt.Errorf("%d subjects in one probe; at most %d", len(subjects), MaxFilterSubjects)
	}
	cons, err := h.js.CreateConsumer(ctx, h.stream, jetstream.ConsumerConfig{
		FilterSubjects:    subjects,
		DeliverPolicy:     jetstream.DeliverLastPerSubjectPolicy,
		AckPolicy:         jetstream.AckNonePolicy,
		HeadersOnly:       true,
		InactiveThreshold: 30 * time.Second,
		MemoryStorage:     true,
		Replicas:          1,
	})
	if err != nil {
		return nil, fmt.Errorf("creating probe consumer: %w", err)
	}
	defer func() {
		// The inactive threshold removes it anyway if this fails.
		ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
		defer cancel()
		_ = h.js.DeleteConsumer(ctx, h.stream, cons.CachedInfo().Name)
	}()
	pending := int(cons.CachedInfo().NumPending)
	last := make(map[string]uint64, pending)
	for pending > 0 {
		batch, err := cons.Fetch(min(pending, 256), jetstream.FetchMaxWait(pullWait))
		if err != nil {
			return nil, err
		}
		got := 0
		for m := range batch.Messages() {
			meta, err := m.Metadata()
			if err != nil {
				return nil, err
			}
			last[m.Subject()] = max(last[m.Subject()], meta.Sequence.Stream)
			got++
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return nil, err
		}
		if got == 0 {
			return nil, errors.New("probe stalled with messages pending")
		}
		pending -= got
	}
	return last, nil
}

package replay

import (
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
	epoch atomic.Pointer[string]
}

// NewHistory reads from the stream s, as returned by Ensure.
func NewHistory(js jetstream.JetStream, s Stream) *History {
	h := &History{js: js, stream: s.Name, fetch: 512}
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
	batch := h.fetch
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if pending < uint64(batch) {
			batch = int(pending)
		}
		msgs, err := cons.Fetch(batch, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return err
		}
		got := 0
		for m := range msgs.Messages() {
			got++
			meta, err := m.Metadata()
			if err != nil {
				return err
			}
			if err := fn(Msg{Seq: meta.Sequence.Stream, Subject: m.Subject(), Header: m.Headers(), Data: m.Data()}); err != nil {
				return err
			}
			pending = meta.NumPending
			if pending == 0 {
				return nil
			}
		}
		if err := msgs.Error(); err != nil {
			return err
		}
		if got == 0 {
			// Pending messages vanished (trimmed or deleted) under us; what
			// is left will come live.
			return nil
		}
	}
}

func (h *History) deleteConsumer(name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// The inactive threshold removes it anyway if this fails.
	_ = h.js.DeleteConsumer(ctx, h.stream, name)
}

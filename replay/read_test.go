package replay

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ssegate/ssegate/internal/natstest"
)

// lossy is a JetStream whose consumers lose the messages drop picks on
// their way to the reader, the way a dropped pull response or a
// slow-consumer drop on the client loses them: the server counts them as
// delivered and they never arrive.
type lossy struct {
	jetstream.JetStream
	drop func(jetstream.Msg) bool
}

func (l lossy) CreateConsumer(ctx context.Context, stream string, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	c, err := l.JetStream.CreateConsumer(ctx, stream, cfg)
	if err != nil {
		return nil, err
	}
	return lossyConsumer{c, l.drop}, nil
}

type lossyConsumer struct {
	jetstream.Consumer
	drop func(jetstream.Msg) bool
}

func (c lossyConsumer) Fetch(n int, opts ...jetstream.FetchOpt) (jetstream.MessageBatch, error) {
	b, err := c.Consumer.Fetch(n, opts...)
	if err != nil {
		return nil, err
	}
	out := &filteredBatch{in: b, msgs: make(chan jetstream.Msg, n)}
	go func() {
		defer close(out.msgs)
		for m := range b.Messages() {
			if !c.drop(m) {
				out.msgs <- m
			}
		}
	}()
	return out, nil
}

// Messages covers the iterator the reader used before it checked
// continuity, so that the test shows that reader skipping.
func (c lossyConsumer) Messages(opts ...jetstream.PullMessagesOpt) (jetstream.MessagesContext, error) {
	it, err := c.Consumer.Messages(opts...)
	return lossyIter{it, c.drop}, err
}

type lossyIter struct {
	jetstream.MessagesContext
	drop func(jetstream.Msg) bool
}

func (it lossyIter) Next(opts ...jetstream.NextOpt) (jetstream.Msg, error) {
	for {
		m, err := it.MessagesContext.Next(opts...)
		if err != nil || !it.drop(m) {
			return m, err
		}
	}
}

type filteredBatch struct {
	in   jetstream.MessageBatch
	msgs chan jetstream.Msg
}

func (b *filteredBatch) Messages() <-chan jetstream.Msg { return b.msgs }
func (b *filteredBatch) Error() error                   { return b.in.Error() }

func streamSeq(m jetstream.Msg) uint64 {
	meta, _ := m.Metadata()
	return meta.Sequence.Stream
}

// dropOnce loses the message with stream sequence seq the first time.
func dropOnce(seq uint64) func(jetstream.Msg) bool {
	var done atomic.Bool
	return func(m jetstream.Msg) bool { return streamSeq(m) == seq && done.CompareAndSwap(false, true) }
}

func seqs(from, to uint64) []uint64 {
	var out []uint64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

// TestReadNeverSkips: a message lost between the server and the reader is
// read again, and a loss that keeps happening ends the read with an error
// after the last message before it, never a read that skips it. On the
// reader without a continuity check, every case skipped silently.
// Cost: about 5 s, most of it the two pull waits (2 s each) before a lost
// last message shows.
func TestReadNeverSkips(t *testing.T) {
	ctx, js, stream := seeded(t, StreamConfig{Storage: "memory"}, cycle(20, "events.a")...)
	tests := []struct {
		name    string
		drop    func(jetstream.Msg) bool
		want    []uint64
		wantErr bool
	}{
		{"one in the middle", dropOnce(7), seqs(1, 20), false},
		{"the first", dropOnce(1), seqs(1, 20), false},
		{"the last", dropOnce(20), seqs(1, 20), false},
		{"always the same", func(m jetstream.Msg) bool { return streamSeq(m) == 7 }, seqs(1, 6), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewHistory(lossy{js, tt.drop}, stream, 2)
			var got []uint64
			err := h.Read(ctx, []string{"events.a"}, 0, 0, 0, func(m Msg) error {
				got = append(got, m.Seq)
				return nil
			})
			if tt.wantErr != (err != nil) || (err != nil && !errors.Is(err, ErrIncomplete)) {
				t.Fatalf("Read: %v, want an ErrIncomplete: %v", err, tt.wantErr)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("read %v, want %v", got, tt.want)
			}
			noConsumersLeft(t, js)
		})
	}
}

// TestReadSurvivesConsumerDeletion: a consumer removed under a read (by an
// operator, or lost with a server) is replaced, and the read goes on from
// where it was.
// Cost: about 0.3 s.
func TestReadSurvivesConsumerDeletion(t *testing.T) {
	ctx, js, stream := seeded(t, StreamConfig{Storage: "memory"}, cycle(50, "events.a")...)
	// Small pulls, so that the deletion lands between two of them.
	h := NewHistory(js, stream, 2, WithPullBytes(512))
	var got []uint64
	err := h.Read(ctx, []string{"events.a"}, 0, 0, 0, func(m Msg) error {
		got = append(got, m.Seq)
		if m.Seq == 10 {
			s, err := js.Stream(ctx, "SSEGATE")
			if err != nil {
				return err
			}
			names := s.ConsumerNames(ctx)
			for name := range names.Name() {
				if err := js.DeleteConsumer(ctx, "SSEGATE", name); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, seqs(1, 50)) {
		t.Fatalf("read %v", got)
	}
	noConsumersLeft(t, js)
}

// creations counts the consumers a JetStream creates, and fails the first
// fail of them as a create during a cluster election does.
type creations struct {
	jetstream.JetStream
	n    atomic.Int32
	fail int32
}

func (c *creations) CreateConsumer(ctx context.Context, stream string, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	if c.n.Add(1) <= c.fail {
		return nil, context.DeadlineExceeded
	}
	return c.JetStream.CreateConsumer(ctx, stream, cfg)
}

// TestReadRetriesAFailedCreate: a consumer create that times out is tried
// again, up to the restart limit, and then the read fails, saying why.
// Cost: about 1 s of backoff.
func TestReadRetriesAFailedCreate(t *testing.T) {
	ctx, js, stream := seeded(t, StreamConfig{Storage: "memory"}, cycle(5, "events.a")...)
	for _, tt := range []struct {
		fail    int32
		wantErr bool
	}{{2, false}, {maxRestarts + 1, true}} {
		counted := &creations{JetStream: js, fail: tt.fail}
		n := 0
		err := NewHistory(counted, stream, 1).Read(ctx, []string{"events.a"}, 0, 0, 0, func(Msg) error { n++; return nil })
		if tt.wantErr {
			if !errors.Is(err, ErrIncomplete) || !errors.Is(err, context.DeadlineExceeded) || n != 0 {
				t.Errorf("%d failed creates: %d events, %v", tt.fail, n, err)
			}
			continue
		}
		if err != nil || n != 5 {
			t.Errorf("%d failed creates: %d events, %v", tt.fail, n, err)
		}
	}
}

// TestSlowReaderKeepsItsConsumer: a client that takes longer than a pull's
// wait over its events is not mistaken for a stalled consumer, which would
// cost a new consumer per pull.
// Cost: about 2.5 s, the slow client's pause.
func TestSlowReaderKeepsItsConsumer(t *testing.T) {
	ctx, js, stream := seeded(t, StreamConfig{Storage: "memory"}, cycle(12, "events.a")...)
	counted := &creations{JetStream: js}
	h := NewHistory(counted, stream, 1, WithPullBytes(512))
	var got []uint64
	err := h.Read(ctx, []string{"events.a"}, 0, 0, 0, func(m Msg) error {
		got = append(got, m.Seq)
		if m.Seq == 2 {
			time.Sleep(pullWait + 500*time.Millisecond)
		}
		return nil
	})
	if err != nil || !slices.Equal(got, seqs(1, 12)) {
		t.Fatalf("read %v, %v", got, err)
	}
	if n := counted.n.Load(); n != 1 {
		t.Fatalf("%d consumers created for one slow read", n)
	}
}

// TestReadsWaitForTheBudget: more concurrent reads than the budget allows
// all finish, complete, by waiting for their turn, and the bytes that
// arrived from the server and were not yet taken by a reader never exceed
// the reads' share of the budget.
// Cost: about 1 s (8 reads of 64 KiB events behind a 3-read budget).
func TestReadsWaitForTheBudget(t *testing.T) {
	const (
		pull     = 64 << 10
		eventLen = 16 << 10
		events   = 40
		readers  = 8
	)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	js := jetStream(t, true)
	stream, err := Ensure(ctx, js, StreamConfig{Storage: "memory"})
	if err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, eventLen)
	for range events {
		if _, err := js.Publish(ctx, "events.big", payload); err != nil {
			t.Fatal(err)
		}
	}
	var inFlight, peak atomic.Int64
	counting := lossy{js, func(m jetstream.Msg) bool {
		raise(&peak, inFlight.Add(int64(len(m.Data()))))
		return false
	}}
	// Budget 256 KiB: 64 KiB kept for backfills, 192 KiB (3 reads) for reads.
	var waiting, maxWaiting atomic.Int64
	h := NewHistory(counting, stream, 0, WithPullBytes(pull), WithBudget(4*pull),
		WithWaiting(func(d float64) { raise(&maxWaiting, waiting.Add(int64(d))) }))
	var active, maxActive atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, readers)
	for range readers {
		wg.Go(func() {
			n := 0
			err := h.Read(ctx, []string{"events.big"}, 0, 0, 0, func(m Msg) error {
				if n == 0 {
					raise(&maxActive, active.Add(1))
				}
				inFlight.Add(-int64(len(m.Data)))
				n++
				time.Sleep(time.Millisecond) // a client that reads slowly
				return nil
			})
			if n > 0 {
				active.Add(-1)
			}
			if err == nil && n != events {
				err = fmt.Errorf("read %d events, want %d", n, events)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if maxWaiting.Load() < readers-3 || waiting.Load() != 0 {
		t.Errorf("waiting count peaked at %d and ended at %d; want at least %d waiting, then none", maxWaiting.Load(), waiting.Load(), readers-3)
	}
	if got := maxActive.Load(); got > 3 {
		t.Errorf("%d reads ran at once; the budget allows 3", got)
	}
	if got := peak.Load(); got > 3*pull {
		t.Errorf("%d bytes in flight at the peak; the reads' share is %d", got, 3*pull)
	}
	t.Logf("peak in flight %d bytes, %d reads at once", peak.Load(), maxActive.Load())
	noConsumersLeft(t, js)
}

// TestTooManySubjects: a read of more than MaxSubjects subjects is refused,
// and a read of none reads nothing (not the whole stream).
func TestTooManySubjects(t *testing.T) {
	ctx, js, stream := seeded(t, StreamConfig{Storage: "memory"}, "events.a")
	h := NewHistory(js, stream, 1)
	subjects := make([]string, MaxSubjects+1)
	for i := range subjects {
		subjects[i] = fmt.Sprintf("events.s%d", i)
	}
	fn := func(Msg) error { return nil }
	if err := h.Read(ctx, subjects, 0, 0, 0, fn); !errors.Is(err, ErrTooManySubjects) {
		t.Errorf("Read: %v", err)
	}
	if _, err := h.Resolve(ctx, "0", subjects); !errors.Is(err, ErrTooManySubjects) {
		t.Errorf("Resolve: %v", err)
	}
	if err := h.Read(ctx, subjects[:MaxSubjects], 0, 0, 0, fn); err != nil {
		t.Errorf("Read of MaxSubjects subjects: %v", err)
	}
	if err := h.Read(ctx, nil, 0, 0, 0, func(Msg) error { return errors.New("called") }); err != nil {
		t.Errorf("Read of no subjects: %v", err)
	}
}

// raise sets p to n if n is larger.
func raise(p *atomic.Int64, n int64) {
	for old := p.Load(); n > old && !p.CompareAndSwap(old, n); old = p.Load() {
	}
}

func noConsumersLeft(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	if n := natstest.Stream(t, js, "SSEGATE").CachedInfo().State.Consumers; n != 0 {
		t.Fatalf("%d consumers left after the read", n)
	}
}

// TestReadPassesThrough: a read does not take "nothing pending" for caught
// up until its consumer has looked at every sequence up to through. Here
// the stream has not reached through when the read has taken every
// matching message, as a server still applying a failover's backlog would
// answer; the read waits until the stream gets there.
func TestReadPassesThrough(t *testing.T) {
	ctx, js, stream := seeded(t, StreamConfig{Storage: "memory"}, cycle(3, "events.a")...)
	h := NewHistory(js, stream, 1)
	took := make(chan uint64, 8)
	done := make(chan error, 1)
	go func() {
		done <- h.Read(ctx, []string{"events.a"}, 0, 6, 0, func(m Msg) error {
			took <- m.Seq
			return nil
		})
	}()
	for want := uint64(1); want <= 3; want++ {
		if got := <-took; got != want {
			t.Fatalf("took %d, want %d", got, want)
		}
	}
	select {
	case err := <-done:
		t.Fatalf("read ended at 3, short of through 6: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	for range 3 {
		if _, err := js.Publish(ctx, "events.b", []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("read did not end once the stream passed through")
	}
	if len(took) != 0 {
		t.Fatalf("took %d more messages of other subjects", len(took))
	}
}

// TestFollowGoesOn: a follower passes on what is stored and then every
// message stored later, across subjects, in stream order.
func TestFollowGoesOn(t *testing.T) {
	ctx, js, stream := seeded(t, StreamConfig{Storage: "memory"}, "events.a", "events.b")
	h := NewHistory(js, stream, 1)
	var got []uint64
	enough := errors.New("enough")
	published := false
	err := h.Follow(ctx, 1, func(m Msg) error {
		got = append(got, m.Seq)
		if !published {
			published = true
			for _, s := range []string{"events.c", "events.a"} {
				if _, err := js.Publish(ctx, s, []byte("x")); err != nil {
					return err
				}
			}
		}
		if len(got) == 3 {
			return enough
		}
		return nil
	})
	if !errors.Is(err, enough) || !slices.Equal(got, []uint64{2, 3, 4}) {
		t.Fatalf("followed %v, %v; want [2 3 4]", got, err)
	}
}

// Package faulttest holds the building blocks of the fault suite, shared by
// the in-process tests and the e2e tests against built binaries: a
// publisher that counts only acked events, clients that follow EventSource
// rules, and a checker for exactly-once, in-order delivery.
package faulttest

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Event is one event as the publisher stored it or a client received it.
type Event struct {
	Seq     uint64
	Channel string
}

// Publisher publishes at a steady rate, round robin over Channels, to
// Prefix+channel. It records an event only once JetStream acked it; a
// failed publish is retried with the same message id (so a lost ack does
// not store it twice), and one never acked is not counted.
type Publisher struct {
	JS       jetstream.JetStream
	Prefix   string        // subject prefix, "events." when empty
	Channels []string      // published round robin
	Interval time.Duration // between publishes; 5ms when zero
	// RetryFor bounds the retries of one event; 20s when zero.
	RetryFor time.Duration
	// Pad adds this many bytes to each event's data.
	Pad int
	// InFlight is how many events may wait for their acks at once; 1 when
	// zero. A cluster's ack takes milliseconds, so a steady rate of
	// hundreds a second needs several.
	InFlight int

	failures atomic.Int64
	count    atomic.Int64
	started  atomic.Int64 // publishes begun, acked or not

	mu      sync.Mutex
	acked   []Event
	ackedAt map[uint64]time.Time
}

// Run publishes until ctx is done. It returns nil then; it returns an
// error only when one event could not be acked within RetryFor.
func (p *Publisher) Run(ctx context.Context) error {
	pace := time.NewTicker(cmp.Or(p.Interval, 5*time.Millisecond))
	defer pace.Stop()
	var next atomic.Int64
	errs := make(chan error, max(1, p.InFlight))
	var wg sync.WaitGroup
	for range max(1, p.InFlight) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- p.run(ctx, pace.C, &next)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// run is one of Run's workers: it publishes event after event on the
// shared pace, each numbered from next.
func (p *Publisher) run(ctx context.Context, pace <-chan time.Time, next *atomic.Int64) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-pace:
		}
		i := int(next.Add(1) - 1)
		ch := p.Channels[i%len(p.Channels)]
		msg := nats.NewMsg(cmp.Or(p.Prefix, "events.") + ch)
		msg.Data = fmt.Appendf(nil, "%s|%d|%s", ch, i, strings.Repeat("x", p.Pad))
		msg.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("fault-%p-%d", p, i))
		p.started.Add(1)
		ack, err := p.publish(ctx, msg)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return fmt.Errorf("event %d on %s: %w", i, ch, err)
		}
		p.record(Event{Seq: ack.Sequence, Channel: ch})
	}
}

// Publish stores one event on channel now, outside the steady run, and
// records it once acked.
func (p *Publisher) Publish(ctx context.Context, channel string) (uint64, error) {
	msg := nats.NewMsg(cmp.Or(p.Prefix, "events.") + channel)
	msg.Data = []byte(channel + "|single")
	p.started.Add(1)
	ack, err := p.publish(ctx, msg)
	if err != nil {
		return 0, err
	}
	p.record(Event{Seq: ack.Sequence, Channel: channel})
	return ack.Sequence, nil
}

func (p *Publisher) record(ev Event) {
	p.mu.Lock()
	p.acked = append(p.acked, ev)
	if p.ackedAt == nil {
		p.ackedAt = make(map[uint64]time.Time)
	}
	p.ackedAt[ev.Seq] = time.Now()
	p.mu.Unlock()
	p.count.Add(1)
}

func (p *Publisher) publish(ctx context.Context, msg *nats.Msg) (*jetstream.PubAck, error) {
	return PublishRetrying(ctx, p.JS, msg, cmp.Or(p.RetryFor, 20*time.Second), func(error) { p.failures.Add(1) })
}

// PublishRetrying publishes msg until the stream acks it, within retryFor,
// each attempt bounded by a second: while a node is down or NATS restarts,
// the stream may be electing a leader. Each failed attempt is told to
// failed, which may be nil.
func PublishRetrying(ctx context.Context, js jetstream.JetStream, msg *nats.Msg, retryFor time.Duration, failed func(error)) (*jetstream.PubAck, error) {
	ctx, cancel := context.WithTimeout(ctx, retryFor)
	defer cancel()
	for {
		actx, acancel := context.WithTimeout(ctx, time.Second)
		ack, err := js.PublishMsg(actx, msg)
		acancel()
		if err == nil {
			return ack, nil
		}
		if failed != nil {
			failed(err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("not acked within %v: %w", retryFor, err)
		case <-time.After(20 * time.Millisecond): // a retry backoff
		}
	}
}

// Count is how many events were acked.
func (p *Publisher) Count() int64 { return p.count.Load() }

// Failures is how many publish attempts failed and were retried.
func (p *Publisher) Failures() int64 { return p.failures.Load() }

// SettledSeq waits, up to timeout, until every publish begun before the
// call is acked, and returns the newest acked sequence then. An event
// whose publish began before a client's stream opened may have been stored
// before the client attached, and its ack may still be on its way; only
// events begun after are surely owed to the client.
func (p *Publisher) SettledSeq(timeout time.Duration) uint64 {
	begun := p.started.Load()
	deadline := time.Now().Add(timeout)
	for p.count.Load() < begun && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	return p.LastSeq()
}

// LastSeq is the sequence of the newest acked event, 0 if none.
func (p *Publisher) LastSeq() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	var last uint64
	for _, ev := range p.acked {
		last = max(last, ev.Seq)
	}
	return last
}

// Acked returns the acked events in ack order.
func (p *Publisher) Acked() []Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.acked)
}

// AckedAt says when the event with seq was acked.
func (p *Publisher) AckedAt(seq uint64) (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	at, ok := p.ackedAt[seq]
	return at, ok
}

// Summary says what was published.
func (p *Publisher) Summary() string {
	channels := strings.Join(p.Channels, ",")
	if len(p.Channels) > 8 {
		channels = fmt.Sprintf("%d channels", len(p.Channels))
	}
	return fmt.Sprintf("%d events acked on %s (last seq %d), %d publish attempts retried",
		p.Count(), channels, p.LastSeq(), p.Failures())
}

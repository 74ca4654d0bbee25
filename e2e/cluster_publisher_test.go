package e2e

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/ssegate/ssegate/internal/faulttest"
)

type publisher struct {
	js       jetstream.JetStream
	count    atomic.Int64 // events acked
	failures atomic.Int64 // publish attempts that failed and were retried
	dups     atomic.Int64 // acks that said the message was stored already
	// stopAfter, once set, is how many events to publish at least; until
	// then the publisher goes on past totalEvents.
	stopAfter atomic.Int64

	mu    sync.Mutex
	acked map[string][]uint64 // by subject, in publish order
}

// run publishes events alternating between the subjects, at least
// totalEvents and at least stopAfter once that is set. Each carries a
// message id, so a retry after a lost ack is not stored twice.
func (p *publisher) run(ctx context.Context) error {
	pace := time.NewTicker(5 * time.Millisecond)
	defer pace.Stop()
	for i := 0; ; i++ {
		if stop := p.stopAfter.Load(); i >= totalEvents && stop != 0 && int64(i) >= stop {
			return nil
		}
		if i >= maxEvents {
			return fmt.Errorf("published %d events and the node shutdown has not happened", i)
		}
		subj := clusterSubjects[i%len(clusterSubjects)]
		if i%5 == 4 { // not strictly alternating
			subj = clusterSubjects[0]
		}
		msg := nats.NewMsg(subj)
		msg.Data = []byte(fmt.Sprintf("%s #%d", subj, i))
		msg.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("e2e-%d", i))
		ack, err := p.publish(ctx, msg)
		if err != nil {
			return fmt.Errorf("event %d on %s: %w", i, subj, err)
		}
		if ack.Duplicate {
			p.dups.Add(1)
		}
		p.mu.Lock()
		p.acked[subj] = append(p.acked[subj], ack.Sequence)
		p.mu.Unlock()
		p.count.Add(1)
		select {
		case <-pace.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// publish retries until the stream acks, within publishRetryFor: while a
// node is down, the stream may be electing a leader.
func (p *publisher) publish(ctx context.Context, msg *nats.Msg) (*jetstream.PubAck, error) {
	return faulttest.PublishRetrying(ctx, p.js, msg, publishRetryFor, func(error) { p.failures.Add(1) })
}

func (p *publisher) snapshot() map[string][]uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string][]uint64, len(p.acked))
	for k, v := range p.acked {
		out[k] = slices.Clone(v)
	}
	return out
}

type storedMsg struct {
	seq     uint64
	subject string
	data    string
}

// readStream reads every stored event of the channels, in stream order.
func readStream(ctx context.Context, js jetstream.JetStream) ([]storedMsg, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	cons, err := js.OrderedConsumer(ctx, gatewayStreamName, jetstream.OrderedConsumerConfig{FilterSubjects: clusterSubjects})
	if err != nil {
		return nil, err
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return nil, err
	}
	if info.NumPending == 0 {
		return nil, nil
	}
	it, err := cons.Messages()
	if err != nil {
		return nil, err
	}
	defer func() {
		// The consumer check at the end counts the gateways' consumers.
		it.Stop()
		dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = js.DeleteConsumer(dctx, gatewayStreamName, cons.CachedInfo().Name)
	}()
	var out []storedMsg
	for {
		m, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			return out, err
		}
		meta, err := m.Metadata()
		if err != nil {
			return out, err
		}
		out = append(out, storedMsg{seq: meta.Sequence.Stream, subject: m.Subject(), data: string(m.Data())})
		if meta.NumPending == 0 {
			return out, nil
		}
	}
}

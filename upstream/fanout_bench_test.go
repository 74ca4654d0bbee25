package upstream

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"

	"github.com/ssegate/ssegate/internal/natstest"
	"github.com/ssegate/ssegate/replay"
)

// headReaderAt answers the hub's head checks with the benchmark's own
// newest sequence, so that no JetStream request sits in the measured path.
type headReaderAt struct {
	seq atomic.Uint64
}

func (r *headReaderAt) Follow(ctx context.Context, _ uint64, _ func(replay.Msg) error) error {
	<-ctx.Done()
	return ctx.Err()
}

func (r *headReaderAt) Head(context.Context) (replay.Head, error) {
	return replay.Head{LastSeq: r.seq.Load(), Epoch: "bench"}, nil
}

// BenchmarkFanOut measures the dispatcher's work for one live message: its
// position headers read, its frame encoded once (64-byte payload), and the
// frame queued to every client of the channel. The clients' queues are
// emptied after each message, which the figure includes; no network write
// is in it.
func BenchmarkFanOut(b *testing.B) {
	for _, n := range []int{1, 100, 1000, 5000} {
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) { benchFanOut(b, n) })
	}
}

func benchFanOut(b *testing.B, clients int) {
	ns := natstest.Server(b)
	conn, err := Acquire(Config{URLs: []string{ns.ClientURL()}}, zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = conn.Release() })
	cfg := replay.StreamConfig{Storage: "memory"}.WithDefaults()
	r := new(headReaderAt)
	hub, err := newHub(conn, cfg, r, "bench")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(hub.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	subject := "events.bench"
	cs := make([]*Client, clients)
	for i := range cs {
		if cs[i], err = hub.Attach(ctx, []string{subject}, 4096, false); err != nil {
			b.Fatal(err)
		}
		defer cs[i].Detach()
	}
	m := &nats.Msg{
		Subject: cfg.LiveSubject(subject),
		Header: nats.Header{
			"Nats-Stream":  {cfg.Name},
			"Nats-Subject": {subject},
			"Sse-Event":    {"update"},
		},
		Data: []byte("1732222222000000000 0000000123 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"),
	}
	var batch []Frame
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		seq := r.seq.Add(1)
		m.Header["Nats-Sequence"] = []string{strconv.FormatUint(seq, 10)}
		m.Header["Nats-Last-Sequence"] = []string{strconv.FormatUint(seq-1, 10)}
		hub.handle(m)
		for _, c := range cs {
			batch, _ = c.Take(batch[:0], 64)
		}
	}
	b.StopTimer()
	for _, c := range cs {
		if c.ended.Load() {
			b.Fatalf("a client was ended (%v): the figure would not be a full fan-out", c.Reason())
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(clients), "ns/delivery")
}

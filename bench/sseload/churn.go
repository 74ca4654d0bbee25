package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// churnFigures say whether a server returns to where it was after many
// short streams: goroutines, NATS subscriptions and RSS.
type churnFigures struct {
	base, peak, after5, after30 sample
	connects, failed            atomic.Int64
	mu                          sync.Mutex
	openLat                     hist // request start to response headers
}

type sample struct {
	goroutines, subs int
	rss              int64
	heap             int64 // live heap after a forced GC; 0 if not read
	err              error
}

// takeSample reads RSS first, so that the GC forced for the live heap
// (withHeap) cannot change it.
func takeSample(t *target, withHeap bool) sample {
	var s sample
	var e1, e2, e3, e4 error
	s.rss, e1 = vmRSS(t.srv.pid())
	s.goroutines, e2 = goroutines(t.pprof)
	s.subs, e3 = subscriptions(t.monitor)
	if withHeap {
		var m memStats
		m, e4 = readMemStats(t.pprof)
		s.heap = m.heapAlloc
	}
	s.err = cmpErr(e1, e2, e3, e4)
	return s
}

func cmpErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

func (s sample) String() string {
	if s.err != nil {
		return "error: " + s.err.Error()
	}
	out := fmt.Sprintf("%d goroutines, %d subscriptions, RSS %.1f MiB", s.goroutines, s.subs, mib(s.rss))
	if s.heap > 0 {
		out += fmt.Sprintf(", live heap %.1f MiB", mib(s.heap))
	}
	return out
}

// runChurn opens -rate streams per second for -duration, each on a channel
// of its own and held for -hold, so every connect subscribes and every
// disconnect unsubscribes. It samples the server before, each second
// during (the peak), and 5 s and 30 s after the last stream closed. The
// live heap is read before and at 30 s only, after the RSS: reading it
// forces a GC, which would change the RSS that follows.
func runChurn(o options, t *target) (*figures, error) {
	c := o.cmp
	cf := &churnFigures{base: takeSample(t, true)}
	f := &figures{server: t.name, churn: cf, rssBefore: cf.base.rss}
	if cf.base.err != nil {
		return nil, cf.base.err
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.duration+c.hold+time.Minute)
	defer cancel()
	client := newClient("h1")
	sampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				cf.peak = maxSample(cf.peak, takeSample(t, false))
			case <-sampling:
				return
			}
		}
	}()
	var streams sync.WaitGroup
	start := time.Now()
	for i := 0; ; {
		el := time.Since(start)
		if el >= o.duration || ctx.Err() != nil {
			break
		}
		for due := int(el.Seconds() * c.rate); i < due; i++ {
			streams.Go(func() { cf.one(ctx, client, t.url(fmt.Sprintf("churn%d", i)), c.hold) })
		}
		time.Sleep(time.Millisecond)
	}
	f.window = time.Since(start)
	streams.Wait()
	close(sampling)
	<-sampled
	time.Sleep(5 * time.Second)
	cf.after5 = takeSample(t, false)
	time.Sleep(25 * time.Second)
	cf.after30 = takeSample(t, true)
	return f, nil
}

// one opens a stream, reads it for hold, and closes it.
func (cf *churnFigures) one(ctx context.Context, client *http.Client, url string, hold time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, hold)
	defer cancel()
	t0 := time.Now()
	body, err := request(ctx, client, url)
	cf.connects.Add(1)
	if err != nil {
		cf.failed.Add(1)
		return
	}
	cf.mu.Lock()
	cf.openLat.add(time.Since(t0))
	cf.mu.Unlock()
	_, _ = io.Copy(io.Discard, body)
	body.Close()
}

func maxSample(a, b sample) sample {
	if b.err != nil {
		return a
	}
	return sample{goroutines: max(a.goroutines, b.goroutines), subs: max(a.subs, b.subs), rss: max(a.rss, b.rss)}
}

package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"math/bits"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// tracked is one stream of a compare run. Only its reader writes it,
// except events, which the run polls while it waits for queued events.
type tracked struct {
	channel int
	open    bool
	events  atomic.Int64
	lastN   uint64
	dups    int64 // events whose publish number was at or below the last
	hist    hist
	err     error
}

// streamSet is the streams of one run, all opened before the load starts.
type streamSet struct {
	streams []*tracked
	opened  atomic.Int64
	readers sync.WaitGroup
	errs    sync.Map // error text -> *atomic.Int64
}

// opener opens one client of a set: a stream (streamSet.open) or a poll
// loop (streamSet.poll).
type opener func(s *streamSet, ctx context.Context, c *http.Client, url string, t *tracked)

// openStreams opens n clients with open, ramp at a time, and returns once
// every attempt has an answer. Each open client is read until ctx ends.
func openStreams(ctx context.Context, clients []*http.Client, n, ramp int, url func(i int) string, channel func(i int) int, open opener) *streamSet {
	s := &streamSet{streams: make([]*tracked, n)}
	next := make(chan int)
	var openers sync.WaitGroup
	for range min(ramp, n) {
		openers.Go(func() {
			for i := range next {
				t := &tracked{channel: channel(i)}
				s.streams[i] = t
				open(s, ctx, clients[i%len(clients)], url(i), t)
			}
		})
	}
	for i := range n {
		if ctx.Err() != nil {
			break
		}
		next <- i
	}
	close(next)
	openers.Wait()
	return s
}

func (s *streamSet) open(ctx context.Context, c *http.Client, url string, t *tracked) {
	body, err := request(ctx, c, url)
	if err != nil {
		t.err = err
		s.countErr(err)
		return
	}
	t.open = true
	s.opened.Add(1)
	s.readers.Go(func() {
		defer body.Close()
		err := readEvents(body, math.MaxInt, t.record)
		if ctx.Err() == nil {
			t.err = err
			s.countErr(err)
		}
	})
}

func (s *streamSet) countErr(err error) {
	v, _ := s.errs.LoadOrStore(err.Error(), new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
}

// request opens one stream and checks that it is one.
func request(ctx context.Context, c *http.Client, url string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		resp.Body.Close()
		return nil, fmt.Errorf("%s, Content-Type %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	return resp.Body, nil
}

// record takes one event: its publish number and publish time.
func (t *tracked) record(_, data []byte) {
	now := time.Now()
	ts, n, ok := parsePayload(data)
	t.events.Add(1)
	if !ok {
		return
	}
	if n <= t.lastN {
		t.dups++
	}
	t.lastN = n
	t.hist.add(now.Sub(time.Unix(0, ts)))
}

func (s *streamSet) delivered() int64 {
	var n int64
	for _, t := range s.streams {
		if t != nil {
			n += t.events.Load()
		}
	}
	return n
}

func (s *streamSet) errors() map[string]int64 {
	out := map[string]int64{}
	s.errs.Range(func(k, v any) bool {
		out[k.(string)] = v.(*atomic.Int64).Load()
		return true
	})
	return out
}

// hist is a log-linear latency histogram in microseconds: exact below
// 64 µs, then 32 buckets per power of two (about 3% wide). Its buckets are
// allocated on the first sample, so an idle stream costs nothing.
type hist struct {
	b []uint32
}

const (
	histLinear = 64
	histSub    = 32
	histOctave = 36 // up to 2^36 µs, about 19 hours
	histSize   = histLinear + (histOctave-6)*histSub
)

func bucket(us uint64) int {
	if us < histLinear {
		return int(us)
	}
	exp := bits.Len64(us) - 1
	if exp >= histOctave {
		return histSize - 1
	}
	shift := exp - 5
	return histLinear + (exp-6)*histSub + int(us>>shift) - histSub
}

// bucketValue is the middle of bucket i, in microseconds.
func bucketValue(i int) float64 {
	if i < histLinear {
		return float64(i)
	}
	exp := (i-histLinear)/histSub + 6
	mant := uint64((i-histLinear)%histSub + histSub)
	shift := exp - 5
	return float64(mant<<shift) + float64(uint64(1)<<shift)/2
}

func (h *hist) add(d time.Duration) {
	if h.b == nil {
		h.b = make([]uint32, histSize)
	}
	h.b[bucket(uint64(max(d.Microseconds(), 0)))]++
}

func (h *hist) merge(o *hist) {
	if o.b == nil {
		return
	}
	if h.b == nil {
		h.b = make([]uint32, histSize)
	}
	for i, v := range o.b {
		h.b[i] += v
	}
}

func (h *hist) count() uint64 {
	var n uint64
	for _, v := range h.b {
		n += uint64(v)
	}
	return n
}

// quantile returns the latency below which a fraction q of samples lie.
func (h *hist) quantile(q float64) time.Duration {
	total := h.count()
	if total == 0 {
		return 0
	}
	want := uint64(math.Ceil(q * float64(total)))
	var seen uint64
	for i, v := range h.b {
		seen += uint64(v)
		if seen >= max(want, 1) {
			return time.Duration(bucketValue(i) * float64(time.Microsecond))
		}
	}
	return time.Duration(bucketValue(histSize-1) * float64(time.Microsecond))
}

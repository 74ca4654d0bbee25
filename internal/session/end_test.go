package session

import (
	"context"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ssegate/ssegate/replay"
	"github.com/ssegate/ssegate/upstream"
)

// benchMetrics counts as the gateway does, so that a benchmark's
// allocations include the counts' own.
func benchMetrics() Metrics {
	delivered := prometheus.NewCounter(prometheus.CounterOpts{Name: "delivered"})
	written := prometheus.NewCounter(prometheus.CounterOpts{Name: "written"})
	latency := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "latency"})
	return Metrics{
		Delivered: func(n int) { delivered.Add(float64(n)) },
		Written:   func(n int) { written.Add(float64(n)) },
		Latency:   latency.Observe,
	}
}

// tally is a Metrics that remembers every count.
type tally struct {
	mu     sync.Mutex
	counts map[string]int
}

func (t *tally) add(name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.counts == nil {
		t.counts = map[string]int{}
	}
	t.counts[name]++
}

func (t *tally) get(name string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.counts[name]
}

func (t *tally) metrics() Metrics {
	return Metrics{
		Slow:   func() { t.add("slow") },
		Ended:  func(reason string) { t.add("ended:" + reason) },
		Reset:  func(reason string) { t.add("reset:" + reason) },
		Opened: func(string) { t.add("opened") },
		Closed: func(string) { t.add("closed") },
	}
}

// stuckWriter times out every write from the nth on, as a connection
// whose client stopped reading does, and records what it was asked to
// write.
type stuckWriter struct {
	header http.Header
	n      int
	writes []string
}

func (w *stuckWriter) Header() http.Header { return w.header }
func (w *stuckWriter) WriteHeader(int)     {}
func (w *stuckWriter) Flush()              {}
func (w *stuckWriter) Write(b []byte) (int, error) {
	w.writes = append(w.writes, string(b))
	if len(w.writes) >= w.n {
		return 0, os.ErrDeadlineExceeded
	}
	return len(b), nil
}

// longHistory has three events after any position.
type longHistory struct{}

func (longHistory) Resolve(context.Context, string, []string) (replay.Resolution, error) {
	return replay.Resolution{After: 10, Current: replay.ID{Seq: 13, Epoch: "abcd"}}, nil
}

func (longHistory) Read(_ context.Context, _ []string, after, _ uint64, _ int, fn func(replay.Msg) error) error {
	for seq := after + 1; seq <= 13; seq++ {
		if err := fn(replay.Msg{Seq: seq, Subject: "events.a", Data: []byte("x")}); err != nil {
			return err
		}
	}
	return nil
}

func (longHistory) Epoch() string { return "abcd" }

// TestWriteTimeoutDuringReplayCountsOnce: a client that stops reading
// while its replay is written ends as slow, counted once as slow and once
// as ended, and is not written to again (issue 16, item 15).
func TestWriteTimeoutDuringReplayCountsOnce(t *testing.T) {
	var counts tally
	sv := New(Config{Retry: time.Second, ReplayLimit: 100, WriteTimeout: time.Second}, counts.metrics(), nil)
	w := &stuckWriter{header: http.Header{}, n: 2}
	s := sv.newSession(w, []string{"events.a"})
	s.client, s.history = &behindClient{}, longHistory{}
	s.run(context.Background(), "HTTP/1.1", "10-abcd", time.Time{})
	if s.ended != endSlow {
		t.Fatalf("stream ended as %q, want slow", s.ended)
	}
	if got := counts.get("slow"); got != 1 {
		t.Errorf("slow counted %d times, want once", got)
	}
	if got := counts.get("ended:slow"); got != 1 {
		t.Errorf("ended slow counted %d times, want once", got)
	}
	for reason := range counts.counts {
		if strings.HasPrefix(reason, "ended:") && reason != "ended:slow" {
			t.Errorf("also counted %s", reason)
		}
	}
	if len(w.writes) != 2 {
		t.Errorf("%d writes, want 2: nothing after the one that timed out: %q", len(w.writes), w.writes)
	}
	if counts.get("opened") != 1 || counts.get("closed") != 1 {
		t.Errorf("opened %d, closed %d; want once each", counts.get("opened"), counts.get("closed"))
	}
}

// TestWriteTimeoutLiveCountsOnce: a live write that times out ends the
// stream as slow, counted once, with no last frame to the stuck client.
func TestWriteTimeoutLiveCountsOnce(t *testing.T) {
	var counts tally
	sv := New(Config{Heartbeat: time.Hour, Retry: time.Second, WriteTimeout: time.Second}, counts.metrics(), nil)
	w := &stuckWriter{header: http.Header{}, n: 1}
	s := sv.newSession(w, []string{"events.a"})
	c := newFeedClient()
	s.client = c
	c.push(upstream.Frame{Seq: 1, Data: []byte("data: x\n\n")})
	s.run(context.Background(), "HTTP/1.1", "", time.Time{})
	if s.ended != endSlow || counts.get("slow") != 1 || counts.get("ended:slow") != 1 || len(w.writes) != 1 {
		t.Fatalf("ended %q, slow %d, ended slow %d, writes %q", s.ended, counts.get("slow"), counts.get("ended:slow"), w.writes)
	}
}

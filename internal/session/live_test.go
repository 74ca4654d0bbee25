package session

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ssegate/ssegate/internal/eventfilter"
	"github.com/ssegate/ssegate/upstream"
)

// feedClient is a hub attachment whose frames the test pushes.
type feedClient struct {
	ready, done chan struct{}
	mu          sync.Mutex
	frames      []upstream.Frame
}

func newFeedClient() *feedClient {
	return &feedClient{ready: make(chan struct{}, 1), done: make(chan struct{})}
}

func (c *feedClient) push(f upstream.Frame) {
	c.mu.Lock()
	c.frames = append(c.frames, f)
	c.mu.Unlock()
	select {
	case c.ready <- struct{}{}:
	default:
	}
}

func (c *feedClient) Ready() <-chan struct{} { return c.ready }
func (c *feedClient) Take(dst []upstream.Frame, max int) ([]upstream.Frame, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := min(max, len(c.frames))
	dst = append(dst, c.frames[:n]...)
	// Kept at the front of its array, so that the fake allocates nothing.
	c.frames = c.frames[:copy(c.frames, c.frames[n:])]
	return dst, len(c.frames) > 0
}
func (c *feedClient) Done() <-chan struct{}   { return c.done }
func (c *feedClient) Reason() upstream.Reason { return upstream.ReasonNone }
func (c *feedClient) Epoch() string           { return "abcd" }
func (c *feedClient) EndReplay(uint64) bool   { return true }
func (c *feedClient) Start() uint64           { return 0 }
func (c *feedClient) Detach()                 {}

// timedWriter records when each write came, and what it wrote.
type timedWriter struct {
	mu     sync.Mutex
	header http.Header
	writes []timedWrite
}

type timedWrite struct {
	at   time.Time
	data string
}

func (w *timedWriter) Header() http.Header { return w.header }
func (w *timedWriter) WriteHeader(int)     {}
func (w *timedWriter) Flush()              {}
func (w *timedWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes = append(w.writes, timedWrite{time.Now(), string(b)})
	return len(b), nil
}

func (w *timedWriter) snapshot() []timedWrite {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]timedWrite(nil), w.writes...)
}

func testSession(heartbeat time.Duration) (*session, *feedClient, *timedWriter) {
	sv := New(Config{Heartbeat: heartbeat, Retry: time.Second, WriteTimeout: time.Second}, Metrics{}, nil)
	w := &timedWriter{header: http.Header{}}
	s := sv.newSession(w, []string{"events.a"})
	c := newFeedClient()
	s.client = c
	return s, c, w
}

func startLive(t *testing.T, s *session) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		s.live(ctx, time.Time{})
	}()
	t.Cleanup(func() { cancel(); <-stopped })
}

// TestHeartbeatOnlyAfterSilence: a stream whose events come more often
// than the heartbeat interval gets no heartbeat; once they stop, one comes
// an interval after the last event, not earlier.
func TestHeartbeatOnlyAfterSilence(t *testing.T) {
	const interval = 300 * time.Millisecond
	s, c, w := testSession(interval)
	startLive(t, s)
	tick := time.NewTicker(interval / 10)
	defer tick.Stop()
	for seq := uint64(1); seq <= 30; seq++ {
		<-tick.C
		c.push(upstream.Frame{Seq: seq, Data: []byte("data: " + strconv.FormatUint(seq, 10) + "\n\n")})
	}
	deadline := time.Now().Add(interval + 5*time.Second)
	for {
		writes := w.snapshot()
		var lastEvent time.Time
		events := 0
		for _, wr := range writes {
			if wr.data == ":\n\n" {
				if events < 30 {
					t.Fatalf("heartbeat after %d of 30 events, which came every %v", events, interval/10)
				}
				if gap := wr.at.Sub(lastEvent); gap < interval {
					t.Fatalf("heartbeat %v after the last event, want at least %v", gap, interval)
				}
				return
			}
			events += bytes.Count([]byte(wr.data), []byte("data: "))
			lastEvent = wr.at
		}
		if time.Now().After(deadline) {
			t.Fatalf("no heartbeat within %v of the last event; %d events written", interval+5*time.Second, events)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestBatchWritesEveryFrameInOrder: a batch larger than the gathering
// buffer, with a frame larger than the buffer in it, reaches the client
// whole and in order.
func TestBatchWritesEveryFrameInOrder(t *testing.T) {
	s, _, w := testSession(time.Hour)
	var batch []upstream.Frame
	var want bytes.Buffer
	for seq := uint64(1); seq <= 40; seq++ {
		size := 1000
		if seq == 20 {
			size = 2 * maxBuffered
		}
		data := bytes.Repeat([]byte{byte('a' + seq%26)}, size)
		batch = append(batch, upstream.Frame{Seq: seq, Data: data})
		want.Write(data)
	}
	if err := s.sendBatch(batch); err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	for _, wr := range w.snapshot() {
		if len(wr.data) > maxBuffered && len(wr.data) != 2*maxBuffered {
			t.Fatalf("a write of %d bytes: more than the %d-byte buffer", len(wr.data), maxBuffered)
		}
		got.WriteString(wr.data)
	}
	if !bytes.Equal(got.Bytes(), want.Bytes()) {
		t.Fatalf("wrote %d bytes, want %d in order", got.Len(), want.Len())
	}
	if s.lastSent != 40 || s.sent != 40 {
		t.Fatalf("lastSent %d, sent %d; want 40 and 40", s.lastSent, s.sent)
	}
}

// flushCounter counts the bytes written and tells each flush.
type flushCounter struct {
	header  http.Header
	n       atomic.Int64
	flushed chan struct{}
}

func (w *flushCounter) Header() http.Header { return w.header }
func (w *flushCounter) WriteHeader(int)     {}
func (w *flushCounter) Write(b []byte) (int, error) {
	w.n.Add(int64(len(b)))
	return len(b), nil
}
func (w *flushCounter) Flush() {
	select {
	case w.flushed <- struct{}{}:
	default:
	}
}

// BenchmarkLiveDelivery measures a session's live loop without the network:
// from frames queued to frames written and flushed, one at a time (each
// its own batch, as at a low rate) and in bursts of 64 (one batch). With
// filter=update the stream keeps only events named update (every frame
// is), so the difference is what finding each frame's name costs.
func BenchmarkLiveDelivery(b *testing.B) {
	for _, burst := range []int{1, 64} {
		for _, filter := range []string{"none", "update"} {
			b.Run(fmt.Sprintf("burst=%d/filter=%s", burst, filter), func(b *testing.B) {
				benchLiveDelivery(b, burst, filter)
			})
		}
	}
}

func benchLiveDelivery(b *testing.B, burst int, filter string) {
	sv := New(Config{Heartbeat: time.Hour, Retry: time.Second, WriteTimeout: time.Second}, benchMetrics(), nil)
	w := &flushCounter{header: http.Header{}, flushed: make(chan struct{}, 1)}
	s := sv.newSession(w, []string{"events.a"})
	if filter != "none" {
		f, err := eventfilter.Parse(url.Values{eventfilter.Param: {filter}})
		if err != nil {
			b.Fatal(err)
		}
		OnlyEvents(f)(s)
	}
	c := newFeedClient()
	s.client = c
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		s.live(ctx, time.Time{})
	}()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-stopped }) }
	defer stop()
	data := []byte("id: 123456-abcd\nevent: update\ndata: " + strings.Repeat("x", 64) + "\n\n")
	var seq uint64
	b.ReportAllocs()
	for b.Loop() {
		for range burst {
			seq++
			// Stored, as a live event has: its latency is observed.
			c.push(upstream.Frame{Seq: seq, Data: data, Stored: 1})
		}
		for want := int64(seq) * int64(len(data)); w.n.Load() < want; {
			<-w.flushed
		}
	}
	stop()
	if s.skipped != 0 {
		b.Fatalf("the filter dropped %d frames named update", s.skipped)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(seq), "ns/frame")
}

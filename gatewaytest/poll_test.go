package gatewaytest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/ssegate/ssegate/history"
	"github.com/ssegate/ssegate/replay"
)

// TestPollAnswersAtTheFirstEvent: a waiting poll answers as soon as an
// event is published, and one that gets none answers empty at its wait
// with a position to poll on from.
func TestPollAnswersAtTheFirstEvent(t *testing.T) {
	g := pastGateway(t, nil)
	js := g.js()
	publish(t, js, "events.p", "", "old")
	start := time.Now()
	status, a, body := getJSON(t, g, "/events/poll", url.Values{"channel": {"p"}, "wait": {"300ms"}})
	if status != 200 || len(a.Events) != 0 || a.LastID == "" || time.Since(start) < 250*time.Millisecond {
		t.Fatalf("empty poll: %d %s after %v", status, body, time.Since(start))
	}
	done := pollAsync(g, url.Values{"channel": {"p", "q"}, "after": {a.LastID}, "wait": {"20s"}})
	// The poll is attached once the hub counts a client on q.
	eventually(t, 5*time.Second, "poll waiting", func() bool { return g.metric(mPollsWaiting) == 1 })
	seq := publish(t, js, "events.q", "hello", "world")
	select {
	case f := <-done:
		r := polled(t, f)
		if len(r.answer.Events) != 1 || seqOf(t, r.answer.Events[0].ID) != seq || r.answer.Events[0].Channel != "q" || r.answer.Events[0].Event != "hello" || r.answer.LastID != r.answer.Events[0].ID {
			t.Fatalf("poll answer %s", r.body)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("poll did not answer at the event")
	}
	// The polls_waiting gauge counted it while it waited, and no longer.
	eventually(t, 5*time.Second, "polls_waiting back to 0", func() bool { return g.metric(mPollsWaiting) == 0 })
}

// TestPollBehindAnswersFromTheStream: a position behind the live feed is
// answered at once from the stream, in pages.
func TestPollBehindAnswersFromTheStream(t *testing.T) {
	g := pastGateway(t, nil)
	js := g.js()
	seqs := publishRound(t, js, 30, "b")
	_, a, body := getJSON(t, g, "/events/poll", url.Values{"channel": {"b"}, "after": {"0"}, "limit": {"20"}})
	if got := seqsOf(t, a.Events); !slices.Equal(got, seqs[:20]) || !a.More {
		t.Fatalf("first page %s", body)
	}
	_, a, body = getJSON(t, g, "/events/poll", url.Values{"channel": {"b"}, "after": {a.LastID}, "wait": {"10s"}})
	if got := seqsOf(t, a.Events); !slices.Equal(got, seqs[20:]) || a.More {
		t.Fatalf("second page %s", body)
	}
	_, a, body = getJSON(t, g, "/events/poll", url.Values{"channel": {"b"}, "after": {"bogus"}})
	if a.Reset == nil || a.Reset.Reason != "malformed" {
		t.Fatalf("bad position %s", body)
	}
}

// TestPollIsServedFromTheLiveFeed: polls that wait and are answered by
// live events send JetStream no API request at all, although each
// detaches before the next attaches.
func TestPollIsServedFromTheLiveFeed(t *testing.T) {
	g := pastGateway(t, nil)
	js := g.js()
	// No other client holds the channel: between two polls, the keeper
	// does.
	_, a, _ := getJSON(t, g, "/events/poll", url.Values{"channel": {"f"}, "wait": {"10ms"}})
	before := apiRequests(t, g.nats)
	for i := range 20 {
		// Another channel speaks between two polls: the hub's position
		// moves past the poll's, and the keeper knows f did not speak.
		publish(t, js, "events.elsewhere", "", "other")
		if i == 10 {
			// f speaks between two polls: the keeper has the event.
			seq := publish(t, js, "events.f", "", "between")
			_, b, body := getJSON(t, g, "/events/poll", url.Values{"channel": {"f"}, "after": {a.LastID}, "wait": {"20s"}})
			if len(b.Events) != 1 || seqOf(t, b.LastID) < seq || b.Events[0].Data != "between" {
				t.Fatalf("event between polls: %s", body)
			}
			a = b
		}
		done := pollAsync(g, url.Values{"channel": {"f"}, "after": {a.LastID}, "wait": {"20s"}})
		eventually(t, 5*time.Second, "poll waiting", func() bool { return g.metric(mPollsWaiting) == 1 })
		seq := publish(t, js, "events.f", "", fmt.Sprint(i))
		a = polled(t, <-done).answer
		if len(a.Events) != 1 || seqOf(t, a.Events[0].ID) != seq {
			t.Fatalf("poll %d: %+v", i, a)
		}
	}
	if n := apiRequests(t, g.nats) - before; n != 0 {
		t.Fatalf("20 live polls made %d JetStream API requests", n)
	}
}

func apiRequests(t testing.TB, ns *server.Server) uint64 {
	t.Helper()
	info, err := ns.Jsz(&server.JSzOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return info.API.Total
}

// bufferingProxy is a reverse proxy that holds every response until it
// is complete, as some corporate proxies do: an event stream through it
// shows nothing, a poll works.
func bufferingProxy(t testing.TB, target string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: bufferingHandler(target)}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + l.Addr().String()
}

// bufferingHandler forwards requests to target and answers each only once
// its response is complete.
func bufferingHandler(target string) http.Handler {
	client := &http.Client{}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, target+r.URL.RequestURI(), r.Body)
		req.Header = r.Header.Clone()
		resp, err := client.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(body)
	})
}

// TestPollLoopIsExactBehindABufferingProxy runs the documented client
// loop (poll, then after = last_id) through a proxy that buffers whole
// responses while a publisher runs at full speed, and checks that each
// loop got every event of its channels exactly once, in order.
func TestPollLoopIsExactBehindABufferingProxy(t *testing.T) {
	g := pastGateway(t, nil)
	proxy := bufferingProxy(t, g.httpURL)
	js := g.js()
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var mu sync.Mutex
	sent := map[string][]uint64{}
	var total int
	done := publishAtFullSpeed(ctx, js, 30000, func(ch string, seq uint64) {
		mu.Lock()
		sent[ch] = append(sent[ch], seq)
		total++
		mu.Unlock()
	})
	loops := [][]string{{"x"}, {"x", "y"}, {"z"}}
	got := make([][]uint64, len(loops))
	// Each loop's target is the last event of its channels, set once the
	// publisher has stopped.
	targets := make([]atomic.Uint64, len(loops))
	var wg sync.WaitGroup
	for i, chans := range loops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i] = pollLoop(t, proxy, chans, &targets[i])
		}()
	}
	eventually(t, 20*time.Second, "publisher at 3000 events", func() bool { mu.Lock(); defer mu.Unlock(); return total >= 3000 })
	stop()
	<-done
	mu.Lock()
	for i, chans := range loops {
		var last uint64
		for _, ch := range chans {
			last = max(last, sent[ch][len(sent[ch])-1])
		}
		targets[i].Store(last)
	}
	mu.Unlock()
	wg.Wait()
	for i, chans := range loops {
		checkEveryEventOnce(t, "loop", got[i], chans, sent)
	}
}

// pollLoop is the documented client loop: poll, take the events, poll
// again after last_id. It stops once its position reaches target.
func pollLoop(t *testing.T, base string, channels []string, target *atomic.Uint64) []uint64 {
	var got []uint64
	after := "0"
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(base + "/events/poll?" + url.Values{"channel": channels, "after": {after}, "wait": {"5s"}}.Encode())
		if err != nil {
			t.Error(err)
			return got
		}
		var a history.Answer
		err = json.NewDecoder(resp.Body).Decode(&a)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || a.Reset != nil {
			t.Errorf("poll %v: %d %v %+v", channels, resp.StatusCode, err, a.Reset)
			return got
		}
		for _, e := range a.Events {
			got = append(got, seqOf(t, e.ID))
		}
		after = a.LastID
		if tg := target.Load(); tg != 0 && seqOf(t, after) >= tg {
			return got
		}
	}
	t.Errorf("poll loop %v did not reach the end", channels)
	return got
}

// TestPollForgedFutureAfterDoesNotWait: a position past the stream's last
// event, with the stream's own epoch, is not waited on: it gets the
// unknown_position reset a stream gets for it, at once, with the current
// position to poll on from; and the next poll from there gets the next
// event.
func TestPollForgedFutureAfterDoesNotWait(t *testing.T) {
	g := pastGateway(t, nil)
	js := g.js()
	last := publish(t, js, "events.z", "", "before")
	_, a, _ := getJSON(t, g, "/events/history", url.Values{"channel": {"z"}, "last": {"1"}})
	id, err := replay.Parse(a.LastID)
	if err != nil || id.Seq != last {
		t.Fatalf("history last_id %q", a.LastID)
	}
	forged := replay.ID{Seq: last + 1000, Epoch: id.Epoch}.String()
	start := time.Now()
	status, b, body := getJSON(t, g, "/events/poll", url.Values{"channel": {"z"}, "after": {forged}, "wait": {"25s"}})
	// Resolve reads the stream again for up to 3 s before it calls a
	// position unknown (a new leader may not have applied it yet).
	if took := time.Since(start); status != 200 || took > 10*time.Second || b.Reset == nil || b.Reset.Reason != replay.ResetUnknown || len(b.Events) != 0 {
		t.Fatalf("forged future after: %d %s after %v", status, body, took)
	}
	if got := seqOf(t, b.LastID); got != last {
		t.Fatalf("forged future after: last_id %q, want the current position %d", b.LastID, last)
	}
	done := pollAsync(g, url.Values{"channel": {"z"}, "after": {b.LastID}, "wait": {"20s"}})
	eventually(t, 5*time.Second, "poll waiting", func() bool { return g.metric(mPollsWaiting) == 1 })
	next := publish(t, js, "events.z", "", "after")
	if c := polled(t, <-done).answer; len(c.Events) != 1 || seqOf(t, c.Events[0].ID) != next {
		t.Fatalf("poll after the reset: %+v", c)
	}
}

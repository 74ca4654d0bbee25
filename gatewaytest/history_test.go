package gatewaytest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ssegate/ssegate/history"
	"github.com/ssegate/ssegate/replay"
)

// pastGateway is a gateway with the history and poll endpoints on.
func pastGateway(t *testing.T, handler map[string]any) *gateway {
	t.Helper()
	cfg := map[string]any{
		"history": map[string]any{"path": "/events/history"},
		"poll":    map[string]any{"path": "/events/poll"},
	}
	for k, v := range handler {
		cfg[k] = v
	}
	return startGateway(t, natsServer(t), gatewayConfig{noTLS: true, handler: cfg})
}

// getJSON fetches path with the query and decodes the answer, whatever
// the status.
func getJSON(t testing.TB, g *gateway, path string, q url.Values) (int, history.Answer, string) {
	t.Helper()
	f := fetchJSON(g, path, q)
	if f.err != nil {
		t.Fatal(f.err)
	}
	return f.status, f.answer, f.body
}

// fetched is one history or poll answer, or why there is none.
type fetched struct {
	status int
	answer history.Answer
	body   string
	err    error
}

// fetchJSON asks path with q and reads the answer, a history.Answer when
// the status is 200.
func fetchJSON(g *gateway, path string, q url.Values) fetched {
	resp, err := g.h1Client().Get(g.httpURL + path + "?" + q.Encode())
	if err != nil {
		return fetched{err: err}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	f := fetched{status: resp.StatusCode, body: string(body)}
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, &f.answer); err != nil {
			f.err = fmt.Errorf("%s: %v in %s", path, err, body)
		}
	}
	return f
}

// pollAsync asks in a goroutine of its own (a poll that waits), and hands
// the answer over; the test's goroutine checks it.
func pollAsync(g *gateway, q url.Values) <-chan fetched {
	done := make(chan fetched, 1)
	go func() { done <- fetchJSON(g, "/events/poll", q) }()
	return done
}

// polled is pollAsync's answer, failing the test on an error.
func polled(t testing.TB, f fetched) fetched {
	t.Helper()
	if f.err != nil {
		t.Fatal(f.err)
	}
	return f
}

func channelsQuery(extra url.Values, channels ...string) url.Values {
	q := url.Values{"channel": channels}
	for k, v := range extra {
		q[k] = v
	}
	return q
}

// published publishes n events round robin over subjects, each with a
// name and data that say where it went, and returns the sequences per
// channel in stream order.
func publishRound(t testing.TB, js jetstream.JetStream, n int, channels ...string) []uint64 {
	t.Helper()
	var seqs []uint64
	for i := range n {
		ch := channels[i%len(channels)]
		seqs = append(seqs, publish(t, js, "events."+ch, "ev."+ch, fmt.Sprintf("%s %d", ch, i)))
	}
	return seqs
}

// dropChannel is a publishRound's sequences over n channels without
// those of the channel at index: what a read of the others gets.
func dropChannel(seqs []uint64, n, index int) []uint64 {
	var out []uint64
	for i, seq := range seqs {
		if i%n != index {
			out = append(out, seq)
		}
	}
	return out
}

// publishAtFullSpeed publishes to events.x, events.y and events.z in
// turn, each event as soon as the last one is acked, until ctx ends or
// after most events, and hands sent each ack's channel and sequence. The
// channel it returns closes once it has stopped.
func publishAtFullSpeed(ctx context.Context, js jetstream.JetStream, most int, sent func(ch string, seq uint64)) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ctx.Err() == nil && i < most; i++ {
			ch := []string{"x", "y", "z"}[i%3]
			ack, err := js.Publish(context.Background(), "events."+ch, []byte(fmt.Sprint(i)))
			if err != nil {
				return
			}
			sent(ch, ack.Sequence)
		}
	}()
	return done
}

func seqsOf(t testing.TB, evs []history.Event) []uint64 {
	out := make([]uint64, len(evs))
	for i, e := range evs {
		out[i] = seqOf(t, e.ID)
	}
	return out
}

// TestHistoryPagesInStreamOrder pages through two of three channels and
// gets each of their events once, in stream order, with every field.
func TestHistoryPagesInStreamOrder(t *testing.T) {
	g := pastGateway(t, nil)
	js := g.js()
	want := dropChannel(publishRound(t, js, 250, "a", "b", "c"), 3, 2)
	want = append(want, publish(t, js, "events.a", "", "line one\r\nline two"))

	var got []history.Event
	q := channelsQuery(url.Values{"limit": {"70"}}, "a", "b")
	for page := 0; ; page++ {
		if page > 10 {
			t.Fatal("paging does not end")
		}
		status, a, body := getJSON(t, g, "/events/history", q)
		if status != 200 || a.Reset != nil {
			t.Fatalf("page %d: %d %s", page, status, body)
		}
		if len(a.Events) > 70 || (a.More && len(a.Events) != 70) {
			t.Fatalf("page %d: %d events, more %v", page, len(a.Events), a.More)
		}
		got = append(got, a.Events...)
		q.Set("after", a.LastID)
		if !a.More {
			break
		}
	}
	if s := seqsOf(t, got); !slices.Equal(s, want) {
		t.Fatalf("got sequences %v\nwant %v", s, want)
	}
	first, lastEv := got[0], got[len(got)-1]
	if first.Channel != "a" || first.Event != "ev.a" || first.Data != "a 0" || !strings.Contains(first.ID, "-") {
		t.Fatalf("first event %+v", first)
	}
	if ts, err := time.Parse(time.RFC3339Nano, first.Time); err != nil || time.Since(ts) > time.Minute {
		t.Fatalf("time %q: %v", first.Time, err)
	}
	if lastEv.Event != history.DefaultEventName || lastEv.Data != "line one\nline two" {
		t.Fatalf("unnamed multi-line event %+v", lastEv)
	}
	// Paged to the end, the last answer's position is the newest.
	_, a, _ := getJSON(t, g, "/events/history", q)
	if len(a.Events) != 0 || a.More || a.LastID != q.Get("after") {
		t.Fatalf("after the end: %+v", a)
	}
}

// TestHistoryLastGivesTheNewest asks for the newest events of two
// channels and gets them in stream order.
func TestHistoryLastGivesTheNewest(t *testing.T) {
	g := pastGateway(t, nil)
	js := g.js()
	want := dropChannel(publishRound(t, js, 300, "a", "b", "c"), 3, 1)
	for _, n := range []int{1, 50, 199, 200, 500} {
		status, a, body := getJSON(t, g, "/events/history", channelsQuery(url.Values{"last": {fmt.Sprint(n)}}, "a", "c"))
		if status != 200 {
			t.Fatalf("last=%d: %d %s", n, status, body)
		}
		w := want[max(0, len(want)-n):]
		if s := seqsOf(t, a.Events); !slices.Equal(s, w) || a.More {
			t.Fatalf("last=%d: got %v (more %v), want %v", n, s, a.More, w)
		}
	}
	// A channel that never had an event.
	_, a, _ := getJSON(t, g, "/events/history", channelsQuery(url.Values{"last": {"5"}}, "nothing.here"))
	if len(a.Events) != 0 || a.Reset != nil || a.LastID == "" {
		t.Fatalf("empty channel: %+v", a)
	}
}

// TestHistoryResets answers a position that cannot be honoured with the
// stream's reason and the oldest events kept.
func TestHistoryResets(t *testing.T) {
	g := pastGateway(t, nil)
	js := g.js()
	seqs := publishRound(t, js, 10, "r")
	epoch := g.epoch()
	other := "aaaa"
	if epoch == other {
		other = "bbbb"
	}
	// Expired and recreated positions get the events kept; the others
	// none, and the current position, as a stream goes live.
	current := fmt.Sprintf("%d-%s", seqs[len(seqs)-1], epoch)
	for _, tc := range []struct {
		after, reason string
		want          []uint64
	}{
		{"garbage", replay.ResetMalformed, nil},
		{fmt.Sprintf("3-%s", other), replay.ResetStreamRecreated, seqs},
		{fmt.Sprintf("999-%s", epoch), replay.ResetUnknown, nil},
	} {
		status, a, body := getJSON(t, g, "/events/history", channelsQuery(url.Values{"after": {tc.after}}, "r"))
		if status != 200 || a.Reset == nil || a.Reset.Reason != tc.reason || !slices.Equal(seqsOf(t, a.Events), tc.want) || a.LastID != current {
			t.Fatalf("after %s: %d %s", tc.after, status, body)
		}
	}
	stream := gatewayStream(t, js)
	if err := stream.Purge(context.Background(), jetstream.WithPurgeSequence(seqs[5])); err != nil {
		t.Fatal(err)
	}
	status, a, body := getJSON(t, g, "/events/history", channelsQuery(url.Values{"after": {fmt.Sprintf("%d-%s", seqs[1], epoch)}}, "r"))
	if status != 200 || a.Reset == nil || a.Reset.Reason != replay.ResetExpired || !slices.Equal(seqsOf(t, a.Events), seqs[5:]) {
		t.Fatalf("expired: %d %s", status, body)
	}
}

// TestHistoryThenStreamIsExact takes last_id from a history answer while
// a publisher runs at full speed, opens a stream from it, and checks that
// history and stream together hold every event after the page's first
// exactly once.
func TestHistoryThenStreamIsExact(t *testing.T) {
	g := pastGateway(t, nil)
	js := g.js()
	publishRound(t, js, 20, "x", "y")
	ctx, stop := context.WithCancel(context.Background())
	var mu sync.Mutex
	var sent []uint64
	done := publishAtFullSpeed(ctx, js, 20000, func(ch string, seq uint64) {
		if ch != "z" {
			mu.Lock()
			sent = append(sent, seq)
			mu.Unlock()
		}
	})
	eventually(t, 10*time.Second, "publisher running", func() bool { mu.Lock(); defer mu.Unlock(); return len(sent) > 100 })
	status, a, body := getJSON(t, g, "/events/history", channelsQuery(url.Values{"last": {"30"}}, "x", "y"))
	if status != 200 || len(a.Events) != 30 {
		t.Fatalf("history: %d %s", status, body)
	}
	s := open(t, g.h1Client(), eventsURL(g.httpURL, []string{"x", "y"}, url.Values{"last_event_id": {a.LastID}}), nil)
	eventually(t, 10*time.Second, "publisher past the handshake", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return sent[len(sent)-1] > seqOf(t, a.LastID)+500
	})
	stop()
	<-done
	got := seqsOf(t, a.Events)
	mu.Lock()
	want := sent[slices.Index(sent, got[0]):]
	mu.Unlock()
	for len(got) < len(want) {
		ev := s.next(t, 10*time.Second)
		if ev.Type == "reset" {
			t.Fatalf("reset %s", ev.Data)
		}
		got = append(got, seqOf(t, ev.LastEventID))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("history then stream: %d events, want %d; first difference at %d", len(got), len(want), firstDiff(got, want))
	}
}

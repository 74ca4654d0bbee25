package gatewaytest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// publishNamed publishes n events on ch cycling through names ("" is
// unnamed) and returns the sequences of those whose name is in keep.
func publishNamed(t testing.TB, js jetstream.JetStream, ch string, n int, names, keep []string) []uint64 {
	t.Helper()
	var kept []uint64
	for i := range n {
		name := names[i%len(names)]
		seq := publish(t, js, "events."+ch, name, fmt.Sprint(i))
		if slices.Contains(keep, name) {
			kept = append(kept, seq)
		}
	}
	return kept
}

// TestEventFilterOnStreams: a stream with event= gets only those events,
// replayed and live; the dropped ones write no id, so resuming with the
// same filter gets every match once; a reset passes; the stream closed
// line counts delivered and skipped events.
func TestEventFilterOnStreams(t *testing.T) {
	logFile := caddyLogFile(t)
	g := startGateway(t, natsServer(t), gatewayConfig{noTLS: true, logFile: logFile})
	js := g.js()
	names := []string{"order.paid", "order.created", "", "order.paid"}
	want := publishNamed(t, js, "o", 40, names, []string{"order.paid", ""})
	filter := url.Values{"event": {"order.paid", "message"}, "last_event_id": {"0"}}

	body := openRawBody(t, g, eventsURL(g.httpURL, []string{"o"}, filter))
	lines := rawLines(body)
	var got []uint64
	var lastID string
	readUntil := func(n int) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for len(got) < n {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatal("stream ended")
				}
				if id, ok := strings.CutPrefix(l, "id: "); ok {
					got = append(got, seqOf(t, id))
					lastID = id
				}
				if name, ok := strings.CutPrefix(l, "event: "); ok && name != "order.paid" {
					t.Fatalf("event %q passed the filter", name)
				}
			case <-deadline:
				t.Fatalf("got %d of %d events", len(got), n)
			}
		}
	}
	readUntil(15)
	body.Close()
	// Resume from the last id seen, with the same filter, while more
	// events come, matching and not.
	want = append(want, publishNamed(t, js, "o", 40, names, []string{"order.paid", ""})...)
	filter.Set("last_event_id", lastID)
	body = openRawBody(t, g, eventsURL(g.httpURL, []string{"o"}, filter))
	lines = rawLines(body)
	readUntil(len(want) - 2)
	want = append(want, publishNamed(t, js, "o", 8, names, []string{"order.paid", ""})...)
	readUntil(len(want))
	if !slices.Equal(got, want) {
		t.Fatalf("ids seen %v\nwant %v", got, want)
	}
	body.Close()

	// A reset always passes.
	filter.Set("last_event_id", "garbage")
	s := open(t, g.h1Client(), eventsURL(g.httpURL, []string{"o"}, filter), nil)
	if ev := s.next(t, 5*time.Second); ev.Type != "reset" {
		t.Fatalf("got %+v, want the reset", ev)
	}
	s.close()

	// Each stream's line says how many events it wrote and skipped.
	closed := streamClosedLines(t, logFile, 3)
	first := closed[0]
	if first.Events < 15 || first.Skipped < 1 || first.Events+first.Skipped > 88 {
		t.Fatalf("first stream's line: %+v", first)
	}
	// Events 1 to 88 are all on o; the second stream resumed after the
	// 15th match and saw every later event.
	skipped := int(88-got[14]) - (len(want) - 15)
	if second := closed[1]; second.Events != len(want)-15 || second.Skipped != skipped {
		t.Fatalf("second stream's line: %+v, want %d events and %d skipped", second, len(want)-15, skipped)
	}
}

// openRaw opens a stream for reading its lines as they are.
func openRawBody(t *testing.T, g *gateway, u string) io.ReadCloser {
	t.Helper()
	resp, err := g.h1Client().Get(u)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %v %v", u, resp, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp.Body
}

type closedLine struct {
	Events  int `json:"events"`
	Skipped int `json:"skipped"`
}

// streamClosedLines waits for n "stream closed" lines in the log file.
func streamClosedLines(t *testing.T, logFile string, n int) []closedLine {
	t.Helper()
	var out []closedLine
	eventually(t, 10*time.Second, "stream closed lines", func() bool {
		out = out[:0]
		f, err := os.Open(logFile)
		if err != nil {
			return false
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var l struct {
				Msg string `json:"msg"`
				closedLine
			}
			if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "stream closed" {
				out = append(out, l.closedLine)
			}
		}
		return len(out) >= n
	})
	return out
}

// TestEventFilterOnHistoryAndPoll: history and poll carry only the events
// asked for, and their position moves only with those.
func TestEventFilterOnHistoryAndPoll(t *testing.T) {
	g := pastGateway(t, nil)
	js := g.js()
	want := publishNamed(t, js, "h", 30, []string{"a", "b", "c"}, []string{"b"})
	status, a, body := getJSON(t, g, "/events/history", url.Values{"channel": {"h"}, "event": {"b"}, "limit": {"4"}})
	if status != 200 || !slices.Equal(seqsOf(t, a.Events), want[:4]) || !a.More {
		t.Fatalf("history page: %d %s", status, body)
	}
	_, a, body = getJSON(t, g, "/events/history", url.Values{"channel": {"h"}, "event": {"b"}, "after": {a.LastID}})
	if !slices.Equal(seqsOf(t, a.Events), want[4:]) || a.More || seqOf(t, a.LastID) != want[len(want)-1] {
		t.Fatalf("history rest (the position stays at the last match): %s", body)
	}
	// A poll from there waits through events it does not want.
	done := pollAsync(g, url.Values{"channel": {"h"}, "event": {"b"}, "after": {a.LastID}, "wait": {"20s"}})
	eventually(t, 5*time.Second, "poll waiting", func() bool { return g.metric(mPollsWaiting) == 1 })
	publish(t, js, "events.h", "a", "skip me")
	publish(t, js, "events.h", "c", "skip me too")
	match := publish(t, js, "events.h", "b", "take me")
	select {
	case f := <-done:
		body := polled(t, f).body
		var pa struct {
			Events []struct{ ID, Data string }
			LastID string `json:"last_id"`
		}
		if json.Unmarshal([]byte(body), &pa) != nil || len(pa.Events) != 1 || pa.Events[0].Data != "take me" || seqOf(t, pa.LastID) != match {
			t.Fatalf("poll answer %s", body)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the poll did not answer")
	}
	status, _, body = getJSON(t, g, "/events/history", url.Values{"channel": {"h"}, "event": {""}})
	if status != 400 || !strings.Contains(body, "invalid_event") {
		t.Fatalf("empty event name: %d %s", status, body)
	}
}

// TestEventFilterResumeUnderLoad: clients that keep dropping and resuming
// with a filter, while a publisher runs, see every matching event once.
func TestEventFilterResumeUnderLoad(t *testing.T) {
	g := startGateway(t, natsServer(t), gatewayConfig{noTLS: true})
	js := g.js()
	var mu sync.Mutex
	var want []uint64
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	first := publish(t, js, "events.u", "keep", "first")
	want = append(want, first)
	go func() {
		defer close(done)
		for i := 0; ctx.Err() == nil && i < 20000; i++ {
			m := nats.NewMsg("events.u")
			m.Header.Set("Sse-Event", []string{"keep", "drop", "drop2"}[i%3])
			ack, err := js.PublishMsg(context.Background(), m)
			if err != nil {
				return
			}
			if i%3 == 0 {
				mu.Lock()
				want = append(want, ack.Sequence)
				mu.Unlock()
			}
		}
	}()
	var got []uint64
	id := fmt.Sprint(first - 1)
	for round := 0; round < 20; round++ {
		s := open(t, g.h1Client(), eventsURL(g.httpURL, []string{"u"}, url.Values{"event": {"keep"}, "last_event_id": {id}}), nil)
		for range 50 {
			ev := s.next(t, 10*time.Second)
			if ev.Type != "keep" {
				t.Fatalf("got %+v", ev)
			}
			got = append(got, seqOf(t, ev.LastEventID))
			id = ev.LastEventID
		}
		s.close()
	}
	stop()
	<-done
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(got, want[:len(got)]) {
		t.Fatalf("%d events; first difference at %d", len(got), firstDiff(got, want))
	}
}

package gatewaytest

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ssegate/ssegate/replay"
)

// storedTimes reads the events of ch with the times JetStream stored them.
func storedTimes(t *testing.T, g *gateway, ch string) ([]uint64, []string) {
	t.Helper()
	_, a, body := getJSON(t, g, "/events/history", url.Values{"channel": {ch}, "limit": {"1000"}})
	if a.More || len(a.Events) == 0 {
		t.Fatalf("history: %s", body)
	}
	var seqs []uint64
	var times []string
	for _, e := range a.Events {
		seqs = append(seqs, seqOf(t, e.ID))
		times = append(times, e.Time)
	}
	return seqs, times
}

// TestSinceStartsAtTheFirstEventStoredThen, on a stream and on history.
func TestSinceStartsAtTheFirstEventStoredThen(t *testing.T) {
	g := pastGateway(t, nil)
	js := g.js()
	publishRound(t, js, 20, "s", "other")
	seqs, times := storedTimes(t, g, "s")
	k := 4
	for k < len(times)-1 && times[k-1] == times[k] {
		k++
	}
	since := url.Values{"since": {times[k]}}
	s := open(t, g.h1Client(), eventsURL(g.httpURL, []string{"s"}, since), nil)
	var got []uint64
	for range seqs[k:] {
		got = append(got, seqOf(t, s.next(t, 5*time.Second).LastEventID))
	}
	if !slices.Equal(got, seqs[k:]) {
		t.Fatalf("stream since %s: %v, want %v", times[k], got, seqs[k:])
	}
	live := publish(t, js, "events.s", "", "live")
	if ev := s.next(t, 5*time.Second); seqOf(t, ev.LastEventID) != live {
		t.Fatalf("then live: %+v", ev)
	}
	_, a, body := getJSON(t, g, "/events/history", url.Values{"channel": {"s"}, "since": {times[k]}})
	if want := append(slices.Clone(seqs[k:]), live); !slices.Equal(seqsOf(t, a.Events), want) || a.Reset != nil {
		t.Fatalf("history since: %s", body)
	}
	// Last-Event-ID wins over since.
	s = open(t, g.h1Client(), eventsURL(g.httpURL, []string{"s"}, since), http.Header{"Last-Event-Id": {g.id(seqs[k+2])}})
	if ev := s.next(t, 5*time.Second); seqOf(t, ev.LastEventID) != seqs[k+3] {
		t.Fatalf("with Last-Event-ID: %+v, want %d", ev, seqs[k+3])
	}
}

// TestSinceThatCannotBeHonoured: before the oldest kept event, a reset
// (expired) then everything kept; in the future or unparseable, a reset
// (malformed) then live.
func TestSinceThatCannotBeHonoured(t *testing.T) {
	g := pastGateway(t, nil)
	js := g.js()
	seqs := publishRound(t, js, 10, "e")
	_, times := storedTimes(t, g, "e")
	stream := gatewayStream(t, js)
	if err := stream.Purge(context.Background(), jetstream.WithPurgeSequence(seqs[4])); err != nil {
		t.Fatal(err)
	}
	s := open(t, g.h1Client(), eventsURL(g.httpURL, []string{"e"}, url.Values{"since": {times[0]}}), nil)
	if ev := s.next(t, 5*time.Second); ev.Type != "reset" || ev.Data != `{"reason":"expired"}` || seqOf(t, ev.LastEventID) != seqs[4]-1 {
		t.Fatalf("got %+v, want reset expired at %d", ev, seqs[4]-1)
	}
	for _, want := range seqs[4:] {
		if ev := s.next(t, 5*time.Second); seqOf(t, ev.LastEventID) != want {
			t.Fatalf("got %+v, want %d", ev, want)
		}
	}
	_, a, body := getJSON(t, g, "/events/history", url.Values{"channel": {"e"}, "since": {times[0]}})
	if a.Reset == nil || a.Reset.Reason != replay.ResetExpired || !slices.Equal(seqsOf(t, a.Events), seqs[4:]) {
		t.Fatalf("history: %s", body)
	}
	for _, bad := range []string{time.Now().Add(time.Hour).Format(time.RFC3339), "yesterday", "2026-13-01T00:00:00Z"} {
		s := open(t, g.h1Client(), eventsURL(g.httpURL, []string{"e"}, url.Values{"since": {bad}}), nil)
		if ev := s.next(t, 5*time.Second); ev.Type != "reset" || ev.Data != `{"reason":"malformed"}` {
			t.Fatalf("since %q: %+v", bad, ev)
		}
		live := publish(t, js, "events.e", "", "live")
		if ev := s.next(t, 5*time.Second); seqOf(t, ev.LastEventID) != live {
			t.Fatalf("since %q, then live: %+v", bad, ev)
		}
		_, a, body := getJSON(t, g, "/events/history", url.Values{"channel": {"e"}, "since": {bad}})
		if a.Reset == nil || a.Reset.Reason != replay.ResetMalformed || len(a.Events) != 0 || seqOf(t, a.LastID) != live {
			t.Fatalf("history since %q: %s", bad, body)
		}
	}
}

package gatewaytest

import (
	"context"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ssegate/ssegate/internal/natstest"
)

// TestForgedHeadersCannotMoveOrRedirectEvents publishes through the stream
// with every position header forged. nats-server appends its own values
// after the publisher's, so the gateway must take the last ones: the event
// stays on its channel, keeps its real id, and the channel goes on.
func TestForgedHeadersCannotMoveOrRedirectEvents(t *testing.T) {
	ns := natsServer(t)
	logFile := caddyLogFile(t)
	g := startGateway(t, ns, gatewayConfig{noTLS: true, logFile: logFile})
	js := g.js()
	demo := open(t, g.h1Client(), eventsURL(g.httpURL, []string{"demo"}, nil), nil)
	defer demo.close()
	victim := open(t, g.h1Client(), eventsURL(g.httpURL, []string{"victim"}, nil), nil)
	defer victim.close()

	forged := []nats.Header{
		{"Nats-Subject": {"events.victim"}},                     // injection
		{"Nats-Sequence": {"18446744073709551615"}},             // blackout
		{"Nats-Last-Sequence": {"18446744073709551614"}},        // false gap
		{"Nats-Stream": {"OTHER"}, "Nats-Sequence": {"1"}},      // confusion
		{"Nats-Subject": {"events.victim"}, "Sse-Event": {"x"}}, // named
	}
	var want []uint64
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, hdr := range forged {
		msg := &nats.Msg{Subject: "events.demo", Header: hdr, Data: []byte("forged")}
		ack, err := js.PublishMsg(ctx, msg)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, ack.Sequence)
	}
	// Real events after the forgeries must still flow.
	for i := 0; i < 3; i++ {
		want = append(want, publish(t, js, "events.demo", "", "real"))
	}
	marker := publish(t, js, "events.victim", "", "marker")

	check := func(what string, s *stream) {
		t.Helper()
		for i, ev := range s.collect(t, len(want), 10*time.Second) {
			if got := seqOf(t, ev.LastEventID); got != want[i] {
				t.Fatalf("%s: event %d has id %q, want sequence %d", what, i, ev.LastEventID, want[i])
			}
		}
	}
	check("live", demo)
	if ev := victim.next(t, 10*time.Second); seqOf(t, ev.LastEventID) != marker {
		t.Fatalf("the victim's channel got %q (%q), not its own marker", ev.LastEventID, ev.Data)
	}
	// Through replay, from the stream, the same.
	replayed := open(t, g.h1Client(), eventsURL(g.httpURL, []string{"demo"}, nil), http.Header{"Last-Event-Id": {"0"}})
	defer replayed.close()
	check("replay", replayed)
}

// TestLiveSubjectFloodIsLoggedOnce: messages on the live subject that the
// stream did not republish are dropped, with one warning, not one each.
func TestLiveSubjectFloodIsLoggedOnce(t *testing.T) {
	ns := natsServer(t)
	logFile := caddyLogFile(t)
	g := startGateway(t, ns, gatewayConfig{noTLS: true, logFile: logFile})
	s := open(t, g.h1Client(), eventsURL(g.httpURL, []string{"demo"}, nil), nil)
	defer s.close()
	nc, _ := natstest.Connect(t, ns)
	live := g.app.Stream.LiveSubject("events.demo")
	const flood = 500
	for i := 0; i < flood; i++ {
		hdr := nats.Header{}
		if i%2 == 1 {
			// Complete but for the stream's name.
			hdr = nats.Header{"Nats-Stream": {"X"}, "Nats-Subject": {"events.demo"}, "Nats-Sequence": {"99"}, "Nats-Last-Sequence": {"0"}}
		}
		if err := nc.PublishMsg(&nats.Msg{Subject: live, Header: hdr, Data: []byte("junk")}); err != nil {
			t.Fatal(err)
		}
	}
	want := publish(t, g.js(), "events.demo", "", "real")
	if ev := s.next(t, 10*time.Second); seqOf(t, ev.LastEventID) != want {
		t.Fatalf("got %q %q, want the real event %d", ev.LastEventID, ev.Data, want)
	}
	logs, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(logs), "live message ignored"); n == 0 || n > 4 {
		t.Fatalf("%d warnings for %d bad messages; want a few at most", n, flood)
	}
}

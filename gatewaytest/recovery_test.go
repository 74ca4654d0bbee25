package gatewaytest

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ssegate/ssegate/internal/natstest"
	"github.com/ssegate/ssegate/replay"
)

// restartableNATS starts a nats-server on a fixed port and file store, so
// that it can be stopped and started again with its JetStream data.
func restartableNATS(t *testing.T) (start func() jetstream.JetStream, stop func(), url string) {
	t.Helper()
	r := natstest.NewRestartable(t)
	start = func() jetstream.JetStream {
		_, js := natstest.Connect(t, r.Start())
		return js
	}
	return start, r.Stop, r.URL()
}

// TestNATSRestartSendsNoOldHistory: a client that connected without a
// position is owed nothing stored before it came, however recovery reads
// after a NATS restart. Recovery used to read every channel from the
// lowest position of any, and send alpha's old events again.
func TestNATSRestartSendsNoOldHistory(t *testing.T) {
	start, stop, url := restartableNATS(t)
	js := start()
	g := startGateway(t, nil, gatewayConfig{
		noTLS:  true,
		stream: map[string]any{"storage": "file"},
		nats:   map[string]any{"urls": []string{url}, "reconnect_wait": int64(100 * time.Millisecond)},
	})
	var old uint64
	for i := 0; i < 3; i++ {
		old = publish(t, js, "events.alpha", "", "old")
	}
	// A client without a position starts at the gateway's: wait until the
	// old events have reached it, or the client is owed the late ones.
	eventually(t, 5*time.Second, "the old events at the gateway", func() bool { return g.inspect().Position >= old })
	s := open(t, g.h1Client(), eventsURL(g.httpURL, []string{"alpha", "gamma"}, nil), nil)
	defer s.close()

	reconnects := g.reconnects()
	stop()
	eventually(t, 5*time.Second, "gateway notices", func() bool { return !g.natsUp() })
	js = start()
	eventually(t, 10*time.Second, "gateway reconnects", func() bool { return g.reconnects() > reconnects })

	want := []uint64{publish(t, js, "events.gamma", "", "new")}
	// A marker after it: anything old sent again would come before it.
	want = append(want, publish(t, js, "events.alpha", "", "marker"))
	for i, ev := range s.collect(t, len(want), 15*time.Second) {
		if got := seqOf(t, ev.LastEventID); got != want[i] {
			t.Fatalf("event %d: sequence %d (%q), want %d", i, got, ev.Data, want[i])
		}
	}
}

// TestStreamRecreatedWhileConnected: after the stream is deleted and
// created again, connected clients are told with a reset event, and
// resuming from its id gets the new stream's events from its beginning.
func TestStreamRecreatedWhileConnected(t *testing.T) {
	ns := natsServer(t)
	g := startGateway(t, ns, gatewayConfig{noTLS: true})
	js := g.js()
	for i := 0; i < 5; i++ {
		publish(t, js, "events.re", "", "old")
	}
	s := open(t, g.h1Client(), eventsURL(g.httpURL, []string{"re"}, nil), nil)
	defer s.close()

	oldEpoch := g.epoch()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := js.DeleteStream(ctx, replay.DefaultStreamName); err != nil {
		t.Fatal(err)
	}
	if _, err := replay.Ensure(ctx, js, g.app.Stream); err != nil {
		t.Fatal(err)
	}
	// The new stream's sequences start again at 1, below the channel's
	// head: these were dropped as duplicates before.
	var want []uint64
	for i := 0; i < 3; i++ {
		want = append(want, publish(t, js, "events.re", "", "new"))
	}
	ev := s.next(t, 10*time.Second)
	if ev.Type != "reset" || ev.Data != `{"reason":"stream_recreated"}` {
		t.Fatalf("got %q %q, want a stream_recreated reset", ev.Type, ev.Data)
	}
	id, err := replay.Parse(ev.LastEventID)
	if err != nil || id.Seq != 0 || id.Epoch == "" || id.Epoch == oldEpoch {
		t.Fatalf("reset id %q", ev.LastEventID)
	}
	again := open(t, g.h1Client(), eventsURL(g.httpURL, []string{"re"}, nil), http.Header{"Last-Event-Id": {ev.LastEventID}})
	defer again.close()
	for i, ev := range again.collect(t, len(want), 10*time.Second) {
		if got := seqOf(t, ev.LastEventID); got != want[i] {
			t.Fatalf("event %d after the reset: sequence %d, want %d", i, got, want[i])
		}
	}
}

// TestUnavailableEndingsAreJittered: streams that cannot be served because
// NATS is away end with a retry in [retry, 2×retry), so that they do not
// all come back at once.
func TestUnavailableEndingsAreJittered(t *testing.T) {
	start, stop, url := restartableNATS(t)
	start()
	g := startGateway(t, nil, gatewayConfig{noTLS: true, handler: map[string]any{"retry": int64(time.Second)},
		nats: map[string]any{"urls": []string{url}, "reconnect_wait": int64(time.Minute)}})
	// The hub knows its position before NATS goes: a new client must
	// still be told to come back, not left waiting on a dead feed.
	eventually(t, 5*time.Second, "hub ready", func() bool { return g.inspect().Settled })
	stop()
	eventually(t, 5*time.Second, "gateway notices", func() bool { return !g.natsUp() })
	jittered := false
	for range 3 {
		resp, err := g.h1Client().Get(eventsURL(g.httpURL, []string{"away"}, nil))
		if err != nil {
			t.Fatal(err)
		}
		var retry time.Duration
		ended := false
		for l := range rawLines(resp.Body) {
			ended = ended || l == ": end: unavailable"
			if ms, ok := strings.CutPrefix(l, "retry: "); ok && ended {
				n, _ := strconv.Atoi(ms)
				retry = time.Duration(n) * time.Millisecond
			}
		}
		resp.Body.Close()
		if !ended || retry < time.Second || retry >= 2*time.Second {
			t.Fatalf("status %d, ended %v, retry %v; want an unavailable end with a retry in [1s, 2s)", resp.StatusCode, ended, retry)
		}
		jittered = jittered || retry != time.Second
	}
	if !jittered {
		t.Fatal("three endings all asked for exactly the retry delay")
	}
}

package gatewaytest

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	gosse "github.com/tmaxmax/go-sse"

	"github.com/ssegate/ssegate/internal/natstest"
	"github.com/ssegate/ssegate/replay"
)

func (g *gateway) id(seq uint64) string {
	return replay.ID{Seq: seq, Epoch: g.epoch()}.String()
}

func TestReplayResumesAfterLastEventID(t *testing.T) {
	ns := natsServer(t)
	g := startGateway(t, ns, gatewayConfig{noTLS: true})
	js := g.js()
	var seqs []uint64
	for i := 0; i < 10; i++ {
		ch := []string{"a", "b"}[i%2]
		seqs = append(seqs, publish(t, js, "events."+ch, "", fmt.Sprint(i)))
	}
	for _, tc := range []struct {
		name  string
		hdr   http.Header
		query url.Values
	}{
		{"header", http.Header{"Last-Event-Id": {g.id(seqs[4])}}, nil},
		{"query", nil, url.Values{"last_event_id": {g.id(seqs[4])}}},
		{"bare sequence", nil, url.Values{"last_event_id": {fmt.Sprint(seqs[4])}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t, g.h1Client(), eventsURL(g.httpURL, []string{"a", "b"}, tc.query), tc.hdr)
			got := s.collect(t, len(seqs)-5, 5*time.Second)
			for i, ev := range got {
				if want := seqs[5+i]; seqOf(t, ev.LastEventID) != want {
					t.Fatalf("event %d: %+v, want sequence %d", i, ev, want)
				}
			}
			live := publish(t, js, "events.a", "", "live")
			seqs = append(seqs, live)
			if ev := s.next(t, 5*time.Second); seqOf(t, ev.LastEventID) != live {
				t.Fatalf("live event %+v, want %d", ev, live)
			}
		})
	}
	// One position covers several channels: a client of b only gets b's.
	s := open(t, g.h1Client(), eventsURL(g.httpURL, []string{"b"}, url.Values{"last_event_id": {g.id(seqs[4])}}), nil)
	for i, ev := range s.collect(t, 2, 5*time.Second) {
		if seq := seqOf(t, ev.LastEventID); seq != seqs[5+2*i] || ev.Data != fmt.Sprint(5+2*i) {
			t.Fatalf("channel b client got %+v", ev)
		}
	}
}

// TestPositionsThatCannotBeHonoured: every bad position gets a 200, a
// reset event naming the reason, and then the live stream.
func TestPositionsThatCannotBeHonoured(t *testing.T) {
	ns := natsServer(t)
	g := startGateway(t, ns, gatewayConfig{noTLS: true, handler: map[string]any{"replay_limit": 5}})
	js := g.js()
	var last uint64
	for i := 0; i < 10; i++ {
		last = publish(t, js, "events.r", "", "old")
	}
	tests := []struct {
		name   string
		raw    string
		header bool
		reason string
	}{
		{"non-numeric", "abc", true, replay.ResetMalformed},
		{"negative", "-1", true, replay.ResetMalformed},
		{"huge", strings.Repeat("9", 400), true, replay.ResetMalformed},
		{"overflow", "18446744073709551616", true, replay.ResetMalformed},
		{"NUL", "3\x00", false, replay.ResetMalformed},
		{"CR", "3\r", false, replay.ResetMalformed},
		{"LF", "3\nid: 1", false, replay.ResetMalformed},
		{"beyond the last sequence", "999999-" + g.epoch(), true, replay.ResetUnknown},
		{"from a recreated stream", "3-aaaa", true, replay.ResetStreamRecreated},
		{"further back than replay_limit", "0", true, replay.ResetTooFarBehind},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var hdr http.Header
			var q url.Values
			if tc.header {
				hdr = http.Header{"Last-Event-Id": {tc.raw}}
			} else {
				q = url.Values{"last_event_id": {tc.raw}}
			}
			s := open(t, g.h1Client(), eventsURL(g.httpURL, []string{"r"}, q), hdr)
			ev := s.next(t, 5*time.Second)
			if ev.Type != "reset" || ev.Data != `{"reason":"`+tc.reason+`"}` || ev.LastEventID != g.id(last) {
				t.Fatalf("got %+v, want reset %q with id %s", ev, tc.reason, g.id(last))
			}
			live := publish(t, js, "events.r", "", "after reset")
			last = live
			if ev := s.next(t, 5*time.Second); seqOf(t, ev.LastEventID) != live || ev.Data != "after reset" {
				t.Fatalf("after reset got %+v", ev)
			}
		})
	}
	t.Run("expired by retention", func(t *testing.T) {
		stream := gatewayStream(t, js)
		last := stream.CachedInfo().State.LastSeq
		if err := stream.Purge(context.Background()); err != nil {
			t.Fatal(err)
		}
		s := open(t, g.h1Client(), eventsURL(g.httpURL, []string{"r"}, nil), http.Header{"Last-Event-Id": {g.id(2)}})
		if ev := s.next(t, 5*time.Second); ev.Type != "reset" || !strings.Contains(ev.Data, replay.ResetExpired) || seqOf(t, ev.LastEventID) != last {
			t.Fatalf("got %+v", ev)
		}
	})
}

// TestReconnectLoopUnderLoadSeesEverySequenceOnce is the handoff proof:
// publishers never pause while clients keep dropping and resuming, and
// each client must see exactly the sequences of its channels, in order.
func TestReconnectLoopUnderLoadSeesEverySequenceOnce(t *testing.T) {
	ns := natsServer(t)
	g := startGateway(t, ns, gatewayConfig{noTLS: true, handler: map[string]any{"replay_limit": 100000}})
	channels := []string{"p", "q", "r"}
	const perPublisher = 400

	var (
		mu        sync.Mutex
		published = map[string][]uint64{}
	)
	var pubs sync.WaitGroup
	for _, ch := range channels {
		for range 2 {
			js := g.js()
			pubs.Add(1)
			go func() {
				defer pubs.Done()
				for i := 0; i < perPublisher; i++ {
					seq := publish(t, js, "events."+ch, "", ch)
					mu.Lock()
					published[ch] = append(published[ch], seq)
					mu.Unlock()
				}
			}()
		}
	}
	pubsDone := make(chan struct{})
	go func() { pubs.Wait(); close(pubsDone) }()

	subsets := [][]string{{"p"}, {"p", "q"}, {"q", "r"}, {"p", "q", "r"}}
	results := make([][]uint64, len(subsets))
	var clients sync.WaitGroup
	for i, chs := range subsets {
		clients.Add(1)
		go func() {
			defer clients.Done()
			owed := func() int {
				mu.Lock()
				defer mu.Unlock()
				n := 0
				for _, ch := range chs {
					n += len(published[ch])
				}
				return n
			}
			results[i] = reconnectLoop(t, g, chs, pubsDone, owed)
		}()
	}
	clients.Wait()

	for i, chs := range subsets {
		checkEveryEventOnce(t, "client of", results[i], chs, published)
	}
}

// reconnectLoop reads a random number of events per connection, then
// drops it and resumes from the last id, until publishing is over and it
// has as many events as it is owed: a quiet spell alone says nothing on a
// loaded machine.
func reconnectLoop(t *testing.T, g *gateway, channels []string, pubsDone <-chan struct{}, owed func() int) []uint64 {
	var got []uint64
	last := "0"
	c := g.h2cClient()
	defer c.CloseIdleConnections()
	deadline := time.Now().Add(60 * time.Second)
	for reconnects := 0; time.Now().Before(deadline); reconnects++ {
		finished := false
		select {
		case <-pubsDone:
			finished = true
		default:
		}
		if finished && len(got) >= owed() {
			return got
		}
		s, resp := tryOpen(t, c, eventsURL(g.httpURL, channels, nil), http.Header{"Last-Event-Id": {last}})
		if s == nil {
			t.Errorf("reconnect %d: status %d", reconnects, resp.StatusCode)
			return got
		}
		want := 1 + rand.IntN(60)
		idle := time.NewTimer(500 * time.Millisecond)
	read:
		for n := 0; finished || n < want; n++ {
			select {
			case ev, ok := <-s.events:
				if !ok {
					break read
				}
				if ev.Type == "reset" {
					t.Errorf("unexpected reset %s", ev.Data)
					return got
				}
				got = append(got, seqOf(t, ev.LastEventID))
				last = ev.LastEventID
				idle.Reset(500 * time.Millisecond)
			case <-idle.C:
				break read
			}
			if finished && len(got) >= owed() {
				s.close()
				return got
			}
		}
		idle.Stop()
		s.close()
	}
	t.Errorf("reconnect loop did not finish in time: %d of %d events", len(got), owed())
	return got
}

// checkEveryEventOnce checks that got holds every event sent on chans,
// once each, in stream order; who names the reader in the error.
func checkEveryEventOnce(t *testing.T, who string, got []uint64, chans []string, sent map[string][]uint64) {
	t.Helper()
	var want []uint64
	for _, ch := range chans {
		want = append(want, sent[ch]...)
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("%s %v: got %d events, want %d; first difference at %d", who, chans, len(got), len(want), firstDiff(got, want))
	}
}

func firstDiff(a, b []uint64) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestSlowClientResumesWithoutLoss: a client that stops reading is cut
// off, then resumes from the last id it saw and gets the rest once.
func TestSlowClientResumesWithoutLoss(t *testing.T) {
	ns := natsServer(t)
	g := startGateway(t, ns, gatewayConfig{noTLS: true, handler: map[string]any{
		"queue_size": 16, "write_timeout": int64(300 * time.Millisecond), "replay_limit": 100000,
	}})
	js := g.js()
	path := strings.TrimPrefix(eventsURL(g.httpURL, []string{"burst"}, nil), g.httpURL)
	slow, err := net.Dial("tcp", strings.TrimPrefix(g.httpURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fmt.Fprintf(slow, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", path)
	eventually(t, 5*time.Second, "client attached", func() bool { return g.metric(mClients) == 1 })

	const events = 1500
	payload := strings.Repeat("y", 8192)
	var want []uint64
	for i := 0; i < events; i++ {
		want = append(want, publish(t, js, "events.burst", "", payload))
	}
	eventually(t, 10*time.Second, "slow client cut off", func() bool { return g.metric(mSlow) >= 1 })

	// Now read what the server managed to send before it gave up.
	_ = slow.SetReadDeadline(time.Now().Add(20 * time.Second))
	raw, err := io.ReadAll(slow)
	if err != nil {
		t.Fatalf("reading the cut-off stream: %v", err)
	}
	_, body, _ := strings.Cut(string(raw), "\r\n\r\n")
	var got []uint64
	last := ""
	// The cut may fall inside an event, which a client discards, as the
	// parser does here by ending with an error after the last whole one.
	for ev, err := range gosse.Read(strings.NewReader(dechunk(t, body)), &gosse.ReadConfig{MaxEventSize: 1 << 20}) {
		if err != nil {
			break
		}
		last = ev.LastEventID
		if ev.Data != "" {
			got = append(got, seqOf(t, ev.LastEventID))
		}
	}
	if len(got) >= events {
		t.Fatalf("the slow client got all %d events; the test proves nothing", len(got))
	}
	s := open(t, g.h1Client(), eventsURL(g.httpURL, []string{"burst"}, nil), http.Header{"Last-Event-Id": {last}})
	for _, ev := range s.collect(t, events-len(got), 30*time.Second) {
		got = append(got, seqOf(t, ev.LastEventID))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("after resuming: %d events, first difference at %d", len(got), firstDiff(got, want))
	}
}

// dechunk undoes HTTP/1.1 chunked encoding of a body read off the wire.
func dechunk(t *testing.T, body string) string {
	var out strings.Builder
	for body != "" {
		line, rest, ok := strings.Cut(body, "\r\n")
		if !ok {
			break
		}
		var n int
		if _, err := fmt.Sscanf(line, "%x", &n); err != nil {
			t.Fatalf("chunk size %q: %v", line, err)
		}
		if n == 0 || len(rest) < n {
			out.WriteString(rest[:min(n, len(rest))])
			break
		}
		out.WriteString(rest[:n])
		body = strings.TrimPrefix(rest[n:], "\r\n")
	}
	return out.String()
}

// TestNATSRestartLosesNothing stops NATS under connected clients, keeps
// them alive with heartbeats, and checks that events stored while the
// gateway was away are delivered once it reconnects.
func TestNATSRestartLosesNothing(t *testing.T) {
	restartable := natstest.NewRestartable(t)
	ns := restartable.Start()
	g := startGateway(t, ns, gatewayConfig{
		noTLS:   true,
		handler: map[string]any{"heartbeat": int64(50 * time.Millisecond)},
		stream:  map[string]any{"storage": "file"},
		nats:    map[string]any{"urls": []string{ns.ClientURL()}, "reconnect_wait": int64(time.Second)},
	})
	js := g.js()
	var want []uint64
	for i := 0; i < 5; i++ {
		want = append(want, publish(t, js, []string{"events.x", "events.y"}[i%2], "", "before"))
	}
	s := open(t, g.h1Client(), eventsURL(g.httpURL, []string{"x", "y"}, nil), http.Header{"Last-Event-Id": {"0"}})
	// Replay first: a replay cut short by the outage would end the stream
	// with a retry hint, which is correct but not what this test is about.
	var got []uint64
	for _, ev := range s.collect(t, len(want), 10*time.Second) {
		got = append(got, seqOf(t, ev.LastEventID))
	}
	resp, err := g.h1Client().Get(eventsURL(g.httpURL, []string{"x"}, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := rawLines(resp.Body)

	restartable.Stop()
	eventually(t, 5*time.Second, "gateway notices", func() bool { return !g.natsUp() })
	// Heartbeats go on while NATS is away.
	for beats := 0; beats < 3; {
		select {
		case l := <-lines:
			if l == ":" {
				beats++
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no heartbeat while NATS was down")
		}
	}

	ns2 := restartable.Start()
	// Published before the gateway is back: only JetStream has these.
	nc, err := nats.Connect(ns2.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js2, _ := jetstream.New(nc)
	for i := 0; i < 5; i++ {
		want = append(want, publish(t, js2, []string{"events.x", "events.y"}[i%2], "", "while away"))
	}
	eventually(t, 10*time.Second, "gateway reconnects", g.natsUp)
	for i := 0; i < 5; i++ {
		want = append(want, publish(t, js2, []string{"events.x", "events.y"}[i%2], "", "after"))
	}
	for _, ev := range s.collect(t, len(want)-len(got), 20*time.Second) {
		got = append(got, seqOf(t, ev.LastEventID))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

// TestLiveClientsNeedNoConsumers: consumers exist only while a replay
// runs, so the server's consumer count does not grow with clients.
func TestLiveClientsNeedNoConsumers(t *testing.T) {
	ns := natsServer(t)
	g := startGateway(t, ns, gatewayConfig{noTLS: true})
	js := g.js()
	first := publish(t, js, "events.crowd", "", "x")
	c := g.h2cClient()
	defer c.CloseIdleConnections()
	const n = 1000
	streams := make([]*stream, n)
	for i := range streams {
		var hdr http.Header
		if i%2 == 0 {
			hdr = http.Header{"Last-Event-Id": {g.id(first - 1)}}
		}
		streams[i] = open(t, c, eventsURL(g.httpURL, []string{"crowd", fmt.Sprint("own", i%10)}, nil), hdr)
	}
	for i := 0; i < n; i += 2 {
		if ev := streams[i].next(t, 10*time.Second); seqOf(t, ev.LastEventID) != first {
			t.Fatalf("stream %d replayed %+v", i, ev)
		}
	}
	stream := gatewayStream(t, js)
	eventually(t, 10*time.Second, "replay consumers gone", func() bool {
		info, err := stream.Info(context.Background())
		return err == nil && info.State.Consumers == 0
	})
	if got := g.metric(mChannels); got != 11 {
		t.Fatalf("%v subscriptions for 11 channels", got)
	}
	live := publish(t, js, "events.crowd", "", "y")
	for i, s := range streams {
		if ev := s.next(t, 10*time.Second); seqOf(t, ev.LastEventID) != live {
			t.Fatalf("stream %d got %+v", i, ev)
		}
	}
}

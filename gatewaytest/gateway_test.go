package gatewaytest

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestStreamOverEveryProtocol(t *testing.T) {
	ns := natsServer(t)
	g := startGateway(t, ns, gatewayConfig{})
	js := g.js()
	for _, tc := range []struct {
		name   string
		client *http.Client
		base   string
		proto  int
	}{
		{"HTTP/1.1", g.h1Client(), g.httpURL, 1},
		{"h2c", g.h2cClient(), g.httpURL, 2},
		{"HTTP/2 over TLS", g.h2TLSClient(), g.tlsURL, 2},
		{"HTTP/3", g.h3Client(), g.tlsURL, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t, tc.client, eventsURL(tc.base, []string{"news"}, nil), nil)
			if s.resp.ProtoMajor != tc.proto {
				t.Fatalf("protocol %s, want major %d", s.resp.Proto, tc.proto)
			}
			for k, want := range map[string]string{"Cache-Control": "no-cache", "X-Accel-Buffering": "no"} {
				if got := s.resp.Header.Get(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
			seq := publish(t, js, "events.news", "greeting", "hello\r\nworld")
			ev := s.next(t, 5*time.Second)
			if ev.Type != "greeting" || ev.Data != "hello\nworld" || seqOf(t, ev.LastEventID) != seq {
				t.Fatalf("got %+v, want greeting %q with sequence %d", ev, "hello\nworld", seq)
			}
		})
	}
}

func TestFirstBytesArriveBeforeAnyEvent(t *testing.T) {
	ns := natsServer(t)
	g := startGateway(t, ns, gatewayConfig{noTLS: true, encode: true})
	// This transport asks for gzip and decodes it transparently.
	resp, err := (&http.Client{Transport: &http.Transport{}}).Get(eventsURL(g.httpURL, []string{"quiet"}, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if !resp.Uncompressed {
		t.Fatal("encode did not compress the stream; the test proves nothing")
	}
	// The response must be readable with no event published: behind
	// encode, headers and compressed bytes are held back until a flush.
	lines := rawLines(resp.Body)
	select {
	case l := <-lines:
		if l != ": ssegate" {
			t.Fatalf("first line %q", l)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no bytes before the first event")
	}
	seq := publish(t, g.js(), "events.quiet", "", "through gzip")
	// The stream announced its start position (an empty stream's is 0)
	// before the event.
	for _, want := range []string{"id: 0-", "id: " + fmt.Sprint(seq), "data: through gzip"} {
		select {
		case l := <-lines:
			for l == "" || strings.HasPrefix(l, "retry:") {
				l = <-lines
			}
			if !strings.HasPrefix(l, want) {
				t.Fatalf("line %q, want %q", l, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("event did not get through encode")
		}
	}
}

func TestFanOutSharesOneSubscription(t *testing.T) {
	ns := natsServer(t)
	g := startGateway(t, ns, gatewayConfig{noTLS: true})
	js := g.js()
	const clients, events = 50, 100
	c := g.h2cClient()
	streams := make([]*stream, clients)
	for i := range streams {
		streams[i] = open(t, c, eventsURL(g.httpURL, []string{"room"}, nil), nil)
	}
	if got := g.metric(mChannels); got != 1 {
		t.Fatalf("hub holds %v subscriptions for one channel", got)
	}
	var want []uint64
	for i := 0; i < events; i++ {
		want = append(want, publish(t, js, "events.room", "", fmt.Sprint(i)))
	}
	for i, s := range streams {
		got := s.collect(t, events, 10*time.Second)
		for j, ev := range got {
			if seqOf(t, ev.LastEventID) != want[j] || ev.Data != fmt.Sprint(j) {
				t.Fatalf("client %d event %d: %+v, want seq %d", i, j, ev, want[j])
			}
		}
	}
}

func TestMultiChannelDeliveryFollowsStreamOrder(t *testing.T) {
	ns := natsServer(t)
	g := startGateway(t, ns, gatewayConfig{noTLS: true})
	channels := []string{"a", "b", "c"}
	s := open(t, g.h1Client(), eventsURL(g.httpURL, channels, nil), nil)
	const perChannel = 200
	var wg sync.WaitGroup
	for _, ch := range channels {
		js := g.js()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perChannel; i++ {
				publish(t, js, "events."+ch, "", ch)
			}
		}()
	}
	wg.Wait()
	got := s.collect(t, perChannel*len(channels), 15*time.Second)
	var last uint64
	for _, ev := range got {
		seq := seqOf(t, ev.LastEventID)
		if seq <= last {
			t.Fatalf("sequence %d after %d: events left stream order", seq, last)
		}
		last = seq
	}
	if last != perChannel*uint64(len(channels)) {
		t.Fatalf("last sequence %d, want %d", last, perChannel*len(channels))
	}
}

func TestHeartbeatWhileIdle(t *testing.T) {
	ns := natsServer(t)
	const interval = 100 * time.Millisecond
	g := startGateway(t, ns, gatewayConfig{noTLS: true, handler: map[string]any{"heartbeat": int64(interval)}})
	resp, err := g.h1Client().Get(eventsURL(g.httpURL, []string{"idle"}, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := rawLines(resp.Body)
	start := time.Now()
	beats := 0
	deadline := time.After(5 * time.Second)
	for beats < 5 {
		select {
		case l := <-lines:
			if l == ":" {
				beats++
			}
		case <-deadline:
			t.Fatalf("%d heartbeats in 5s with a %v interval", beats, interval)
		}
	}
	// Five beats cannot come faster than four intervals.
	if el := time.Since(start); el < 4*interval {
		t.Fatalf("5 heartbeats in %v: faster than the %v interval", el, interval)
	}
}

func TestSlowClientIsDisconnectedWithoutHurtingOthers(t *testing.T) {
	ns := natsServer(t)
	g := startGateway(t, ns, gatewayConfig{noTLS: true, handler: map[string]any{
		"queue_size":    512,
		"write_timeout": int64(300 * time.Millisecond),
	}})
	js := g.js()
	url := eventsURL(g.httpURL, []string{"firehose"}, nil)

	// The slow client sends its request and then reads nothing.
	// A small receive buffer makes the kernel stop accepting data soon.
	dialer := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) {
			_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
	}}
	slow, err := dialer.Dial("tcp", strings.TrimPrefix(g.httpURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fmt.Fprintf(slow, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", strings.TrimPrefix(url, g.httpURL))
	fast := open(t, g.h1Client(), url, nil)
	eventually(t, 5*time.Second, "both clients attached", func() bool {
		return g.metric(mClients) == 2
	})

	// Enough to fill the slow socket's buffers and then its queue.
	payload := strings.Repeat("x", 8192)
	const events = 2000
	for i := 0; i < events; i++ {
		publish(t, js, "events.firehose", "", payload)
	}
	if got := fast.collect(t, events, 30*time.Second); len(got) != events {
		t.Fatalf("fast client got %d of %d", len(got), events)
	}
	eventually(t, 20*time.Second, "slow client disconnected", func() bool {
		return g.metric(mSlow) >= 1 && g.metric(mClients) == 1
	})
}

func TestStreamsEndCleanly(t *testing.T) {
	ns := natsServer(t)
	g := startGateway(t, ns, gatewayConfig{noTLS: true})
	ignore := goleak.IgnoreCurrent()
	c := g.h2cClient()
	h1 := g.h1Client()
	var streams []*stream
	for i := 0; i < 20; i++ {
		cl := c
		if i%2 == 0 {
			cl = h1
		}
		streams = append(streams, open(t, cl, eventsURL(g.httpURL, []string{fmt.Sprint("ch", i%5), "shared"}, nil), nil))
	}
	if got := g.metric(mChannels); got != 6 {
		t.Fatalf("%v subscriptions, want 6", got)
	}
	for _, s := range streams {
		s.close()
	}
	eventually(t, 5*time.Second, "subscriptions released", func() bool {
		return g.metric(mChannels) == 0 && g.metric(mClients) == 0
	})
	// Caddy's storage keeps a lock file fresh in the background, started
	// whenever its cleaning task runs; it is not a stream's.
	lockfile := goleak.IgnoreAnyFunction("github.com/caddyserver/certmagic.keepLockfileFresh")
	eventually(t, 10*time.Second, "connections closed", func() bool {
		// A connection counts as idle only once its streams are reset,
		// which may come after the streams were counted out.
		c.CloseIdleConnections()
		h1.CloseIdleConnections()
		return goleak.Find(ignore, lockfile) == nil
	})
	goleak.VerifyNone(t, ignore, lockfile)
}

func TestOneHTTP2ConnectionCarries200Streams(t *testing.T) {
	ns := natsServer(t)
	g := startGateway(t, ns, gatewayConfig{})
	var dials atomic.Int32
	tr := &http.Transport{
		ForceAttemptHTTP2: true,
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials.Add(1)
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}
	c := &http.Client{Transport: tr}
	defer tr.CloseIdleConnections()
	const n = 200
	streams := make([]*stream, n)
	for i := range streams {
		streams[i] = open(t, c, eventsURL(g.tlsURL, []string{"wide"}, nil), nil)
	}
	seq := publish(t, g.js(), "events.wide", "", "to all")
	for i, s := range streams {
		if ev := s.next(t, 10*time.Second); seqOf(t, ev.LastEventID) != seq {
			t.Fatalf("stream %d got %+v", i, ev)
		}
	}
	if d := dials.Load(); d != 1 {
		t.Fatalf("%d connections for %d streams, want 1", d, n)
	}
}

func TestBadRequestsGetAClearAnswer(t *testing.T) {
	ns := natsServer(t)
	g := startGateway(t, ns, gatewayConfig{noTLS: true, handler: map[string]any{"public": []string{"demo", "news.*"}}})
	c := g.h1Client()
	long := strings.Repeat("a", 300)
	many := make([]string, 17)
	for i := range many {
		many[i] = fmt.Sprint("c", i)
	}
	type badRequest struct {
		name   string
		method string
		query  string
		status int
		code   string
	}
	tests := []badRequest{
		{"POST", http.MethodPost, "channel=demo", 405, "method_not_allowed"},
		{"PUT", http.MethodPut, "channel=demo", 405, "method_not_allowed"},
		{"DELETE", http.MethodDelete, "channel=demo", 405, "method_not_allowed"},
		{"no channel", http.MethodGet, "", 400, "no_channel"},
		{"too many", http.MethodGet, "channel=" + strings.Join(many, "&channel="), 400, "too_many_channels"},
		{"not public", http.MethodGet, "channel=secret", 401, "unauthenticated"},
		{"one of two not public", http.MethodGet, "channel=demo&channel=secret", 401, "unauthenticated"},
	}
	// Channel names that are not one: empty, wildcards, an empty or
	// leading token, a space, NUL, CRLF, too long (query-escaped).
	for _, ch := range []string{"", "*", "%3E", "news.*", "news..x", ".news", "a%20b", "a%00b", "a%0D%0Ab", long} {
		tests = append(tests, badRequest{fmt.Sprintf("channel %.20q", ch), http.MethodGet, "channel=" + ch, 400, "invalid_channel"})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, g.httpURL+"/events?"+tc.query, nil)
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d (%s)", resp.StatusCode, tc.status, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("content type %q", ct)
			}
			var e struct{ Error, Detail string }
			if err := json.Unmarshal(body, &e); err != nil || e.Error != tc.code || e.Detail == "" {
				t.Errorf("body %s, want error %q with a detail", body, tc.code)
			}
			if tc.status == 405 && resp.Header.Get("Allow") != "GET" {
				t.Errorf("Allow = %q", resp.Header.Get("Allow"))
			}
		})
	}
	// The valid forms still stream.
	open(t, c, eventsURL(g.httpURL, []string{"demo", "news.eu"}, nil), nil)
}

// TestIdleStreamOutlivesWriteTimeout: a stream idle for longer than the
// write timeout is not cut, and its next event arrives, on every protocol,
// whether Caddy's idle timeout writer bounds the writes or, with the
// server's write_idle_timeout off, the session sets its own deadlines. On
// HTTP/2 a deadline left armed resets the stream when it passes.
func TestIdleStreamOutlivesWriteTimeout(t *testing.T) {
	ns := natsServer(t)
	const writeTimeout = 200 * time.Millisecond
	for _, deadlines := range []struct {
		name   string
		server map[string]any
	}{
		{"caddy", nil},
		{"own", map[string]any{"write_idle_timeout": -1}},
	} {
		g := startGateway(t, ns, gatewayConfig{server: deadlines.server, handler: map[string]any{
			"heartbeat": int64(time.Hour), "write_timeout": int64(writeTimeout),
		}})
		js := g.js()
		for _, tc := range []struct {
			name   string
			client *http.Client
			base   string
		}{
			{"h1", g.h1Client(), g.httpURL},
			{"h2c", g.h2cClient(), g.httpURL},
			{"h2", g.h2TLSClient(), g.tlsURL},
			{"h3", g.h3Client(), g.tlsURL},
		} {
			t.Run(deadlines.name+"/"+tc.name, func(t *testing.T) {
				s := open(t, tc.client, eventsURL(tc.base, []string{"calm"}, nil), nil)
				defer s.close()
				for range 2 {
					// The idle spell is the scenario, not a synchronisation.
					<-time.After(3 * writeTimeout)
					seq := publish(t, js, "events.calm", "", "still here")
					if ev := s.next(t, 5*time.Second); seqOf(t, ev.LastEventID) != seq {
						t.Fatalf("got %+v", ev)
					}
				}
			})
		}
	}
}

// TestNewClientOfBusyChannelStartsLive: a client without a position gets
// events from the gateway's position on, never the channel's history. The
// gateway's position is the last event it handed out: events stored a
// moment before the client came, still on their way to the gateway, are
// after it. So the test waits until the old events have reached it.
func TestNewClientOfBusyChannelStartsLive(t *testing.T) {
	ns := natsServer(t)
	g := startGateway(t, ns, gatewayConfig{noTLS: true})
	js := g.js()
	var stored uint64
	for i := 0; i < 200; i++ {
		stored = publish(t, js, "events.busy", "", "old")
	}
	eventually(t, 5*time.Second, "the old events reached the gateway", func() bool { return g.inspect().Position >= stored })
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		pubJS := g.js()
		for i := 0; i < 5000; i++ {
			select {
			case <-stop:
				return
			default:
				publish(t, pubJS, "events.busy", "", "new")
			}
		}
	}()
	defer func() { close(stop); <-done }()
	for i := 0; i < 10; i++ {
		s := open(t, g.h2cClient(), eventsURL(g.httpURL, []string{"busy"}, nil), nil)
		if ev := s.next(t, 5*time.Second); seqOf(t, ev.LastEventID) <= stored || ev.Data != "new" {
			t.Fatalf("attempt %d: a fresh client got %+v from history", i, ev)
		}
		s.close()
		eventually(t, 5*time.Second, "channel released", func() bool { return g.metric(mChannels) == 0 })
	}
}

// TestReloadKeepsNATSAndAsksClientsBack: a config reload keeps the pooled
// NATS connection, and ends the old config's streams with a retry hint so
// that clients resume, from their ids, on the new one.
func TestReloadKeepsNATSAndAsksClientsBack(t *testing.T) {
	ns := natsServer(t)
	g := startGateway(t, ns, gatewayConfig{noTLS: true, handler: map[string]any{"retry": int64(time.Second)}})
	conns := natsConns(t, ns)
	resp, err := g.h1Client().Get(eventsURL(g.httpURL, []string{"steady"}, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := rawLines(resp.Body)

	startGateway(t, ns, gatewayConfig{noTLS: true, handler: map[string]any{"retry": int64(time.Second), "heartbeat": int64(time.Minute)}})
	if !maps.Equal(natsConns(t, ns), conns) {
		t.Fatal("the reload dialled NATS again")
	}
	var ended bool
	var retry time.Duration
	for l := range lines {
		if l == ": end: shutdown" {
			ended = true
		}
		if ended && strings.HasPrefix(l, "retry: ") {
			ms, _ := strconv.Atoi(strings.TrimPrefix(l, "retry: "))
			retry = time.Duration(ms) * time.Millisecond
		}
	}
	// Jitter spreads the reconnects over [retry, 2*retry).
	if !ended || retry < time.Second || retry >= 2*time.Second {
		t.Fatalf("old stream ended=%v with retry %v", ended, retry)
	}
	if !maps.Equal(natsConns(t, ns), conns) {
		t.Fatal("the pooled connection was closed")
	}
}

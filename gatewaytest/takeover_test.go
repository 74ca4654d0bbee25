package gatewaytest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// rawStream opens an HTTP/1.1 stream on a TCP connection of its own and
// returns the connection and a reader past the response head.
func rawStream(t *testing.T, base, path string, hdr ...string) (net.Conn, *bufio.Reader, string) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n", path, strings.Join(hdr, ""))
	br := bufio.NewReader(conn)
	var head strings.Builder
	for {
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the head: %v (%q)", err, head.String())
		}
		if line == "\r\n" {
			return conn, br, head.String()
		}
		head.WriteString(line)
	}
}

// TestHTTP1TakeoverStreams: with http1_takeover on, an HTTP/1.1 stream is
// served from the connection itself, with the usual head and events, and
// resumes by id; HTTP/2 streams are served as always.
func TestHTTP1TakeoverStreams(t *testing.T) {
	ns := natsServer(t)
	g := startGateway(t, ns, gatewayConfig{noTLS: true, handler: map[string]any{"http1_takeover": true}})
	js := g.js()
	path := strings.TrimPrefix(eventsURL(g.httpURL, []string{"taken"}, nil), g.httpURL)
	_, br, head := rawStream(t, g.httpURL, path)
	for _, want := range []string{"HTTP/1.1 200 OK\r\n", "Content-Type: text/event-stream\r\n", "Connection: close\r\n", "Cache-Control: no-cache\r\n"} {
		if !strings.Contains(head, want) {
			t.Fatalf("head lacks %q:\n%s", want, head)
		}
	}
	if strings.Contains(head, "Transfer-Encoding") {
		t.Fatalf("a body that ends with the connection needs no chunking:\n%s", head)
	}
	first := publish(t, js, "events.taken", "greeting", "hello")
	for line := ""; line != "data: hello\n"; {
		var err error
		if line, err = br.ReadString('\n'); err != nil {
			t.Fatalf("no event: %v", err)
		}
	}
	// Resuming, over a takeover too, and HTTP/2 as usual.
	second := publish(t, js, "events.taken", "", "again")
	lastID := fmt.Sprintf("%d-%s", first, g.epoch())
	for _, c := range []*http.Client{g.h1Client(), g.h2cClient()} {
		s := open(t, c, eventsURL(g.httpURL, []string{"taken"}, nil), http.Header{"Last-Event-Id": {lastID}})
		if ev := s.next(t, 5*time.Second); seqOf(t, ev.LastEventID) != second {
			t.Fatalf("%s resumed at %q, want %d", s.resp.Proto, ev.LastEventID, second)
		}
		s.close()
	}
}

// TestHTTP1TakeoverReleasesWhatTheStreamHeld: a taken-over stream whose
// client left is noticed at once, long before the next heartbeat, and
// gives back its subscription and its admission (here the only
// connection allowed), as a page reloaded within the heartbeat needs.
func TestHTTP1TakeoverReleasesWhatTheStreamHeld(t *testing.T) {
	ns := natsServer(t)
	g := startGateway(t, ns, gatewayConfig{noTLS: true, handler: map[string]any{
		"http1_takeover": true, "heartbeat": int64(time.Minute),
		"auth": map[string]any{"max_connections": 1},
	}})
	path := strings.TrimPrefix(eventsURL(g.httpURL, []string{"once"}, nil), g.httpURL)
	conn, _, _ := rawStream(t, g.httpURL, path)
	eventually(t, 5*time.Second, "stream attached", func() bool { return g.metric(mClients) == 1 })
	resp, err := g.h1Client().Get(g.httpURL + path)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("a second stream got %s; the limit proves nothing", resp.Status)
	}
	conn.Close()
	eventually(t, 5*time.Second, "stream ended and released", func() bool {
		return g.metric(mClients) == 0 && g.metric(mChannels) == 0
	})
	s := open(t, g.h1Client(), g.httpURL+path, nil) // admitted again
	s.close()
}

// TestHTTP1TakeoverCutsASlowClient: the session's own write deadline
// replaces the server's on a taken-over connection.
func TestHTTP1TakeoverCutsASlowClient(t *testing.T) {
	ns := natsServer(t)
	g := startGateway(t, ns, gatewayConfig{noTLS: true, handler: map[string]any{
		"http1_takeover": true, "queue_size": 4096, "write_timeout": int64(300 * time.Millisecond),
	}})
	path := strings.TrimPrefix(eventsURL(g.httpURL, []string{"flood"}, nil), g.httpURL)
	conn, _, head := rawStream(t, g.httpURL, path) // and read no more until cut
	slow := g.metric(mSlow)
	payload := strings.Repeat("y", 8192)
	js := g.js()
	for i := 0; i < 1500 && g.metric(mSlow) == slow; i++ {
		publish(t, js, "events.flood", "", payload)
	}
	eventually(t, 10*time.Second, "slow client cut", func() bool { return g.metric(mSlow) > slow })
	eventually(t, 10*time.Second, "stream ended", func() bool { return g.metric(mClients) == 0 })
	// The server closed the connection: reading runs into its end.
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	n, err := io.Copy(io.Discard, conn)
	if err != nil {
		t.Fatalf("the connection was not closed after %d bytes: %v (head %q)", n, err, head)
	}
}

// TestHTTP1TakeoverEndsOnReload: a reload ends taken-over streams like
// the others, with a retry.
func TestHTTP1TakeoverEndsOnReload(t *testing.T) {
	ns := natsServer(t)
	g := startGateway(t, ns, gatewayConfig{noTLS: true, handler: map[string]any{"http1_takeover": true}})
	path := strings.TrimPrefix(eventsURL(g.httpURL, []string{"reloaded"}, nil), g.httpURL)
	conn, br, _ := rawStream(t, g.httpURL, path)
	eventually(t, 5*time.Second, "stream attached", func() bool { return g.metric(mClients) == 1 })
	startGateway(t, ns, gatewayConfig{noTLS: true})
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	rest, err := io.ReadAll(br)
	if err != nil || !strings.Contains(string(rest), ": end: shutdown\n") || !strings.Contains(string(rest), "retry: ") {
		t.Fatalf("stream ended with %q, %v", rest, err)
	}
}

package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ssegate/ssegate/internal/testkit"
)

// TestPollLoopFollowsLastIDOnOneConnection: a poll client sends after=
// the last answer's last_id each time, records each event once, and
// keeps its one connection from poll to poll.
func TestPollLoopFollowsLastIDOnOneConnection(t *testing.T) {
	var (
		mu     sync.Mutex
		afters []string
		conns  atomic.Int64
	)
	answer := func(w http.ResponseWriter, events string, last string) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"events":[%s],"last_id":%q,"more":false}`, events, last)
		// Chunked, as the gateway answered before it sent a length: the
		// client must read to the end to keep the connection.
		w.(http.Flusher).Flush()
	}
	event := func(n int64) string {
		return fmt.Sprintf(`{"id":"%d-e","channel":"c","event":"message","data":%q}`, n, appendPayload(nil, time.Now().UnixNano(), n))
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		after := r.URL.Query().Get("after")
		if r.URL.Query().Get("wait") != "25s" || r.URL.Query().Get("channel") != "c" {
			http.Error(w, "bad query "+r.URL.RawQuery, http.StatusBadRequest)
			return
		}
		mu.Lock()
		afters = append(afters, after)
		mu.Unlock()
		switch after {
		case "":
			answer(w, event(1), "1-e")
		case "1-e":
			answer(w, event(2)+","+event(3), "3-e")
		default:
			// Waits, as a poll with nothing new does, briefly.
			time.Sleep(5 * time.Millisecond)
			answer(w, "", after)
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	set := &streamSet{streams: []*tracked{{}}}
	tr := set.streams[0]
	set.poll(ctx, pollClient(1), srv.URL+"/events/poll?channel=c&wait=25s", tr)
	if !tr.open || set.opened.Load() != 1 {
		t.Fatalf("the poll loop did not start: %v", tr.err)
	}
	testkit.Eventually(t, 10*time.Second, "five polls", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(afters) >= 5
	})
	cancel()
	set.readers.Wait()
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(afters[:4], []string{"", "1-e", "3-e", "3-e"}) {
		t.Fatalf("afters %q", afters)
	}
	if tr.events.Load() != 3 || tr.dups != 0 || tr.hist.count() != 3 || tr.err != nil {
		t.Fatalf("events %d, dups %d, latencies %d, err %v", tr.events.Load(), tr.dups, tr.hist.count(), tr.err)
	}
	if c := conns.Load(); c != 1 {
		t.Fatalf("%d connections for %d polls, want 1", c, len(afters))
	}
}

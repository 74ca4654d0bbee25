package ssegate

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"

	"github.com/ssegate/ssegate/auth"
	"github.com/ssegate/ssegate/replay"
)

// TestMetricEndedCountsClientLeft: a client that closes its stream is
// counted as client_left, once.
func TestMetricEndedCountsClientLeft(t *testing.T) {
	g := startGateway(t, natsServer(t), gatewayConfig{noTLS: true})
	m := g.app.metrics
	left := testutil.ToFloat64(m.ended.WithLabelValues("client_left"))
	for range 3 {
		s := open(t, g.h1Client(), eventsURL(g.httpURL, []string{"leaving"}, nil), nil)
		s.close()
	}
	eventually(t, 5*time.Second, "3 streams counted as client_left", func() bool {
		return testutil.ToFloat64(m.ended.WithLabelValues("client_left")) == left+3
	})
	eventually(t, 5*time.Second, "no open stream", func() bool { return testutil.ToFloat64(m.clients) == 0 })
	if got := testutil.ToFloat64(m.ended.WithLabelValues("client_left")); got != left+3 {
		t.Fatalf("client_left %v, want %v", got, left+3)
	}
}

// TestMetricRefusalsCountPublishAndTicket: every refusal of the publish
// and ticket endpoints is counted under its code.
func TestMetricRefusalsCountPublishAndTicket(t *testing.T) {
	g := publishGateway(t, nil, nil)
	m := g.app.metrics
	total := func() float64 {
		var sum float64
		for _, c := range []string{"unauthenticated", "invalid_token", "channel_forbidden", "empty_data", "method_not_allowed", "invalid_event"} {
			sum += testutil.ToFloat64(m.refusals.WithLabelValues(c))
		}
		return sum
	}
	before := total()
	key := bearer(testPublishKey)
	wants := []struct {
		status int
		reply  publishReply
	}{
		{401, post(t, g.httpURL, "channel=demo", "x", nil)},
		{401, post(t, g.httpURL, "channel=demo", "x", bearer("not-the-key-but-just-as-long-0123456789"))},
		{403, post(t, g.httpURL, "channel=users.bob", "x", key)},
		{400, post(t, g.httpURL, "channel=demo", "", key)},
		{400, post(t, g.httpURL, "channel=demo&event=reset%20", "x", key)},
	}
	for i, w := range wants {
		if w.reply.status != w.status {
			t.Fatalf("publish %d: %+v, want %d", i, w.reply, w.status)
		}
	}
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		req, _ := http.NewRequest(method, g.httpURL+"/events/ticket", nil)
		if r := do(t, req); r.status != 405 && r.status != 401 {
			t.Fatalf("ticket %s: %+v", method, r)
		}
	}
	if got := total() - before; got != 7 {
		t.Fatalf("7 refusals, %v counted", got)
	}
}

// TestMetricProtoLabelIsFixed: a request line of HTTP/1.9 is served as
// HTTP/1.1 and makes no series of its own.
func TestMetricProtoLabelIsFixed(t *testing.T) {
	g := startGateway(t, natsServer(t), gatewayConfig{noTLS: true})
	m := g.app.metrics
	series := testutil.CollectAndCount(m.connections)
	for _, v := range []string{"HTTP/1.9", "HTTP/1.0"} {
		c, err := net.Dial("tcp", strings.TrimPrefix(g.httpURL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "GET /events?channel=proto %s\r\nHost: x\r\n\r\n", v)
		status, err := bufio.NewReader(c).ReadString('\n')
		if err != nil || !strings.Contains(status, " 200 ") {
			t.Fatalf("%s: status line %q, %v", v, status, err)
		}
	}
	eventually(t, 5*time.Second, "both streams counted", func() bool {
		return testutil.ToFloat64(m.connections.WithLabelValues("HTTP/1.1")) >= 1 && testutil.ToFloat64(m.connections.WithLabelValues("HTTP/1.0")) >= 1
	})
	if n := testutil.CollectAndCount(m.connections); n != series {
		t.Fatalf("%d proto series, was %d: the label took a request line", n, series)
	}
}

// stuckWriter times out on every write, as a client that stopped reading.
type stuckWriter struct {
	header http.Header
	writes int
}

func (w *stuckWriter) Header() http.Header { return w.header }
func (w *stuckWriter) WriteHeader(int)     {}
func (w *stuckWriter) Write([]byte) (int, error) {
	w.writes++
	return 0, os.ErrDeadlineExceeded
}

type listHistory struct{ msgs []replay.Msg }

func (h listHistory) Resolve(context.Context, string, []string) (replay.Resolution, error) {
	return replay.Resolution{}, nil
}
func (h listHistory) Read(_ context.Context, _ []string, _ uint64, _ int, fn func(replay.Msg) error) error {
	for _, m := range h.msgs {
		if err := fn(m); err != nil {
			return err
		}
	}
	return nil
}
func (h listHistory) Epoch() string { return "abcd" }

// TestMetricWriteTimeoutDuringReplayCountsOnce: a replay write that times
// out ends the stream as slow, counted once, and nothing more is written
// to the client that stopped reading.
func TestMetricWriteTimeoutDuringReplayCountsOnce(t *testing.T) {
	h := &Handler{app: &App{metrics: newMetrics()}, log: zap.NewNop(), WriteTimeout: caddy.Duration(time.Second), buffers: new(bufferPool)}
	m := h.app.metrics
	w := &stuckWriter{header: http.Header{}}
	s := h.newSession(w, []string{"events.a"})
	s.client = newFeedClient()
	s.history = listHistory{msgs: []replay.Msg{{Seq: 1, Subject: "events.a", Data: []byte("a")}, {Seq: 2, Subject: "events.a", Data: []byte("b")}}}
	end := s.closer(httptest.NewRequest(http.MethodGet, "/events", nil), &auth.Admission{Release: func() {}}, time.Now())
	if err := s.catchUp(context.Background(), "0"); err == nil {
		t.Fatal("the replay went on after a write timed out")
	}
	end()
	if w.writes != 1 {
		t.Errorf("%d writes to a client whose first write timed out", w.writes)
	}
	if got := testutil.ToFloat64(m.ended.WithLabelValues("slow")); got != 1 {
		t.Errorf("streams_ended_total{reason=slow} %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.slow); got != 1 {
		t.Errorf("slow_client_disconnects_total %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.ended.WithLabelValues("unavailable")); got != 0 {
		t.Errorf("also counted as unavailable")
	}
}

func storedRefusals(g *gateway, code string) float64 {
	return testutil.ToFloat64(g.app.metrics.refusals.WithLabelValues(code))
}

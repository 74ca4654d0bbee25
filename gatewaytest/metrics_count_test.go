package gatewaytest

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestMetricEndedCountsClientLeft: a client that closes its stream is
// counted as client_left, once.
func TestMetricEndedCountsClientLeft(t *testing.T) {
	g := startGateway(t, natsServer(t), gatewayConfig{noTLS: true})
	ended := func() float64 { return g.metric(`ssegate_streams_ended_total{reason="client_left"}`) }
	left := ended()
	for range 3 {
		s := open(t, g.h1Client(), eventsURL(g.httpURL, []string{"leaving"}, nil), nil)
		s.close()
	}
	eventually(t, 5*time.Second, "3 streams counted as client_left", func() bool {
		return ended() == left+3
	})
	eventually(t, 5*time.Second, "no open stream", func() bool { return g.metric("ssegate_clients") == 0 })
	if got := ended(); got != left+3 {
		t.Fatalf("client_left %v, want %v", got, left+3)
	}
}

// TestMetricRefusalsCountPublishAndTicket: every refusal of the publish
// and ticket endpoints is counted under its code.
func TestMetricRefusalsCountPublishAndTicket(t *testing.T) {
	g := publishGateway(t, nil, nil)
	total := func() float64 {
		var sum float64
		for _, c := range []string{"unauthenticated", "invalid_token", "channel_forbidden", "empty_data", "method_not_allowed", "invalid_event"} {
			sum += storedRefusals(g, c)
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
	series := g.seriesOf("ssegate_streams")
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
		return g.metric(`ssegate_streams{proto="HTTP/1.1"}`) >= 1 && g.metric(`ssegate_streams{proto="HTTP/1.0"}`) >= 1
	})
	if n := g.seriesOf("ssegate_streams"); n != series {
		t.Fatalf("%d proto series, was %d: the label took a request line", n, series)
	}
}

func storedRefusals(g *gateway, code string) float64 {
	return g.metric(`ssegate_refusals_total{code="` + code + `"}`)
}

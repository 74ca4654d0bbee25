package gatewaytest

import (
	"encoding/json"
	"net/http"
	neturl "net/url"
	"strings"
	"testing"
	"time"

	"github.com/ssegate/ssegate/replay"
)

// TestUnavailableStreamSaysWhereToComeBackFrom: a stream refused while
// NATS is away tells a client without a position where the gateway
// stood, as an id without data, so that the client comes back from there
// and gets what was published meanwhile. A client that came with a
// position is told none: it keeps its own.
func TestUnavailableStreamSaysWhereToComeBackFrom(t *testing.T) {
	start, stop, url := restartableNATS(t)
	js := start()
	g := startGateway(t, nil, gatewayConfig{noTLS: true, stream: map[string]any{"storage": "file"},
		nats: map[string]any{"urls": []string{url}, "reconnect_wait": int64(100 * time.Millisecond)}})
	eventually(t, 5*time.Second, "hub ready", func() bool { return g.inspect().Settled })
	publish(t, js, "events.away", "", "1")
	last := publish(t, js, "events.other", "", "2")
	eventually(t, 5*time.Second, "hub at the last event", func() bool { return g.inspect().Position == last })
	epoch := g.epoch()
	stop()
	eventually(t, 5*time.Second, "gateway notices", func() bool { return !g.natsUp() })

	refused := func(hdr http.Header) (ids []string) {
		req, _ := http.NewRequest(http.MethodGet, eventsURL(g.httpURL, []string{"away"}, nil), nil)
		for k, v := range hdr {
			req.Header[k] = v
		}
		resp, err := g.h1Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		ended := false
		for l := range rawLines(resp.Body) {
			ended = ended || l == ": end: unavailable"
			if id, ok := strings.CutPrefix(l, "id: "); ok {
				ids = append(ids, id)
			}
		}
		if resp.StatusCode != http.StatusOK || !ended {
			t.Fatalf("status %d, ended %v: want a 200 that ends unavailable", resp.StatusCode, ended)
		}
		return ids
	}
	ids := refused(nil)
	if want := seqID(last, epoch); len(ids) != 1 || ids[0] != want {
		t.Fatalf("a fresh client was told %q, want [%s]", ids, want)
	}
	if ids := refused(http.Header{"Last-Event-Id": {seqID(1, epoch)}}); len(ids) != 0 {
		t.Fatalf("a client with a position was told %q", ids)
	}

	// Back from where it was told, the client gets what came meanwhile.
	js = start()
	eventually(t, 10*time.Second, "gateway reconnects", g.natsUp)
	missed := publish(t, js, "events.away", "", "3")
	s := open(t, g.h1Client(), eventsURL(g.httpURL, []string{"away"}, nil), http.Header{"Last-Event-Id": {ids[0]}})
	defer s.close()
	if got := seqOf(t, s.next(t, 10*time.Second).LastEventID); got != missed {
		t.Fatalf("back from the told position: got %d first, want %d", got, missed)
	}
}

func seqID(seq uint64, epoch string) string { return replay.ID{Seq: seq, Epoch: epoch}.String() }

// TestHistoryAndPollUnavailableWhileNATSIsAway: with NATS gone, history
// and poll answer 503 unavailable with Retry-After, each refusal counted
// once, and answer again once NATS is back.
func TestHistoryAndPollUnavailableWhileNATSIsAway(t *testing.T) {
	start, stop, url := restartableNATS(t)
	js := start()
	g := startGateway(t, nil, gatewayConfig{noTLS: true, stream: map[string]any{"storage": "file"},
		nats: map[string]any{"urls": []string{url}, "reconnect_wait": int64(100 * time.Millisecond)},
		handler: map[string]any{
			"history": map[string]any{"path": "/events/history"},
			"poll":    map[string]any{"path": "/events/poll"},
		}})
	eventually(t, 5*time.Second, "hub ready", func() bool { return g.inspect().Settled })
	last := publish(t, js, "events.away", "", "1")
	eventually(t, 5*time.Second, "hub at the event", func() bool { return g.inspect().Position == last })
	stop()
	eventually(t, 5*time.Second, "gateway notices", func() bool { return !g.natsUp() })

	for _, path := range []string{"/events/history", "/events/poll"} {
		before := storedRefusals(g, "unavailable")
		req, _ := http.NewRequest(http.MethodGet, g.httpURL+path+"?channel=away&after=0&wait=1s", nil)
		var got struct{ Error string }
		resp, body := answer(t, g, req)
		if err := json.Unmarshal(body, &got); err != nil || resp.StatusCode != http.StatusServiceUnavailable ||
			got.Error != "unavailable" || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("%s with NATS away: %d %v %s", path, resp.StatusCode, resp.Header, body)
		}
		if n := storedRefusals(g, "unavailable") - before; n != 1 {
			t.Fatalf("%s: counted %v times, want once", path, n)
		}
	}
	start()
	eventually(t, 10*time.Second, "gateway reconnects", g.natsUp)
	eventually(t, 10*time.Second, "history answers again", func() bool {
		f := fetchJSON(g, "/events/history", neturl.Values{"channel": {"away"}, "after": {"0"}})
		return f.err == nil && f.status == http.StatusOK && len(f.answer.Events) == 1
	})
}

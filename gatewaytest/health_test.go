package gatewaytest

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/ssegate/ssegate/internal/health"
	"github.com/ssegate/ssegate/internal/natstest"
)

type healthReply struct {
	status int
	body   health.Report
}

func getHealth(t *testing.T, base string) healthReply {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/events/health", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out healthReply
	out.status = resp.StatusCode
	if err := json.NewDecoder(resp.Body).Decode(&out.body); err != nil {
		t.Fatalf("health body: %v", err)
	}
	if resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("health Cache-Control %q", resp.Header.Get("Cache-Control"))
	}
	return out
}

// TestHealthFollowsNATSAndJetStream stops NATS, deletes the stream and
// restarts NATS, and checks that the readiness answer follows each step.
func TestHealthFollowsNATSAndJetStream(t *testing.T) {
	restartable := natstest.NewRestartable(t)
	ns := restartable.Start()
	g := startGateway(t, ns, gatewayConfig{
		noTLS:   true,
		handler: map[string]any{"health_path": "/events/health", "publish": map[string]any{"path": "/events/publish", "keys": []any{map[string]any{"secret": testPublishKey}}}},
		stream:  map[string]any{"storage": "file"},
		nats:    map[string]any{"urls": []string{ns.ClientURL()}, "reconnect_wait": int64(100 * time.Millisecond)},
	})
	ok := health.Report{Status: "ok", NATS: "connected", JetStream: "ok", Stream: "ok"}
	if h := getHealth(t, g.httpURL); h.status != http.StatusOK || h.body != ok {
		t.Fatalf("healthy gateway: %+v", h)
	}
	// HEAD, as some load balancers probe, and a method that is not a probe.
	for method, want := range map[string]int{http.MethodHead: 200, http.MethodPost: 405} {
		req, _ := http.NewRequest(method, g.httpURL+"/events/health", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s: %d, want %d", method, resp.StatusCode, want)
		}
	}

	restartable.Stop()
	var down healthReply
	eventually(t, 5*time.Second, "503 while NATS is down", func() bool {
		down = getHealth(t, g.httpURL)
		return down.status == http.StatusServiceUnavailable
	})
	if down.body.Status != "unavailable" || down.body.NATS == "connected" || down.body.JetStream != "unknown" {
		t.Fatalf("NATS down: %+v", down.body)
	}
	// Publishing fails cleanly meanwhile: 503 and a retry hint.
	r := post(t, g.httpURL, "channel=demo", "x", bearer(testPublishKey))
	if r.status != http.StatusServiceUnavailable || r.Error != "unavailable" || r.header.Get("Retry-After") == "" {
		t.Fatalf("publish while NATS is down: %+v", r)
	}

	ns2 := restartable.Start()
	eventually(t, 10*time.Second, "200 after NATS is back", func() bool {
		h := getHealth(t, g.httpURL)
		return h.status == http.StatusOK && h.body == ok
	})

	// The stream gone: NATS is fine, JetStream cannot serve replays.
	_, js := natstest.Connect(t, ns2)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := js.DeleteStream(ctx, "SSEGATE"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "503 without the stream", func() bool {
		h := getHealth(t, g.httpURL)
		return h.status == http.StatusServiceUnavailable && h.body == health.Report{Status: "unavailable", NATS: "connected", JetStream: "stream_missing", Stream: "unknown"}
	})
}

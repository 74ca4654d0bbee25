package presence

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ssegate/ssegate/internal/kvttl"
	"github.com/ssegate/ssegate/internal/natstest"
	"github.com/ssegate/ssegate/internal/streams"
	"github.com/ssegate/ssegate/internal/testkit"
)

// startRegistry runs a registry, as one gateway would, on its own
// connection to ns.
func startRegistry(t *testing.T, ns *server.Server, cfg Config) *Registry {
	t.Helper()
	nc, js := natstest.Connect(t, ns)
	if cfg.Path == "" {
		cfg.Path = "/events/presence"
	}
	r, err := New(cfg, func(context.Context) (*nats.Conn, jetstream.JetStream, error) { return nc, js, nil })
	if err != nil {
		t.Fatal(err)
	}
	r.Start()
	t.Cleanup(r.Stop)
	testkit.Eventually(t, 5*time.Second, "registry ready", func() bool { return r.Health() == kvttl.StateOK })
	return r
}

// announcements collects what is published on the presence subjects.
type announcements struct {
	mu   sync.Mutex
	list []announcement
}

func listen(t *testing.T, ns *server.Server) *announcements {
	t.Helper()
	nc, _ := natstest.Connect(t, ns)
	a := new(announcements)
	_, err := nc.Subscribe("ssegate.presence.>", func(m *nats.Msg) {
		var x announcement
		if err := json.Unmarshal(m.Data, &x); err != nil {
			t.Errorf("announcement %q: %v", m.Data, err)
		}
		a.mu.Lock()
		a.list = append(a.list, x)
		a.mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return a
}

func (a *announcements) count(kind, ch, sub string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, x := range a.list {
		if x.Type == kind && x.Channel == ch && x.Sub == sub {
			n++
		}
	}
	return n
}

// answer asks r's endpoint, as a control key holder would.
func answer(t *testing.T, r *Registry, ch string) Answer {
	t.Helper()
	es := r.view.others(r.id, ch, time.Now().Add(-r.cfg.ttl()))
	return sum(ch, append(es, r.loc.snapshot(r.id, ch)), true)
}

func open(r *Registry, sub string, chans ...string) func() {
	return r.Opened(&streams.Info{ID: streams.NewID(), Sub: sub, Channels: chans}, func() {})
}

func TestPresenceAcrossGatewaysJoinsOnce(t *testing.T) {
	ns := natstest.Server(t)
	heard := listen(t, ns)
	a := startRegistry(t, ns, Config{})
	b := startRegistry(t, ns, Config{})

	start := time.Now()
	closeA1 := open(a, "alice", "room.42")
	testkit.Eventually(t, time.Second, "alice on b's view", func() bool {
		x := answer(t, b, "room.42")
		return x.Connections == 1 && len(x.Users) == 1 && x.Users[0].Sub == "alice"
	})
	t.Logf("visible on the other gateway after %v", time.Since(start))
	// A second tab on each gateway, and an anonymous reader.
	closeA2 := open(a, "alice", "room.42")
	closeB1 := open(b, "alice", "room.42")
	closeAnon := open(b, "", "room.42")
	testkit.Eventually(t, time.Second, "four connections", func() bool {
		x := answer(t, a, "room.42")
		return x.Connections == 4 && len(x.Users) == 1 && x.Users[0].Connections == 3
	})
	testkit.Eventually(t, time.Second, "one join", func() bool { return heard.count("join", "room.42", "alice") == 1 })
	closeA1()
	closeA2()
	closeAnon()
	testkit.Eventually(t, time.Second, "a's tabs gone", func() bool {
		x := answer(t, b, "room.42")
		return x.Connections == 1
	})
	if n := heard.count("leave", "room.42", "alice"); n != 0 {
		t.Fatalf("%d leaves while alice is still on b", n)
	}
	closeB1()
	testkit.Eventually(t, time.Second, "one leave", func() bool { return heard.count("leave", "room.42", "alice") == 1 })
	if n := heard.count("join", "room.42", "alice"); n != 1 {
		t.Fatalf("%d joins, want 1", n)
	}
}

func TestPresenceDeadGatewayLeavesOnce(t *testing.T) {
	ns := natstest.Server(t)
	heard := listen(t, ns)
	cfg := Config{TTL: caddy.Duration(3 * time.Second)}
	dead := startRegistry(t, ns, cfg)
	live1 := startRegistry(t, ns, cfg)
	live2 := startRegistry(t, ns, cfg)
	open(dead, "alice", "room.1", "room.2")
	open(dead, "bob", "room.1")
	open(live1, "carol", "room.1")
	testkit.Eventually(t, time.Second, "all visible", func() bool { return answer(t, live2, "room.1").Connections == 3 })
	testkit.Eventually(t, time.Second, "all joined", func() bool {
		return heard.count("join", "room.1", "alice")+heard.count("join", "room.2", "alice")+heard.count("join", "room.1", "bob")+heard.count("join", "room.1", "carol") == 4
	})
	// Stop without a word, as SIGKILL would: the entries stay behind.
	dead.Stop()
	killed := time.Now()
	testkit.Eventually(t, 3*time.Second+3*sweepEvery+time.Second, "leaves", func() bool {
		return heard.count("leave", "room.1", "alice") > 0 && heard.count("leave", "room.2", "alice") > 0 && heard.count("leave", "room.1", "bob") > 0
	})
	t.Logf("leaves %v after the gateway stopped", time.Since(killed))
	// Another sweep or two, for a duplicate to show up.
	time.Sleep(2 * sweepEvery)
	for _, c := range [][2]string{{"room.1", "alice"}, {"room.2", "alice"}, {"room.1", "bob"}} {
		if n := heard.count("leave", c[0], c[1]); n != 1 {
			t.Errorf("%s left %s %d times, want once", c[1], c[0], n)
		}
	}
	if n := heard.count("leave", "room.1", "carol"); n != 0 {
		t.Errorf("carol, on a live gateway, left %d times", n)
	}
	if x := answer(t, live1, "room.1"); x.Connections != 1 {
		t.Errorf("after the dead gateway's expiry: %+v", x)
	}
}

func TestPresenceEndpointRefusesBadInput(t *testing.T) {
	ns := natstest.Server(t)
	r := startRegistry(t, ns, Config{})
	for _, c := range []struct {
		name, method, query string
		status              int
	}{
		{"post", http.MethodPost, "?channel=a", http.StatusMethodNotAllowed},
		{"no channel", http.MethodGet, "", http.StatusBadRequest},
		{"two channels", http.MethodGet, "?channel=a&channel=b", http.StatusBadRequest},
		{"wildcard", http.MethodGet, "?channel=a.*", http.StatusBadRequest},
		{"extra parameter", http.MethodGet, "?channel=a&x=1", http.StatusBadRequest},
		{"no gate", http.MethodGet, "?channel=a", http.StatusForbidden},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			r.ServeHTTP(w, httptest.NewRequest(c.method, "/events/presence"+c.query, nil))
			if w.Code != c.status {
				t.Fatalf("status %d, want %d: %s", w.Code, c.status, w.Body)
			}
			var body struct{ Error, Detail string }
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Error == "" {
				t.Fatalf("body %q: want {error, detail}", w.Body)
			}
		})
	}
}

// TestPresenceBucketDeletedUnderTraffic: users come and go while the
// bucket is gone; nothing breaks, and once the bucket is back (at the next
// refresh) their presence and their joins are there.
func TestPresenceBucketDeletedUnderTraffic(t *testing.T) {
	ns := natstest.Server(t)
	heard := listen(t, ns)
	r := startRegistry(t, ns, Config{TTL: caddy.Duration(3 * time.Second)})
	_, js := natstest.Connect(t, ns)
	if err := js.DeleteKeyValue(context.Background(), DefaultBucket); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		open(r, fmt.Sprintf("user-%d", i), "room.1")
	}
	testkit.Eventually(t, 5*time.Second, "the joins after the bucket is back", func() bool {
		n := 0
		for i := range 5 {
			n += heard.count("join", "room.1", fmt.Sprintf("user-%d", i))
		}
		return n == 5
	})
	if r.Health() != kvttl.StateOK {
		t.Fatalf("health %q", r.Health())
	}
}

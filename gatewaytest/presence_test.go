package gatewaytest

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

const testControlKey = "control-key-for-tests-0123456789abcdef"

// watchGateway runs a gateway with presence and control: room.* readable
// by tokens that name it, open.* presence visible to its readers, demo
// public, publish keys for orders.*.
func watchGateway(t *testing.T, ns *server.Server, logFile string) *gateway {
	t.Helper()
	if ns == nil {
		ns = natsServer(t)
	}
	return startGateway(t, ns, watchConfig(logFile))
}

func watchConfig(logFile string) gatewayConfig {
	return gatewayConfig{noTLS: true, logFile: logFile, handler: map[string]any{
		"public":      []string{"demo"},
		"health_path": "/events/health",
		"auth": map[string]any{
			"hmac_keys":   []any{map[string]any{"secret": testSecret}},
			"ticket_path": "/events/ticket",
		},
		"publish": map[string]any{
			"path": "/events/publish",
			"keys": []any{map[string]any{"secret": testPublishKey, "channels": []string{"orders.*"}}},
		},
		"presence": map[string]any{"path": "/events/presence", "channels": []string{"open.*"}},
		"control":  map[string]any{"path": "/events/control", "keys": []string{testControlKey}},
	}}
}

type presenceReply struct {
	status int
	Error  string `json:"error"`
	presenceAnswer
}

type presenceAnswer struct {
	Channel     string `json:"channel"`
	Connections int    `json:"connections"`
	Users       []struct {
		Sub         string   `json:"sub"`
		Connections int      `json:"connections"`
		IDs         []string `json:"connection_ids"`
	} `json:"users"`
}

func getPresence(t *testing.T, g *gateway, query, bearer string, cookie *http.Cookie) presenceReply {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, g.httpURL+"/events/presence"+query, nil)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	if cookie != nil {
		req.AddCookie(cookie)
	}
	var out presenceReply
	out.status = answerJSON(t, g, req, &out)
	return out
}

func bearerHeader(tok string) http.Header {
	return http.Header{"Authorization": {"Bearer " + tok}}
}

// TestPresenceEndpointAccess: who may see a channel's presence, and that
// nobody else learns a sub from it.
func TestPresenceEndpointAccess(t *testing.T) {
	g := watchGateway(t, nil, "")
	alice := token(t, jwt.MapClaims{"sub": "alice", "channels": []string{"room.1", "open.1"}})
	open(t, g.h1Client(), eventsURL(g.httpURL, []string{"room.1", "open.1"}, nil), bearerHeader(alice))
	open(t, g.h1Client(), eventsURL(g.httpURL, []string{"demo"}, nil), nil)

	reader := token(t, jwt.MapClaims{"sub": "bob", "channels": []string{"room.1", "open.1"}})
	watcher := token(t, jwt.MapClaims{"sub": "carol", "channels": []string{"room.*"}, "presence": true})
	outsider := token(t, jwt.MapClaims{"sub": "dave", "channels": []string{"room.2"}, "presence": true})
	controller := token(t, jwt.MapClaims{"sub": "ops", "control": true})
	publisher := token(t, jwt.MapClaims{"sub": "svc", "publish": []string{"room.*"}})
	ticket := mintTicket(t, g, reader, "room.1")

	cases := []struct {
		name, query, bearer string
		cookie              *http.Cookie
		status              int
		code                string
		ids                 bool
	}{
		{"presence claim", "?channel=room.1", watcher, nil, 200, "", false},
		{"presence_channels reader", "?channel=open.1", reader, nil, 200, "", false},
		{"presence_channels by cookie", "?channel=open.1", "", &http.Cookie{Name: "ssegate_token", Value: reader}, 200, "", false},
		{"control token sees ids", "?channel=room.1", controller, nil, 200, "", true},
		{"control token in a cookie", "?channel=room.1", "", &http.Cookie{Name: "ssegate_token", Value: controller}, 403, "forbidden", false},
		{"control key sees ids", "?channel=room.1", testControlKey, nil, 200, "", true},
		{"publish token", "?channel=room.1", publisher, nil, 200, "", false},
		{"reader without presence", "?channel=room.1", reader, nil, 403, "forbidden", false},
		{"presence claim, channel not readable", "?channel=room.1", outsider, nil, 403, "forbidden", false},
		{"publish key for other channels", "?channel=room.1", testPublishKey, nil, 403, "forbidden", false},
		{"anonymous", "?channel=room.1", "", nil, 401, "unauthenticated", false},
		{"anonymous, public channel", "?channel=demo", "", nil, 401, "unauthenticated", false},
		{"ticket as bearer", "?channel=room.1", ticket, nil, 401, "invalid_token", false},
		{"ticket in the query", "?channel=room.1&ticket=" + url.QueryEscape(ticket), "", nil, 401, "unauthenticated", false},
		{"garbage token", "?channel=room.1", "garbage", nil, 401, "invalid_token", false},
		{"no channel", "", watcher, nil, 400, "bad_request", false},
		{"wildcard channel", "?channel=room.*", watcher, nil, 400, "invalid_channel", false},
		{"two channels", "?channel=room.1&channel=room.2", watcher, nil, 400, "bad_request", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := storedRefusals(g, c.code)
			got := getPresence(t, g, c.query, c.bearer, c.cookie)
			if got.status != c.status || got.Error != c.code {
				t.Fatalf("got %d %q, want %d %q", got.status, got.Error, c.status, c.code)
			}
			if c.status != 200 {
				if got.Users != nil {
					t.Fatalf("a refusal lists users: %+v", got)
				}
				if n := storedRefusals(g, c.code) - before; n != 1 {
					t.Fatalf("counted %v times under %s, want once", n, c.code)
				}
				return
			}
			if len(got.Users) != 1 || got.Users[0].Sub != "alice" || got.Connections != 1 {
				t.Fatalf("answer %+v", got.presenceAnswer)
			}
			if (len(got.Users[0].IDs) == 1) != c.ids {
				t.Fatalf("connection ids %v; want them: %v", got.Users[0].IDs, c.ids)
			}
		})
	}
	// A publish key is no JWT the gate knows, and still reads the
	// presence of the channels it covers, with no refusal counted.
	before := storedRefusals(g, "invalid_token")
	if got := getPresence(t, g, "?channel=orders.1", testPublishKey, nil); got.status != 200 || got.Channel != "orders.1" {
		t.Fatalf("publish key on its channel: %+v", got)
	}
	if n := storedRefusals(g, "invalid_token") - before; n != 0 {
		t.Fatalf("an answered request counted %v refusals", n)
	}
}

// TestPresenceCountsAnonymousAndTabs: a second tab counts a connection,
// not a user; anonymous readers count connections only.
func TestPresenceCountsAnonymousAndTabs(t *testing.T) {
	g := watchGateway(t, nil, "")
	alice := token(t, jwt.MapClaims{"sub": "alice", "channels": []string{"demo"}})
	watcher := token(t, jwt.MapClaims{"sub": "w", "channels": []string{"demo"}, "presence": true})
	s1 := open(t, g.h1Client(), eventsURL(g.httpURL, []string{"demo"}, nil), bearerHeader(alice))
	open(t, g.h1Client(), eventsURL(g.httpURL, []string{"demo"}, nil), bearerHeader(alice))
	open(t, g.h1Client(), eventsURL(g.httpURL, []string{"demo"}, nil), nil)
	eventually(t, time.Second, "three connections", func() bool {
		got := getPresence(t, g, "?channel=demo", watcher, nil)
		return got.Connections == 3 && len(got.Users) == 1 && got.Users[0].Connections == 2
	})
	s1.close()
	eventually(t, time.Second, "two connections", func() bool {
		got := getPresence(t, g, "?channel=demo", watcher, nil)
		return got.Connections == 2 && len(got.Users) == 1 && got.Users[0].Connections == 1
	})
}

// TestStreamClosedLogNamesConnection: an operator goes from the log line
// to a disconnect by its connection id.
func TestStreamClosedLogNamesConnection(t *testing.T) {
	logFile := t.TempDir() + "/caddy.log"
	g := watchGateway(t, nil, logFile)
	alice := token(t, jwt.MapClaims{"sub": "alice", "channels": []string{"demo"}})
	controller := token(t, jwt.MapClaims{"sub": "ops", "control": true})
	open(t, g.h1Client(), eventsURL(g.httpURL, []string{"demo"}, nil), bearerHeader(alice))
	var id string
	eventually(t, time.Second, "the connection id", func() bool {
		got := getPresence(t, g, "?channel=demo", controller, nil)
		if len(got.Users) == 1 && len(got.Users[0].IDs) == 1 {
			id = got.Users[0].IDs[0]
		}
		return id != ""
	})
	if st := postControl(t, g, "disconnect", testControlKey, `{"connection":"`+id+`"}`); st.status != 202 {
		t.Fatalf("disconnect: %+v", st)
	}
	eventually(t, 2*time.Second, "the stream closed line", func() bool {
		for _, l := range readLogLines(t, logFile) {
			if l["msg"] == "stream closed" && l["connection"] == id && l["end"] == "disconnected" {
				return true
			}
		}
		return false
	})
}

func readLogLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, _ := os.ReadFile(path)
	var out []map[string]any
	for _, line := range strings.Split(string(b), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// checkPresenceAndControl runs presence and control through a NATS
// server's permissions: a controller user hears the join, sees the user
// through the endpoint, disconnects them over NATS; a revocation is
// stored; health finds both buckets.
func checkPresenceAndControl(t *testing.T, g *gateway, controller *nats.Conn) {
	t.Helper()
	joins := make(chan *nats.Msg, 16)
	if _, err := controller.ChanSubscribe("ssegate.presence.>", joins); err != nil {
		t.Fatal(err)
	}
	if err := controller.Flush(); err != nil {
		t.Fatal(err)
	}
	alice := token(t, jwt.MapClaims{"sub": "alice", "channels": []string{"demo"}})
	lines, _ := openRaw(t, g, []string{"demo"}, bearerHeader(alice))
	select {
	case m := <-joins:
		if !strings.Contains(string(m.Data), `"type":"join"`) || !strings.Contains(string(m.Data), `"sub":"alice"`) {
			t.Fatalf("announcement %s", m.Data)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no join announced")
	}
	eventually(t, 5*time.Second, "join event in the stream", func() bool {
		for {
			select {
			case l := <-lines:
				if l == "event: join" {
					return true
				}
			default:
				return false
			}
		}
	})
	if got := getPresence(t, g, "?channel=demo", testControlKey, nil); got.status != 200 || len(got.Users) != 1 {
		t.Fatalf("presence: %+v", got)
	}
	if err := controller.Publish("ssegate.control.disconnect", []byte(`{"sub":"alice"}`)); err != nil {
		t.Fatal(err)
	}
	endsDisconnected(t, lines, 2*time.Second)
	if r := postControl(t, g, "revoke", testControlKey, `{"jti":"some-jti"}`); r.status != 202 {
		t.Fatalf("revoke: %+v", r)
	}
	if h := getHealth(t, g.httpURL); h.body.Presence != "ok" || h.body.Revocations != "ok" {
		t.Fatalf("health: %+v", h.body)
	}
}

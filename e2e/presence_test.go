package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/nats-io/nats.go"

	"github.com/ssegate/ssegate/internal/natstest"
	"github.com/ssegate/ssegate/internal/testkit"
)

// Presence and control across gateway processes sharing one NATS.

const (
	presenceSecret = "presence-e2e-secret-0123456789abcdef"
	presenceKey    = "presence-e2e-control-key-0123456789"
	// presenceTTL is the bound on a dead gateway's leaves in these tests;
	// the default is 30s.
	presenceTTL = 4 * time.Second
)

const presenceCaddyfile = `{
	admin off
	persist_config off
	storage file_system %[1]s
	ssegate {
		url %[2]s
		reconnect_wait 100ms
	}
}

http://127.0.0.1:%[3]d {
	bind 127.0.0.1
	handle /page {
		header Content-Type "text/html; charset=utf-8"
		respond "<!doctype html><title>presence</title><p>presence</p>"
	}
	ssegate /events* {
		public demo
		heartbeat 1s
		retry 200ms
		auth {
			hmac_secret %[4]s
			ticket_path /events/ticket
		}
		health /events/health
		console /events/console
		presence /events/presence {
			ttl %[5]s
		}
		presence_events demo
		control /events/control {
			key %[6]s
		}
	}
}
`

type presenceGateway struct {
	*caddyProcess
	url string
}

// startPresenceGateway runs a gateway on port (0: a free one) and waits
// until it serves.
func startPresenceGateway(t *testing.T, bin, name, natsURL string, port int) *presenceGateway {
	t.Helper()
	if port == 0 {
		port = freePorts(t, 1)[0]
	}
	dir := t.TempDir()
	g := &presenceGateway{url: fmt.Sprintf("http://127.0.0.1:%d", port)}
	g.caddyProcess = runCaddy(t, bin, name, dir, fmt.Sprintf(presenceCaddyfile,
		filepath.Join(dir, "caddy"), natsURL, port, presenceSecret, presenceTTL, presenceKey))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	g.waitFor(ctx, t, "health with presence and revocations ok", func() error {
		_, body, err := get(ctx, http.DefaultClient, g.url+"/events/health")
		if err != nil {
			return err
		}
		var h struct{ Status, Presence, Revocations string }
		if json.Unmarshal(body, &h) != nil || h.Status != "ok" || h.Presence != "ok" || h.Revocations != "ok" {
			return fmt.Errorf("health: %.200s", body)
		}
		return nil
	})
	return g
}

func presenceToken(t *testing.T, claims jwt.MapClaims) string {
	t.Helper()
	if claims["exp"] == nil {
		claims["exp"] = time.Now().Add(time.Hour).Unix()
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(presenceSecret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// liveStream is an open stream's raw lines.
type liveStream struct {
	lines  chan string
	cancel context.CancelFunc
}

// openStream opens a stream with bearer and returns it, or the refusal's
// status and error code.
func openStream(t *testing.T, base, channel, bearer string) (*liveStream, int, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/events?channel="+channel, nil)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		defer cancel()
		defer resp.Body.Close()
		var body struct{ Error string }
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return nil, resp.StatusCode, body.Error
	}
	s := &liveStream{lines: make(chan string, 1024), cancel: cancel}
	go func() {
		defer close(s.lines)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
	}()
	t.Cleanup(cancel)
	return s, 200, ""
}

func mustOpen(t *testing.T, base, channel, bearer string) *liveStream {
	t.Helper()
	s, status, code := openStream(t, base, channel, bearer)
	if s == nil {
		t.Fatalf("stream on %s: %d %s", base, status, code)
	}
	return s
}

// endedDisconnected waits for ": end: disconnected" and the stream's end.
func (s *liveStream) endedDisconnected(within time.Duration) error {
	deadline := time.After(within)
	var end bool
	for {
		select {
		case l, ok := <-s.lines:
			if !ok {
				if end {
					return nil
				}
				return fmt.Errorf("ended without ': end: disconnected'")
			}
			end = end || l == ": end: disconnected"
		case <-deadline:
			return fmt.Errorf("not ended within %v", within)
		}
	}
}

type presenceUser struct {
	Sub         string `json:"sub"`
	Connections int    `json:"connections"`
}

type presenceAnswer struct {
	Connections int            `json:"connections"`
	Users       []presenceUser `json:"users"`
}

func getPresence(t *testing.T, base, channel string) presenceAnswer {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/events/presence?channel="+channel, nil)
	req.Header.Set("Authorization", "Bearer "+presenceKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a presenceAnswer
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&a) != nil {
		t.Fatalf("presence on %s: %d", base, resp.StatusCode)
	}
	return a
}

func (a presenceAnswer) of(sub string) int {
	for _, u := range a.Users {
		if u.Sub == sub {
			return u.Connections
		}
	}
	return 0
}

func postAction(t *testing.T, base, action, body string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/events/control/"+action, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+presenceKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ ID string }
	if resp.StatusCode != http.StatusAccepted || json.NewDecoder(resp.Body).Decode(&out) != nil || out.ID == "" {
		t.Fatalf("%s: %d", action, resp.StatusCode)
	}
}

// listenPresence records the join and leave messages on NATS.
func listenPresence(t *testing.T, natsURL string) *natstest.Recorder {
	t.Helper()
	nc, _ := natstest.ConnectURL(t, natsURL)
	return natstest.Record(t, nc, "ssegate.presence.>")
}

// announced is how many join or leave (kind) messages of sub on channel
// were recorded.
func announced(r *natstest.Recorder, kind, channel, sub string) int {
	return r.Count(func(m *nats.Msg) bool {
		var x map[string]string
		return json.Unmarshal(m.Data, &x) == nil && x["type"] == kind && x["channel"] == channel && x["sub"] == sub
	})
}

// within waits up to d for cond, and returns how long it took.
func within(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	testkit.Eventually(t, d, what, cond)
	return time.Since(start)
}

// TestPresenceAcrossGatewayProcesses: presence shows on the other gateway
// within 1s; a second tab is no second join; disconnect by sub ends the
// user's streams on both gateways within 1s; a SIGKILLed gateway's users
// leave within the bound, once.
func TestPresenceAcrossGatewayProcesses(t *testing.T) {
	bin := buildCommands(t)
	ns := natstest.Server(t)
	h := listenPresence(t, ns.ClientURL())
	a := startPresenceGateway(t, bin, "gateway a", ns.ClientURL(), 0)
	b := startPresenceGateway(t, bin, "gateway b", ns.ClientURL(), 0)
	alice := presenceToken(t, jwt.MapClaims{"sub": "alice", "channels": []string{"room.1"}})

	onA := mustOpen(t, a.url, "room.1", alice)
	d := within(t, time.Second, "alice on b's endpoint", func() bool { return getPresence(t, b.url, "room.1").of("alice") == 1 })
	t.Logf("presence on the other gateway after %v", d)
	onB := mustOpen(t, b.url, "room.1", alice)
	within(t, time.Second, "two tabs on a's endpoint", func() bool { return getPresence(t, a.url, "room.1").of("alice") == 2 })
	within(t, time.Second, "the join", func() bool { return announced(h, "join", "room.1", "alice") == 1 })

	postAction(t, a.url, "disconnect", `{"sub":"alice"}`)
	start := time.Now()
	var wg sync.WaitGroup
	for name, s := range map[string]*liveStream{"a": onA, "b": onB} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.endedDisconnected(time.Second); err != nil {
				t.Errorf("alice's stream on %s: %v", name, err)
			}
		}()
	}
	wg.Wait()
	t.Logf("both streams ended %v after the disconnect", time.Since(start))
	within(t, 2*time.Second, "alice's leave", func() bool { return announced(h, "leave", "room.1", "alice") == 1 })
	if n := announced(h, "join", "room.1", "alice"); n != 1 {
		t.Errorf("%d joins for two tabs", n)
	}

	// A gateway killed with its users on: they leave within the bound,
	// announced once by a live gateway.
	c := startPresenceGateway(t, bin, "gateway c", ns.ClientURL(), 0)
	for _, sub := range []string{"bob", "carol"} {
		mustOpen(t, c.url, "room.2", presenceToken(t, jwt.MapClaims{"sub": sub, "channels": []string{"room.2"}}))
	}
	within(t, time.Second, "c's users on a", func() bool { return len(getPresence(t, a.url, "room.2").Users) == 2 })
	// Their joins too: a gateway writes a user's entry before its claim,
	// so one killed between the two never announced a join, and owes no
	// leave (seen once in ten runs when the kill came right after the
	// entries showed).
	within(t, time.Second, "c's users' joins", func() bool {
		return announced(h, "join", "room.2", "bob") == 1 && announced(h, "join", "room.2", "carol") == 1
	})
	c.Kill()
	killed := time.Now()
	// The entries' expiry shows in the other gateways' watches at about
	// the TTL; if it does not, the sweep finds them within the TTL and
	// two sweeps of the last refresh. A second more is for a CI machine
	// that runs every package's tests at once.
	bound := presenceTTL + 3*time.Second
	within(t, bound, "the dead gateway's leaves", func() bool {
		return announced(h, "leave", "room.2", "bob") > 0 && announced(h, "leave", "room.2", "carol") > 0
	})
	t.Logf("leaves %v after SIGKILL (ttl %v)", time.Since(killed), presenceTTL)
	time.Sleep(2 * time.Second) // room for a duplicate from the other live gateway
	for _, sub := range []string{"bob", "carol"} {
		if n := announced(h, "leave", "room.2", sub); n != 1 {
			t.Errorf("%s left %d times", sub, n)
		}
	}
	if got := getPresence(t, b.url, "room.2"); got.Connections != 0 || len(got.Users) != 0 {
		t.Errorf("after the expiry b still shows %+v", got)
	}
}

// TestRevokeAcrossGatewayRestarts: a revoked jti ends the stream, and the
// reconnect gets 401 token_revoked, on a gateway restarted after, and on
// one that started after the revocation.
func TestRevokeAcrossGatewayRestarts(t *testing.T) {
	bin := buildCommands(t)
	ns := natstest.Server(t)
	a := startPresenceGateway(t, bin, "gateway a", ns.ClientURL(), 0)
	exp := time.Now().Add(time.Hour).Unix()
	leaked := presenceToken(t, jwt.MapClaims{"sub": "alice", "jti": "leaked", "exp": exp, "channels": []string{"room.1"}})
	s := mustOpen(t, a.url, "room.1", leaked)
	postAction(t, a.url, "revoke", fmt.Sprintf(`{"jti":"leaked","expires":%d}`, exp))
	if err := s.endedDisconnected(time.Second); err != nil {
		t.Fatal(err)
	}
	refused := func(base, when string) {
		t.Helper()
		if _, status, code := openStream(t, base, "room.1", leaked); status != 401 || code != "token_revoked" {
			t.Errorf("%s: %d %q, want 401 token_revoked", when, status, code)
		}
	}
	refused(a.url, "the reconnect")
	port := strings.TrimPrefix(a.url, "http://127.0.0.1:")
	a.Stop(10 * time.Second)
	var p int
	fmt.Sscanf(port, "%d", &p)
	again := startPresenceGateway(t, bin, "gateway a again", ns.ClientURL(), p)
	refused(again.url, "after a restart")
	later := startPresenceGateway(t, bin, "gateway b", ns.ClientURL(), 0)
	refused(later.url, "on a gateway started after")
	other := presenceToken(t, jwt.MapClaims{"sub": "alice", "jti": "fine", "channels": []string{"room.1"}})
	mustOpen(t, later.url, "room.1", other)
}

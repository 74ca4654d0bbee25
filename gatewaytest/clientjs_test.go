package gatewaytest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/golang-jwt/jwt/v5"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// clientPage is the test page: it imports client.js from the gateway and
// logs what the client raises in window.got.
const clientPage = `<!doctype html><script type="module">
import { connect, OPEN, FALLBACK, STREAM_RETRY, ERROR } from "/events/client.js";
const params = new URLSearchParams(location.search);
window.got = [];
let tickets = 0;
window.tickets = () => tickets;
window.feed = connect({
  channels: ["user.alice"],
  fallbackAfter: Number(params.get("fallback") || 5000),
  pollWait: "1s",
  streamRetry: { initial: Number(params.get("stream_retry") || 60000), max: 60000 },
  backoff: { initial: 200, max: 1000 },
  ticket: async () => {
    tickets++;
    if (params.get("bad_first_ticket") && tickets === 1) return "not-a-ticket";
    const r = await fetch("/ticket", { method: "POST" });
    return (await r.json()).ticket;
  },
});
const keep = (type) => (d) => window.got.push({ type, ...d });
window.feed.on("update", keep("update"));
window.feed.on("reset", keep("reset"));
window.feed.on(OPEN, keep("open"));
window.feed.on(FALLBACK, keep("fallback"));
window.feed.on(STREAM_RETRY, keep("stream-retry"));
window.feed.on(ERROR, keep("error"));
</script>`

// clientFront is the page's origin: it serves the page, tickets minted
// with a bearer token, control actions for the driver, and /events from
// the gateway, passed through at once or held back whole.
type clientFront struct {
	gatewayURL string
	js         jetstream.JetStream
	restart    chan chan string
	// unbuffered, once set, lets the buffering front pass streams at
	// once: the proxy that held them back is gone.
	unbuffered atomic.Bool
}

func (f *clientFront) handler(buffering bool) http.Handler {
	target, _ := url.Parse(f.gatewayURL)
	pass := httputil.NewSingleHostReverseProxy(target)
	pass.FlushInterval = -1
	mux := http.NewServeMux()
	mux.HandleFunc("/blank", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = io.WriteString(w, "<!doctype html><title>blank</title>")
	})
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = io.WriteString(w, clientPage)
	})
	mux.HandleFunc("POST /ticket", f.ticket)
	mux.HandleFunc("POST /ctl/publish", func(w http.ResponseWriter, r *http.Request) {
		seq, err := f.publishNamed(cmpOr(r.URL.Query().Get("event"), "update"), r.URL.Query().Get("data"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, seq)
	})
	mux.HandleFunc("POST /ctl/restart", func(w http.ResponseWriter, r *http.Request) {
		reply := make(chan string, 1)
		f.restart <- reply
		_, _ = io.WriteString(w, <-reply)
	})
	events := http.Handler(pass)
	if buffering {
		held := bufferingHandler(f.gatewayURL)
		events = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if f.unbuffered.Load() {
				pass.ServeHTTP(w, r)
				return
			}
			held.ServeHTTP(w, r)
		})
	}
	mux.HandleFunc("POST /ctl/unbuffer", func(w http.ResponseWriter, r *http.Request) { f.unbuffered.Store(true) })
	mux.Handle("/events", events)
	mux.Handle("/events/", events)
	return mux
}

func (f *clientFront) publish(data string) (uint64, error) { return f.publishNamed("update", data) }

func (f *clientFront) publishNamed(event, data string) (uint64, error) {
	m := nats.NewMsg("events.user.alice")
	m.Header.Set("Sse-Event", event)
	m.Data = []byte(data)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ack, err := f.js.PublishMsg(ctx, m)
	if err != nil {
		return 0, err
	}
	return ack.Sequence, nil
}

// ticket mints a ticket at the gateway with the user's bearer token, as a
// page's own backend would.
func (f *clientFront) ticket(w http.ResponseWriter, r *http.Request) {
	req, _ := http.NewRequestWithContext(r.Context(), http.MethodPost, f.gatewayURL+"/events/ticket",
		strings.NewReader(`{"channels":["user.alice"]}`))
	// The page's backend signs a short session each time: the stream
	// ends with it, mid-stream, and the client must come back.
	bearer, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": "alice", "channels": []string{"user.alice"}, "exp": time.Now().Add(3 * time.Second).Unix(),
	}).SignedString([]byte(testSecret))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	req.Header.Set("Authorization", "Bearer "+bearer)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

// TestClientJSInChromium runs e2e/clientjs.mjs: client.js in a real
// Chromium through a refused first ticket, tickets expiring mid-stream, a
// gateway restart, a page reload and a reset, and behind a buffering
// proxy, where it must fall back to long-polling, try the stream again
// later with backoff, and stream once the proxy lets it through.
func TestClientJSInChromium(t *testing.T) {
	chromium, node := browserTools(t)
	ns := natsServer(t)
	cfg := gatewayConfig{noTLS: true, httpAddr: freePort(t), handler: map[string]any{
		"public":      []string{},
		"history":     map[string]any{"path": "/events/history"},
		"poll":        map[string]any{"path": "/events/poll"},
		"client_path": "/events/client.js",
		"auth": map[string]any{
			"hmac_keys":       []any{map[string]any{"secret": testSecret}},
			"ticket_path":     "/events/ticket",
			"ticket_lifetime": "2s",
			"leeway":          "1ms",
		},
	}}
	g := startGateway(t, ns, cfg)
	f := &clientFront{
		gatewayURL: g.httpURL,
		js:         g.js(),
		restart:    make(chan chan string),
	}
	front, buffered := serveFront(t, f.handler(false)), serveFront(t, f.handler(true))

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join("..", "e2e", "clientjs.mjs"))
	cmd.Env = append(os.Environ(), "SSEGATE_FRONT="+front, "SSEGATE_BUFFERED="+buffered, "CHROMIUM_PATH="+chromium, "NO_COLOR=1")
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for {
		select {
		case reply := <-f.restart:
			reply <- restartGateway(t, ns, cfg, f)
		case err := <-done:
			t.Log(out.String())
			if err != nil || !strings.Contains(out.String(), "PASS") {
				t.Fatalf("clientjs.mjs: %v", err)
			}
			return
		}
	}
}

// restartGateway stops Caddy, publishes two events while it is down, and
// starts it again on the same address. It answers with "seq data" lines.
func restartGateway(t *testing.T, ns *server.Server, cfg gatewayConfig, f *clientFront) string {
	if err := caddy.Stop(); err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, d := range []string{"down1", "down2"} {
		seq, err := f.publish(d)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, fmt.Sprintf("%d %s", seq, d))
	}
	startGateway(t, ns, cfg)
	return strings.Join(lines, "\n")
}

func serveFront(t *testing.T, h http.Handler) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + l.Addr().String()
}

// browserTools finds Chromium and node with playwright-core in e2e; it
// skips without them, except under CI=true.
func browserTools(t *testing.T) (chromium, node string) {
	chromium = cmpOr(os.Getenv("CHROMIUM_PATH"), "/usr/bin/chromium")
	node, nerr := exec.LookPath("node")
	_, cerr := os.Stat(chromium)
	_, perr := os.Stat(filepath.Join("..", "e2e", "node_modules", "playwright-core", "package.json"))
	if nerr != nil || cerr != nil || perr != nil {
		msg := "needs chromium, node and e2e/node_modules (e2e/install.sh)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return chromium, node
}

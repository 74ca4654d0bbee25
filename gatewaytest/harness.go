// Package gatewaytest runs Caddy with the ssegate module in the test's
// process, in the manner of Caddy's caddytest, and holds the gateway-level
// tests. They see the gateway as a user does: through its HTTP endpoints,
// Caddy's /metrics, and the NATS server's monitoring of its connections.
package gatewaytest

import (
	"cmp"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/quic-go/quic-go/http3"
	gosse "github.com/tmaxmax/go-sse"

	"github.com/ssegate/ssegate"
	"github.com/ssegate/ssegate/internal/natstest"
	"github.com/ssegate/ssegate/internal/testkit"
)

// natsServer starts a JetStream nats-server on a random loopback port with
// its store in a temporary directory.
func natsServer(t testing.TB) *server.Server { return natstest.Server(t) }

// freePort finds a loopback port for Caddy, which takes listen addresses
// from config rather than reporting the ones it bound.
func freePort(t testing.TB) string { return testkit.FreePort(t) }

// gateway is Caddy running the ssegate module in this process.
type gateway struct {
	t       testing.TB
	nats    *server.Server
	httpURL string // h1 and h2c
	tlsURL  string // h1 and h2 over TLS
	app     *ssegate.App
}

type gatewayConfig struct {
	handler map[string]any // merged over the handler defaults
	stream  map[string]any
	nats    map[string]any // replaces the default external-NATS config
	app     map[string]any // merged into the ssegate app's config
	noTLS   bool
	encode  bool           // put Caddy's encode handler in front of ssegate
	server  map[string]any // merged into both servers' options
	logFile string         // when set, every log (access logs too) goes here at DEBUG
	// httpAddr, when set, is the plain server's address: a reload that
	// keeps it keeps the clients' URL.
	httpAddr string
}

// startGateway loads a Caddy config with an ssegate route on /events,
// talking to ns (or to the nats config given).
func startGateway(t testing.TB, ns *server.Server, cfg gatewayConfig) *gateway {
	t.Helper()
	g := &gateway{t: t, nats: ns}
	httpAddr := cmp.Or(cfg.httpAddr, freePort(t))
	g.httpURL = "http://" + httpAddr
	routes := cfg.routes()
	plain := cfg.serverJSON(httpAddr, []string{"h1", "h2c"}, routes)
	if cfg.logFile != "" {
		plain["logs"] = map[string]any{}
	}
	servers := map[string]any{"plain": plain}
	apps := map[string]any{}
	if !cfg.noTLS {
		tlsAddr := freePort(t)
		g.tlsURL = "https://" + tlsAddr
		secure := cfg.serverJSON(tlsAddr, []string{"h1", "h2", "h3"}, routes)
		secure["tls_connection_policies"] = []any{map[string]any{}}
		servers["secure"] = secure
		apps["tls"] = map[string]any{
			"certificates": map[string]any{"automate": []string{"localhost", "127.0.0.1"}},
			"automation": map[string]any{"policies": []any{map[string]any{
				"subjects": []string{"localhost", "127.0.0.1"},
				"issuers":  []any{map[string]any{"module": "internal"}},
			}}},
		}
		apps["pki"] = map[string]any{"certificate_authorities": map[string]any{"local": map[string]any{"install_trust": false}}}
	}
	apps["http"] = map[string]any{"servers": servers}
	apps["ssegate"] = cfg.appJSON(ns)
	load(t, map[string]any{
		"admin":   map[string]any{"disabled": true, "config": map[string]any{"persist": false}},
		"storage": map[string]any{"module": "file_system", "root": t.TempDir()},
		"logging": cfg.logging(),
		"apps":    apps,
	}, "caddy config")
	appIface, err := caddy.ActiveContext().App("ssegate")
	if err != nil {
		t.Fatal(err)
	}
	g.app = appIface.(*ssegate.App)
	if cfg.noTLS {
		return g
	}
	// The internal issuer signs the certificate in the background.
	eventually(t, 15*time.Second, "TLS certificate", func() bool {
		resp, err := g.h2TLSClient().Get(g.tlsURL + "/events")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return true
	})
	return g
}

// routes are both servers' routes: the ssegate handler, behind Caddy's
// encode handler when asked for, and /metrics.
func (cfg gatewayConfig) routes() []any {
	handler := map[string]any{"handler": "ssegate", "public": []string{"*", "*.*", "*.*.*"}}
	maps.Copy(handler, cfg.handler)
	handlers := []any{handler}
	if cfg.encode {
		handlers = []any{map[string]any{"handler": "encode", "encodings": map[string]any{"gzip": map[string]any{}}}, handler}
	}
	return []any{map[string]any{
		"match":  []any{map[string]any{"path": []string{"/events", "/events/*"}}},
		"handle": handlers,
	}, map[string]any{
		// The tests read the gateway's counters where an operator does.
		"match":  []any{map[string]any{"path": []string{"/metrics"}}},
		"handle": []any{map[string]any{"handler": "metrics"}},
	}}
}

// serverJSON is one HTTP server of the config, with the test's options.
func (cfg gatewayConfig) serverJSON(addr string, protocols []string, routes []any) map[string]any {
	srv := map[string]any{
		"listen":          []string{addr},
		"protocols":       protocols,
		"routes":          routes,
		"automatic_https": map[string]any{"disable": true},
	}
	maps.Copy(srv, cfg.server)
	return srv
}

// logging sends every log to the test's file at DEBUG, or, without one,
// keeps errors only.
func (cfg gatewayConfig) logging() map[string]any {
	if cfg.logFile == "" {
		return map[string]any{"logs": map[string]any{"default": map[string]any{"level": "ERROR"}}}
	}
	return map[string]any{"logs": map[string]any{"default": map[string]any{
		"level":  "DEBUG",
		"writer": map[string]any{"output": "file", "filename": cfg.logFile},
	}}}
}

// appJSON is the ssegate app's config: ns, or the test's NATS config, and
// a memory stream unless the test says otherwise.
func (cfg gatewayConfig) appJSON(ns *server.Server) map[string]any {
	natsCfg := cfg.nats
	if natsCfg == nil {
		natsCfg = map[string]any{"urls": []string{ns.ClientURL()}, "reconnect_wait": int64(50 * time.Millisecond)}
	}
	stream := map[string]any{"storage": "memory"}
	maps.Copy(stream, cfg.stream)
	app := map[string]any{"nats": natsCfg, "stream": stream}
	maps.Copy(app, cfg.app)
	return app
}

// Clients for each protocol. They never reuse a connection across tests.
func (g *gateway) h1Client() *http.Client {
	return &http.Client{Transport: &http.Transport{DisableCompression: true}}
}

func (g *gateway) h2cClient() *http.Client {
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{Protocols: p, DisableCompression: true}}
}

func (g *gateway) h2TLSClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		ForceAttemptHTTP2: true,
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true},
	}}
}

// h3Client speaks HTTP/3 over QUIC to the TLS server's UDP port.
func (g *gateway) h3Client() *http.Client {
	tr := &http3.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	g.t.Cleanup(func() { tr.Close() })
	return &http.Client{Transport: tr}
}

// js connects a publisher.
func (g *gateway) js() jetstream.JetStream {
	g.t.Helper()
	_, js := natstest.Connect(g.t, g.nats)
	return js
}

// publish stores an event and returns its stream sequence.
func publish(t testing.TB, js jetstream.JetStream, subject, event, data string) uint64 {
	t.Helper()
	msg := nats.NewMsg(subject)
	msg.Data = []byte(data)
	if event != "" {
		msg.Header.Set("Sse-Event", event)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ack, err := js.PublishMsg(ctx, msg)
	if err != nil {
		t.Fatalf("publish %s: %v", subject, err)
	}
	return ack.Sequence
}

// stream is an open event stream read by go-sse's parser.
type stream struct {
	resp   *http.Response
	events chan gosse.Event
	errc   chan error
	cancel context.CancelFunc
}

// open opens an event stream and fails the test on any status but 200.
func open(t testing.TB, c *http.Client, rawURL string, hdr http.Header) *stream {
	t.Helper()
	s, resp := tryOpen(t, c, rawURL, hdr)
	if s == nil {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %s %s", rawURL, resp.Status, body)
	}
	return s
}

func tryOpen(t testing.TB, c *http.Client, rawURL string, hdr http.Header) (*stream, *http.Response) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("GET %s: %v", rawURL, err)
	}
	if resp.StatusCode != http.StatusOK {
		cancel()
		t.Cleanup(func() { resp.Body.Close() })
		return nil, resp
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	s := &stream{resp: resp, events: make(chan gosse.Event, 100000), errc: make(chan error, 1), cancel: cancel}
	go func() {
		defer close(s.events)
		for ev, err := range gosse.Read(resp.Body, &gosse.ReadConfig{MaxEventSize: 1 << 20}) {
			if err != nil {
				s.errc <- err
				return
			}
			if ev.Data == "" && ev.Type == "" {
				// A block with no data, such as the start position a
				// fresh stream announces, dispatches nothing in an
				// EventSource either.
				continue
			}
			s.events <- ev
		}
	}()
	t.Cleanup(s.close)
	return s, resp
}

func (s *stream) close() {
	s.cancel()
	s.resp.Body.Close()
}

// next waits for the next event.
func (s *stream) next(t testing.TB, timeout time.Duration) gosse.Event {
	t.Helper()
	select {
	case ev, ok := <-s.events:
		if !ok {
			t.Fatal("stream ended")
		}
		return ev
	case <-time.After(timeout):
		t.Fatal("no event within", timeout)
	}
	return gosse.Event{}
}

// collect reads events until the stream ends or n events arrived.
func (s *stream) collect(t testing.TB, n int, timeout time.Duration) []gosse.Event {
	t.Helper()
	var out []gosse.Event
	deadline := time.After(timeout)
	for len(out) < n {
		select {
		case ev, ok := <-s.events:
			if !ok {
				return out
			}
			out = append(out, ev)
		case <-deadline:
			t.Fatalf("got %d of %d events within %v", len(out), n, timeout)
		}
	}
	return out
}

// eventually waits for cond, polling, and fails the test at the deadline.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	testkit.Eventually(t, timeout, what, cond)
}

func eventsURL(base string, channels []string, extra url.Values) string {
	q := url.Values{}
	for _, ch := range channels {
		q.Add("channel", ch)
	}
	for k, v := range extra {
		q[k] = v
	}
	return fmt.Sprintf("%s/events?%s", base, q.Encode())
}

// seqOf reads the sequence from an event id.
func seqOf(t testing.TB, id string) uint64 {
	t.Helper()
	var seq uint64
	if _, err := fmt.Sscanf(strings.SplitN(id, "-", 2)[0], "%d", &seq); err != nil {
		t.Fatalf("id %q: %v", id, err)
	}
	return seq
}

// load runs cfg in this process's Caddy until the test ends.
func load(t testing.TB, cfg map[string]any, what string) {
	t.Helper()
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := caddy.Load(raw, true); err != nil {
		t.Fatalf("loading %s: %v", what, err)
	}
	t.Cleanup(func() { _ = caddy.Stop() })
}

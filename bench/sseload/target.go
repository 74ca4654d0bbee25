package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ssegate/ssegate/replay"
)

// target is one server under test with its own fresh nats-server: both are
// new processes, so no run inherits another's heap or subscriptions.
type target struct {
	name    string
	nats    *proc
	srv     *proc
	pub     *nats.Conn
	monitor string // nats-server monitoring base URL
	base    string // http://127.0.0.1:port of the event server
	pprof   string // base URL of the server's /debug/pprof
}

// caddyfile runs ssegate as a user would: defaults everywhere, an external
// nats-server, one public route.
const caddyfile = `{
	admin 127.0.0.1:%d
	auto_https off
	persist_config off
	servers {
		protocols h1 h2c
	}
	ssegate {
		url nats://127.0.0.1:%d
	}
}

:%d {
	bind 127.0.0.1
	respond /healthz 200
	ssegate /events* {
		public >
		poll /events/poll
%s
	}
}
`

// floorCaddyfile runs bench/caddyfloor's handler, which holds a stream and
// does nothing else: what Caddy costs per stream before any handler's work.
const floorCaddyfile = `{
	admin 127.0.0.1:%d
	auto_https off
	persist_config off
	servers {
		protocols h1 h2c
	}
}

:%d {
	bind 127.0.0.1
	respond /healthz 200
	sse_floor /events
}
`

// startTarget starts a server of kind raw, ssegate or floor (a caddy built
// from bench/caddyfloor), from the binaries in bindir; label names it in reports. handlerExtra is added to ssegate's
// handler block, for example "queue_size 64".
func startTarget(kind, label, bindir, workdir, handlerExtra string) (*target, error) {
	ports, err := freePorts(4)
	if err != nil {
		return nil, err
	}
	natsPort, monPort, httpPort, adminPort := ports[0], ports[1], ports[2], ports[3]
	dir := filepath.Join(workdir, fmt.Sprintf("%s-%d", kind, httpPort))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	t := &target{
		name:    label,
		monitor: fmt.Sprintf("http://127.0.0.1:%d", monPort),
		base:    fmt.Sprintf("http://127.0.0.1:%d", httpPort),
		pprof:   fmt.Sprintf("http://127.0.0.1:%d/debug/pprof", adminPort),
	}
	ok := false
	defer func() {
		if !ok {
			t.stop()
		}
	}()
	t.nats, err = start("nats-server", dir, nil, filepath.Join(bindir, "nats-server"),
		"-a", "127.0.0.1", "-p", fmt.Sprint(natsPort), "-m", fmt.Sprint(monPort),
		"-js", "-sd", filepath.Join(dir, "nats"))
	if err != nil {
		return nil, err
	}
	if err := waitHTTP(t.nats, t.monitor+"/healthz"); err != nil {
		return nil, err
	}
	natsURL := fmt.Sprintf("nats://127.0.0.1:%d", natsPort)
	if t.pub, err = ensureStream(natsURL); err != nil {
		return nil, err
	}
	if t.srv, err = startServer(kind, bindir, dir, natsURL, handlerExtra, natsPort, httpPort, adminPort); err != nil {
		return nil, err
	}
	if err := waitHTTP(t.srv, t.base+"/healthz"); err != nil {
		return nil, err
	}
	ok = true
	return t, nil
}

// startServer starts the HTTP server under test: raw, or Caddy with
// ssegate or with the floor handler.
func startServer(kind, bindir, dir, natsURL, handlerExtra string, natsPort, httpPort, adminPort int) (*proc, error) {
	switch kind {
	case "raw":
		return start(kind, dir, nil, filepath.Join(bindir, "raw"),
			"-listen", fmt.Sprintf("127.0.0.1:%d", httpPort),
			"-admin", fmt.Sprintf("127.0.0.1:%d", adminPort), "-nats", natsURL)
	case "ssegate", "floor":
		cf := filepath.Join(dir, "Caddyfile")
		config := fmt.Appendf(nil, caddyfile, adminPort, natsPort, httpPort, handlerExtra)
		if kind == "floor" {
			config = fmt.Appendf(nil, floorCaddyfile, adminPort, httpPort)
		}
		if err := os.WriteFile(cf, config, 0o644); err != nil {
			return nil, err
		}
		xdg := filepath.Join(dir, "xdg")
		return start(kind, dir, []string{"XDG_CONFIG_HOME=" + xdg, "XDG_DATA_HOME=" + xdg},
			filepath.Join(bindir, "caddy"), "run", "--config", cf, "--adapter", "caddyfile")
	}
	return nil, fmt.Errorf("unknown server %q (want raw, ssegate or floor)", kind)
}

// ensureStream creates the stream both servers read from, as ssegate
// would with its defaults (file storage, republished live), and returns
// the publisher's connection.
func ensureStream(url string) (*nats.Conn, error) {
	nc, err := nats.Connect(url)
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := replay.Ensure(ctx, js, replay.StreamConfig{}.WithDefaults()); err != nil {
		nc.Close()
		return nil, err
	}
	return nc, nil
}

func (t *target) url(channel string) string { return t.base + "/events?channel=" + channel }

func (t *target) pollURL(channel string) string {
	return t.base + "/events/poll?channel=" + channel
}

func (t *target) stop() {
	if t.pub != nil {
		t.pub.Close()
	}
	t.srv.stop()
	t.nats.stop()
}

// storedMsgs is how many messages the stream holds.
func (t *target) storedMsgs(ctx context.Context) (int64, error) {
	js, err := jetstream.New(t.pub)
	if err != nil {
		return 0, err
	}
	s, err := js.Stream(ctx, replay.DefaultStreamName)
	if err != nil {
		return 0, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, err
	}
	return int64(info.State.Msgs), nil
}

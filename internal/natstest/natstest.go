// Package natstest runs nats-servers for tests: on a random loopback port,
// with JetStream storing in the test's temporary directory.
package natstest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ssegate/ssegate/internal/testkit"
)

// Option adjusts the server's options before it starts.
type Option func(*server.Options)

// WithoutJetStream starts a server that has JetStream disabled.
func WithoutJetStream() Option { return func(o *server.Options) { o.JetStream = false } }

// OnPort listens on a fixed port, for tests that restart a server.
func OnPort(port int) Option { return func(o *server.Options) { o.Port = port } }

// StoringIn keeps JetStream data in dir, for tests that restart a server.
func StoringIn(dir string) Option { return func(o *server.Options) { o.StoreDir = dir } }

// Server starts a server that the test shuts down when it ends.
func Server(t testing.TB, opts ...Option) *server.Server {
	t.Helper()
	o := &server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true}
	for _, opt := range opts {
		opt(o)
	}
	return Start(t, o)
}

// Start starts a server with the options o, whole, such as those of a
// config file, and shuts it down when the test ends.
func Start(t testing.TB, o *server.Options) *server.Server {
	t.Helper()
	ns, err := server.NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	return ns
}

// Connect opens a JetStream client to ns, with opts, that the test
// closes.
func Connect(t testing.TB, ns *server.Server, opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	return ConnectURL(t, ns.ClientURL(), opts...)
}

// ConnectURL opens a JetStream client to url (several, comma-separated,
// for a cluster), with opts, that the test closes.
func ConnectURL(t testing.TB, url string, opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// Stream is the stream name as js sees it now.
func Stream(t testing.TB, js jetstream.JetStream, name string) jetstream.Stream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Reconnecting makes a client reconnect for ever, every 50 ms, so that it
// rides out a server's restart or a cluster node's failure.
func Reconnecting() nats.Option {
	return func(o *nats.Options) error {
		o.MaxReconnect, o.ReconnectWait = -1, 50*time.Millisecond
		return nil
	}
}

// Restartable is a server that a test stops and starts again on the same
// port with the same JetStream store.
type Restartable struct {
	t     testing.TB
	port  int
	store string
	opts  []Option
	// Server is the running server, or the last one to run.
	*server.Server
}

// NewRestartable returns a server, not yet started, on a free port that
// it keeps, storing in a directory of its own.
func NewRestartable(t testing.TB, opts ...Option) *Restartable {
	t.Helper()
	return &Restartable{t: t, port: testkit.FreePorts(t, 1)[0], store: t.TempDir(), opts: opts}
}

// Start starts the server, or starts it again, on its port and store.
func (r *Restartable) Start() *server.Server {
	r.t.Helper()
	r.Server = Server(r.t, append([]Option{OnPort(r.port), StoringIn(r.store)}, r.opts...)...)
	return r.Server
}

// Stop shuts the server down and waits until it is down.
func (r *Restartable) Stop() {
	r.Shutdown()
	r.WaitForShutdown()
}

// URL is the client URL, the same across restarts.
func (r *Restartable) URL() string { return fmt.Sprintf("nats://127.0.0.1:%d", r.port) }

// AllPeersOnline reports whether the JetStream meta leader among servers
// counts every one of them as an online peer. Until then an R3 stream
// cannot be placed: creating one fails with "no suitable peers for
// placement".
func AllPeersOnline(servers []*server.Server) bool {
	for _, ns := range servers {
		if len(ns.JetStreamClusterPeers()) == len(servers) {
			return true
		}
	}
	return false
}

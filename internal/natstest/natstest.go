// Package natstest runs nats-servers for tests: on a random loopback port,
// with JetStream storing in the test's temporary directory.
package natstest

import (
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
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
	ns, err := server.NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	return ns
}

// Connect opens a JetStream client to ns that the test closes.
func Connect(t testing.TB, ns *server.Server) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(ns.ClientURL())
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

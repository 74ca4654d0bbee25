package main

import (
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/ssegate/ssegate/internal/testkit"
	"github.com/ssegate/ssegate/replay"
	"github.com/ssegate/ssegate/upstream"
)

// TestPublishToTheDefaultEmbeddedServer: on the embedded server's default
// loopback listener, publish works without credentials, with JetStream
// acks and with -core, beside users when anonymous is on (with users it is
// off unless given); a user's password goes in the URL.
func TestPublishToTheDefaultEmbeddedServer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	users := []upstream.EmbeddedUser{{User: "backend", Password: "pw"}}
	on := true
	conn, err := upstream.Acquire(upstream.Config{Embedded: &upstream.EmbeddedConfig{Listen: addr, StoreDir: t.TempDir(), Users: users, Anonymous: &on}}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := replay.Ensure(ctx, conn.JS, replay.StreamConfig{Storage: "memory"}.WithDefaults())
	if err != nil {
		t.Fatal(err)
	}
	server := "nats://" + addr
	if err := run([]string{"-server", server, "-channel", "demo", "-event", "greeting", "hello"}, strings.NewReader(""), io.Discard, io.Discard); err != nil {
		t.Fatalf("JetStream publish: %v", err)
	}
	if err := run([]string{"-server", server, "-core", "-count", "2", "-subject", "events.demo", "fire and forget"}, strings.NewReader(""), io.Discard, io.Discard); err != nil {
		t.Fatalf("core publish: %v", err)
	}
	if err := run([]string{"-server", "nats://backend:pw@" + addr, "-channel", "demo", "as a user"}, strings.NewReader(""), io.Discard, io.Discard); err != nil {
		t.Fatalf("publish as a user: %v", err)
	}
	if err := run([]string{"-server", "nats://backend:wrong@" + addr, "-channel", "demo", "x"}, strings.NewReader(""), io.Discard, io.Discard); err == nil {
		t.Fatal("a wrong password published")
	}
	stream, err := conn.JS.Stream(ctx, s.Name)
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 5*time.Second, "the stream to hold the 4 messages", func() bool {
		info, err := stream.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Msgs == 4
	})
}

package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ssegate/ssegate/internal/testkit"

	"github.com/ssegate/ssegate/internal/natstest"
)

// The command against a real nats-server: what it stores, and how it
// fails.

// streamServer starts a nats-server with a stream on events.> like the
// gateway's, and returns its URL and the stream.
func streamServer(t *testing.T) (string, jetstream.Stream) {
	t.Helper()
	ns := natstest.Server(t)
	return ns.ClientURL(), createStream(t, ns.ClientURL())
}

func createStream(t *testing.T, url string, opts ...nats.Option) jetstream.Stream {
	t.Helper()
	_, js := natstest.ConnectURL(t, url, opts...)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "SSEGATE", Subjects: []string{"events.>"}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// stored reads the message at seq, waiting for it: a core NATS publish
// returns before the stream has stored it.
func stored(t *testing.T, s jetstream.Stream, seq uint64) *jetstream.RawStreamMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var m *jetstream.RawStreamMsg
	err := testkit.Poll(ctx, 10*time.Millisecond, func() (err error) {
		m, err = s.GetMsg(ctx, seq)
		return err
	})
	if err != nil {
		t.Fatalf("message %d: %v", seq, err)
	}
	return m
}

func TestPublish(t *testing.T) {
	url, s := streamServer(t)
	tests := []struct {
		name    string
		args    []string
		stdin   string
		stdout  string // a line it prints
		data    string // what is stored
		subject string
	}{
		{"jetstream", []string{"-event", "greeting", "hello"}, "", "published to events.demo: stream SSEGATE sequence 1", "hello", "events.demo"},
		{"core", []string{"-core", "-subject", "events.x", "fire"}, "", "published 1 message(s) to events.x with core NATS", "fire", "events.x"},
		{"stdin newline", []string{"-"}, "from echo\n", "sequence 3", "from echo", "events.demo"},
		{"stdin CRLF", []string{"-"}, "crlf\r\n", "sequence 4", "crlf", "events.demo"},
		{"stdin one newline only", []string{"-"}, "two\n\n", "sequence 5", "two\n", "events.demo"},
		{"stdin no newline", []string{"-channel", "c", "-"}, "as is", "published to events.c", "as is", "events.c"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout bytes.Buffer
			args := append([]string{"-server", url}, tt.args...)
			if err := run(args, strings.NewReader(tt.stdin), &stdout, new(bytes.Buffer)); err != nil {
				t.Fatalf("run(%q): %v", args, err)
			}
			if !strings.Contains(stdout.String(), tt.stdout) {
				t.Errorf("printed %q, want %q", stdout.String(), tt.stdout)
			}
			m := stored(t, s, uint64(i+1))
			if string(m.Data) != tt.data || m.Subject != tt.subject {
				t.Errorf("stored %q on %s, want %q on %s", m.Data, m.Subject, tt.data, tt.subject)
			}
		})
	}
	if m := stored(t, s, 1); m.Header.Get("Sse-Event") != "greeting" {
		t.Errorf("Sse-Event = %q, want greeting", m.Header.Get("Sse-Event"))
	}
}

// TestNotStored: the stream hint comes with the error it explains.
func TestNotStored(t *testing.T) {
	url, _ := streamServer(t)
	err := run([]string{"-server", url, "-subject", "other.demo", "x"}, nil, new(bytes.Buffer), new(bytes.Buffer))
	if err == nil || !strings.Contains(err.Error(), "no stream stores this subject") {
		t.Fatalf("run = %v, want the stream hint", err)
	}
}

// TestUser publishes as a NATS user limited to the stream's subjects, as
// backends outside the Docker image do.
func TestUser(t *testing.T) {
	ns := natstest.Server(t, func(o *server.Options) {
		o.Users = []*server.User{
			{Username: "gateway", Password: "gateway-password"},
			{Username: "backend", Password: "backend-password", Permissions: &server.Permissions{
				Publish: &server.SubjectPermission{Allow: []string{"events.>"}},
			}},
		}
	})
	url := ns.ClientURL()
	createStream(t, url, nats.UserInfo("gateway", "gateway-password"))
	t.Setenv(passwordEnv, "backend-password")
	var stdout bytes.Buffer
	if err := run([]string{"-server", url, "-user", "backend", "ok"}, nil, &stdout, new(bytes.Buffer)); err != nil {
		t.Fatalf("publishing as backend: %v", err)
	}
	if !strings.Contains(stdout.String(), "sequence 1") {
		t.Errorf("printed %q", stdout.String())
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"-user", "backend", "-password", "wrong", "x"}, "authorization violation"},
		{[]string{"-user", "backend", "-core", "-subject", "ssegate.live.events.demo", "forged"}, "permissions violation"},
	} {
		err := run(append([]string{"-server", url}, tt.args...), nil, new(bytes.Buffer), new(bytes.Buffer))
		if err == nil || !strings.Contains(strings.ToLower(err.Error()), tt.want) {
			t.Errorf("run(%q) = %v, want %q", tt.args, err, tt.want)
		}
	}
}

package e2e

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ssegate/ssegate/internal/natstest"
)

// TestReadmeNodeSnippet runs the README's Node.js backend snippet ("A
// backend") as written: it publishes an event that the stream stores, and
// it refuses to run without a secret.
func TestReadmeNodeSnippet(t *testing.T) {
	tl := findTools(t)
	// The section's first js block.
	code := blockWith(t, fencedBlocks(docSection(t, "README.md", "A backend"), "js"), "")
	ns := natstest.Server(t)
	_, js := natstest.Connect(t, ns)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "SSEGATE", Subjects: []string{"events.>"}})
	if err != nil {
		t.Fatal(err)
	}
	run := func(secret string) (string, error) {
		cmd := exec.CommandContext(ctx, tl.node, "--input-type=module", "-e", code)
		cmd.Env = append(os.Environ(), "NATS_URL="+ns.ClientURL(), "SSEGATE_JWT_SECRET="+secret)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	out, err := run(randomSecret(t))
	if err != nil {
		t.Fatalf("the snippet failed: %v\n%s", err, out)
	}
	seq, err := strconv.ParseUint(strings.TrimSpace(out), 10, 64)
	if err != nil {
		t.Fatalf("the snippet printed %q, want the event's sequence", out)
	}
	m, err := stream.GetMsg(ctx, seq)
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != "events.user.alice" || string(m.Data) != `{"n":1}` || m.Header.Get("Sse-Event") != "update" {
		t.Errorf("stored %s %q %v, want the snippet's event", m.Subject, m.Data, m.Header)
	}

	out, err = run("")
	if err == nil || !strings.Contains(out, "SSEGATE_JWT_SECRET is not set") {
		t.Errorf("with an empty secret: %v\n%s\nwant a failure that names the variable", err, out)
	}
}

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestShutdownEndsOpenStreams: Caddy's graceful shutdown waits for every
// open request, for ever by default. The gateway must end its streams
// itself, telling clients to come back, or the process would never exit.
func TestShutdownEndsOpenStreams(t *testing.T) {
	bin := buildCommands(t)
	ports := freePorts(t, 2)
	dir := t.TempDir()
	p := runCaddy(t, bin, "caddy", dir, embeddedConf{natsPort: ports[1]}.options(dir)+fmt.Sprintf(`
:%d {
	ssegate /events {
		public demo
	}
}
`, ports[0]))

	url := fmt.Sprintf("http://127.0.0.1:%d/events?channel=demo", ports[0])
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p.waitFor(ctx, t, "the event route", func() error { return probeEvents(ctx, url) })
	lines := openEventLines(ctx, t, http.DefaultClient, url)
	if first := <-lines; first != ": ssegate" {
		t.Fatalf("first line %q", first)
	}

	if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var got []string
	timeout := time.After(10 * time.Second)
	for open := true; open; {
		select {
		case l, ok := <-lines:
			open = ok
			got = append(got, l)
		case <-timeout:
			t.Fatalf("the stream outlived SIGTERM by 10s; it got %q", got)
		}
	}
	text := strings.Join(got, "\n")
	if !strings.Contains(text, ": end: shutdown") || !strings.Contains(text, "retry: ") {
		t.Fatalf("the stream ended without a shutdown note and retry hint: %q", got)
	}
	select {
	case <-p.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("caddy did not exit within 10s of SIGTERM with a stream open")
	}
}

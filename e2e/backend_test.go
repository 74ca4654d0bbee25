package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ssegate/ssegate/internal/child"
)

// TestBackends runs the README's backend flow in the seeds' languages: a
// backend mints a one-time ticket and publishes events; a page fetches the
// ticket and reads the events with an EventSource in Chromium. The Node
// backend (backend.mjs) uses jose and the nats package; the Go one
// (gobackend_test.go) golang-jwt and nats.go.
func TestBackends(t *testing.T) {
	tl := findTools(t)
	secret := randomSecret(t)
	gw := startAuthGateway(t, tl.bin, secret)
	origin := fmt.Sprintf("http://127.0.0.1:%d", gw.httpPort)
	backends := []struct {
		name  string
		start func(t *testing.T) string // returns the backend's URL
	}{
		{"node", func(t *testing.T) string { return startNodeBackend(t, tl.node, gw.natsURL, secret, origin) }},
		{"go", func(t *testing.T) string { return startGoBackend(t, gw.natsURL, secret, origin) }},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			runScript(t, tl, "eventsource.mjs", []string{
				"SSEGATE_PAGE=" + origin + "/blank",
				"SSEGATE_BACKEND=" + b.start(t),
				"CHROMIUM_PATH=" + tl.chromium,
			})
			if !gw.Running() {
				t.Fatalf("the gateway exited; log:\n%s", gw.logTail())
			}
		})
	}
}

func randomSecret(t *testing.T) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// authSite is a site whose channels all need a credential signed with
// SSEGATE_JWT_SECRET, with a blank page on its origin for the
// EventSource. Loopback only.
const authSite = `
http://127.0.0.1:%d {
	bind 127.0.0.1
	ssegate /events {
		auth {
			hmac_secret {env.SSEGATE_JWT_SECRET}
		}
	}
	respond /blank "<!doctype html><title>blank</title>" 200
}
`

func startAuthGateway(t *testing.T, bin, secret string) *gateway {
	t.Helper()
	ports := freePorts(t, 2)
	dir := t.TempDir()
	g := &gateway{httpPort: ports[0], natsURL: fmt.Sprintf("nats://127.0.0.1:%d", ports[1])}
	// The gateway process inherits the test's environment.
	t.Setenv("SSEGATE_JWT_SECRET", secret)
	options := embeddedConf{natsPort: ports[1], global: servers(g.httpPort, "h1"), app: streamLimits}.options(dir)
	g.caddyProcess = runCaddy(t, bin, "caddy", dir, options+fmt.Sprintf(authSite, g.httpPort))
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	g.waitFor(ctx, t, "the blank page", func() error {
		return getStatus(ctx, http.DefaultClient, fmt.Sprintf("http://127.0.0.1:%d/blank", g.httpPort), http.StatusOK)
	})
	g.waitStream(ctx, t, g.natsURL)
	return g
}

// startNodeBackend runs backend.mjs until the test ends and returns the
// URL it listens on.
func startNodeBackend(t *testing.T, node, natsURL, secret, origin string) string {
	t.Helper()
	cmd := exec.Command(node, "backend.mjs")
	cmd.Env = append(os.Environ(), "SSEGATE_NATS="+natsURL, "SSEGATE_JWT_SECRET="+secret, "SSEGATE_ORIGIN="+origin)
	stderr := new(lockedBuffer)
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.WaitDelay = 5 * time.Second
	proc, err := child.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		proc.Stop(5 * time.Second)
		if t.Failed() {
			t.Logf("backend.mjs stderr:\n%s", stderr)
		}
	})
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "LISTENING "); ok {
				urls <- u
			}
		}
	}()
	select {
	case u := <-urls:
		return u
	case <-proc.Done():
		t.Fatalf("backend.mjs exited before listening:\n%s", stderr)
	case <-time.After(startTimeout):
		t.Fatalf("backend.mjs did not listen within %v:\n%s", startTimeout, stderr)
	}
	return ""
}

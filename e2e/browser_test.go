// Package e2e runs the gateway as it ships: cmd/caddy with a Caddyfile.
// It holds the browser test (the demo page in a real Chromium, events from
// cmd/publish), the backend test (Node and Go backends mint tickets and
// publish; an EventSource in Chromium reads), the multi-instance test on a
// 3-node NATS cluster, and the shutdown test.
//
// The browser and backend tests need chromium, node and the npm packages
// in this directory (playwright-core, jose, nats):
//
//	apt-get install -y chromium   # or set CHROMIUM_PATH
//	cd e2e && npm ci              # or: ./e2e/install.sh
//
// Without them it skips, except when CI=true, where it fails.
package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ssegate/ssegate/internal/natstest"
)

const (
	// startTimeout bounds the gateway's start: processes, NATS, the
	// internal CA and the first responses.
	startTimeout = 30 * time.Second
	// browserTimeout bounds one run of browser.mjs; it has its own, shorter
	// deadlines for every wait.
	browserTimeout = 90 * time.Second
)

func TestBrowser(t *testing.T) {
	tools := findTools(t)
	gw := startGateway(t, tools.bin)

	outDir := os.Getenv("SSEGATE_E2E_OUT")
	if outDir == "" {
		outDir = "testdata-out"
	}
	outDir, err := filepath.Abs(outDir)
	if err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name     string
		url      string
		protocol string // as Chromium's network stack names it
	}{
		{"http1", fmt.Sprintf("http://127.0.0.1:%d/", gw.httpPort), "http/1.1"},
		{"h2", fmt.Sprintf("https://localhost:%d/", gw.tlsPort), "h2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			runScript(t, tools, "browser.mjs", []string{
				"SSEGATE_URL=" + c.url,
				"SSEGATE_PROTOCOL=" + c.protocol,
				"SSEGATE_CASE=" + c.name,
				"SSEGATE_PUBLISH=" + filepath.Join(tools.bin, "publish"),
				"SSEGATE_NATS=" + gw.natsURL,
				"SSEGATE_SCREENSHOT_DIR=" + outDir,
				"CHROMIUM_PATH=" + tools.chromium,
			})
			if !gw.Running() {
				t.Fatalf("the gateway exited during the browser run; log:\n%s", gw.logTail())
			}
		})
	}
	t.Logf("screenshots: %s", outDir)
}

type gateway struct {
	*caddyProcess
	httpPort, tlsPort int
	natsURL           string
}

// startGateway runs the built caddy with a Caddyfile modelled on
// Caddyfile.example, on free loopback ports and with all state in a
// temporary directory, and waits until it serves the page on both sites
// and the JetStream stream exists.
func startGateway(t *testing.T, bin string) *gateway {
	t.Helper()
	ports := freePorts(t, 3)
	dir := t.TempDir()
	g := &gateway{
		httpPort: ports[0],
		tlsPort:  ports[1],
		natsURL:  fmt.Sprintf("nats://127.0.0.1:%d", ports[2]),
	}
	options := embeddedConf{natsPort: ports[2], app: streamLimits,
		global: internalTLS + servers(g.httpPort, "h1 h2c") + servers(g.tlsPort, "h1 h2")}.options(dir)
	g.caddyProcess = runCaddy(t, bin, "caddy", dir, options+fmt.Sprintf(browserSites, demoRoot(t), g.httpPort, g.tlsPort))

	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	insecure := insecureClient(t)
	g.waitFor(ctx, t, "the page over HTTP", func() error {
		return getPage(ctx, http.DefaultClient, fmt.Sprintf("http://127.0.0.1:%d/", g.httpPort), "HTTP/1.1")
	})
	g.waitFor(ctx, t, "the page over HTTPS", func() error {
		return getPage(ctx, insecure, fmt.Sprintf("https://localhost:%d/", g.tlsPort), "HTTP/2.0")
	})
	g.waitStream(ctx, t, g.natsURL)
	t.Logf("gateway ready in %v: http://127.0.0.1:%d/ https://localhost:%d/ %s",
		time.Since(start).Round(time.Millisecond), g.httpPort, g.tlsPort, g.natsURL)
	return g
}

// browserSites follow Caddyfile.example. Differences: ports and the demo
// root are filled in; no auth block; the TLS site speaks h1 and h2 only,
// so no UDP port is needed for HTTP/3. (The global options, from
// embeddedConf, differ too: the admin endpoint is off, state in the
// test's directory.)
const browserSites = `
(gateway) {
	bind 127.0.0.1
	encode zstd gzip

	ssegate /events {
		public demo
		heartbeat 15s
		retry 2s
	}

	root * %[1]s
	file_server
}

:%[2]d {
	import gateway
}

https://localhost:%[3]d {
	tls internal
	import gateway
}
`

// waitStream waits until the gateway's JetStream stream, on its embedded
// NATS server at natsURL, stores what is published: anonymous clients of
// the embedded server may publish to the stream and nothing more, so an
// acknowledged publish (to a channel no page watches) is the check.
func (p *caddyProcess) waitStream(ctx context.Context, t *testing.T, natsURL string) {
	t.Helper()
	nc, js := natstest.ConnectURL(t, natsURL, natstest.Reconnecting(), nats.RetryOnFailedConnect(true))
	defer nc.Close()
	p.waitFor(ctx, t, "the JetStream stream", func() error {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		_, err := js.Publish(ctx, "events.e2e_ready", nil)
		return err
	})
}

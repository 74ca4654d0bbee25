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
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/ssegate/ssegate/internal/testkit"
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
			runBrowser(t, tools, []string{
				"SSEGATE_URL=" + c.url,
				"SSEGATE_PROTOCOL=" + c.protocol,
				"SSEGATE_CASE=" + c.name,
				"SSEGATE_PUBLISH=" + filepath.Join(tools.bin, "publish"),
				"SSEGATE_NATS=" + gw.natsURL,
				"SSEGATE_SCREENSHOT_DIR=" + outDir,
				"CHROMIUM_PATH=" + tools.chromium,
			})
			if !gw.running() {
				t.Fatalf("the gateway exited during the browser run; log:\n%s", gw.logTail())
			}
		})
	}
	t.Logf("screenshots: %s", outDir)
}

type tools struct {
	chromium, node string
	bin            string // holds the caddy and publish binaries built for the test
}

// findTools finds chromium, node and playwright-core and builds the two
// commands. A missing tool skips the test, or fails it on CI, which
// installs them (e2e/install.sh) and must never pass by skipping.
func findTools(t *testing.T) tools {
	t.Helper()
	var missing []string
	chromium := os.Getenv("CHROMIUM_PATH")
	if chromium == "" {
		for _, name := range []string{"chromium", "chromium-browser"} {
			if p, err := exec.LookPath(name); err == nil {
				chromium = p
				break
			}
		}
	}
	if chromium == "" {
		missing = append(missing, "chromium (apt-get install -y chromium, or set CHROMIUM_PATH)")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing = append(missing, "node (Node.js 20 or later)")
	}
	for _, pkg := range []string{"playwright-core", "jose", "nats", "eventsource"} {
		if _, err := os.Stat(filepath.Join("node_modules", pkg, "package.json")); err != nil {
			missing = append(missing, "e2e/node_modules/"+pkg+" (cd e2e && npm ci)")
		}
	}
	if len(missing) > 0 {
		msg := "browser test needs: " + strings.Join(missing, "; ") + "; e2e/install.sh installs them"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + " (CI=true: failing instead of skipping)")
		}
		t.Skip(msg)
	}
	if testing.Short() && os.Getenv("CI") != "true" {
		t.Skip("browser test skipped in -short mode")
	}

	bin := buildCommands(t)
	return tools{chromium: chromium, node: node, bin: bin}
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
	demo, err := filepath.Abs(filepath.Join("..", "demo"))
	if err != nil {
		t.Fatal(err)
	}
	g := &gateway{
		httpPort: ports[0],
		tlsPort:  ports[1],
		natsURL:  fmt.Sprintf("nats://127.0.0.1:%d", ports[2]),
	}
	g.caddyProcess = runCaddy(t, bin, "caddy", dir, fmt.Sprintf(caddyfileTemplate,
		filepath.Join(dir, "caddy"), g.httpPort, g.tlsPort,
		ports[2], filepath.Join(dir, "nats"), demo, g.httpPort, g.tlsPort))

	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	insecure := &http.Client{Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, // tls internal: a CA made at start
		ForceAttemptHTTP2: true,
	}}
	defer insecure.CloseIdleConnections()
	waitFor(ctx, t, g, "the page over HTTP", func() error {
		return getPage(ctx, http.DefaultClient, fmt.Sprintf("http://127.0.0.1:%d/", g.httpPort), "HTTP/1.1")
	})
	waitFor(ctx, t, g, "the page over HTTPS", func() error {
		return getPage(ctx, insecure, fmt.Sprintf("https://localhost:%d/", g.tlsPort), "HTTP/2.0")
	})
	waitFor(ctx, t, g, "the JetStream stream", func() error { return streamExists(ctx, g.natsURL) })
	t.Logf("gateway ready in %v: http://127.0.0.1:%d/ https://localhost:%d/ %s",
		time.Since(start).Round(time.Millisecond), g.httpPort, g.tlsPort, g.natsURL)
	return g
}

// caddyfileTemplate follows Caddyfile.example. Differences: ports, state
// directories and the demo root are filled in; the admin endpoint is off;
// no auth block; the TLS site speaks h1 and h2 only, so no UDP port is
// needed for HTTP/3.
const caddyfileTemplate = `{
	admin off
	persist_config off
	storage file_system %[1]s
	skip_install_trust
	auto_https disable_redirects
	servers 127.0.0.1:%[2]d {
		protocols h1 h2c
	}
	servers 127.0.0.1:%[3]d {
		protocols h1 h2
	}

	ssegate {
		embedded {
			listen 127.0.0.1:%[4]d
			store_dir %[5]s
		}
		stream {
			max_age 1h
			max_bytes 64MiB
		}
	}
}

(gateway) {
	bind 127.0.0.1
	encode zstd gzip

	ssegate /events {
		public demo
		heartbeat 15s
		retry 2s
	}

	root * %[6]s
	file_server
}

:%[7]d {
	import gateway
}

https://localhost:%[8]d {
	tls internal
	import gateway
}
`

// waitFor polls check until it succeeds, the deadline passes or the
// gateway exits.
func waitFor(ctx context.Context, t *testing.T, g *gateway, what string, check func() error) {
	t.Helper()
	err := testkit.Poll(ctx, 50*time.Millisecond, func() error {
		select {
		case <-g.done:
			t.Fatalf("caddy exited while waiting for %s; log:\n%s", what, g.logTail())
		default:
		}
		return check()
	})
	if err != nil {
		t.Fatalf("waiting for %s: %v; log:\n%s", what, err, g.logTail())
	}
}

func getPage(ctx context.Context, c *http.Client, url, proto string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	switch {
	case err != nil:
		return err
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	case resp.Proto != proto:
		return fmt.Errorf("GET %s: %s, want %s", url, resp.Proto, proto)
	case !bytes.Contains(body, []byte("ssegate demo")):
		return fmt.Errorf("GET %s: not the demo page", url)
	}
	return nil
}

// streamExists says whether the gateway has set up its JetStream stream,
// so that the publisher's first publish is stored.
func streamExists(ctx context.Context, url string) error {
	nc, err := nats.Connect(url, nats.Timeout(2*time.Second))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	// Anonymous clients of the embedded server may publish to the stream
	// and nothing more, so an acknowledged publish (to a channel the page
	// does not watch) is the check.
	_, err = js.Publish(ctx, "events.e2e_ready", nil)
	return err
}

// runBrowser runs browser.mjs, logging its output line by line, and fails
// the test if it does not pass.
func runBrowser(t *testing.T, tl tools, env []string) {
	t.Helper()
	runScript(t, tl, "browser.mjs", env)
}

// runScript runs a node script of this directory that drives Chromium; it
// passes when it prints PASS and exits 0.
func runScript(t *testing.T, tl tools, script string, env []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), browserTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, tl.node, script)
	cmd.Env = append(append(os.Environ(), "NO_COLOR=1", "FORCE_COLOR=0"), env...)
	// On the deadline, ask node to stop: Playwright then closes the
	// browser it launched. Kill only if that does not work.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var passed bool
	for _, r := range []io.Reader{stdout, stderr} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sc := bufio.NewScanner(r)
			sc.Buffer(nil, 1<<20)
			for sc.Scan() {
				line := sc.Text()
				if r == stdout && line == "PASS" {
					passed = true
				}
				t.Logf("%s: %s", script, line)
			}
		}()
	}
	wg.Wait() // before Wait, which closes the pipes
	err = cmd.Wait()
	elapsed := time.Since(start).Round(time.Millisecond)
	switch {
	case ctx.Err() != nil:
		t.Fatalf("%s did not finish within %v", script, browserTimeout)
	case err != nil:
		t.Fatalf("%s failed after %v: %v", script, elapsed, err)
	case !passed:
		t.Fatalf("%s exited without printing PASS", script)
	}
	t.Logf("%s passed in %v", script, elapsed)
}

// freePorts returns n distinct loopback TCP ports that were free a moment
// ago.
func freePorts(t *testing.T, n int) []int { return testkit.FreePorts(t, n) }

// lockedBuffer collects the process's output, written by exec's copying
// goroutine and read by the test.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

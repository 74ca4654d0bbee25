package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ssegate/ssegate/internal/version"
)

// exampleCaddyfile is Caddyfile.example as written, on free loopback ports
// and with its state in dir: only its addresses and paths are replaced,
// and the admin endpoint is turned off.
func exampleCaddyfile(t *testing.T, dir string, httpPort, tlsPort, natsPort int) string {
	t.Helper()
	src, err := os.ReadFile("../Caddyfile.example")
	if err != nil {
		t.Fatal(err)
	}
	demo, err := filepath.Abs("../demo")
	if err != nil {
		t.Fatal(err)
	}
	cf := string(src)
	for _, r := range []struct{ old, new string }{
		{"127.0.0.1:8080", fmt.Sprintf("127.0.0.1:%d", httpPort)},
		{"\n:8080 {", fmt.Sprintf("\n:%d {", httpPort)},
		{"https://localhost:8443", fmt.Sprintf("https://localhost:%d", tlsPort)},
		{"listen 127.0.0.1:4222", fmt.Sprintf("listen 127.0.0.1:%d", natsPort)},
		{"store_dir ./data/nats", "store_dir " + filepath.Join(dir, "nats")},
		{"root * ./demo", "root * " + demo},
		{"{\n", fmt.Sprintf("{\n\tadmin off\n\tpersist_config off\n\tstorage file_system %s\n", filepath.Join(dir, "caddy"))},
	} {
		if !strings.Contains(cf, r.old) {
			t.Fatalf("Caddyfile.example no longer holds %q; update this test with it", r.old)
		}
		cf = strings.Replace(cf, r.old, r.new, 1)
	}
	return cf
}

// TestExampleFirstHour runs Caddyfile.example as a new user would, with
// the commands the quick start names: a publish token from cmd/token
// publishes over HTTP to a stream a client holds, and is refused outside
// its patterns; the demo page links the console; the log has no warning
// about passwords the user never set; cmd/publish without a gateway says
// what to start; and every command says its version.
func TestExampleFirstHour(t *testing.T) {
	bin := buildCommands(t)
	ports := freePorts(t, 3)
	dir := t.TempDir()
	gw := &gateway{caddyProcess: runCaddy(t, bin, "caddy", dir, exampleCaddyfile(t, dir, ports[0], ports[1], ports[2]))}
	base := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	defer client.CloseIdleConnections()
	waitFor(ctx, t, gw, "the demo page", func() error {
		return getPage(ctx, client, base+"/", "HTTP/1.1")
	})
	waitFor(ctx, t, gw, "the JetStream stream", func() error { return streamExists(ctx, fmt.Sprintf("nats://127.0.0.1:%d", ports[2])) })

	t.Run("demo page links the console", func(t *testing.T) {
		page := requestGET(ctx, t, client, base+"/", "")
		m := regexp.MustCompile(`<a id="console" href="([^"]+)"`).FindStringSubmatch(page.body)
		if m == nil {
			t.Fatalf("the demo page has no console link:\n%s", page.body)
		}
		if c := requestGET(ctx, t, client, base+m[1], ""); c.status != 200 || !strings.Contains(c.body, "ssegate console") {
			t.Errorf("the console link %s: %d %.200s", m[1], c.status, c.body)
		}
	})

	t.Run("a token from cmd/token publishes", func(t *testing.T) {
		tok := runBuilt(ctx, t, bin, "token", "-sub", "backend", "-publish", "demo", "-publish", "orders.*")
		events := openEventLines(ctx, t, client, base+"/events?channel=demo")
		data := fmt.Sprintf("published with cmd/token %d", time.Now().UnixNano())
		r := requestPOST(ctx, t, client, base+"/events/publish?channel=demo&event=greeting", tok, data)
		if r.status != http.StatusCreated || !strings.Contains(r.body, `"id":`) {
			t.Fatalf("POST /events/publish?channel=demo with a -publish demo token: %d %s", r.status, r.body)
		}
		waitEventLine(t, events, "data: "+data)
	})

	t.Run("the console's token command", func(t *testing.T) {
		// The command the console shows when no token is pasted, as written.
		src, err := os.ReadFile("../console/console.js")
		if err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile(`const tokenHowTo = "go run \./cmd/token ([^"]*)";`).FindSubmatch(src)
		if m == nil {
			t.Fatal("console.js has no tokenHowTo command")
		}
		args := []string{"token"}
		for _, a := range strings.Fields(string(m[1])) {
			args = append(args, strings.Trim(a, "'"))
		}
		tok := runBuilt(ctx, t, bin, args...)
		if r := requestGET(ctx, t, client, base+"/events/console/stats", tok); r.status != http.StatusOK {
			t.Errorf("the console's figures with %v: %d %s", args, r.status, r.body)
		}
		if r := requestPOST(ctx, t, client, base+"/events/publish?channel=orders.eu", tok, "x"); r.status != http.StatusCreated {
			t.Errorf("publishing with %v: %d %s", args, r.status, r.body)
		}
	})

	t.Run("publishing outside the token's patterns is refused", func(t *testing.T) {
		ordersOnly := runBuilt(ctx, t, bin, "token", "-sub", "backend", "-publish", "orders.*")
		readOnly := runBuilt(ctx, t, bin, "token", "-sub", "alice", "-channel", "demo")
		for _, tt := range []struct {
			tok, channel, want string
			status             int
		}{
			{ordersOnly, "demo", "channel_forbidden", http.StatusForbidden},
			{ordersOnly, "orders.eu.paris", "channel_forbidden", http.StatusForbidden},
			{readOnly, "demo", `"error":"forbidden"`, http.StatusForbidden},
			{"", "demo", "unauthenticated", http.StatusUnauthorized},
		} {
			r := requestPOST(ctx, t, client, base+"/events/publish?channel="+tt.channel, tt.tok, "x")
			if r.status != tt.status || !strings.Contains(r.body, tt.want) {
				t.Errorf("publish to %s: %d %s, want %d %s", tt.channel, r.status, r.body, tt.status, tt.want)
			}
		}
	})

	t.Run("versions", func(t *testing.T) {
		for _, args := range [][]string{{"token", "-version"}, {"publish", "-version"}} {
			if got, want := runBuilt(ctx, t, bin, args...), args[0]+": ssegate "+version.Release; !strings.HasPrefix(got, want) {
				t.Errorf("%s: %q, want %q", strings.Join(args, " "), got, want)
			}
		}
		out := runBuilt(ctx, t, bin, "caddy", "ssegate", "version")
		if !strings.HasPrefix(out, "ssegate "+version.Release) || !strings.Contains(out, "\ncaddy v2.") || !strings.Contains(out, "\nnats-server v2.") {
			t.Errorf("caddy ssegate version: %q", out)
		}
		if !regexp.MustCompile(`"msg":"ssegate ready","version":"` + regexp.QuoteMeta(version.Release) + `"`).MatchString(gw.log.String()) {
			t.Errorf("the gateway's ready line does not say its version:\n%s", gw.logTail())
		}
		// Built from this clone, ssegate is the main module, for which
		// list-modules has no version (it reads dependencies only); it
		// lists the modules, and `caddy ssegate version` has the version.
		mods := runBuilt(ctx, t, bin, "caddy", "list-modules", "--versions", "--skip-standard")
		if !regexp.MustCompile(`(?m)^ssegate\b`).MatchString(mods) || !regexp.MustCompile(`(?m)^http\.handlers\.ssegate\b`).MatchString(mods) {
			t.Errorf("caddy list-modules: %q", mods)
		}
	})

	t.Run("publish without a gateway names it", func(t *testing.T) {
		cmd := exec.CommandContext(ctx, filepath.Join(bin, "publish"), "-server", "nats://127.0.0.1:1", "hello")
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || !strings.HasPrefix(string(out), "publish: ") || !strings.Contains(string(out), "Is the gateway running?") || !strings.Contains(string(out), "go run ./cmd/caddy run --config Caddyfile.example") {
			t.Errorf("publish with nothing listening: %v\n%s", err, out)
		}
	})

	t.Run("no plaintext password warning", func(t *testing.T) {
		if log := gw.log.String(); strings.Contains(log, "Plaintext passwords") || !strings.Contains(log, "embedded nats-server started") {
			t.Errorf("the example's log warns of plaintext passwords, or has no embedded server:\n%s", gw.logTail())
		}
	})
}

type reply struct {
	status int
	body   string
}

func requestGET(ctx context.Context, t *testing.T, c *http.Client, url, tok string) reply {
	t.Helper()
	return request(ctx, t, c, http.MethodGet, url, tok, "")
}

func requestPOST(ctx context.Context, t *testing.T, c *http.Client, url, tok, body string) reply {
	t.Helper()
	return request(ctx, t, c, http.MethodPost, url, tok, body)
}

func request(ctx context.Context, t *testing.T, c *http.Client, method, url, tok, body string) reply {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{resp.StatusCode, string(b)}
}

// runBuilt runs one of the built commands and returns its standard
// output, trimmed; it fails the test if the command fails.
func runBuilt(ctx context.Context, t *testing.T, bin string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(ctx, filepath.Join(bin, args[0]), args[1:]...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// openEventLines opens an event stream and returns its lines as they come.
func openEventLines(ctx context.Context, t *testing.T, c *http.Client, url string) <-chan string {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	lines := make(chan string, 64)
	go func() {
		defer close(lines)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
	}()
	return lines
}

func waitEventLine(t *testing.T, lines <-chan string, want string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	var seen []string
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("the stream ended before %q; it said %q", want, seen)
			}
			if l == want {
				return
			}
			seen = append(seen, l)
		case <-deadline:
			t.Fatalf("no %q within 10s; the stream said %q", want, seen)
		}
	}
}

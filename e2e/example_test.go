package e2e

import (
	"context"
	"errors"
	"fmt"
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

// TestExampleFirstHour runs Caddyfile.example as a new user would, with
// the commands the quick start names: a publish token from cmd/token
// publishes over HTTP to a stream a client holds, and is refused outside
// its patterns; the demo page links the console; the log has no warning
// about passwords the user never set; cmd/publish without a gateway says
// what to start; and every command says its version.
func TestExampleFirstHour(t *testing.T) {
	bin := buildCommands(t)
	gw := exampleGateway(t, bin, readExample(t))
	base := gw.base
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	defer client.CloseIdleConnections()
	gw.waitFor(ctx, t, "the demo page", func() error {
		return getPage(ctx, client, base+"/", "HTTP/1.1")
	})
	gw.waitStream(ctx, t, gw.natsURL)

	f := &firstHour{ctx: ctx, bin: bin, base: base, client: client, gw: gw}
	t.Run("demo page links the console", f.consoleLink)
	t.Run("a token from cmd/token publishes", f.tokenPublishes)
	t.Run("the console's token command", f.consoleTokenCommand)
	t.Run("publishing outside the token's patterns is refused", f.refusedOutsidePatterns)
	t.Run("versions", f.versions)
	t.Run("publish without a gateway names it", f.publishWithoutGateway)
	t.Run("no plaintext password warning", f.noPasswordWarning)
}

// firstHour is what the first-hour subtests share: the example running,
// the built commands, and a client.
type firstHour struct {
	ctx    context.Context
	bin    string
	base   string
	client *http.Client
	gw     *exampleSite
}

func (f *firstHour) consoleLink(t *testing.T) {
	page := requestGET(f.ctx, t, f.client, f.base+"/", "")
	m := regexp.MustCompile(`<a id="console" href="([^"]+)"`).FindStringSubmatch(page.body)
	if m == nil {
		t.Fatalf("the demo page has no console link:\n%s", page.body)
	}
	if c := requestGET(f.ctx, t, f.client, f.base+m[1], ""); c.status != 200 || !strings.Contains(c.body, "ssegate console") {
		t.Errorf("the console link %s: %d %.200s", m[1], c.status, c.body)
	}
}

func (f *firstHour) tokenPublishes(t *testing.T) {
	tok := runBuilt(f.ctx, t, f.bin, "token", "-sub", "backend", "-publish", "demo", "-publish", "orders.*")
	events := openEventLines(f.ctx, t, f.client, f.base+"/events?channel=demo")
	data := fmt.Sprintf("published with cmd/token %d", time.Now().UnixNano())
	r := requestPOST(f.ctx, t, f.client, f.base+"/events/publish?channel=demo&event=greeting", tok, data)
	if r.status != http.StatusCreated || !strings.Contains(r.body, `"id":`) {
		t.Fatalf("POST /events/publish?channel=demo with a -publish demo token: %d %s", r.status, r.body)
	}
	waitEventLine(t, events, "data: "+data)
}

func (f *firstHour) consoleTokenCommand(t *testing.T) {
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
	tok := runBuilt(f.ctx, t, f.bin, args...)
	if r := requestGET(f.ctx, t, f.client, f.base+"/events/console/stats", tok); r.status != http.StatusOK {
		t.Errorf("the console's figures with %v: %d %s", args, r.status, r.body)
	}
	if r := requestPOST(f.ctx, t, f.client, f.base+"/events/publish?channel=orders.eu", tok, "x"); r.status != http.StatusCreated {
		t.Errorf("publishing with %v: %d %s", args, r.status, r.body)
	}
}

func (f *firstHour) refusedOutsidePatterns(t *testing.T) {
	ordersOnly := runBuilt(f.ctx, t, f.bin, "token", "-sub", "backend", "-publish", "orders.*")
	readOnly := runBuilt(f.ctx, t, f.bin, "token", "-sub", "alice", "-channel", "demo")
	for _, tt := range []struct {
		tok, channel, want string
		status             int
	}{
		{ordersOnly, "demo", "channel_forbidden", http.StatusForbidden},
		{ordersOnly, "orders.eu.paris", "channel_forbidden", http.StatusForbidden},
		{readOnly, "demo", `"error":"forbidden"`, http.StatusForbidden},
		{"", "demo", "unauthenticated", http.StatusUnauthorized},
	} {
		r := requestPOST(f.ctx, t, f.client, f.base+"/events/publish?channel="+tt.channel, tt.tok, "x")
		if r.status != tt.status || !strings.Contains(r.body, tt.want) {
			t.Errorf("publish to %s: %d %s, want %d %s", tt.channel, r.status, r.body, tt.status, tt.want)
		}
	}
}

func (f *firstHour) versions(t *testing.T) {
	for _, args := range [][]string{{"token", "-version"}, {"publish", "-version"}} {
		if got, want := runBuilt(f.ctx, t, f.bin, args...), args[0]+": ssegate "+version.Release; !strings.HasPrefix(got, want) {
			t.Errorf("%s: %q, want %q", strings.Join(args, " "), got, want)
		}
	}
	out := runBuilt(f.ctx, t, f.bin, "caddy", "ssegate", "version")
	if !strings.HasPrefix(out, "ssegate "+version.Release) || !strings.Contains(out, "\ncaddy v2.") || !strings.Contains(out, "\nnats-server v2.") {
		t.Errorf("caddy ssegate version: %q", out)
	}
	if !regexp.MustCompile(`"msg":"ssegate ready","version":"` + regexp.QuoteMeta(version.Release) + `"`).MatchString(f.gw.log.String()) {
		t.Errorf("the gateway's ready line does not say its version:\n%s", f.gw.logTail())
	}
	// Built from this clone, ssegate is the main module, for which
	// list-modules has no version (it reads dependencies only); it
	// lists the modules, and `caddy ssegate version` has the version.
	mods := runBuilt(f.ctx, t, f.bin, "caddy", "list-modules", "--versions", "--skip-standard")
	if !regexp.MustCompile(`(?m)^ssegate\b`).MatchString(mods) || !regexp.MustCompile(`(?m)^http\.handlers\.ssegate\b`).MatchString(mods) {
		t.Errorf("caddy list-modules: %q", mods)
	}
}

func (f *firstHour) publishWithoutGateway(t *testing.T) {
	cmd := exec.CommandContext(f.ctx, filepath.Join(f.bin, "publish"), "-server", "nats://127.0.0.1:1", "hello")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || !strings.HasPrefix(string(out), "publish: ") || !strings.Contains(string(out), "Is the gateway running?") || !strings.Contains(string(out), "go run ./cmd/caddy run --config Caddyfile.example") {
		t.Errorf("publish with nothing listening: %v\n%s", err, out)
	}
}

func (f *firstHour) noPasswordWarning(t *testing.T) {
	if log := f.gw.log.String(); strings.Contains(log, "Plaintext passwords") || !strings.Contains(log, "embedded nats-server started") {
		t.Errorf("the example's log warns of plaintext passwords, or has no embedded server:\n%s", f.gw.logTail())
	}
}

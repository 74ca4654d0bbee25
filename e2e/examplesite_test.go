package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Caddyfile.example, read and run as the quick start and the first-hour
// test use it.

// example is what Caddyfile.example serves, as the quick start relies on.
type example struct {
	src                     string
	httpPort, tlsPort, nats string // "8080", "8443", "127.0.0.1:4222"
	store                   string // ./data/nats
	matcher                 string // /events*
	paths                   map[string]string
}

func readExample(t *testing.T) example {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "Caddyfile.example"))
	if err != nil {
		t.Fatal(err)
	}
	src := string(raw)
	find := func(re string) string {
		t.Helper()
		m := regexp.MustCompile(`(?m)` + re).FindStringSubmatch(src)
		if m == nil {
			t.Fatalf("Caddyfile.example has no match for %s", re)
		}
		return m[1]
	}
	ex := example{
		src:      src,
		httpPort: find(`^:(\d+) \{`),
		tlsPort:  find(`^https://localhost:(\d+) \{`),
		nats:     find(`^\s+listen (\S+)`),
		store:    find(`^\s+store_dir (\S+)`),
		matcher:  find(`^\s+ssegate (/\S+) \{`),
		paths:    map[string]string{},
	}
	for _, d := range []string{"console", "health", "publish", "ticket_path"} {
		ex.paths[d] = find(`^\s+` + d + ` (/\S+)`)
	}
	return ex
}

// exampleSite is Caddyfile.example running with the built caddy.
type exampleSite struct {
	*caddyProcess
	base    string            // its plain HTTP site
	natsURL string            // its embedded NATS server
	replace *strings.Replacer // the example's addresses to the ones in use, for snippets
}

// exampleGateway runs Caddyfile.example itself with the built caddy, and
// waits until it answers on its health endpoint. Only what must differ on
// a shared machine is changed: its two ports and the NATS port become free
// ones, its state a temporary directory, the admin endpoint is off, and
// the demo root is made absolute.
func exampleGateway(t *testing.T, bin string, ex example) *exampleSite {
	t.Helper()
	ports := freePorts(t, 3)
	dir := t.TempDir()
	natsHost, _, _ := strings.Cut(ex.nats, ":")
	nats := fmt.Sprintf("%s:%d", natsHost, ports[2])
	httpPort, tlsPort := fmt.Sprint(ports[0]), fmt.Sprint(ports[1])
	cfg := replaceAll(t, ex.src,
		"127.0.0.1:"+ex.httpPort, "127.0.0.1:"+httpPort,
		"\n:"+ex.httpPort+" {", "\n:"+httpPort+" {",
		"localhost:"+ex.tlsPort, "localhost:"+tlsPort,
		ex.nats, nats,
		ex.store, filepath.Join(dir, "nats"),
		"root * ./demo", "root * "+demoRoot(t),
		"\n{\n", "\n{\n\tadmin off\n\tpersist_config off\n\tstorage file_system "+filepath.Join(dir, "caddy")+"\n",
	)
	site := &exampleSite{
		caddyProcess: runCaddy(t, bin, "example", dir, cfg),
		base:         "http://127.0.0.1:" + httpPort,
		natsURL:      "nats://" + nats,
		replace: strings.NewReplacer(
			"localhost:"+ex.httpPort, "localhost:"+httpPort,
			"localhost:"+ex.tlsPort, "localhost:"+tlsPort,
			"go run ./cmd/publish", filepath.Join(bin, "publish")+" -server nats://"+nats,
			"go run ./cmd/token", filepath.Join(bin, "token"),
		),
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	site.waitFor(ctx, t, "the example's health endpoint", func() error {
		return getStatus(ctx, http.DefaultClient, site.base+ex.paths["health"], 200)
	})
	return site
}

// replaceAll replaces every old string of src with its new one, and fails
// the test when src no longer holds one of them.
func replaceAll(t *testing.T, src string, oldnew ...string) string {
	t.Helper()
	for i := 0; i < len(oldnew); i += 2 {
		if !strings.Contains(src, oldnew[i]) {
			t.Fatalf("Caddyfile.example no longer holds %q; update this test with it", oldnew[i])
		}
	}
	return strings.NewReplacer(oldnew...).Replace(src)
}

// demoRoot is the demo page's directory, absolute.
func demoRoot(t *testing.T) string {
	t.Helper()
	demo, err := filepath.Abs(filepath.Join("..", "demo"))
	if err != nil {
		t.Fatal(err)
	}
	return demo
}

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"image/color"
	"image/png"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	consoleJWTSecret  = "console-e2e-secret-0123456789abcdef0123"
	consolePublishKey = "console-e2e-publish-key-0123456789abcdef"
)

// consoleSite serves the console, the publish endpoint and health on one
// HTTPS site (HTTP/2).
const consoleSite = `
https://localhost:%[1]d {
	bind 127.0.0.1
	tls internal
	encode zstd gzip
	ssegate /events* {
		public demo
		publish /events/publish {
			key %[2]s demo orders.*
		}
		health /events/health
		console /events/console
		auth {
			hmac_secret %[3]s
			ticket_path /events/ticket
		}
	}
}
`

// TestConsoleInBrowser drives the console page in headless Chromium:
// refusal reasons, a pasted token, publishing from its form and with
// fetch, events of any name, figures, resuming after the page was away,
// tickets, a config reload that ends the streams (the page shows why and
// comes back), and a screenshot that shows events.
func TestConsoleInBrowser(t *testing.T) {
	tools := findTools(t)
	ports := freePorts(t, 3)
	dir := t.TempDir()
	// The admin endpoint is on, on loopback, so that the script can reload
	// the config.
	options := embeddedConf{natsPort: ports[1], admin: fmt.Sprintf("127.0.0.1:%d", ports[2]),
		global: internalTLS + servers(ports[0], "h1 h2")}.options(dir)
	gw := runCaddy(t, tools.bin, "caddy", dir, options+fmt.Sprintf(consoleSite, ports[0], consolePublishKey, consoleJWTSecret))
	base := fmt.Sprintf("https://localhost:%d", ports[0])

	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	insecure := insecureClient(t)
	gw.waitFor(ctx, t, "health 200", func() error {
		return getStatus(ctx, insecure, base+"/events/health", http.StatusOK)
	})

	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub":      "console-user",
		"channels": []string{"demo", "orders.*"},
		"publish":  []string{"demo", "orders.*"},
		"iat":      time.Now().Unix(),
		"exp":      time.Now().Add(time.Hour).Unix(),
	}).SignedString([]byte(consoleJWTSecret))
	if err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(t.TempDir(), "console.png")
	runScript(t, tools, "console.mjs", []string{
		"SSEGATE_BASE=" + base,
		"SSEGATE_TOKEN=" + tok,
		"SSEGATE_PUBLISH_KEY=" + consolePublishKey,
		"SSEGATE_SCREENSHOT=" + shot,
		"CHROMIUM_PATH=" + tools.chromium,
		"SSEGATE_ADMIN=" + fmt.Sprintf("http://127.0.0.1:%d", ports[2]),
		"SSEGATE_CADDYFILE=" + filepath.Join(dir, "Caddyfile"),
		// Node's fetch trusts the gateway's internal CA, as curl --cacert would.
		"NODE_EXTRA_CA_CERTS=" + filepath.Join(dir, "caddy", "pki", "authorities", "local", "root.crt"),
	})
	if !gw.Running() {
		t.Fatalf("the gateway exited during the browser run; log:\n%s", gw.logTail())
	}
	checkScreenshot(t, shot)
	if out := os.Getenv("SSEGATE_E2E_OUT"); out != "" {
		for _, name := range []string{"console.png", "console-no-token.png"} {
			if b, err := os.ReadFile(filepath.Join(filepath.Dir(shot), name)); err == nil {
				_ = os.MkdirAll(out, 0o755)
				_ = os.WriteFile(filepath.Join(out, name), b, 0o644)
			}
		}
	}
}

// checkScreenshot makes sure the PNG is a real page: large enough, and
// with many colours (text and tables), not a blank or single-colour image.
func checkScreenshot(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("screenshot %s: %v", path, err)
	}
	bounds := img.Bounds()
	colours := map[color.RGBA]bool{}
	for y := bounds.Min.Y; y < bounds.Max.Y; y += 2 {
		for x := bounds.Min.X; x < bounds.Max.X; x += 2 {
			colours[color.RGBAModel.Convert(img.At(x, y)).(color.RGBA)] = true
		}
	}
	if bounds.Dx() < 800 || bounds.Dy() < 400 || len(b) < 20000 || len(colours) < 50 {
		t.Fatalf("screenshot %s looks empty: %v, %d bytes, %d colours", path, bounds, len(b), len(colours))
	}
	t.Logf("screenshot %s: %dx%d, %d bytes, %d colours", path, bounds.Dx(), bounds.Dy(), len(b), len(colours))
}

package gatewaytest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// fetchSSEPage reads one event from the gateway with fetch, the way
// fetch-based SSE clients do (Authorization and Last-Event-ID headers,
// which need a CORS preflight), and reports what happened to /report.
const fetchSSEPage = `<!doctype html><script>
(async () => {
  let out;
  try {
    const r = await fetch(%q, {credentials: "include",
      headers: {"Authorization": "Bearer %s", "Last-Event-ID": "0", "Accept": "text/event-stream"}});
    const reader = r.body.getReader();
    let text = "";
    while (!text.includes("\n\n") || !text.includes("data:")) {
      const {value, done} = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    out = "ok " + r.status + " " + (text.match(/data: (.*)/) || [])[1];
  } catch (e) {
    out = "error " + e.name;
  }
  await fetch("/report", {method: "POST", body: out});
})();
</script>`

// TestFetchSSEClientInChromium runs a fetch-based SSE client in a real
// Chromium on two pages of other origins: the listed one reads its event
// through the preflight, the unlisted one is stopped by the browser.
func TestFetchSSEClientInChromium(t *testing.T) {
	chromium := os.Getenv("CHROMIUM_PATH")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		t.Skip("no chromium; set CHROMIUM_PATH")
	}
	reports := make(chan string, 4)
	// Unstarted, so that each page's HTML is fixed before it serves.
	newPage := func() *httptest.Server {
		return httptest.NewUnstartedServer(nil)
	}
	listed, unlisted := newPage(), newPage()
	origin := func(s *httptest.Server) string { return "http://" + s.Listener.Addr().String() }
	g := authGateway(t, map[string]any{"cors_origins": []string{origin(listed)}}, "")
	alice := token(t, jwt.MapClaims{"sub": "alice", "channels": []string{"user.{sub}"}})
	publish(t, g.js(), "events.user.alice", "", "hello from the gateway")
	html := fmt.Sprintf(fetchSSEPage, g.httpURL+"/events?channel=user.alice", alice)
	for _, s := range []*httptest.Server{listed, unlisted} {
		s.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/report" {
				b, _ := io.ReadAll(r.Body)
				reports <- r.Host + " " + string(b)
				return
			}
			w.Header().Set("Content-Type", "text/html")
			_, _ = io.WriteString(w, html)
		})
		s.Start()
		t.Cleanup(s.Close)
	}

	want := map[string]string{
		strings.TrimPrefix(listed.URL, "http://"):   "ok 200 hello from the gateway",
		strings.TrimPrefix(unlisted.URL, "http://"): "error TypeError",
	}
	for _, s := range []*httptest.Server{listed, unlisted} {
		runChromium(t, chromium, s.URL+"/")
	}
	deadline := time.After(60 * time.Second)
	for range want {
		select {
		case rep := <-reports:
			host, got, _ := strings.Cut(rep, " ")
			if got != want[host] {
				t.Errorf("page on %s: %q, want %q", host, got, want[host])
			}
		case <-deadline:
			t.Fatal("no report from the browser")
		}
	}
}

// runChromium opens url in a headless Chromium of its own, ended with its
// whole process group when the test ends.
func runChromium(t *testing.T, bin, url string) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	cmd := exec.CommandContext(ctx, bin, "--headless=new", "--no-sandbox", "--disable-gpu",
		"--no-first-run", "--disable-extensions", "--user-data-dir="+t.TempDir(), url)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
	})
}

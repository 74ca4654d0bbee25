package gatewaytest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ssegate/ssegate"
	"github.com/ssegate/ssegate/internal/testkit"
)

// The image: xcaddy.Dockerfile copies docker/Caddyfile to where the
// official caddy image's command reads it.
const (
	dockerfile     = "xcaddy.Dockerfile"
	imageCaddyfile = "docker/Caddyfile"
	imageVolume    = "/data/" // VOLUME of the official caddy image
)

// imageCopies returns the final stage's COPY lines that take files from
// the build context, as destination → source.
func imageCopies(t *testing.T) map[string]string {
	t.Helper()
	src, err := os.ReadFile(dockerfile)
	if err != nil {
		t.Fatal(err)
	}
	var copies map[string]string
	sc := bufio.NewScanner(bytes.NewReader(src))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 0:
		case strings.EqualFold(f[0], "FROM"):
			copies = map[string]string{} // only the last stage is the image
		case strings.EqualFold(f[0], "COPY") && len(f) == 3:
			copies[f[2]] = f[1]
		}
	}
	return copies
}

// caddyfilePaths returns the paths the image Caddyfile names with root
// and store_dir, which must exist in the image or under the volume.
func caddyfilePaths(t *testing.T, src []byte) map[string]string {
	t.Helper()
	tokens, err := caddyfile.Tokenize(src, imageCaddyfile)
	if err != nil {
		t.Fatal(err)
	}
	paths := map[string]string{}
	for i, tok := range tokens {
		if tok.Text != "root" && tok.Text != "store_dir" {
			continue
		}
		// The path is the last argument on the directive's line.
		last := ""
		for j := i + 1; j < len(tokens) && tokens[j].Line == tok.Line; j++ {
			last = tokens[j].Text
		}
		paths[tok.Text] = last
	}
	return paths
}

func dockerignored(t *testing.T, p string) bool {
	t.Helper()
	src, err := os.ReadFile(".dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	for _, pat := range strings.Fields(string(src)) {
		pat = strings.TrimPrefix(pat, "/")
		for prefix := p; prefix != "."; prefix = path.Dir(prefix) {
			if ok, _ := path.Match(strings.TrimPrefix(pat, "**/"), prefix); ok {
				return true
			}
			if rest, ok := strings.CutPrefix(pat, "**/"); ok && path.Base(prefix) == rest {
				return true
			}
		}
	}
	return false
}

// TestDockerImageLayout checks what needs no Docker engine: the files the
// image copies are in the build context, and every path its Caddyfile
// names is in the image or on the /data volume.
func TestDockerImageLayout(t *testing.T) {
	t.Chdir("..") // the image's paths are the repository's
	copies := imageCopies(t)
	if copies["/etc/caddy/Caddyfile"] != imageCaddyfile {
		t.Errorf("the image does not copy %s to /etc/caddy/Caddyfile: COPY lines %v", imageCaddyfile, copies)
	}
	for dst, src := range copies {
		if _, err := os.Stat(src); err != nil {
			t.Errorf("COPY %s %s: %v", src, dst, err)
		}
		if dockerignored(t, src) {
			t.Errorf("COPY %s %s: .dockerignore leaves it out of the build context", src, dst)
		}
	}
	src, err := os.ReadFile(imageCaddyfile)
	if err != nil {
		t.Fatal(err)
	}
	paths := caddyfilePaths(t, src)
	if !strings.HasPrefix(paths["store_dir"], imageVolume) {
		t.Errorf("store_dir %q is not on the %s volume: history would be lost with the container", paths["store_dir"], imageVolume)
	}
	root := paths["root"]
	found := false
	for dst, src := range copies {
		if rel, err := filepath.Rel(dst, root); err == nil && !strings.HasPrefix(rel, "..") {
			found = true
			if _, err := os.Stat(filepath.Join(src, rel)); err != nil {
				t.Errorf("root %s: %v in the build context", root, err)
			}
		}
	}
	if !found {
		t.Errorf("root %s is not copied into the image (COPY lines %v)", root, copies)
	}
}

// dockerRun is the `docker run` command of a comment or code block, with
// its line continuations joined.
var dockerRun = regexp.MustCompile(`docker run (?:[^\n\\]|\\\n[#\s]*)*`)

func normalize(s string) string {
	s = regexp.MustCompile(`\\\n[#\s]*`).ReplaceAllString(s, " ")
	return strings.Join(strings.Fields(s), " ")
}

// TestDockerDocsAgree keeps one `docker run` in the Dockerfile, the image
// Caddyfile and the README, and its ports the ones the image serves.
func TestDockerDocsAgree(t *testing.T) {
	t.Chdir("..") // the image's paths are the repository's
	var want string
	for _, file := range []string{dockerfile, imageCaddyfile, "README.md"} {
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		m := dockerRun.FindString(string(src))
		if m == "" {
			t.Errorf("%s shows no docker run", file)
			continue
		}
		got := normalize(m)
		if want == "" {
			want = got
		} else if got != want {
			t.Errorf("%s: %q\nwant, as in %s: %q", file, got, dockerfile, want)
		}
	}
	ports := regexp.MustCompile(`-p \d+:(\d+)`).FindAllStringSubmatch(want, -1)
	var got []string
	for _, p := range ports {
		got = append(got, p[1])
	}
	if strings.Join(got, ",") != "80,4222" {
		t.Errorf("docker run publishes container ports %v, want 80 (the site) and 4222 (NATS)", got)
	}
	if !strings.Contains(want, "-v ssegate_data:/data") {
		t.Errorf("docker run %q keeps no volume on /data", want)
	}
}

// adaptImage adapts the image Caddyfile with some text replaced, so that
// the test can run it on loopback ports and temporary directories.
func adaptImage(t *testing.T, replace ...string) map[string]any {
	t.Helper()
	src, err := os.ReadFile(imageCaddyfile)
	if err != nil {
		t.Fatal(err)
	}
	out, warnings, err := testkit.Adapt(t, strings.NewReplacer(replace...).Replace(string(src)), map[string]any{"filename": imageCaddyfile})
	if err != nil {
		t.Fatalf("adapting %s: %v", imageCaddyfile, err)
	}
	for _, w := range warnings {
		t.Errorf("warning: %s:%d: %s: %s", w.File, w.Line, w.Directive, w.Message)
	}
	var cfg map[string]any
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestDockerCaddyfileAdapts: the image's config as the image reads it.
// Needs the embedded server's users (the `user` block).
func TestDockerCaddyfileAdapts(t *testing.T) {
	t.Chdir("..") // the image's paths are the repository's
	cfg := adaptImage(t)
	raw, err := json.Marshal(cfg["apps"].(map[string]any)["ssegate"])
	if err != nil {
		t.Fatal(err)
	}
	var app ssegate.App
	if err := json.Unmarshal(raw, &app); err != nil {
		t.Fatal(err)
	}
	if e := app.NATS.Embedded; e == nil || e.Listen != "0.0.0.0:4222" || e.StoreDir != "/data/ssegate/nats" {
		t.Errorf("embedded = %+v, want 0.0.0.0:4222 storing in /data/ssegate/nats", app.NATS.Embedded)
	}
	if !bytes.Contains(raw, []byte(`"{env.SSEGATE_NATS_PASSWORD}"`)) {
		t.Errorf("the NATS password is not read from the environment at start: %s", raw)
	}
	var handlers []map[string]any
	testkit.FindHandlers(cfg, "ssegate", &handlers)
	if len(handlers) != 1 {
		t.Fatalf("%d ssegate handlers, want 1", len(handlers))
	}
	if b, _ := json.Marshal(handlers[0]); !bytes.Contains(b, []byte(`"{env.SSEGATE_JWT_SECRET}"`)) {
		t.Errorf("the handler does not read its secret from the environment at start: %s", b)
	}
}

// TestDockerCaddyfileRuns runs the image Caddyfile in this process, with
// loopback ports and temporary directories in place of the image's: the
// page is served, and a backend publishes as the NATS user "backend"
// while an anonymous client cannot. Needs the embedded server's users.
func TestDockerCaddyfileRuns(t *testing.T) {
	t.Chdir("..") // the image's paths are the repository's
	httpAddr, natsAddr := freePort(t), freePort(t)
	demo, err := filepath.Abs("demo")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("SSEGATE_SITE", "http://"+httpAddr)
	t.Setenv("SSEGATE_JWT_SECRET", "a-test-secret-that-is-long-enough-for-hs256")
	t.Setenv("SSEGATE_NATS_PASSWORD", "test-backend-password")
	cfg := adaptImage(t,
		"0.0.0.0:4222", natsAddr,
		imageVolume, t.TempDir()+"/",
		"/srv/ssegate/demo", demo)
	cfg["admin"] = map[string]any{"disabled": true, "config": map[string]any{"persist": false}}
	cfg["storage"] = map[string]any{"module": "file_system", "root": t.TempDir()}
	cfg["logging"] = map[string]any{"logs": map[string]any{"default": map[string]any{"level": "ERROR"}}}
	// The image listens on 0.0.0.0, where anonymous clients are never let
	// in; here it listens on loopback, where they are unless told not to.
	embedded := cfg["apps"].(map[string]any)["ssegate"].(map[string]any)["nats"].(map[string]any)["embedded"].(map[string]any)
	embedded["anonymous"] = false
	load(t, cfg, "the image config")

	resp, err := http.Get("http://" + httpAddr + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Contains(page, []byte("ssegate demo")) {
		t.Fatalf("GET /: %s, want the demo page", resp.Status)
	}

	for _, path := range []string{"/events/console/", "/events/health"} {
		resp, err := http.Get("http://" + httpAddr + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s", path, resp.Status)
		}
	}
	s := open(t, http.DefaultClient, "http://"+httpAddr+"/events?channel=demo", nil)
	if anon, err := nats.Connect("nats://"+natsAddr, nats.Timeout(2*time.Second)); err == nil {
		anon.Close()
		t.Error("an anonymous client connected to the embedded NATS")
	}
	nc, err := nats.Connect("nats://"+natsAddr, nats.UserInfo("backend", "test-backend-password"))
	if err != nil {
		t.Fatalf("connecting as backend: %v", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	seq := publish(t, js, "events.demo", "greeting", "from a backend outside")
	ev := s.next(t, 10*time.Second)
	if ev.Type != "greeting" || ev.Data != "from a backend outside" || !strings.HasPrefix(ev.LastEventID, fmt.Sprint(seq, "-")) {
		t.Errorf("got %+v, want the published event with sequence %d", ev, seq)
	}
}

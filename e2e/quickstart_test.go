package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ssegate/ssegate/internal/child"
)

// quickStart is the README's quick start section.
func quickStart(t *testing.T) string { return docSection(t, "README.md", "Quick start") }

var localURL = regexp.MustCompile(`https?://localhost:(\d+)(/[^\s'"<>)]*)?`)

// TestReadmeQuickStartMatchesExample reads the quick start: every URL is on
// one of the example's sites and under a path it serves, every go run names
// a command of this repository, and the NATS address and store it names are
// the example's.
func TestReadmeQuickStartMatchesExample(t *testing.T) {
	ex, qs := readExample(t), quickStart(t)
	prefix := strings.TrimSuffix(ex.matcher, "*")
	urls := localURL.FindAllStringSubmatch(qs, -1)
	if len(urls) < 4 {
		t.Fatalf("found only %d localhost URLs in the quick start", len(urls))
	}
	for _, u := range urls {
		if u[1] != ex.httpPort && u[1] != ex.tlsPort {
			t.Errorf("%s: port %s is neither of the example's sites (:%s, :%s)", u[0], u[1], ex.httpPort, ex.tlsPort)
		}
		path, _, _ := strings.Cut(u[2], "?")
		switch {
		case path == "" || path == "/" || path == prefix:
		case strings.HasPrefix(path, prefix+"/"):
			if !servedPath(ex, path) {
				t.Errorf("%s: the example serves no %s (it has %v)", u[0], path, ex.paths)
			}
		default:
			t.Errorf("%s: %s is outside the example's ssegate %s", u[0], path, ex.matcher)
		}
	}
	for _, m := range regexp.MustCompile(`go run (\./cmd/\w+)`).FindAllStringSubmatch(qs, -1) {
		if !fileExists(filepath.Join("..", m[1])) {
			t.Errorf("go run %s: no such command", m[1])
		}
	}
	for _, m := range regexp.MustCompile(`--config (\S+)`).FindAllStringSubmatch(qs, -1) {
		if !fileExists(filepath.Join("..", m[1])) {
			t.Errorf("--config %s: no such file", m[1])
		}
	}
	if !strings.Contains(qs, "`"+ex.nats+"`") || !strings.Contains(qs, "`"+ex.store+"`") {
		t.Errorf("the quick start does not name the example's NATS address %s and store %s", ex.nats, ex.store)
	}
	pub, err := os.ReadFile(filepath.Join("..", "cmd", "publish", "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(pub), `"nats://`+ex.nats+`"`) {
		t.Errorf("cmd/publish's default server is not the example's embedded NATS at %s", ex.nats)
	}
}

func servedPath(ex example, path string) bool {
	for _, p := range ex.paths {
		if path == p || strings.HasPrefix(path, p+"/") {
			return true
		}
	}
	return false
}

// shell runs a snippet with bash, with the example's addresses replaced,
// and returns its standard output.
func shell(ctx context.Context, t *testing.T, replace *strings.Replacer, snippet string, env ...string) string {
	t.Helper()
	cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", replace.Replace(snippet))
	cmd.Env = append(os.Environ(), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s\n%v\nstdout: %s\nstderr: %s", replace.Replace(snippet), err, out, stderr.String())
	}
	return string(out)
}

// background starts cmd with its output collected, and kills it when the
// test ends.
func background(t *testing.T, cmd *exec.Cmd) *lockedBuffer {
	t.Helper()
	out := new(lockedBuffer)
	cmd.Stdout, cmd.Stderr = out, out
	proc, err := child.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proc.Kill)
	return out
}

// listen runs a one-line curl -N snippet in the background until the test
// ends, and returns what it receives.
func listen(ctx context.Context, t *testing.T, replace *strings.Replacer, line string, env ...string) *lockedBuffer {
	t.Helper()
	cmd := exec.CommandContext(ctx, "bash", "-c", "exec "+replace.Replace(strings.TrimSpace(line)))
	cmd.Env = append(os.Environ(), env...)
	return background(t, cmd)
}

// waitText waits until out holds text.
func waitText(ctx context.Context, t *testing.T, out *lockedBuffer, text string) {
	t.Helper()
	if err := pollUntil(ctx, 20*time.Second, func() bool { return strings.Contains(out.String(), text) }); err != nil {
		t.Fatalf("waiting for %q: %v; got:\n%s", text, err, out.String())
	}
}

var sampleID = regexp.MustCompile(`\d+-[a-z2-7]{4}`)

// TestReadmeQuickStart runs the README's quick start against
// Caddyfile.example as written (see exampleGateway for the few changes a
// shared machine needs): curl listens on demo, cmd/publish publishes twice
// through NATS, and a publisher token from cmd/token publishes over HTTP.
// The listener gets all three, with the event block the README shows. The
// token lines mint tokens, and docs/publishing.md's HTTP samples publish
// to the example as written.
func TestReadmeQuickStart(t *testing.T) {
	ex, qs := readExample(t), quickStart(t)
	bin := buildCommands(t)
	replace := exampleGateway(t, bin, ex).replace
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sh := fencedBlocks(qs, "sh")

	out := listen(ctx, t, replace, blockWith(t, sh, "curl -N"))
	waitText(ctx, t, out, ": ssegate")
	shell(ctx, t, replace, blockWith(t, sh, "go run ./cmd/publish"))
	answer := shell(ctx, t, replace, blockWith(t, sh, "-publish demo"))
	m := regexp.MustCompile(`^\{"id":"(` + sampleID.String() + `)"\}\n?$`).FindStringSubmatch(answer)
	if m == nil {
		t.Fatalf("the HTTP publish answered %q, want {\"id\":\"<seq>-<epoch>\"}", answer)
	}
	waitText(ctx, t, out, "data: hello over HTTP\n")
	got := out.String()
	for _, want := range []string{"event: greeting\ndata: hello\n", "data: {\"n\": 1}\n", "id: " + m[1] + "\nevent: greeting\ndata: hello over HTTP\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("the listener did not get %q; got:\n%s", want, got)
		}
	}
	shown := blockWith(t, fencedBlocks(qs, ""), "event: greeting")
	pattern := regexp.QuoteMeta(sampleID.ReplaceAllString(shown, "ID"))
	if !regexp.MustCompile(strings.ReplaceAll(pattern, "ID", sampleID.String())).MatchString(got) {
		t.Errorf("the stream holds no block like the README's:\n%s\ngot:\n%s", shown, got)
	}

	for _, line := range strings.Split(strings.TrimSpace(blockWith(t, sh, "-sub alice")), "\n") {
		tok := shell(ctx, t, replace, line)
		if len(strings.Split(strings.TrimSpace(tok), ".")) != 3 {
			t.Errorf("%s printed %q, want a JWT", line, tok)
		}
	}
	t.Run("publishing samples", func(t *testing.T) { publishingSamples(ctx, t, replace) })
}

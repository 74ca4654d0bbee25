package e2e

import (
	"bufio"
	"cmp"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The node scripts of this directory, most of which drive Chromium: the
// tools they need, and running them.

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
	chromium := cmp.Or(os.Getenv("CHROMIUM_PATH"), lookPath("chromium", "chromium-browser"))
	if chromium == "" {
		missing = append(missing, "chromium (apt-get install -y chromium, or set CHROMIUM_PATH)")
	}
	node := lookPath("node")
	if node == "" {
		missing = append(missing, "node (Node.js 20 or later)")
	}
	for _, pkg := range []string{"playwright-core", "jose", "nats", "eventsource"} {
		if !fileExists(filepath.Join("node_modules", pkg, "package.json")) {
			missing = append(missing, "e2e/node_modules/"+pkg+" (cd e2e && npm ci)")
		}
	}
	if len(missing) > 0 {
		lack(t, "browser test needs: "+strings.Join(missing, "; ")+"; e2e/install.sh installs them")
	}
	if testing.Short() && !onCI() {
		t.Skip("browser test skipped in -short mode")
	}

	bin := buildCommands(t)
	return tools{chromium: chromium, node: node, bin: bin}
}

// onCI says whether the tests run on CI, which installs every tool they
// need (e2e/install.sh) and must never pass by skipping.
func onCI() bool { return os.Getenv("CI") == "true" }

// lack skips the test for want of a tool, or fails it on CI.
func lack(t *testing.T, msg string) {
	t.Helper()
	if onCI() {
		t.Fatal(msg + " (CI=true: failing instead of skipping)")
	}
	t.Skip(msg)
}

// lookPath is the first of names that is on PATH, or "" when none is.
func lookPath(names ...string) string {
	for _, name := range names {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// runScript runs a node script of this directory that drives Chromium; it
// passes when it prints PASS and exits 0.
func runScript(t *testing.T, tl tools, script string, env []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), browserTimeout)
	defer cancel()
	cmd := nodeCommand(ctx, tl, script, env...)
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

// nodeCommand is a node script of this directory with env added to the
// test's environment. When ctx ends, node is asked to stop: Playwright
// then closes the browser it launched. It is killed only if that does not
// work.
func nodeCommand(ctx context.Context, tl tools, script string, env ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, tl.node, script)
	cmd.Env = append(append(os.Environ(), "NO_COLOR=1", "FORCE_COLOR=0"), env...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

// script is a node script of this directory that the test talks to:
// lines on its stdout, one line on its stdin.
type script struct {
	name  string
	cmd   *exec.Cmd
	in    io.WriteCloser
	lines chan string
}

// startScript starts a node script that the test talks to with send and
// await.
func startScript(t *testing.T, tl tools, name string, env ...string) *script {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), browserTimeout)
	s := &script{name: name, lines: make(chan string, 64), cmd: nodeCommand(ctx, tl, name, env...)}
	s.cmd.Stderr = tWriter{t, name}
	out, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if s.in, err = s.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(s.lines)
		sc := bufio.NewScanner(out)
		sc.Buffer(nil, 4<<20)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		_ = s.in.Close()
		if err := s.cmd.Wait(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		cancel()
	})
	return s
}

// await logs the script's lines until one starts with prefix, and returns
// the rest of it.
func (s *script) await(t *testing.T, prefix string) string {
	t.Helper()
	timeout := time.After(browserTimeout)
	for {
		select {
		case line, ok := <-s.lines:
			if !ok {
				t.Fatalf("%s ended before printing %q", s.name, prefix)
			}
			if rest, found := strings.CutPrefix(line, prefix); found {
				return rest
			}
			t.Logf("%s: %s", s.name, line)
		case <-timeout:
			t.Fatalf("%s printed no %q within %v", s.name, prefix, browserTimeout)
		}
	}
}

func (s *script) send(t *testing.T, line string) {
	t.Helper()
	if _, err := io.WriteString(s.in, line+"\n"); err != nil {
		t.Fatalf("%s: %v", s.name, err)
	}
}

// tWriter logs what is written to it, a line at a time.
type tWriter struct {
	t    *testing.T
	name string
}

func (w tWriter) Write(p []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		w.t.Logf("%s: %s", w.name, line)
	}
	return len(p), nil
}

package e2e

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestShutdownEndsOpenStreams: Caddy's graceful shutdown waits for every
// open request, for ever by default. The gateway must end its streams
// itself, telling clients to come back, or the process would never exit.
func TestShutdownEndsOpenStreams(t *testing.T) {
	bin := t.TempDir()
	build := exec.Command(goCommand(), "build", "-o", bin+string(filepath.Separator), "../cmd/caddy")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", build, err, out)
	}
	ports := freePorts(t, 2)
	dir := t.TempDir()
	caddyfile := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(caddyfile, []byte(fmt.Sprintf(`{
	admin off
	persist_config off
	storage file_system %s
	ssegate {
		embedded {
			listen 127.0.0.1:%d
			store_dir %s
		}
	}
}

:%d {
	ssegate /events {
		public demo
	}
}
`, filepath.Join(dir, "caddy"), ports[1], filepath.Join(dir, "nats"), ports[0])), 0o600); err != nil {
		t.Fatal(err)
	}
	log := new(lockedBuffer)
	cmd := exec.Command(filepath.Join(bin, "caddy"), "run", "--config", caddyfile, "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(), "HOME="+filepath.Join(dir, "home"), "XDG_CONFIG_HOME="+filepath.Join(dir, "home"), "XDG_DATA_HOME="+filepath.Join(dir, "home"))
	cmd.Stdout, cmd.Stderr = log, log
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		select {
		case <-done:
		default:
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("caddy log:\n%s", log.String())
		}
	})

	url := fmt.Sprintf("http://127.0.0.1:%d/events?channel=demo", ports[0])
	var resp *http.Response
	deadline := time.Now().Add(30 * time.Second)
	for {
		var err error
		resp, err = http.Get(url)
		if err == nil && resp.StatusCode == http.StatusOK {
			break
		}
		if err == nil {
			resp.Body.Close()
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateway not ready: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	defer resp.Body.Close()
	lines := make(chan string, 64)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	if first := <-lines; first != ": ssegate" {
		t.Fatalf("first line %q", first)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var got []string
	timeout := time.After(10 * time.Second)
	for open := true; open; {
		select {
		case l, ok := <-lines:
			open = ok
			got = append(got, l)
		case <-timeout:
			t.Fatalf("the stream outlived SIGTERM by 10s; it got %q", got)
		}
	}
	text := strings.Join(got, "\n")
	if !strings.Contains(text, ": end: shutdown") || !strings.Contains(text, "retry: ") {
		t.Fatalf("the stream ended without a shutdown note and retry hint: %q", got)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("caddy did not exit within 10s of SIGTERM with a stream open")
	}
}

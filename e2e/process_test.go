package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ssegate/ssegate/internal/child"
	"github.com/ssegate/ssegate/internal/testkit"
)

// commands builds cmd/caddy, cmd/publish and cmd/token once for all the
// tests in the package, into a directory removed when they are done.
var commands struct {
	once sync.Once
	dir  string
	err  error

	natsOnce sync.Once // nats-server, for natsServerBin
	natsErr  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if commands.dir != "" {
		os.RemoveAll(commands.dir)
	}
	os.Exit(code)
}

// buildCommands returns the directory holding the caddy, publish and
// token binaries. Under -race the gateway is built with the race detector too,
// and a race in it fails the test that ran it.
func buildCommands(t *testing.T) string {
	t.Helper()
	commands.once.Do(func() {
		commands.dir, commands.err = os.MkdirTemp("", "ssegate-e2e-bin")
		if commands.err != nil {
			return
		}
		args := []string{"build"}
		if raceEnabled {
			args = append(args, "-race")
		}
		args = append(args, "-o", commands.dir+string(filepath.Separator), "../cmd/caddy", "../cmd/publish", "../cmd/token")
		build := exec.Command(goCommand(), args...)
		start := time.Now()
		if out, err := build.CombinedOutput(); err != nil {
			commands.err = fmt.Errorf("%s: %v\n%s", build, err, out)
			return
		}
		t.Logf("built cmd/caddy, cmd/publish and cmd/token (race: %v) in %v", raceEnabled, time.Since(start).Round(time.Millisecond))
	})
	if commands.err != nil {
		t.Fatal(commands.err)
	}
	return commands.dir
}

// natsServerBin builds nats-server (the version go.mod pins) next to the
// other commands, once, without the race detector: the gateway is what is
// under test, and a race-built server would change the cluster's timing.
func natsServerBin(t *testing.T) string {
	t.Helper()
	dir := buildCommands(t)
	commands.natsOnce.Do(func() {
		build := exec.Command(goCommand(), "build", "-o", filepath.Join(dir, "nats-server"), "github.com/nats-io/nats-server/v2")
		if out, err := build.CombinedOutput(); err != nil {
			commands.natsErr = fmt.Errorf("%s: %v\n%s", build, err, out)
		}
	})
	if commands.natsErr != nil {
		t.Fatal(commands.natsErr)
	}
	return filepath.Join(dir, "nats-server")
}

// goCommand is the go command of the toolchain running the test, falling
// back to the one on PATH.
func goCommand() string {
	if p := filepath.Join(runtime.GOROOT(), "bin", "go"); fileExists(p) {
		return p
	}
	return "go"
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// caddyProcess is the built caddy running a Caddyfile, with all its state
// in a temporary directory.
type caddyProcess struct {
	name string
	*child.Process
	log *lockedBuffer
}

// runCaddy runs bin/caddy with caddyfile. At the end of the test it stops
// it with SIGTERM, as a service manager would; one that does not stop in
// 10s gets SIGABRT, which makes the Go runtime print every goroutine.
func runCaddy(t *testing.T, bin, name, dir, caddyfile string) *caddyProcess {
	t.Helper()
	path := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(path, []byte(caddyfile), 0o600); err != nil {
		t.Fatal(err)
	}
	p := &caddyProcess{name: name, log: new(lockedBuffer)}
	cmd := exec.Command(filepath.Join(bin, "caddy"), "run", "--config", path, "--adapter", "caddyfile")
	// Caddy's config and data directories come from these.
	home := filepath.Join(dir, "home")
	cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"),
		"XDG_DATA_HOME="+filepath.Join(home, ".local", "share"), "GOTRACEBACK=all")
	cmd.Stdout, cmd.Stderr = p.log, p.log
	cmd.WaitDelay = 5 * time.Second
	var err error
	if p.Process, err = child.Start(cmd); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !p.Signal(syscall.SIGTERM, 10*time.Second) {
			t.Errorf("%s did not stop within 10s of SIGTERM; sending SIGABRT for a goroutine dump", name)
			if !p.Signal(syscall.SIGABRT, 5*time.Second) {
				p.Kill()
			}
			t.Logf("%s goroutines at the hang:\n%s", name, goroutineDump(p.log.String()))
		}
		log := p.log.String()
		if strings.Contains(log, "WARNING: DATA RACE") || strings.Contains(log, "panic:") {
			t.Errorf("%s: data race or panic in its log", name)
		}
		if t.Failed() {
			t.Logf("%s log:\n%s", name, p.logTail())
		}
	})
	return p
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

func (p *caddyProcess) logTail() string { return logTailOf(p.log.String(), 12000) }

// waitFor polls check until it succeeds, the deadline passes or the
// process exits.
func (p *caddyProcess) waitFor(ctx context.Context, t *testing.T, what string, check func() error) {
	t.Helper()
	err := testkit.Poll(ctx, 50*time.Millisecond, func() error {
		select {
		case <-p.Done():
			t.Fatalf("%s exited while waiting for %s; log:\n%s", p.name, what, p.logTail())
		default:
		}
		return check()
	})
	if err != nil {
		t.Fatalf("waiting for %s: %v; log:\n%s", what, err, p.logTail())
	}
}

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

// freePorts returns n distinct loopback TCP ports that were free a moment
// ago.
func freePorts(t *testing.T, n int) []int { return testkit.FreePorts(t, n) }

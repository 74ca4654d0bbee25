package e2e

import (
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
	cmd  *exec.Cmd
	log  *lockedBuffer
	done chan struct{} // closed when the process has exited
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
	p := &caddyProcess{name: name, log: new(lockedBuffer), done: make(chan struct{})}
	p.cmd = exec.Command(filepath.Join(bin, "caddy"), "run", "--config", path, "--adapter", "caddyfile")
	// Caddy's config and data directories come from these.
	home := filepath.Join(dir, "home")
	p.cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"),
		"XDG_DATA_HOME="+filepath.Join(home, ".local", "share"), "GOTRACEBACK=all")
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	p.cmd.WaitDelay = 5 * time.Second
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			t.Errorf("%s did not stop within 10s of SIGTERM; sending SIGABRT for a goroutine dump", name)
			_ = p.cmd.Process.Signal(syscall.SIGABRT)
			select {
			case <-p.done:
			case <-time.After(5 * time.Second):
				_ = p.cmd.Process.Kill()
				<-p.done
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

func (p *caddyProcess) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

func (p *caddyProcess) logTail() string { return logTailOf(p.log.String(), 12000) }

package child

import (
	"bufio"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// started runs a shell script that prints "ready" once it is set up, and
// returns when it has.
func started(t *testing.T, script string) *Process {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cmd := exec.Command("sh", "-c", script)
	cmd.Stdout = w
	p, err := Start(cmd)
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Kill)
	if line, err := bufio.NewReader(r).ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("the script said %q (%v), want ready", line, err)
	}
	return p
}

func TestStopWithSIGTERM(t *testing.T) {
	p := started(t, "echo ready; exec sleep 30")
	if !p.Running() {
		t.Fatal("not running after the start")
	}
	if !p.Stop(10 * time.Second) {
		t.Error("a process that ends on SIGTERM needed SIGKILL")
	}
	if p.Running() {
		t.Error("still running after Stop")
	}
	if ws := p.Cmd.ProcessState.Sys().(syscall.WaitStatus); ws.Signal() != syscall.SIGTERM {
		t.Errorf("ended with %v, want SIGTERM", p.Cmd.ProcessState)
	}
}

// A process that ignores SIGTERM is killed once within has passed.
func TestStopWithSIGKILL(t *testing.T) {
	p := started(t, `trap "" TERM; echo ready; exec sleep 30`)
	if p.Stop(100 * time.Millisecond) {
		t.Error("a process that ignores SIGTERM ended on it")
	}
	if ws := p.Cmd.ProcessState.Sys().(syscall.WaitStatus); ws.Signal() != syscall.SIGKILL {
		t.Errorf("ended with %v, want SIGKILL", p.Cmd.ProcessState)
	}
}

func TestSignalReportsExit(t *testing.T) {
	p := started(t, `trap "" TERM; echo ready; exec sleep 30`)
	if p.Signal(syscall.SIGTERM, 100*time.Millisecond) {
		t.Error("Signal said an ignored SIGTERM ended the process")
	}
	if !p.Signal(syscall.SIGINT, 10*time.Second) {
		t.Error("Signal said SIGINT did not end the process")
	}
	select {
	case <-p.Done():
	default:
		t.Error("Done not closed after the process exited")
	}
}

func TestStartFails(t *testing.T) {
	if _, err := Start(exec.Command("/nonexistent/command")); err == nil {
		t.Error("Start of a missing command succeeded")
	}
}

func TestKillGone(t *testing.T) {
	p := started(t, `trap "" TERM; echo ready; exec sleep 30`)
	if err := p.KillGone(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	if p.Running() {
		t.Error("still running after KillGone")
	}
	// It ended by SIGKILL once; a second call finds it already gone and
	// cannot kill it.
	if err := p.KillGone(time.Second); err == nil {
		t.Error("KillGone of a process already reaped succeeded")
	}
}

func TestKillGoneOfAProcessThatExitedByItself(t *testing.T) {
	p := started(t, "echo ready; exit 0")
	<-p.Done()
	if err := p.KillGone(time.Second); err == nil {
		t.Error("KillGone of a process that exited with 0 succeeded")
	}
}

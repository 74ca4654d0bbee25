// Package child runs the child processes of the e2e tests and of the load
// tool: started, reaped in the background, and stopped the way a service
// manager stops a service, with SIGTERM and, when that is not enough in
// time, SIGKILL.
package child

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// Process is a started command that is reaped in the background.
type Process struct {
	Cmd  *exec.Cmd
	done chan struct{}
}

// Start starts cmd, and waits for it in the background.
func Start(cmd *exec.Cmd) (*Process, error) {
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Process{Cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Done is closed once the process has exited; Cmd.ProcessState then says
// how.
func (p *Process) Done() <-chan struct{} { return p.done }

// Running reports whether the process has not exited yet.
func (p *Process) Running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Signal sends sig, and reports whether the process has exited within.
func (p *Process) Signal(sig os.Signal, within time.Duration) bool {
	_ = p.Cmd.Process.Signal(sig)
	timer := time.NewTimer(within)
	defer timer.Stop()
	select {
	case <-p.done:
		return true
	case <-timer.C:
		return false
	}
}

// Kill sends SIGKILL and returns once the process has exited.
func (p *Process) Kill() {
	_ = p.Cmd.Process.Kill()
	<-p.done
}

// Stop sends SIGTERM, and SIGKILL if the process has not exited within;
// it returns once the process has exited, and reports whether SIGTERM was
// enough.
func (p *Process) Stop(within time.Duration) bool {
	if p.Signal(syscall.SIGTERM, within) {
		return true
	}
	p.Kill()
	return false
}

// KillGone sends SIGKILL and returns once the process is gone: reaped, and
// its pid answers no signal. It says so when the process has not exited
// within, or ended some other way.
func (p *Process) KillGone(within time.Duration) error {
	pid := p.Cmd.Process.Pid
	if err := p.Cmd.Process.Kill(); err != nil {
		return fmt.Errorf("killing pid %d: %w", pid, err)
	}
	timer := time.NewTimer(within)
	defer timer.Stop()
	select {
	case <-p.done:
	case <-timer.C:
		return fmt.Errorf("pid %d still runs %v after SIGKILL", pid, within)
	}
	ws, ok := p.Cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		return fmt.Errorf("pid %d ended with %v, not by SIGKILL", pid, p.Cmd.ProcessState)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("pid %d still answers signal 0 (%v)", pid, err)
	}
	return nil
}

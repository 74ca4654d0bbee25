package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ssegate/ssegate/internal/child"
	"github.com/ssegate/ssegate/internal/loopback"
)

// proc is a child process of the compare run: a nats-server, raw or
// ssegate. Children die with the load tool (Pdeathsig), so an interrupted
// run leaves nothing behind.
type proc struct {
	name string
	*child.Process
	log *os.File
}

// build compiles the three programs a compare run starts, into dir.
func build(repo, dir string, skip bool, out io.Writer) error {
	targets := [][2]string{
		{"caddy", "./cmd/caddy"},
		{"raw", "./bench/raw"},
		{"nats-server", "github.com/nats-io/nats-server/v2"},
	}
	for _, t := range targets {
		bin := filepath.Join(dir, t[0])
		if _, err := os.Stat(bin); err == nil && skip {
			continue
		}
		fmt.Fprintf(out, "# go build -o %s %s\n", bin, t[1])
		cmd := exec.Command("go", "build", "-o", bin, t[1])
		cmd.Dir = repo
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %v\n%s", t[1], err, b)
		}
	}
	return nil
}

func start(name, dir string, env []string, bin string, args ...string) (*proc, error) {
	logf, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	c, err := child.Start(cmd)
	if err != nil {
		logf.Close()
		return nil, err
	}
	return &proc{name: name, Process: c, log: logf}, nil
}

// stop asks the process to end, and kills it if it has not within 10 s.
func (p *proc) stop() {
	if p == nil {
		return
	}
	p.Stop(10 * time.Second)
	p.log.Close()
}

func (p *proc) pid() int { return p.Cmd.Process.Pid }

func freePorts(n int) ([]int, error) { return loopback.FreePorts(n) }

// waitHTTP polls url until it answers 200, for at most 60 s.
func waitHTTP(p *proc, url string) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.Done():
			return fmt.Errorf("%s exited; see %s", p.name, p.log.Name())
		default:
		}
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s did not answer %s within 60 s; see %s", p.name, url, p.log.Name())
}

// vmRSS is a process's resident set size in bytes, from /proc.
func vmRSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmRSS line")
}

// cpuTime is the user plus system CPU a process has used so far.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name, field 2, may hold spaces; the rest follow ')'.
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	// Linux reports clock ticks of 1/100 s (USER_HZ) on every common arch.
	return time.Duration(ut+st) * 10 * time.Millisecond, nil
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// goroutines reads the total from a pprof endpoint.
func goroutines(pprofBase string) (int, error) {
	resp, err := httpGet(pprofBase+"/goroutine?debug=1", 10*time.Second)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil {
		return 0, err
	}
	_, n, ok := strings.Cut(strings.TrimSpace(line), "total ")
	if !ok {
		return 0, fmt.Errorf("unexpected goroutine profile line %q", line)
	}
	return strconv.Atoi(n)
}

// subscriptions is the nats-server's total, from its monitoring port.
func subscriptions(monitor string) (int, error) {
	var v struct {
		N int `json:"num_subscriptions"`
	}
	err := monitorJSON(monitor, "/subsz", &v)
	return v.N, err
}

// apiRequests is the JetStream API requests the nats-server has
// answered, from its monitoring port.
func apiRequests(monitor string) (int64, error) {
	var v struct {
		API struct {
			Total int64 `json:"total"`
		} `json:"api"`
	}
	err := monitorJSON(monitor, "/jsz", &v)
	return v.API.Total, err
}

// monitorJSON reads one of the nats-server's monitoring endpoints into v.
func monitorJSON(monitor, path string, v any) error {
	resp, err := httpGet(monitor+path, 10*time.Second)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}

// heapProfile saves the server's heap profile to file.
func heapProfile(pprofBase, file string) error {
	resp, err := httpGet(pprofBase+"/heap?gc=1", 30*time.Second)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, resp.Body)
	return errors.Join(err, f.Close())
}

// cpuProfile saves the server's CPU profile over the next d to file.
func cpuProfile(pprofBase string, d time.Duration, file string) error {
	secs := max(int(d.Seconds()), 1)
	resp, err := httpGet(fmt.Sprintf("%s/profile?seconds=%d", pprofBase, secs), d+30*time.Second)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("profile: %s", resp.Status)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, resp.Body)
	return errors.Join(err, f.Close())
}

func httpGet(url string, timeout time.Duration) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		cancel()
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		return nil, err
	}
	body := resp.Body
	resp.Body = struct {
		io.Reader
		io.Closer
	}{body, closerFunc(func() error { defer cancel(); return body.Close() })}
	return resp, nil
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

// memStats is a Go process's live heap and stack use, read from the
// MemStats that its /debug/pprof/heap?debug=1 page ends with, right after
// a GC that the page asks for (gc=1).
type memStats struct {
	heapAlloc, stackInuse int64
	goroutines            int
}

func readMemStats(pprofBase string) (memStats, error) {
	var m memStats
	resp, err := httpGet(pprofBase+"/heap?debug=1&gc=1", 30*time.Second)
	if err != nil {
		return m, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "# HeapAlloc = "); ok {
			m.heapAlloc, _ = strconv.ParseInt(v, 10, 64)
		}
		if v, ok := strings.CutPrefix(line, "# Stack = "); ok {
			v, _, _ = strings.Cut(v, " ")
			m.stackInuse, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	if err := sc.Err(); err != nil {
		return m, err
	}
	m.goroutines, err = goroutines(pprofBase)
	return m, err
}

package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ssegate/ssegate/internal/natstest"
)

// killFreshCaddyfile is a gateway on an external NATS with a page on its
// origin for Chromium's EventSources. Its retry hint is Caddyfile.example's
// 2 s, so clients come back after the first events are published.
const killFreshCaddyfile = `{
	admin off
	persist_config off
	storage file_system %[1]s
	auto_https off
	ssegate {
		url %[2]s
		reconnect_wait 100ms
	}
}

http://127.0.0.1:%[3]d {
	bind 127.0.0.1
	ssegate /events* {
		public room.*
		heartbeat 1s
		retry 2s
	}
	header /page Content-Type "text/html; charset=utf-8"
	respond /page "<!doctype html><title>ssegate</title>" 200
}
`

// TestFaultGatewayKilledBeforeFirstEvent: EventSources in Chromium and
// from the npm eventsource package open on a fresh channel; the gateway
// is SIGKILLed before any event, so their streams break without an end
// frame, and it starts again on its port. Then 60 events are published
// (or a publisher at 100/s runs from the kill until 100 events after the
// restart). Every client must get every event exactly once, in order:
// the only position such a client can come back with is the one the
// stream said when it opened.
func TestFaultGatewayKilledBeforeFirstEvent(t *testing.T) {
	tl := findTools(t)
	for _, client := range []string{"chromium", "eventsource"} {
		for _, steady := range []bool{false, true} {
			name := client + "/60 after restart"
			if steady {
				name = client + "/100 per s across restart"
			}
			t.Run(name, func(t *testing.T) { killFresh(t, tl, client, steady) })
		}
	}
}

func killFresh(t *testing.T, tl tools, client string, steady bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ns := natstest.Server(t)
	port, dir := freePorts(t, 1)[0], t.TempDir()
	gw := &gatewaySlot{name: "A", bin: tl.bin, port: port, dir: dir,
		conf: fmt.Sprintf(killFreshCaddyfile, filepath.Join(dir, "caddy"), ns.ClientURL(), port)}
	gw.launch(t, ctx)
	pub, _ := faultPublisher(t, ns.ClientURL())
	channel := "room.fresh"
	pub.Channels, pub.Interval = []string{channel}, 10*time.Millisecond

	sc := startScript(t, tl, "killfresh.mjs", "SSEGATE_ORIGIN="+gw.url(), "SSEGATE_CHANNEL="+channel,
		"SSEGATE_CLIENT="+client, "CHROMIUM_PATH="+tl.chromium)
	sc.await(t, "OPEN")
	pid := gw.kill(t)
	killed := time.Now()
	t.Logf("gateway SIGKILLed (pid %d, gone) with %s clients open on %s and no event published", pid, client, channel)
	var stop func() error
	if steady {
		stop = runFaultPublisher(pub)
		waitFaultAcked(t, ctx, pub, 20, 10*time.Second)
	}
	gw.launch(t, ctx)
	t.Logf("gateway serves again; %d events acked meanwhile", pub.Count())
	if steady {
		waitFaultAcked(t, ctx, pub, pub.Count()+100, 20*time.Second)
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	} else {
		for range 60 {
			if _, err := pub.Publish(ctx, channel); err != nil {
				t.Fatal(err)
			}
		}
	}
	var want []uint64
	for _, ev := range pub.Acked() {
		want = append(want, ev.Seq)
	}
	slices.Sort(want)
	sc.send(t, strconv.Itoa(len(want)))
	var got [][]string
	if err := json.Unmarshal([]byte(sc.await(t, "RESULT ")), &got); err != nil {
		t.Fatal(err)
	}
	for i, ids := range got {
		if problem := exactly(want, ids); problem != "" {
			t.Errorf("%s client %d: %s", client, i, problem)
		}
	}
	t.Logf("%d %s clients, %d events (seq %d to %d), checked %v after the kill", len(got), client, len(want), want[0], want[len(want)-1], time.Since(killed).Round(time.Millisecond))
}

// exactly says how ids (seq-epoch, in arrival order) differ from want.
func exactly(want []uint64, ids []string) string {
	var got []uint64
	for _, id := range ids {
		seq, err := strconv.ParseUint(strings.SplitN(id, "-", 2)[0], 10, 64)
		if err != nil {
			return fmt.Sprintf("event id %q", id)
		}
		got = append(got, seq)
	}
	// A publish still waiting for its ack when the publisher stopped may
	// have been stored: the stream has it, and so may every client, after
	// every acked one and in order.
	for len(got) > len(want) && len(want) > 0 && got[len(got)-1] > want[len(want)-1] &&
		(len(got) < 2 || got[len(got)-2] < got[len(got)-1]) && slices.Equal(got[:len(want)], want) {
		got = got[:len(got)-1]
	}
	if slices.Equal(got, want) {
		return ""
	}
	var missing []uint64
	for _, seq := range want {
		if !slices.Contains(got, seq) {
			missing = append(missing, seq)
		}
	}
	return fmt.Sprintf("got %d of %d events; missing %d: %s; got %s", len(got), len(want), len(missing), seqRanges(missing), seqRanges(got))
}

// script is a node script of this directory that the test talks to:
// lines on its stdout, one line on its stdin.
type script struct {
	name  string
	cmd   *exec.Cmd
	in    io.WriteCloser
	lines chan string
}

func startScript(t *testing.T, tl tools, name string, env ...string) *script {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), browserTimeout)
	s := &script{name: name, lines: make(chan string, 64)}
	s.cmd = exec.CommandContext(ctx, tl.node, name)
	s.cmd.Env = append(append(os.Environ(), "NO_COLOR=1"), env...)
	s.cmd.Cancel = func() error { return s.cmd.Process.Signal(syscall.SIGTERM) }
	s.cmd.WaitDelay = 10 * time.Second
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

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ssegate/ssegate/internal/natstest"
)

// nginxReadTimeout is the proxy_read_timeout of the test's nginx: the
// longest silence it allows from the gateway. The stream route's heartbeat
// is half of it.
const nginxReadTimeout = 2 * time.Second

// nginxGatewaySite: one gateway, two stream routes. /events* sends a
// heartbeat every second, /quiet* every hour, so that only the first keeps
// a stream alive through nginx's read timeout.
const nginxGatewaySite = `
http://127.0.0.1:%d {
	bind 127.0.0.1
	ssegate /events* {
		public >
		heartbeat 1s
		health /events/health
	}
	ssegate /quiet* {
		public >
		heartbeat 1h
	}
}
`

// nginxConf runs nginx in the foreground as one process, with its defaults
// for proxying: proxy_buffering on, HTTP/1.0 to the gateway. / passes
// everything; /ignored/ also ignores the gateway's X-Accel-Buffering, as a
// config that overrides it would.
const nginxConf = `daemon off;
master_process off;
pid nginx.pid;
error_log stderr notice;
events { worker_connections 64; }
http {
	access_log off;
	client_body_temp_path tmp/body;
	proxy_temp_path tmp/proxy;
	fastcgi_temp_path tmp/fastcgi;
	uwsgi_temp_path tmp/uwsgi;
	scgi_temp_path tmp/scgi;
	proxy_read_timeout %[3]ds;
	server {
		listen 127.0.0.1:%[1]d;
		location / {
			proxy_pass http://127.0.0.1:%[2]d;
		}
		location /ignored/ {
			proxy_pass http://127.0.0.1:%[2]d/;
			proxy_ignore_headers X-Accel-Buffering;
		}
	}
}
`

// findNginx finds Debian's nginx: missing, the test skips, or fails on
// CI, where e2e/install.sh installs it.
func findNginx(t *testing.T) string {
	t.Helper()
	path := lookPath("nginx", "/usr/sbin/nginx")
	if path == "" {
		lack(t, "nginx is not installed (apt-get install -y nginx-light; e2e/install.sh installs it)")
	}
	return path
}

// startNginx runs nginx in front of the gateway at upstream and returns
// its base URL once it proxies the gateway's health endpoint, and its log.
func startNginx(t *testing.T, bin string, upstream int) (string, *lockedBuffer) {
	t.Helper()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "tmp"), 0o700); err != nil {
		t.Fatal(err)
	}
	port := freePorts(t, 1)[0]
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, nginxConf, port, upstream, int(nginxReadTimeout.Seconds())), 0o600); err != nil {
		t.Fatal(err)
	}
	// Registered first, so that it runs after nginx has stopped.
	var log *lockedBuffer
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("nginx log:\n%s", log.String())
		}
	})
	log = background(t, exec.Command(bin, "-p", dir, "-c", conf, "-e", "stderr"))
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := pollUntil(ctx, 20*time.Second, func() bool { return getStatus(ctx, http.DefaultClient, base+"/events/health", 200) == nil }); err != nil {
		t.Fatalf("nginx did not proxy the health endpoint: %v\n%s", err, log.String())
	}
	return base, log
}

// sseLines opens an event stream through nginx and returns its lines. A
// proxy that holds the headers back holds the stream: its client fails at
// once rather than at the test's deadline.
func sseLines(ctx context.Context, t *testing.T, url string) <-chan string {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{ResponseHeaderTimeout: 5 * time.Second}}
	t.Cleanup(client.CloseIdleConnections)
	return openEventLines(ctx, t, client, url)
}

// nginxFixture is a gateway with nginx in front, and a publisher.
type nginxFixture struct {
	base string // nginx
	log  *lockedBuffer
	js   jetstream.JetStream
}

func (f *nginxFixture) publish(ctx context.Context, t *testing.T, channel, data string) uint64 {
	t.Helper()
	ack, err := f.js.Publish(ctx, "events."+channel, []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	return ack.Sequence
}

func startBehindNginx(ctx context.Context, t *testing.T) *nginxFixture {
	t.Helper()
	ngx := findNginx(t)
	bin := buildCommands(t)
	ports := freePorts(t, 2)
	dir := t.TempDir()
	runCaddy(t, bin, "gateway", dir, embeddedConf{natsPort: ports[0]}.options(dir)+fmt.Sprintf(nginxGatewaySite, ports[1]))
	direct := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	if err := pollUntil(ctx, startTimeout, func() bool { return getStatus(ctx, http.DefaultClient, direct+"/events/health", 200) == nil }); err != nil {
		t.Fatalf("the gateway did not become ready: %v", err)
	}
	f := &nginxFixture{}
	f.base, f.log = startNginx(t, ngx, ports[1])
	_, f.js = natstest.ConnectURL(t, fmt.Sprintf("nats://127.0.0.1:%d", ports[0]))
	return f
}

// TestBehindNginx shows docs/behind-proxies.md's nginx section with
// Debian's nginx and its default buffering in front of a gateway:
//   - events flow at once, because the gateway sends X-Accel-Buffering: no;
//     with nginx told to ignore that header, the same event is held back;
//   - a stream with a 1-s heartbeat lives on through nginx's 2-s
//     proxy_read_timeout many times over, and still delivers; a stream with
//     an hour's heartbeat is cut by nginx after 2 s.
//
// Streams open with a position (last_event_id), so an event published
// after the opening comment is theirs however soon it comes.
func TestBehindNginx(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	f := startBehindNginx(ctx, t)
	t.Run("events flow through default buffering", func(t *testing.T) { nginxFlows(ctx, t, f) })
	t.Run("without X-Accel-Buffering nginx holds events back", func(t *testing.T) { nginxHolds(ctx, t, f) })
	t.Run("a stream quieter than proxy_read_timeout is cut", func(t *testing.T) { nginxCuts(ctx, t, f) })
}

// nginxFlows: an event at once, then heartbeats past three read timeouts,
// then an event again on the same stream.
func nginxFlows(ctx context.Context, t *testing.T, f *nginxFixture) {
	from := f.publish(ctx, t, "flow", "before")
	opened := time.Now()
	lines := sseLines(ctx, t, fmt.Sprintf("%s/events?channel=flow&last_event_id=%d", f.base, from))
	if seen, ok := waitLine(lines, 5*time.Second, equals(": ssegate")); !ok {
		t.Fatalf("no opening comment through nginx; got %q", seen)
	}
	f.publish(ctx, t, "flow", "first")
	if seen, ok := waitLine(lines, 5*time.Second, equals("data: first")); !ok {
		t.Fatalf("the event did not come through nginx; got %q", seen)
	}
	heartbeats := 0
	for time.Since(opened) < 3*nginxReadTimeout {
		if seen, ok := waitLine(lines, nginxReadTimeout+time.Second, equals(":")); !ok {
			t.Fatalf("after %v and %d heartbeats the stream ended or went quiet; got %q\nnginx: %s",
				time.Since(opened).Round(time.Millisecond), heartbeats, seen, f.log.String())
		}
		heartbeats++
	}
	f.publish(ctx, t, "flow", "second")
	if seen, ok := waitLine(lines, 5*time.Second, equals("data: second")); !ok {
		t.Fatalf("after %v, past nginx's %v read timeout, the event did not come; got %q", time.Since(opened), nginxReadTimeout, seen)
	}
	t.Logf("open %v through a %v proxy_read_timeout, %d heartbeats", time.Since(opened).Round(time.Millisecond), nginxReadTimeout, heartbeats)
}

// nginxHolds: the replay writes the event at once, and then the stream is
// quiet (heartbeat 1h), so only nginx's buffer can keep the event from the
// client, until nginx's read timeout ends the response.
func nginxHolds(ctx context.Context, t *testing.T, f *nginxFixture) {
	at := f.publish(ctx, t, "held", "before")
	f.publish(ctx, t, "held", "held back")
	opened := time.Now()
	lines := sseLines(ctx, t, fmt.Sprintf("%s/ignored/quiet?channel=held&last_event_id=%d", f.base, at))
	seen, ok := waitLine(lines, 4*nginxReadTimeout, equals("data: held back"))
	took := time.Since(opened)
	switch {
	case ok && took < nginxReadTimeout*3/4:
		t.Fatalf("nginx passed the event after %v with X-Accel-Buffering ignored: the flow test shows nothing", took)
	case ok:
		t.Logf("with X-Accel-Buffering ignored, the event came after %v, when nginx's read timeout ended the response", took.Round(time.Millisecond))
	default:
		// nginx answered 200 (sseLines checks), so the gateway opened the
		// stream; at the timeout nginx dropped what it held.
		t.Logf("with X-Accel-Buffering ignored, the event never came (%q)", seen)
	}
}

// nginxCuts: with an hour's heartbeat nginx ends the stream at its read
// timeout, and says so.
func nginxCuts(ctx context.Context, t *testing.T, f *nginxFixture) {
	opened := time.Now()
	lines := sseLines(ctx, t, f.base+"/quiet?channel=quiet")
	if seen, ok := waitLine(lines, 5*time.Second, equals(": ssegate")); !ok {
		t.Fatalf("no opening comment; got %q", seen)
	}
	if !waitClosed(lines, 4*nginxReadTimeout) {
		t.Fatalf("a stream with an hour's heartbeat outlived nginx's %v read timeout by %v", nginxReadTimeout, time.Since(opened))
	}
	if took := time.Since(opened); took < nginxReadTimeout*3/4 {
		t.Errorf("the stream ended after %v, before nginx's %v read timeout: something else ended it", took, nginxReadTimeout)
	}
	if err := pollUntil(ctx, 5*time.Second, func() bool { return strings.Contains(f.log.String(), "upstream timed out") }); err != nil {
		t.Errorf("nginx logged no upstream timeout:\n%s", f.log.String())
	}
}

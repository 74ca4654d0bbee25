package e2e

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

type clusterGateway struct {
	*caddyProcess
	url string // http://127.0.0.1:port
}

// goroutineDump cuts the runtime's SIGQUIT dump out of a log, leaving out
// the goroutines that every Caddy has and that say nothing about a hang.
func goroutineDump(log string) string {
	i := strings.Index(log, "SIGABRT: abort")
	if i < 0 {
		return "(no dump in the log)"
	}
	var keep []string
	for _, g := range strings.Split(log[i:], "\n\n") {
		if strings.Contains(g, "ssegate") || strings.Contains(g, "nats.go") || strings.Contains(g, "caddy.(*") || strings.Contains(g, "caddyhttp") {
			keep = append(keep, g)
		}
	}
	return logTailOf(strings.Join(keep, "\n\n"), 60000)
}

// notableLogLines picks the log lines about NATS and about streams that
// did not end normally.
func (g *clusterGateway) notableLogLines(limit int) string {
	var out []string
	for _, line := range strings.Split(g.log.String(), "\n") {
		if strings.Contains(line, `"logger":"ssegate`) && !strings.Contains(line, `"nats connected"`) && !strings.Contains(line, `"ssegate ready"`) && !strings.Contains(line, `"stream closed"`) ||
			strings.Contains(line, `"level":"warn"`) && strings.Contains(line, "ssegate") ||
			strings.Contains(line, `"level":"error"`) {
			out = append(out, "  "+line)
		}
	}
	if len(out) > limit {
		out = append(out[:limit], fmt.Sprintf("  … %d more", len(out)-limit))
	}
	return strings.Join(out, "\n")
}

// launchClusterGateway starts the built caddy with its own port and state
// directory; waitReady says when it serves. extra is put in the ssegate
// global option.
func launchClusterGateway(t *testing.T, bin, name string, natsURLs []string, extra string) *clusterGateway {
	t.Helper()
	port := freePorts(t, 1)[0]
	dir := t.TempDir()
	return &clusterGateway{
		caddyProcess: runCaddy(t, bin, "gateway "+name, dir, clusterCaddyfile(dir, natsURLs, port, extra)),
		url:          fmt.Sprintf("http://127.0.0.1:%d", port),
	}
}

// waitReady waits until the app has connected and set up the stream, and
// the event route answers 200 with an event stream.
func (g *clusterGateway) waitReady(ctx context.Context) error {
	var last error
	err := pollUntil(ctx, startTimeout, func() bool {
		if !g.Running() {
			last = errors.New("the process exited")
			return true
		}
		if !strings.Contains(g.log.String(), "ssegate ready") {
			last = errors.New(`no "ssegate ready" in the log yet`)
			return false
		}
		last = probeEvents(ctx, g.url+"/events?channel=room.a")
		return last == nil
	})
	if err != nil {
		return fmt.Errorf("%w (last error: %v)", err, last)
	}
	return last
}

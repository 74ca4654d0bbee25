package e2e

import (
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ssegate/ssegate/internal/natstest"
)

// TestPresenceEventsInBrowser: in-stream join and leave in Chromium's
// EventSource, live and on resume (presence.mjs).
func TestPresenceEventsInBrowser(t *testing.T) {
	runPresenceScript(t, "presence.mjs")
}

// TestConsolePresenceInBrowser: with a control key, the console shows a
// channel's presence and disconnects a user (console_presence.mjs).
func TestConsolePresenceInBrowser(t *testing.T) {
	runPresenceScript(t, "console_presence.mjs", "SSEGATE_CONTROL_KEY="+presenceKey)
}

// runPresenceScript runs a presence gateway on a fresh NATS server and a
// script against it as alice, who may read demo; env is added to what
// the script is given.
func runPresenceScript(t *testing.T, script string, env ...string) {
	tl := findTools(t)
	ns := natstest.Server(t)
	g := startPresenceGateway(t, tl.bin, "gateway", ns.ClientURL(), 0)
	runScript(t, tl, script, append([]string{
		"SSEGATE_URL=" + g.url,
		"SSEGATE_TOKEN=" + presenceToken(t, jwt.MapClaims{"sub": "alice", "channels": []string{"demo"}}),
		"CHROMIUM_PATH=" + tl.chromium,
	}, env...))
}

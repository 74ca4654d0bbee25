package e2e

import (
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ssegate/ssegate/internal/natstest"
)

// TestPresenceEventsInBrowser: in-stream join and leave in Chromium's
// EventSource, live and on resume (presence.mjs).
func TestPresenceEventsInBrowser(t *testing.T) {
	tl := findTools(t)
	ns := natstest.Server(t)
	g := startPresenceGateway(t, tl.bin, "gateway", ns.ClientURL(), 0)
	runScript(t, tl, "presence.mjs", []string{
		"SSEGATE_URL=" + g.url,
		"SSEGATE_TOKEN=" + presenceToken(t, jwt.MapClaims{"sub": "alice", "channels": []string{"demo"}}),
		"CHROMIUM_PATH=" + tl.chromium,
	})
}

// TestConsolePresenceInBrowser: with a control key, the console shows a
// channel's presence and disconnects a user (console_presence.mjs).
func TestConsolePresenceInBrowser(t *testing.T) {
	tl := findTools(t)
	ns := natstest.Server(t)
	g := startPresenceGateway(t, tl.bin, "gateway", ns.ClientURL(), 0)
	runScript(t, tl, "console_presence.mjs", []string{
		"SSEGATE_URL=" + g.url,
		"SSEGATE_TOKEN=" + presenceToken(t, jwt.MapClaims{"sub": "alice", "channels": []string{"demo"}}),
		"SSEGATE_CONTROL_KEY=" + presenceKey,
		"CHROMIUM_PATH=" + tl.chromium,
	})
}

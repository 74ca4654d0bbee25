package ssegate

import (
	"testing"

	"github.com/ssegate/ssegate/internal/testkit"
)

// Keys long enough for their use.
const (
	testPublishKey = "publish-key-for-tests-0123456789abcdef"
	testSecret     = "test-secret-for-ssegate-0123456789abcdef"
)

// Caddyfile mistakes in the publish, health and console subdirectives.
func TestFeaturesCaddyfileErrors(t *testing.T) {
	handler := testkit.HandlerCaddyfile
	testkit.CheckAdaptErrors(t, []testkit.AdaptError{
		{Name: "publish without path", Caddyfile: handler("publish"), Want: "after 'publish'", Line: 3},
		{Name: "publish with two paths", Caddyfile: handler("publish /a /b"), Want: "after '/b'", Line: 3},
		{Name: "publish twice", Caddyfile: handler("publish /a", "publish /b"), Want: "publish is given more than once", Line: 4},
		{Name: "publish unknown option", Caddyfile: handler("publish /p {", "\tsecret x", "}"), Want: `unknown publish option "secret"`, Line: 4},
		{Name: "publish key without secret", Caddyfile: handler("publish /p {", "\tkey", "}"), Want: "after 'key'", Line: 4},
		{Name: "publish max_body not a size", Caddyfile: handler("publish /p {", "\tmax_body lots", "}"), Want: `max_body "lots"`, Line: 4},
		{Name: "publish max_body zero", Caddyfile: handler("publish /p {", "\tmax_body 0", "}"), Want: `max_body "0"`, Line: 4},
		{Name: "publish max_body huge", Caddyfile: handler("publish /p {", "\tmax_body 1GiB", "}"), Want: `max_body "1GiB"`, Line: 4},
		{Name: "health without path", Caddyfile: handler("health"), Want: "after 'health'", Line: 3},
		{Name: "console with two paths", Caddyfile: handler("console /a /b"), Want: "after '/b'", Line: 3},
	})
}

// TestFeaturesValidate loads configs the way `caddy validate` does: every
// module provisioned, nothing started, no NATS needed.
func TestFeaturesValidate(t *testing.T) {
	key := map[string]any{"secret": testPublishKey}
	authKeys := map[string]any{"hmac_keys": []any{map[string]any{"secret": testSecret}}, "ticket_path": "/events/ticket"}
	tests := []struct {
		name    string
		handler map[string]any
		env     map[string]string
		want    string // "" means valid
	}{
		{name: "all three", handler: map[string]any{"publish": map[string]any{"path": "/events/publish", "keys": []any{key}}, "health_path": "/events/health", "console_path": "/events/console", "auth": authKeys}},
		{name: "publish by JWT only", handler: map[string]any{"publish": map[string]any{"path": "/p"}, "auth": authKeys}},
		{name: "publish key from env", handler: map[string]any{"publish": map[string]any{"path": "/p", "keys": []any{map[string]any{"secret": "{env.SSEGATE_TEST_PUBLISH_KEY}"}}}}, env: map[string]string{"SSEGATE_TEST_PUBLISH_KEY": testPublishKey}},

		{name: "publish without any key", handler: map[string]any{"publish": map[string]any{"path": "/p"}}, want: "publish: no key, and no auth keys"},
		{name: "publish key unset env", handler: map[string]any{"publish": map[string]any{"path": "/p", "keys": []any{map[string]any{"secret": "{env.SSEGATE_TEST_UNSET_KEY}"}}}}, want: "publish key 0 is empty"},
		{name: "publish key too short", handler: map[string]any{"publish": map[string]any{"path": "/p", "keys": []any{map[string]any{"secret": "short"}}}}, want: "at least 32 bytes"},
		{name: "publish key bad pattern", handler: map[string]any{"publish": map[string]any{"path": "/p", "keys": []any{map[string]any{"secret": testPublishKey, "channels": []string{"a.>.b"}}}}}, want: `channel pattern "a.>.b"`},
		{name: "publish without path", handler: map[string]any{"publish": map[string]any{"keys": []any{key}}}, want: "publish: a path is required"},
		{name: "relative health path", handler: map[string]any{"health_path": "health"}, want: `health path "health"`},
		{name: "console path with wildcard", handler: map[string]any{"console_path": "/console/*"}, want: `console path "/console/*"`},
		{name: "console path with trailing slash", handler: map[string]any{"console_path": "/console/"}, want: `console path "/console/"`},
		{name: "health on the ticket path", handler: map[string]any{"health_path": "/events/ticket", "auth": authKeys}, want: "is also the ticket_path path"},
		{name: "console on the health path", handler: map[string]any{"health_path": "/x", "console_path": "/x"}, want: "is also the health path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			testkit.CheckError(t, testkit.ValidateHandler(t, tt.handler), tt.want)
		})
	}
}

package testkit

import (
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// Adapt runs the Caddyfile adapter the way `caddy adapt` does. The golden
// files pass no options, like Caddy's CompareAdapt; the adapter then calls
// the input "Caddyfile", which file_server hides as "./Caddyfile". The
// adapter is registered by whoever imports the module.
func Adapt(t testing.TB, src string, options map[string]any) ([]byte, []caddyconfig.Warning, error) {
	t.Helper()
	a := caddyconfig.GetAdapter("caddyfile")
	if a == nil {
		t.Fatal("caddyfile adapter not registered")
	}
	return a.Adapt([]byte(src), options)
}

// FindHandlers collects every object with "handler": name, at any depth
// (routes nest in subroutes).
func FindHandlers(v any, name string, out *[]map[string]any) {
	switch v := v.(type) {
	case map[string]any:
		if v["handler"] == name {
			*out = append(*out, v)
		}
		for _, e := range v {
			FindHandlers(e, name, out)
		}
	case []any:
		for _, e := range v {
			FindHandlers(e, name, out)
		}
	}
}

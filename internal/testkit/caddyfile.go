package testkit

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
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

// HandlerCaddyfile is a Caddyfile with one ssegate handler on /events*,
// whose block holds lines, from the Caddyfile's line 3 on.
func HandlerCaddyfile(lines ...string) string {
	return ":8080 {\n\tssegate /events* {\n\t\t" + strings.Join(lines, "\n\t\t") + "\n\t}\n}\n"
}

// AdaptError is a Caddyfile that must fail to adapt, with an error that
// contains Want and, when Line is above 0, names that line.
type AdaptError struct {
	Name      string
	Caddyfile string
	Want      string
	Line      int
}

// CheckAdaptErrors checks each case in a subtest of its name.
func CheckAdaptErrors(t *testing.T, cases []AdaptError) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			_, _, err := Adapt(t, c.Caddyfile, nil)
			if err == nil {
				t.Fatalf("adapted without error; want one containing %q\n%s", c.Want, c.Caddyfile)
			}
			if !strings.Contains(err.Error(), c.Want) {
				t.Errorf("error %q does not contain %q", err, c.Want)
			}
			if at := fmt.Sprintf("at Caddyfile:%d", c.Line); c.Line > 0 && !strings.Contains(err.Error(), at) {
				t.Errorf("error %q does not point at line %d", err, c.Line)
			}
		})
	}
}

// ValidateHandler loads a config the way `caddy validate` does (every
// module provisioned, nothing started, no NATS needed), with one ssegate
// handler: public demo, and handler's fields over that.
func ValidateHandler(t testing.TB, handler map[string]any) error {
	t.Helper()
	h := map[string]any{"handler": "ssegate", "public": []string{"demo"}}
	for k, v := range handler {
		h[k] = v
	}
	raw, err := json.Marshal(map[string]any{"apps": map[string]any{
		"http":    map[string]any{"servers": map[string]any{"s": map[string]any{"listen": []string{":0"}, "routes": []any{map[string]any{"handle": []any{h}}}}}},
		"ssegate": map[string]any{"nats": map[string]any{"urls": []string{"nats://127.0.0.1:1"}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	var c caddy.Config
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	return caddy.Validate(&c)
}

// CheckError checks err against a table test's want: no error when want
// is "", else one that contains want.
func CheckError(t testing.TB, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Fatalf("error %q; want none", err)
	case want != "" && err == nil:
		t.Fatalf("no error; want one containing %q", want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Fatalf("error %q does not contain %q", err, want)
	}
}

package devsecret

import (
	"context"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func TestWarnDevSecret(t *testing.T) {
	t.Setenv("SSEGATE_TEST_DEV_SECRET", Secret)
	t.Setenv("SSEGATE_TEST_REAL_SECRET", "a-real-secret-that-is-long-enough-for-hs256")
	dev := []string{Secret}
	tests := []struct {
		name    string
		secrets []string
		listen  []string // nil: the handler is not inside a server
		want    []string // the listeners the warning names; nil: no warning
	}{
		{"all interfaces", dev, []string{":8080"}, []string{":8080"}},
		{"unspecified address", dev, []string{"0.0.0.0:80", "[::]:80"}, []string{"0.0.0.0:80", "[::]:80"}},
		{"one of several", dev, []string{"127.0.0.1:80", "tcp/192.0.2.1:80"}, []string{"tcp/192.0.2.1:80"}},
		{"placeholder resolving to all interfaces", dev, []string{"{env.SSEGATE_TEST_UNSET}:80"}, []string{"{env.SSEGATE_TEST_UNSET}:80"}},
		{"secret from the environment", []string{"{env.SSEGATE_TEST_REAL_SECRET}", "{env.SSEGATE_TEST_DEV_SECRET}"}, []string{":443"}, []string{":443"}},
		{"loopback only", dev, []string{"127.0.0.1:8080", "[::1]:8080", "localhost:8080", "unix//run/caddy.sock"}, nil},
		{"a real secret", []string{"{env.SSEGATE_TEST_REAL_SECRET}"}, []string{":8080"}, nil},
		{"no auth", nil, []string{":8080"}, nil},
		{"not in a server", dev, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			if tt.listen != nil {
				ctx = context.WithValue(ctx, caddyhttp.ServerCtxKey, &caddyhttp.Server{Listen: tt.listen})
			}
			core, logs := observer.New(zapcore.InfoLevel)
			Warn(caddy.Context{Context: ctx}, tt.secrets, zap.New(core))
			entries := logs.All()
			if tt.want == nil {
				if len(entries) != 0 {
					t.Fatalf("logged %v, want nothing", entries)
				}
				return
			}
			if len(entries) != 1 || entries[0].Level != zapcore.WarnLevel {
				t.Fatalf("logged %v, want one warning", entries)
			}
			e := entries[0]
			if !strings.Contains(e.Message, "SSEGATE_JWT_SECRET") {
				t.Errorf("warning %q does not say what to set", e.Message)
			}
			if strings.Contains(e.Message, Secret) {
				t.Errorf("warning %q repeats the secret", e.Message)
			}
			if got := e.ContextMap()["listen"]; !reflect.DeepEqual(got, toAny(tt.want)) {
				t.Errorf("listen = %v, want %v", got, tt.want)
			}
		})
	}
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// TestExampleDevSecret keeps the example's default, cmd/token's fallback
// and the warning on one secret.
func TestExampleDevSecret(t *testing.T) {
	src, err := os.ReadFile("../../Caddyfile.example")
	if err != nil {
		t.Fatal(err)
	}
	if want := "{$SSEGATE_JWT_SECRET:" + Secret + "}"; !strings.Contains(string(src), want) {
		t.Errorf("Caddyfile.example does not default the secret with %s", want)
	}
}

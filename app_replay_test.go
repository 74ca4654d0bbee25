package ssegate

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"go.uber.org/zap"

	"github.com/ssegate/ssegate/internal/natstest"
	"github.com/ssegate/ssegate/replay"
	"github.com/ssegate/ssegate/upstream"
)

// TestReplayPullBytesHoldTheLargestEvent: a pull smaller than one event
// never delivers it, so replay_pull_bytes below the server's max_payload
// refuses to start, and the default grows with a larger max_payload.
func TestReplayPullBytesHoldTheLargestEvent(t *testing.T) {
	large := func(o *server.Options) { o.MaxPayload = 8 << 20 }
	tests := []struct {
		name     string
		server   []natstest.Option
		app      *App
		wantPull int
		wantErr  string
	}{
		{name: "default", app: &App{}, wantPull: replay.DefaultPullBytes},
		{name: "default under a large max_payload", server: []natstest.Option{large}, app: &App{}, wantPull: 8<<20 + pullOverhead},
		{name: "set", app: &App{ReplayPullBytes: 3 << 20}, wantPull: 3 << 20},
		{name: "below max_payload", app: &App{ReplayPullBytes: 64 << 10}, wantErr: "replay_pull_bytes 65536 cannot hold the largest event the NATS server accepts (max_payload 1048576); set it to at least 1052672"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns := natstest.Server(t, tt.server...)
			conn, err := upstream.Acquire(upstream.Config{URLs: []string{ns.ClientURL()}}, zap.NewNop())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = conn.Release() })
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			stream, err := replay.Ensure(ctx, conn.JS, replay.StreamConfig{Storage: "memory"})
			if err != nil {
				t.Fatal(err)
			}
			tt.app.log = zap.NewNop()
			h, rc, err := tt.app.history(conn, stream)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("history: %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = rc.Release() })
			if _, pull, budget := h.Limits(); pull != tt.wantPull || budget != replay.DefaultBudget {
				t.Fatalf("pull %d budget %d, want %d and %d", pull, budget, tt.wantPull, replay.DefaultBudget)
			}
			if rc.NC == conn.NC || rc.NC.Opts.Name != upstream.ReplayName {
				t.Fatal("replays do not have a connection of their own")
			}
		})
	}
}

package ssegate

import (
	"context"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ssegate/ssegate/auth"
	"github.com/ssegate/ssegate/control"
	"github.com/ssegate/ssegate/internal/health"
	"github.com/ssegate/ssegate/internal/streams"
	"github.com/ssegate/ssegate/presence"
)

// natsRunning is how presence and control reach NATS: the app's
// connection, once the app has started.
func (h *Handler) natsRunning(ctx context.Context) (*nats.Conn, jetstream.JetStream, error) {
	run, err := h.app.running(ctx)
	if err != nil {
		return nil, nil, err
	}
	return run.conn.NC, run.conn.JS, nil
}

// provisionWatchers sets up control and presence, which watch every
// stream. They come before the gate, which checks control's revocations;
// who may use their endpoints is set once the gate is built
// (startWatchers).
func (h *Handler) provisionWatchers() ([]streams.Watcher, error) {
	var ws []streams.Watcher
	if h.Control != nil {
		var err error
		if h.control, err = control.New(*h.Control, h.natsRunning, h.log); err != nil {
			return nil, err
		}
		ws = append(ws, h.control)
	}
	if h.Presence != nil {
		var err error
		h.presence, err = presence.New(*h.Presence, h.natsRunning,
			presence.WithLogger(h.log), presence.WithStreamSubject(h.subject))
		if err != nil {
			return nil, err
		}
		ws = append(ws, h.presence)
	}
	return ws, nil
}

func (h *Handler) revocations() auth.Option {
	if h.control == nil {
		return auth.WithRevocations(nil)
	}
	return auth.WithRevocations(h.control.Revoked)
}

// startWatchers authorizes their endpoints and starts them.
func (h *Handler) startWatchers() error {
	var ctrl *auth.Controllers
	if h.control != nil {
		var err error
		if ctrl, err = h.gate.Controllers(h.Control.Keys); err != nil {
			return err
		}
		h.control.Authorize(ctrl)
		h.control.Start()
	}
	if h.presence != nil {
		access := presence.Access{Gate: h.gate, Controllers: ctrl}
		if h.Publish != nil {
			// Publish credentials may read presence too.
			var err error
			if access.Publishers, err = h.gate.Publishers(h.Publish.Keys); err != nil {
				return err
			}
		}
		h.presence.Authorize(access)
		h.presence.Start()
	}
	h.health.Report(h.watcherHealth)
	return nil
}

func (h *Handler) stopWatchers() {
	if h.presence != nil {
		h.presence.Stop()
	}
	if h.control != nil {
		h.control.Stop()
	}
}

// watcherHealth adds the buckets' state to the health answer.
func (h *Handler) watcherHealth(hl *health.Report) {
	if h.presence != nil {
		hl.Presence = h.presence.Health()
	}
	if h.control != nil {
		hl.Revocations = h.control.Health()
	}
}

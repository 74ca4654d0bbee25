package ssegate

import (
	"context"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ssegate/ssegate/auth"
	"github.com/ssegate/ssegate/control"
	"github.com/ssegate/ssegate/presence"
)

// natsConn is how presence and control reach NATS: the app's connection,
// once the app has started.
func (h *Handler) natsConn(ctx context.Context) (*nats.Conn, jetstream.JetStream, error) {
	run, err := h.app.running(ctx)
	if err != nil {
		return nil, nil, err
	}
	return run.conn.NC, run.conn.JS, nil
}

// provisionControl comes before the gate, which checks its revocations.
func (h *Handler) provisionControl() error {
	if h.Control == nil {
		return nil
	}
	var err error
	h.control, err = control.New(*h.Control, h.natsConn, h.log)
	return err
}

func (h *Handler) revocations() auth.Option {
	if h.control == nil {
		return auth.WithRevocations(nil)
	}
	return auth.WithRevocations(h.control.Revoked)
}

// startWatchers sets up presence and starts both, after the gate and the
// publishers that authorize their endpoints.
func (h *Handler) startWatchers() error {
	var ctrl *auth.Controllers
	if h.control != nil {
		var err error
		if ctrl, err = h.gate.Controllers(h.Control.Keys); err != nil {
			return err
		}
		h.control.Authorize(ctrl)
		h.watchers = append(h.watchers, h.control)
	}
	if h.Presence != nil {
		var err error
		h.presence, err = presence.New(*h.Presence, h.natsConn,
			presence.WithLogger(h.log),
			presence.WithStreamSubject(h.subject),
			presence.WithAccess(presence.Access{Gate: h.gate, Publishers: h.publishers, Controllers: ctrl}))
		if err != nil {
			return err
		}
		h.watchers = append(h.watchers, h.presence)
		h.presence.Start()
	}
	if h.control != nil {
		h.control.Start()
	}
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
func (h *Handler) watcherHealth(hl *health) {
	if h.presence != nil {
		hl.Presence = h.presence.Health()
	}
	if h.control != nil {
		hl.Revocations = h.control.Health()
	}
}

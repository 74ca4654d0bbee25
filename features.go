package ssegate

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ssegate/ssegate/auth"
	"github.com/ssegate/ssegate/console"
	"github.com/ssegate/ssegate/internal/health"
	publishing "github.com/ssegate/ssegate/publish"
)

// serveFeature routes the optional endpoints: publish, health and the
// console. It reports whether r was one of them.
func (h *Handler) serveFeature(w http.ResponseWriter, r *http.Request) (bool, error) {
	p := r.URL.Path
	switch {
	case h.publish != nil && p == h.Publish.Path:
		return true, h.publish.ServeHTTP(w, r)
	case h.History != nil && p == h.History.Path:
		return true, h.serveHistory(w, r, h.past.ServeHistory)
	case h.Poll != nil && p == h.Poll.Path:
		return true, h.serveHistory(w, r, h.past.ServePoll)
	case h.script != nil && p == h.ClientPath:
		h.script.ServeHTTP(w, r)
		return true, nil
	case h.presence != nil && p == h.presence.Path():
		h.presence.ServeHTTP(w, r)
		return true, nil
	case h.control != nil && h.control.Matches(p):
		h.control.ServeHTTP(w, r)
		return true, nil
	case h.HealthPath != "" && p == h.HealthPath:
		return true, h.health.ServeHTTP(w, r)
	case h.console != nil && p != h.ConsolePath+console.StreamPath &&
		(p == h.ConsolePath || strings.HasPrefix(p, h.ConsolePath+"/")):
		return true, h.console.ServeHTTP(w, r)
	}
	return false, nil
}

// provisionFeatures sets up the optional endpoints, each with what it
// needs of the handler and the app.
func (h *Handler) provisionFeatures() error {
	h.health = health.New(h.natsConn, h.app.Stream.Name, h.refusal.Named("health"),
		health.WithConfigCheck(h.app.streamDiffers, h.app.metrics.setStreamDiffers),
		health.WithReplayDrops(h.app.replayDrops))
	h.provisionHistory()
	if h.Publish != nil {
		verifiesJWTs := h.Auth != nil && len(h.Auth.HMACKeys)+len(h.Auth.PublicKeys)+len(h.Auth.JWKS) > 0
		if err := h.Publish.Validate(verifiesJWTs); err != nil {
			return err
		}
		publishers, err := h.gate.Publishers(h.Publish.Keys)
		if err != nil {
			return err
		}
		h.publisher = new(publishing.Conn)
		h.publish = publishing.New(*h.Publish, publishing.Gateway{
			Channel:    h.channelSubject,
			Store:      h.store,
			Publishers: publishers,
			Log:        h.log,
			Refuse:     h.refusal.Named("publish"),
		})
	}
	if h.ConsolePath != "" {
		paths := console.Paths{ChannelParam: h.channelParam()}
		if h.Publish != nil {
			paths.Publish = h.Publish.Path
		}
		if h.Auth != nil {
			paths.Ticket = h.Auth.TicketPath
		}
		if h.Presence != nil {
			paths.Presence = h.Presence.Path
		}
		if h.Control != nil {
			paths.Control = h.Control.Path
		}
		h.console = console.New(h.ConsolePath, paths, console.Sources{
			Authenticated: func(r *http.Request) *auth.Error {
				_, e := h.gate.Authenticated(r)
				return e
			},
			Health:   h.health,
			Clients:  h.app.metrics.openStreams,
			Channels: h.app.channels,
			Delivery: h.app.metrics.latency,
		}, h.refusal.Named("console"))
	}
	return nil
}

// natsConn is the running app's NATS connection, without waiting for
// Start: a health check during startup answers at once.
func (h *Handler) natsConn() (*nats.Conn, jetstream.JetStream) {
	if run := h.app.current(); run != nil {
		return run.conn.NC, run.conn.JS
	}
	return nil, nil
}

// store is the running app's stream, for the publish endpoint.
func (h *Handler) store(ctx context.Context) (publishing.Store, error) {
	run, err := h.app.running(ctx)
	if err != nil {
		return publishing.Store{}, err
	}
	// Events go over a connection of their own that keeps nothing while
	// it reconnects (publishing.Conn).
	nc, js, err := h.publisher.Get(run.conn)
	if err != nil {
		return publishing.Store{}, err
	}
	return publishing.Store{JS: js, Stream: h.app.Stream.Name,
		MaxPayload: nc.MaxPayload(), Epoch: run.history.Epoch()}, nil
}

// validateFeatures checks the optional endpoints' paths: exact paths,
// distinct from each other and from the ticket path.
func (h *Handler) validateFeatures() error {
	seen := map[string]string{}
	if h.Auth != nil && h.Auth.TicketPath != "" {
		seen[h.Auth.TicketPath] = "ticket_path"
	}
	check := func(what, p string) error {
		switch {
		case p == "":
			return nil
		case !strings.HasPrefix(p, "/") || strings.ContainsAny(p, "*?# \t") || p != path.Clean(p):
			return fmt.Errorf("%s path %q: want a clean absolute path without wildcards", what, p)
		case seen[p] != "":
			return fmt.Errorf("%s path %q is also the %s path", what, p, seen[p])
		}
		seen[p] = what
		return nil
	}
	var pub string
	if h.Publish != nil {
		pub = h.Publish.Path
	}
	var past, poll string
	if h.History != nil {
		past = h.History.Path
		if err := required("history", past, h.History.Validate); err != nil {
			return err
		}
	}
	if h.Poll != nil {
		poll = h.Poll.Path
		if err := required("poll", poll, h.Poll.Validate); err != nil {
			return err
		}
	}
	var pres, ctrl string
	if h.Presence != nil {
		pres = h.Presence.Path
	}
	if h.Control != nil {
		ctrl = h.Control.Path
	}
	return errors.Join(check("publish", pub), check("health", h.HealthPath), check("console", h.ConsolePath),
		check("history", past), check("poll", poll), check("client", h.ClientPath),
		check("presence", pres), check("control", ctrl))
}

// required checks an endpoint that is configured: it needs a path, and
// settings that validate.
func required(what, path string, validate func() error) error {
	if path == "" {
		return fmt.Errorf("%s: a path is required", what)
	}
	return validate()
}

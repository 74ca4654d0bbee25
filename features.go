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
	"github.com/ssegate/ssegate/browser"
	"github.com/ssegate/ssegate/console"
	"github.com/ssegate/ssegate/control"
	"github.com/ssegate/ssegate/history"
	"github.com/ssegate/ssegate/internal/health"
	"github.com/ssegate/ssegate/internal/streams"
	"github.com/ssegate/ssegate/presence"
	publishing "github.com/ssegate/ssegate/publish"
)

// The optional endpoints, beside the stream: publish, history and poll,
// client.js, presence, control, health and the console. This file routes
// them, and sets them up with what each needs of the handler and the app.

// serveFeature routes the optional endpoints. It reports whether r was
// one of them.
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
		return true, h.script.ServeHTTP(w, r)
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

// provisionHistory sets up the history and poll endpoints, when enabled.
// They read over the replay connection and attach to the hub like a
// stream, so they share its budget and its live feed.
func (h *Handler) provisionHistory() {
	if h.ClientPath != "" {
		h.script = browser.New(h.refusal.Named("client.js"))
	}
	if h.History == nil && h.Poll == nil {
		return
	}
	var opts []history.Option
	if h.History != nil {
		opts = append(opts, history.WithHistory(*h.History))
	}
	if h.Poll != nil {
		opts = append(opts, history.WithPoll(*h.Poll))
	}
	h.past = history.NewServer(h.historyBackend,
		append(opts, history.WithLogger(h.log), history.RefusingWith(h.refusal.Named("history")), history.CappingWaitAt(h.writeTimeout()),
			history.CountingWaitsIn(h.app.metrics.pollsWaiting.Add))...)
}

func (h *Handler) historyBackend(ctx context.Context) (history.Source, history.Hub, error) {
	run, err := h.app.running(ctx)
	if err != nil {
		return nil, nil, err
	}
	return run.history, run.hub, nil
}

// serveHistory checks a history or poll request as a stream is checked
// (method, channels, credential) and hands it to serve.
func (h *Handler) serveHistory(w http.ResponseWriter, r *http.Request, serve func(http.ResponseWriter, *http.Request, history.Request)) error {
	if !h.gets(w, r, "history and poll are read with GET") {
		return nil
	}
	adm, subjects, ok := h.admit(w, r)
	if !ok {
		return nil
	}
	defer adm.Release()
	serve(w, r, history.Request{Channels: adm.Channels, Subjects: subjects, Expires: adm.Expires})
	return nil
}

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
		if h.control, err = control.New(*h.Control, h.natsRunning, h.log, h.refusal.Named("control")); err != nil {
			return nil, err
		}
		ws = append(ws, h.control)
	}
	if h.Presence != nil {
		var err error
		h.presence, err = presence.New(*h.Presence, h.natsRunning,
			presence.WithLogger(h.log), presence.RefusingWith(h.refusal.Named("presence")), presence.WithStreamSubject(h.subject))
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

// Package ssegate is a Caddy module that streams NATS subjects to browsers
// as Server-Sent Events, with replay from JetStream on reconnect.
package ssegate

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/ssegate/ssegate/auth"
	"github.com/ssegate/ssegate/browser"
	"github.com/ssegate/ssegate/console"
	"github.com/ssegate/ssegate/control"
	"github.com/ssegate/ssegate/history"
	"github.com/ssegate/ssegate/internal/devsecret"
	"github.com/ssegate/ssegate/internal/eventfilter"
	"github.com/ssegate/ssegate/internal/health"
	"github.com/ssegate/ssegate/internal/refusal"
	"github.com/ssegate/ssegate/internal/session"
	"github.com/ssegate/ssegate/internal/versioncmd"
	"github.com/ssegate/ssegate/presence"
	publishing "github.com/ssegate/ssegate/publish"
	"github.com/ssegate/ssegate/replay"
)

func init() {
	caddy.RegisterModule(new(App))
	caddy.RegisterModule(new(Handler))
	caddycmd.RegisterCommand(versioncmd.Command())
}

// Handler serves event streams: `GET` with one or more channels opens a
// text/event-stream that carries the channels' events, replaying what the
// client missed when it resumes with a Last-Event-ID.
type Handler struct {
	// ChannelParam is the query parameter naming channels; it may repeat.
	// Default "channel". Ignored when Channels or ChannelPlaceholder is set.
	ChannelParam string `json:"channel_param,omitempty"`
	// ChannelPlaceholder takes the channels from a placeholder, such as
	// {http.request.uri.path.1} or a path_regexp capture; commas separate
	// several.
	ChannelPlaceholder string `json:"channel_placeholder,omitempty"`
	// Channels is a fixed list that every request gets.
	Channels []string `json:"channels,omitempty"`
	// Subject maps a channel to its NATS subject. Default "events.{channel}".
	Subject string `json:"subject,omitempty"`
	// ChannelPattern is a regular expression every channel must match.
	ChannelPattern string `json:"channel_pattern,omitempty"`
	// MaxChannels bounds the channels of one stream. Default 16.
	MaxChannels int `json:"max_channels,omitempty"`
	// Public channel patterns anyone may subscribe to without credentials.
	// NATS-style wildcards: * matches one token, > the rest.
	Public []string `json:"public,omitempty"`
	// Auth admits clients by ticket, cookie, bearer token or auth_url, and
	// decides which channels each may read. Without it, only Public
	// channels can be read.
	Auth *auth.Config `json:"auth,omitempty"`

	// Publish enables publishing events with POST (README: Publishing
	// over HTTP).
	Publish *publishing.Config `json:"publish,omitempty"`
	// HealthPath serves a readiness check for load balancers.
	HealthPath string `json:"health_path,omitempty"`
	// ConsolePath serves the live console page and its figures.
	ConsolePath string `json:"console_path,omitempty"`
	// History serves stored events as JSON pages (docs/history-and-poll.md).
	History *history.Config `json:"history,omitempty"`
	// Poll serves long-polls from the live feed (docs/history-and-poll.md).
	Poll *history.PollConfig `json:"poll,omitempty"`
	// ClientPath serves the browser client, an ES module.
	ClientPath string `json:"client_path,omitempty"`
	// Presence serves who is connected, across gateways (package presence).
	Presence *presence.Config `json:"presence,omitempty"`
	// Control ends streams and revokes credentials (package control).
	Control *control.Config `json:"control,omitempty"`

	// Heartbeat is the idle interval between comment lines. Default 15s.
	Heartbeat caddy.Duration `json:"heartbeat,omitempty"`
	// Retry is the reconnection delay sent to clients. Default 2s.
	Retry caddy.Duration `json:"retry,omitempty"`
	// QueueSize is how many events may wait for a client before it counts
	// as slow and is disconnected (to resume from its last id). Default 256.
	QueueSize int `json:"queue_size,omitempty"`
	// WriteTimeout bounds one write to a client. Default 10s.
	WriteTimeout caddy.Duration `json:"write_timeout,omitempty"`
	// HTTP1Takeover serves HTTP/1.1 streams from the connection itself
	// once the headers are out, for far less memory per idle stream. It
	// gives up an encoder in front, the access log's duration and size,
	// and the server's timeouts (see internal/session/takeover.go).
	// Default off.
	HTTP1Takeover bool `json:"http1_takeover,omitempty"`
	// ReplayLimit caps the events replayed to one connection; a client
	// further behind gets a reset event. Default 10000.
	ReplayLimit int `json:"replay_limit,omitempty"`

	app       *App
	log       *zap.Logger
	channelRE *regexp.Regexp
	gate      *auth.Gate
	sessions  *session.Server
	refusal   refusal.Refuser

	// The optional endpoints; nil when off.
	publish  *publishing.Endpoint
	health   *health.Checker
	console  *console.Console
	past     *history.Server
	script   *browser.Script
	presence *presence.Registry
	control  *control.Service
	// publisher is the publish endpoint's own NATS connection.
	publisher *publishing.Conn
}

// Defaults of the handler's and the app's settings, all in one place.
// The packages' own configs keep theirs (publish.DefaultMaxBody,
// replay.DefaultPullBytes, replay.DefaultBudget).
const (
	DefaultChannelParam = "channel"
	DefaultSubject      = "events.{channel}"
	// DefaultChannelPattern admits dot-separated tokens of letters,
	// digits, '_' and '-'. Channel tokens become NATS subject tokens, so
	// whatever a configured pattern allows, wildcards and empty tokens
	// are refused too.
	DefaultChannelPattern = `^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$`
	DefaultMaxChannels    = 16
	DefaultHeartbeat      = 15 * time.Second
	DefaultRetry          = 2 * time.Second
	DefaultQueueSize      = 256
	DefaultWriteTimeout   = 10 * time.Second
	DefaultReplayLimit    = 10000

	DefaultStartTimeout      = 30 * time.Second
	DefaultReplayConcurrency = 64
)

// CaddyModule returns the Caddy module information.
func (*Handler) CaddyModule() caddy.ModuleInfo { return moduleInfo[Handler]("http.handlers.ssegate") }

// moduleInfo is the Caddy module information of the module T, whose
// pointer is the module.
func moduleInfo[T any, M interface {
	*T
	caddy.Module
}](id caddy.ModuleID) caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: id, New: func() caddy.Module { return M(new(T)) }}
}

// Provision sets defaults and links the handler to the ssegate app.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.log = ctx.Logger()
	appIface, err := ctx.App("ssegate")
	if err != nil {
		return fmt.Errorf("loading ssegate app: %w", err)
	}
	h.app = appIface.(*App)
	h.refusal = refusal.New(h.log, h.app.metrics.refused)
	watchers, err := h.provisionWatchers()
	if err != nil {
		return err
	}
	h.sessions = session.New(session.Config{
		Watchers:      watchers,
		Heartbeat:     h.heartbeat(),
		Retry:         h.retry(),
		WriteTimeout:  h.writeTimeout(),
		ReplayLimit:   h.replayLimit(),
		HTTP1Takeover: h.HTTP1Takeover,
	}, h.app.metrics.session(), h.log)
	if srv, ok := ctx.Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server); ok {
		// A graceful shutdown waits for every open request, and an event
		// stream never finishes by itself: with Caddy's default eternal
		// grace period, exiting would hang if the http app stopped before
		// ours. So streams end as soon as their server starts to shut down.
		srv.RegisterOnShutdown(h.app.endSessions)
	}
	if h.channelRE, err = compileChannelPattern(h.ChannelPattern); err != nil {
		return err
	}
	var cfg auth.Config
	if h.Auth != nil {
		cfg = *h.Auth
	}
	devsecret.Warn(ctx, hmacSecrets(cfg), h.log)
	cfg.Public = append(slices.Clone(h.Public), cfg.Public...)
	h.gate, err = auth.NewGate(cfg, h.revocations(),
		auth.WithMaxChannels(h.maxChannels()),
		auth.WithLogger(h.log),
		auth.WithRefusals(h.app.metrics.refused),
		auth.WithJetStream(func(ctx context.Context) (jetstream.JetStream, error) {
			run, err := h.app.running(ctx)
			if err != nil {
				return nil, err
			}
			return run.conn.JS, nil
		}),
	)
	if err != nil {
		return err
	}
	if err := h.provisionFeatures(); err != nil {
		return err
	}
	return h.startWatchers()
}

// Cleanup stops the handler's background work (JWKS refreshes).
func (h *Handler) Cleanup() error {
	h.stopWatchers()
	if h.publisher != nil {
		h.publisher.Close()
	}
	if h.gate != nil {
		return h.gate.Close()
	}
	return nil
}

// Validate checks the handler's config against the app's stream.
func (h *Handler) Validate() error {
	if strings.Count(h.subjectTemplate(), "{channel}") != 1 {
		return fmt.Errorf("subject %q must contain {channel} exactly once", h.Subject)
	}
	if sample := h.subject("x"); !replay.ValidSubject(sample, false) {
		return fmt.Errorf("subject %q does not make valid NATS subjects (got %q)", h.subjectTemplate(), sample)
	} else if !h.app.Stream.Captures(sample) {
		return fmt.Errorf("subject %q maps channels to subjects like %q, which stream %q (subjects %v) does not store", h.subjectTemplate(), sample, h.app.Stream.Name, h.app.Stream.Subjects)
	}
	for _, ch := range h.Channels {
		if err := h.checkChannel(ch); err != nil {
			return fmt.Errorf("channels: %v", err)
		}
	}
	if h.ChannelPlaceholder != "" && len(h.Channels) > 0 {
		return fmt.Errorf("channel_placeholder and channels are exclusive")
	}
	if h.MaxChannels > replay.MaxSubjects {
		// A resume reads every channel of the stream in one read, which
		// takes at most replay.MaxSubjects subjects: a larger stream would
		// open, and every reconnect of it with a position would fail.
		return fmt.Errorf("max_channels %d: at most %d, the channels one replay can read", h.MaxChannels, replay.MaxSubjects)
	}
	if h.MaxChannels < 0 || h.QueueSize < 0 || h.ReplayLimit < 0 || h.Heartbeat < 0 || h.Retry < 0 || h.WriteTimeout < 0 {
		return fmt.Errorf("limits and durations cannot be negative")
	}
	return h.validateFeatures()
}

func (h *Handler) channelParam() string    { return cmp.Or(h.ChannelParam, DefaultChannelParam) }
func (h *Handler) subjectTemplate() string { return cmp.Or(h.Subject, DefaultSubject) }
func (h *Handler) maxChannels() int        { return cmp.Or(h.MaxChannels, DefaultMaxChannels) }
func (h *Handler) queueSize() int          { return cmp.Or(h.QueueSize, DefaultQueueSize) }
func (h *Handler) replayLimit() int        { return cmp.Or(h.ReplayLimit, DefaultReplayLimit) }
func (h *Handler) heartbeat() time.Duration {
	return time.Duration(cmp.Or(h.Heartbeat, caddy.Duration(DefaultHeartbeat)))
}
func (h *Handler) retry() time.Duration {
	return time.Duration(cmp.Or(h.Retry, caddy.Duration(DefaultRetry)))
}
func (h *Handler) writeTimeout() time.Duration {
	return time.Duration(cmp.Or(h.WriteTimeout, caddy.Duration(DefaultWriteTimeout)))
}

// ServeHTTP refuses bad requests with a status and a short JSON body before
// any stream byte is written, then streams. It never calls next: a request
// that reaches this handler is an event stream or an error.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	// First, before anything can log the URI.
	h.gate.Scrub(r)
	if h.gate.IsTicketPath(r) {
		h.gate.ServeTicket(w, r)
		return nil
	}
	if ok, err := h.serveFeature(w, r); ok {
		return err
	}
	if !h.gets(w, r, "event streams are opened with GET") {
		return nil
	}
	filter, ferr := eventfilter.Parse(r.URL.Query())
	if ferr != nil {
		return h.refusal.Refuse(w, r, http.StatusBadRequest, auth.CodeInvalidEvent, ferr.Error())
	}
	adm, subjects, ok := h.admit(w, r)
	if !ok {
		return nil
	}
	// The stream owns the admission from here, and releases it at its end.
	h.serveSession(w, r, subjects, lastEventID(r), adm,
		session.OnlyEvents(filter), session.ResumingSince(r.URL.Query().Get("since")))
	return nil
}

// gets answers a CORS preflight, applies CORS, and refuses any method but
// GET, saying why; it reports whether the request goes on.
func (h *Handler) gets(w http.ResponseWriter, r *http.Request, why string) bool {
	if r.Method == http.MethodOptions {
		h.gate.Preflight(w, r)
		return false
	}
	h.gate.ApplyCORS(w, r)
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		_ = h.refusal.Refuse(w, r, http.StatusMethodNotAllowed, auth.CodeMethodNotAllowed, why)
		return false
	}
	return true
}

// admit checks a request's channels and credential, or answers it with
// the refusal. The caller owns the admission and must release it.
func (h *Handler) admit(w http.ResponseWriter, r *http.Request) (*auth.Admission, []string, bool) {
	channels, cerr := h.channels(r)
	if cerr != nil {
		_ = h.refusal.Refuse(w, r, cerr.Status, cerr.Code, cerr.Detail)
		return nil, nil, false
	}
	adm, aerr := h.gate.Admit(r, channels)
	if aerr != nil {
		// Counted by the Gate (auth.WithRefusals), as all its refusals.
		aerr.Write(w)
		return nil, nil, false
	}
	subjects := make([]string, len(adm.Channels))
	for i, ch := range adm.Channels {
		subject, cerr := h.channelSubject(ch)
		if cerr != nil {
			adm.Release()
			_ = h.refusal.Refuse(w, r, cerr.Status, cerr.Code, cerr.Detail)
			return nil, nil, false
		}
		subjects[i] = subject
	}
	return adm, subjects, true
}

// lastEventID is the client's position: the header an EventSource sends on
// reconnect, or a query parameter for a page's first connect.
func lastEventID(r *http.Request) string {
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		return v
	}
	return r.URL.Query().Get("last_event_id")
}

// Interface guards.
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)

// hmacSecrets are the HMAC secrets of cfg, as configured.
func hmacSecrets(cfg auth.Config) []string {
	out := make([]string, len(cfg.HMACKeys))
	for i, k := range cfg.HMACKeys {
		out[i] = k.Secret
	}
	return out
}

// serveSession hands an admitted request over to its session, which
// attaches it to the hub through attach. The session owns adm from here,
// and releases it at its end.
func (h *Handler) serveSession(w http.ResponseWriter, r *http.Request, subjects []string, position string, adm *auth.Admission, opts ...session.Option) {
	h.sessions.Serve(w, r, subjects, position, adm, h.attach, opts...)
}

// attach attaches a stream's subjects to the running app's hub, waiting
// for the app to start if it is under way.
func (h *Handler) attach(ctx context.Context, subjects []string, replaying bool) (session.Client, session.History, error) {
	run, err := h.app.running(ctx)
	if err != nil {
		return nil, nil, err
	}
	client, err := run.hub.Attach(ctx, subjects, h.queueSize(), replaying)
	if err != nil {
		return nil, nil, err
	}
	return client, run.history, nil
}

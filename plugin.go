// Package ssegate is a Caddy module that streams NATS subjects to browsers
// as Server-Sent Events, with replay from JetStream on reconnect.
package ssegate

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/ssegate/ssegate/auth"
	"github.com/ssegate/ssegate/internal/ratelog"
	"github.com/ssegate/ssegate/replay"
)

func init() {
	caddy.RegisterModule(new(App))
	caddy.RegisterModule(new(Handler))
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
	Publish *PublishConfig `json:"publish,omitempty"`
	// HealthPath serves a readiness check for load balancers.
	HealthPath string `json:"health_path,omitempty"`
	// ConsolePath serves the live console page and its figures.
	ConsolePath string `json:"console_path,omitempty"`

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
	// and the server's timeouts (see takeover.go). Default off.
	HTTP1Takeover bool `json:"http1_takeover,omitempty"`
	// ReplayLimit caps the events replayed to one connection; a client
	// further behind gets a reset event. Default 10000.
	ReplayLimit int `json:"replay_limit,omitempty"`

	app *App
	log *zap.Logger
	// unavailable limits the warnings of streams that NATS cannot serve.
	unavailable *ratelog.Limiter
	channelRE   *regexp.Regexp
	gate        *auth.Gate

	publishers *auth.Publishers
	publisher  *publishConn
	probe      *jsProbe
	buffers    *bufferPool
}

// Defaults.
const (
	DefaultSubject     = "events.{channel}"
	DefaultHeartbeat   = 15 * time.Second
	DefaultRetry       = 2 * time.Second
	DefaultQueueSize   = 256
	DefaultMaxChannels = 16
	DefaultReplayLimit = 10000
)

// CaddyModule returns the Caddy module information.
func (*Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.ssegate",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision sets defaults and links the handler to the ssegate app.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.log = ctx.Logger()
	h.unavailable = ratelog.New(1, 10)
	h.buffers = new(bufferPool)
	appIface, err := ctx.App("ssegate")
	if err != nil {
		return fmt.Errorf("loading ssegate app: %w", err)
	}
	h.app = appIface.(*App)
	if srv, ok := ctx.Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server); ok {
		// A graceful shutdown waits for every open request, and an event
		// stream never finishes by itself: with Caddy's default eternal
		// grace period, exiting would hang if the http app stopped before
		// ours. So streams end as soon as their server starts to shut down.
		srv.RegisterOnShutdown(h.app.endStreams)
	}
	if h.channelRE, err = compileChannelPattern(h.ChannelPattern); err != nil {
		return err
	}
	warnDevSecret(ctx, h.Auth, h.log)
	var cfg auth.Config
	if h.Auth != nil {
		cfg = *h.Auth
	}
	cfg.Public = append(slices.Clone(h.Public), cfg.Public...)
	h.gate, err = auth.NewGate(cfg,
		auth.WithMaxChannels(h.maxChannels()),
		auth.WithLogger(h.log),
		auth.WithRefusals(func(code string) { h.app.metrics.refusals.WithLabelValues(code).Inc() }),
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
	return h.provisionFeatures()
}

// Cleanup stops the handler's background work (JWKS refreshes).
func (h *Handler) Cleanup() error {
	if h.publisher != nil {
		h.publisher.close()
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

func (h *Handler) channelParam() string    { return or(h.ChannelParam, "channel") }
func (h *Handler) subjectTemplate() string { return or(h.Subject, DefaultSubject) }
func (h *Handler) maxChannels() int        { return orInt(h.MaxChannels, DefaultMaxChannels) }
func (h *Handler) queueSize() int          { return orInt(h.QueueSize, DefaultQueueSize) }
func (h *Handler) replayLimit() int        { return orInt(h.ReplayLimit, DefaultReplayLimit) }
func (h *Handler) heartbeat() time.Duration {
	return orDuration(h.Heartbeat, DefaultHeartbeat)
}
func (h *Handler) retry() time.Duration { return orDuration(h.Retry, DefaultRetry) }
func (h *Handler) writeTimeout() time.Duration {
	return orDuration(h.WriteTimeout, 10*time.Second)
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
	if r.Method == http.MethodOptions {
		h.gate.Preflight(w, r)
		return nil
	}
	h.gate.ApplyCORS(w, r)
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		return h.refuse(w, r, http.StatusMethodNotAllowed, "method_not_allowed", "event streams are opened with GET")
	}
	channels, err := h.channels(r)
	if err != nil {
		ce := err.(*channelError)
		return h.refuse(w, r, http.StatusBadRequest, ce.code, ce.detail)
	}
	adm, aerr := h.gate.Admit(r, channels)
	if aerr != nil {
		aerr.Write(w)
		return nil
	}
	subjects := make([]string, len(adm.Channels))
	for i, ch := range adm.Channels {
		if err := h.checkChannel(ch); err != nil {
			adm.Release()
			ce := err.(*channelError)
			return h.refuse(w, r, http.StatusBadRequest, ce.code, ce.detail)
		}
		subjects[i] = h.subject(ch)
	}
	// The stream owns the admission from here, and releases it at its end.
	h.serveStream(w, r, subjects, lastEventID(r), adm)
	return nil
}

// lastEventID is the client's position: the header an EventSource sends on
// reconnect, or a query parameter for a page's first connect.
func lastEventID(r *http.Request) string {
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		return v
	}
	return r.URL.Query().Get("last_event_id")
}

// refuse answers a request that will not get a stream. The log line names
// the reason and the path, never the query, which may carry a ticket.
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, status int, code, detail string) error {
	h.log.Info("stream refused",
		zap.Int("status", status),
		zap.String("error", code),
		zap.String("detail", detail),
		zap.String("path", r.URL.Path),
		zap.String("remote", r.RemoteAddr))
	h.app.metrics.refusals.WithLabelValues(code).Inc()
	(&auth.Error{Status: status, Code: code, Detail: detail}).Write(w)
	return nil
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func orInt(n, def int) int {
	if n == 0 {
		return def
	}
	return n
}

func orDuration(d caddy.Duration, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return time.Duration(d)
}

// Interface guards.
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)

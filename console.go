package ssegate

import (
	"embed"
	"encoding/json"
	"math"
	"net/http"
	"path"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/ssegate/ssegate/auth"
)

// consoleFiles is the console page. It holds no secret and no data: what
// it shows comes from the stream, publish and stats endpoints, each with
// the credential its user pasted.
//
//go:embed console
var consoleFiles embed.FS

// consoleAsset gives the content type of a file served under the console
// path; anything else there is a 404.
func consoleAsset(name string) (string, bool) {
	switch name {
	case "index.html":
		return "text/html; charset=utf-8", true
	case "console.js":
		return "text/javascript; charset=utf-8", true
	case "console.css":
		return "text/css; charset=utf-8", true
	}
	return "", false
}

// consoleCSP lets the page talk to its own origin only, run no inline
// script and be framed by nobody.
const consoleCSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// consoleStream is the console's stream path under the console path. The
// request is served as any other stream, with the same checks.
const consoleStream = "/stream"

func (h *Handler) serveConsole(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		return h.refuse(w, r, http.StatusMethodNotAllowed, auth.CodeMethodNotAllowed, "use GET")
	}
	hdr := w.Header()
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("X-Content-Type-Options", "nosniff")
	// Tickets and tokens never leave in a Referer.
	hdr.Set("Referrer-Policy", "no-referrer")
	rest := strings.TrimPrefix(r.URL.Path, h.ConsolePath)
	switch rest {
	case "":
		// Relative links on the page resolve under the console path.
		u := *r.URL
		u.Path += "/"
		http.Redirect(w, r, u.RequestURI(), http.StatusPermanentRedirect)
		return nil
	case "/":
		rest = "/index.html"
	case "/config.json":
		return writeJSON(w, h.consoleConfig())
	case "/stats":
		return h.serveStats(w, r)
	}
	name := strings.TrimPrefix(rest, "/")
	ctype, ok := consoleAsset(name)
	if !ok {
		return h.refuse(w, r, http.StatusNotFound, "not_found", "no such console file")
	}
	b, err := consoleFiles.ReadFile(path.Join("console", name))
	if err != nil {
		return err
	}
	hdr.Set("Content-Type", ctype)
	hdr.Set("Content-Security-Policy", consoleCSP)
	hdr.Set("X-Frame-Options", "DENY")
	_, err = w.Write(b)
	return err
}

// consoleConfig tells the page where the other endpoints are; paths are
// public knowledge, so it needs no credential.
type consoleConfig struct {
	Stream       string `json:"stream"`
	ChannelParam string `json:"channel_param"`
	Publish      string `json:"publish,omitempty"`
	Ticket       string `json:"ticket,omitempty"`
}

func (h *Handler) consoleConfig() consoleConfig {
	c := consoleConfig{Stream: h.ConsolePath + consoleStream, ChannelParam: h.channelParam()}
	if h.Publish != nil {
		c.Publish = h.Publish.Path
	}
	if h.Auth != nil {
		c.Ticket = h.Auth.TicketPath
	}
	return c
}

// stats are the console's live figures: aggregates only, never a channel
// name or a subject, and only for a caller with a valid credential.
type stats struct {
	Clients         int     `json:"clients"`
	Channels        int     `json:"channels"`
	EventsPerSecond float64 `json:"events_per_second"`
	NATS            string  `json:"nats"`
	JetStream       string  `json:"jetstream"`
}

func (h *Handler) serveStats(w http.ResponseWriter, r *http.Request) error {
	if _, e := h.gate.Authenticated(r); e != nil {
		e.Write(w)
		return nil
	}
	hl, res := h.readiness(r.Context())
	s := stats{
		Clients:         int(gaugeValue(h.app.metrics.clients)),
		EventsPerSecond: math.Round(res.rate*10) / 10,
		NATS:            hl.NATS,
		JetStream:       hl.JetStream,
	}
	if run := h.app.current(); run != nil {
		s.Channels = run.hub.Channels()
	}
	w.Header().Set("Cache-Control", "no-store")
	return writeJSON(w, s)
}

// gaugeValue reads a gauge that the app already keeps for /metrics.
func gaugeValue(g prometheus.Gauge) float64 {
	var m dto.Metric
	if g.Write(&m) != nil {
		return 0
	}
	return m.GetGauge().GetValue()
}

func writeJSON(w http.ResponseWriter, v any) error {
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(v)
}

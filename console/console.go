// Package console serves the live console: a page beside this file, its
// settings, and the live figures it shows.
package console

import (
	"embed"
	"math"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/ssegate/ssegate/auth"
	"github.com/ssegate/ssegate/internal/asset"
	"github.com/ssegate/ssegate/internal/health"
	"github.com/ssegate/ssegate/internal/jsonout"
	"github.com/ssegate/ssegate/internal/refusal"
)

// consoleFiles is the console page. It holds no secret and no data: what
// it shows comes from the stream, publish and stats endpoints, each with
// the credential its user pasted.
//
//go:embed index.html console.js console.css chart.js presence.js
var consoleFiles embed.FS

// consoleTypes are the files served under the console path, with their
// content types; anything else there is a 404.
func consoleTypes() map[string]string {
	return map[string]string{
		"index.html":  "text/html; charset=utf-8",
		"console.js":  "text/javascript; charset=utf-8",
		"chart.js":    "text/javascript; charset=utf-8",
		"presence.js": "text/javascript; charset=utf-8",
		"console.css": "text/css; charset=utf-8",
	}
}

// consoleCSP lets the page talk to its own origin only, run no inline
// script and be framed by nobody.
const consoleCSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// StreamPath is the console's stream path under the console path. The
// request is served as any other stream, with the same checks.
const StreamPath = "/stream"

// Console serves the console under its path.
type Console struct {
	path   string
	config Settings
	files  map[string]*asset.File
	src    Sources
	refuse refusal.Refuser
}

// Sources are where the console's figures come from.
type Sources struct {
	// Authenticated admits a caller of the figures.
	Authenticated func(*http.Request) *auth.Error
	// Health is the gateway's readiness check.
	Health *health.Checker
	// Clients and Channels count the open streams and the channels with
	// local clients.
	Clients, Channels func() int
	// Delivery is the delivery latency histogram of /metrics; nil for
	// none.
	Delivery prometheus.Histogram
}

func (s Sources) latency() Latency { return ReadHistogram(s.Delivery) }

// Paths are where the gateway's other endpoints are, for the page.
type Paths struct {
	// ChannelParam is the stream's channel query parameter.
	ChannelParam string
	// Publish and Ticket are the publish and ticket paths, "" if off.
	Publish, Ticket string
	// Presence and Control are the presence and control paths, "" if off.
	Presence, Control string
}

// New returns the console served at path.
func New(path string, paths Paths, src Sources, refuse refusal.Refuser) *Console {
	files := map[string]*asset.File{}
	for name, ctype := range consoleTypes() {
		// Every name is embedded (TestConsoleServesItsFilesAndNothingElse).
		if b, err := consoleFiles.ReadFile(name); err == nil {
			files[name] = asset.New(name, ctype, b)
		}
	}
	return &Console{
		path: path,
		config: Settings{Stream: path + StreamPath, ChannelParam: paths.ChannelParam,
			Publish: paths.Publish, Ticket: paths.Ticket, Presence: paths.Presence, Control: paths.Control},
		files:  files,
		src:    src,
		refuse: refuse,
	}
}

// ServeHTTP serves the page, its files, its settings and its figures.
func (h *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) error {
	if h.refuse.NotRead(w, r) {
		return nil
	}
	hdr := w.Header()
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("X-Content-Type-Options", "nosniff")
	// Tickets and tokens never leave in a Referer.
	hdr.Set("Referrer-Policy", "no-referrer")
	rest := strings.TrimPrefix(r.URL.Path, h.path)
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
		return writeJSON(w, h.config)
	case "/stats":
		return h.serveStats(w, r)
	}
	f := h.files[strings.TrimPrefix(rest, "/")]
	if f == nil {
		return h.refuse.Refuse(w, r, http.StatusNotFound, auth.CodeNotFound, "no such console file")
	}
	hdr.Set("Content-Security-Policy", consoleCSP)
	hdr.Set("X-Frame-Options", "DENY")
	f.Serve(w, r)
	return nil
}

// Settings tells the page where the other endpoints are; paths are
// public knowledge, so it needs no credential.
type Settings struct {
	Stream       string `json:"stream"`
	ChannelParam string `json:"channel_param"`
	Publish      string `json:"publish,omitempty"`
	Ticket       string `json:"ticket,omitempty"`
	Presence     string `json:"presence,omitempty"`
	Control      string `json:"control,omitempty"`
}

// Stats are the console's live figures: aggregates only, never a channel
// name or a subject, and only for a caller with a valid credential.
type Stats struct {
	Clients         int     `json:"clients"`
	Channels        int     `json:"channels"`
	EventsPerSecond float64 `json:"events_per_second"`
	NATS            string  `json:"nats"`
	JetStream       string  `json:"jetstream"`
	// Latency is the delivery latency histogram of /metrics, for the
	// page's chart: it takes p50 and p99 of the deliveries between two
	// reads from the difference of the counts.
	Latency Latency `json:"latency"`
}

// Latency is a cumulative histogram: Counts[i] deliveries took at most
// LE[i] seconds; Count is all of them, the last bucket being +Inf.
type Latency struct {
	LE     []float64 `json:"le"`
	Counts []uint64  `json:"counts"`
	Count  uint64    `json:"count"`
}

func (h *Console) serveStats(w http.ResponseWriter, r *http.Request) error {
	if e := h.src.Authenticated(r); e != nil {
		e.Write(w)
		return nil
	}
	hl, rate := h.src.Health.Check(r.Context())
	s := Stats{
		Clients:         h.src.Clients(),
		Channels:        h.src.Channels(),
		EventsPerSecond: math.Round(rate*10) / 10,
		NATS:            hl.NATS,
		JetStream:       hl.JetStream,
		Latency:         h.src.latency(),
	}
	w.Header().Set("Cache-Control", "no-store")
	return writeJSON(w, s)
}

// ReadHistogram reads a histogram that the app already keeps for
// /metrics, for the chart.
func ReadHistogram(h prometheus.Histogram) Latency {
	var m dto.Metric
	out := Latency{LE: []float64{}, Counts: []uint64{}}
	if h == nil || h.Write(&m) != nil {
		return out
	}
	for _, b := range m.GetHistogram().GetBucket() {
		out.LE = append(out.LE, b.GetUpperBound())
		out.Counts = append(out.Counts, b.GetCumulativeCount())
	}
	out.Count = m.GetHistogram().GetSampleCount()
	return out
}

func writeJSON(w http.ResponseWriter, v any) error {
	w.Header().Set("Content-Type", "application/json")
	return jsonout.Encode(w, v)
}

package auth

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// ticketHeader carries a scrubbed ticket from ScrubTicket to Admit. A
// header, not a context value, because ScrubTicket cannot replace the
// caller's *http.Request. Caddy snapshots headers for its logs before any
// handler runs, and this header name is not logged by ssegate.
const ticketHeader = "X-Ssegate-Ticket"

// ScrubTicket removes the ticket query parameter from every copy of the
// URI that Caddy or a later handler can still see, and keeps the ticket
// for Admit. Call it first thing in the handler.
//
// Caddy (v2.11.9, modules/caddyhttp/server.go ServeHTTP) clones the
// request for its access and error logs before any handler runs and logs
// that clone's RequestURI lazily; no handler can reach the clone. So when
// a ticket is present ScrubTicket also sets the "log_skip" var, which
// Caddy's logRequest checks at log time, and the handler should write its
// own access line with the scrubbed URI. It also scrubs r.URL (the
// {http.request.uri*} placeholders), r.RequestURI, r.Form, and the *url.URL
// shared with the original-request context value (the
// {http.request.orig_uri.query} placeholders). {http.request.orig_uri}
// holds a string copy that cannot be changed: don't log it.
func ScrubTicket(r *http.Request, param string) {
	r.Header.Del(ticketHeader)
	raw := r.URL.RawQuery
	if param == "" || raw == "" {
		return
	}
	var kept []string
	removed := false
	for pair := range strings.SplitSeq(raw, "&") {
		k, v, _ := strings.Cut(pair, "=")
		dk, err := url.QueryUnescape(k)
		switch {
		case err == nil && !strings.Contains(k, ";") && dk == param:
			// Decoded comparison: "tick%65t=" is the same key to Query().
			if r.Header.Get(ticketHeader) == "" {
				r.Header.Set(ticketHeader, stashable(v))
			}
			removed = true
		case (err != nil || strings.Contains(k, ";")) && strings.Contains(pair, param):
			// url.ParseQuery drops such a pair, but a log would print it.
			removed = true
		default:
			kept = append(kept, pair)
		}
	}
	if !removed {
		return
	}
	scrubbed := strings.Join(kept, "&")
	r.URL.RawQuery = scrubbed
	r.URL.ForceQuery = false
	if i := strings.IndexByte(r.RequestURI, '?'); i >= 0 {
		r.RequestURI = r.RequestURI[:i]
		if scrubbed != "" {
			r.RequestURI += "?" + scrubbed
		}
	}
	if r.Form != nil {
		r.Form.Del(param)
	}
	if or, ok := r.Context().Value(caddyhttp.OriginalRequestCtxKey).(http.Request); ok && or.URL != nil {
		or.URL.RawQuery = scrubbed
		or.URL.ForceQuery = false
	}
	caddyhttp.SetVar(r.Context(), caddyhttp.LogSkipVar, true)
}

// ticketFrom returns the ticket that ScrubTicket stashed, or one still in
// the URL if the handler did not scrub.
func ticketFrom(r *http.Request, param string) (string, bool) {
	if t := r.Header.Get(ticketHeader); t != "" {
		return t, true
	}
	if vals, ok := r.URL.Query()[param]; ok {
		if vals[0] == "" {
			return "-", true
		}
		return vals[0], true
	}
	return "", false
}

// stashable keeps a present but empty or undecodable ticket visible to
// Admit as an invalid credential (401), rather than as no credential.
func stashable(v string) string {
	if tv, err := url.QueryUnescape(v); err == nil && tv != "" {
		return tv
	}
	if v == "" {
		return "-"
	}
	return v
}

// Scrub is ScrubTicket with the Gate's ticket parameter.
func (g *Gate) Scrub(r *http.Request) { ScrubTicket(r, g.s.TicketParam) }

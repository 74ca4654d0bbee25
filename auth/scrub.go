package auth

import (
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// ticketHeader carries a scrubbed ticket from ScrubTicket to Admit, and
// strayHeader the values of ticket-like parameters in any other form. A
// header, not a context value, because ScrubTicket cannot replace the
// caller's *http.Request. Caddy snapshots headers for its logs before any
// handler runs, and these header names are not logged by ssegate.
const (
	ticketHeader = "X-Ssegate-Ticket"
	strayHeader  = "X-Ssegate-Stray-Ticket"
	// maxStray bounds the stray tickets that Admit verifies and spends.
	maxStray = 4
	// unescapeRounds covers double and triple percent-encoding, which
	// some proxies and frameworks undo more than once.
	unescapeRounds = 3
)

// ScrubTicket removes the ticket from every copy of the URI that Caddy or
// a later handler can still see, and keeps it for Admit. Call it first
// thing in the handler.
//
// Only the plain form, one "ticket=" pair (its name may be
// percent-encoded, since url.Query decodes names), is a ticket. Any other
// form that some parser could read as one is scrubbed too and makes the
// request ambiguous, which Admit refuses (400) after spending what it
// holds: the name in another case or encoding, after a ";" (some servers
// split queries and paths on it), after a "#" sent on the wire, with a
// PHP-style "[]" suffix, hidden in another parameter's encoded value, or
// repeated. So a ticket is never both logged and still usable.
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
	r.Header.Del(strayHeader)
	if param == "" {
		return
	}
	var plain, stray []string
	query, qRemoved := scrubQuery(r.URL.RawQuery, param, &plain, &stray)
	path, pRemoved := scrubPath(r.URL.Path, param, &stray)
	if !qRemoved && !pRemoved {
		return
	}
	if len(plain) == 1 && len(stray) == 0 {
		r.Header.Set(ticketHeader, plain[0])
	} else {
		for _, v := range append(plain, stray...)[:min(len(plain)+len(stray), maxStray)] {
			r.Header.Add(strayHeader, v)
		}
	}
	rewriteURI(r, path, pRemoved, query)
	if r.Form != nil {
		r.Form.Del(param)
	}
	caddyhttp.SetVar(r.Context(), caddyhttp.LogSkipVar, true)
}

// scrubQuery drops every "&"-separated pair that holds the ticket in any
// form; plain-form values go to plain, others to stray.
func scrubQuery(raw, param string, plain, stray *[]string) (string, bool) {
	if raw == "" {
		return raw, false
	}
	var kept []string
	removed := false
	for pair := range strings.SplitSeq(raw, "&") {
		k, v, _ := strings.Cut(pair, "=")
		if !strings.ContainsAny(pair, ";#") && lenientUnescape(k) == param {
			*plain = append(*plain, stashable(v))
			removed = true
			continue
		}
		if vals := ticketValues(pair, param); len(vals) > 0 {
			*stray = append(*stray, vals...)
			removed = true
			continue
		}
		kept = append(kept, pair)
	}
	return strings.Join(kept, "&"), removed
}

// scrubPath cuts path parameters (";ticket=…") and a "#" sent on the wire
// off the path when they hold a ticket.
func scrubPath(path, param string, stray *[]string) (string, bool) {
	i := strings.IndexAny(path, ";#")
	if i < 0 {
		return path, false
	}
	vals := ticketValues(path[i:], param)
	if len(vals) == 0 {
		return path, false
	}
	*stray = append(*stray, vals...)
	return path[:i], true
}

// ticketValues reads s the way the loosest parser would: decoded up to
// unescapeRounds times, split on "&", ";" and "#", names compared without
// case, spaces or a "[…]" suffix. It returns the value of every part
// named param ("-" for an empty one).
func ticketValues(s, param string) []string {
	for range unescapeRounds {
		d := lenientUnescape(s)
		if d == s {
			break
		}
		s = d
	}
	var vals []string
	for part := range strings.FieldsFuncSeq(s, func(c rune) bool { return c == '&' || c == ';' || c == '#' }) {
		k, v, _ := strings.Cut(part, "=")
		if i := strings.IndexByte(k, '['); i >= 0 {
			k = k[:i]
		}
		if strings.EqualFold(strings.TrimSpace(k), param) {
			vals = append(vals, stashable(v))
		}
	}
	return vals
}

// lenientUnescape decodes "+" and every valid %XX, and leaves a broken
// escape as it is, where url.QueryUnescape would give up on the whole
// string (and url.ParseQuery drop the pair, which a log would still print).
func lenientUnescape(s string) string {
	if !strings.ContainsAny(s, "%+") {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '+':
			b = append(b, ' ')
		case c == '%' && i+2 < len(s) && ishex(s[i+1]) && ishex(s[i+2]):
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
		default:
			b = append(b, c)
		}
	}
	return string(b)
}

func ishex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

// rewriteURI puts the scrubbed path and query into r.URL, r.RequestURI and
// the original-request URL that Caddy's placeholders read.
func rewriteURI(r *http.Request, path string, pathChanged bool, query string) {
	r.URL.RawQuery = query
	r.URL.ForceQuery = false
	if pathChanged {
		r.URL.Path, r.URL.RawPath = path, ""
	}
	uri := r.URL.EscapedPath()
	if query != "" {
		uri += "?" + query
	}
	r.RequestURI = uri
	if or, ok := r.Context().Value(caddyhttp.OriginalRequestCtxKey).(http.Request); ok && or.URL != nil {
		or.URL.RawQuery = query
		or.URL.ForceQuery = false
		if pathChanged {
			or.URL.Path, or.URL.RawPath = path, ""
		}
	}
}

// ticketFrom returns the ticket that ScrubTicket stashed, or one still in
// the URL if the handler did not scrub. ambiguous holds the ticket-like
// values of a request that carried the ticket in any other form.
func ticketFrom(r *http.Request, param string) (ticket string, ambiguous []string, ok bool) {
	if vs := r.Header.Values(strayHeader); len(vs) > 0 {
		return "", vs, true
	}
	if t := r.Header.Get(ticketHeader); t != "" {
		return t, nil, true
	}
	if vals, ok := r.URL.Query()[param]; ok {
		if vals[0] == "" {
			return "-", nil, true
		}
		return vals[0], nil, true
	}
	return "", nil, false
}

// stashable keeps a present but empty or undecodable ticket visible to
// Admit as an invalid credential (401), rather than as no credential.
func stashable(v string) string {
	if tv := lenientUnescape(v); tv != "" {
		return tv
	}
	return "-"
}

// Scrub is ScrubTicket with the Gate's ticket parameter.
func (g *Gate) Scrub(r *http.Request) { ScrubTicket(r, g.s.TicketParam) }

package auth

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// corsPreflight is what one endpoint allows a cross-origin caller.
type corsPreflight struct {
	methods, headers string
}

var (
	// Fetch-based SSE clients send Authorization and, on resume,
	// Last-Event-ID; neither is CORS-safelisted, so both need a preflight.
	streamPreflight = corsPreflight{methods: "GET", headers: "Authorization, Last-Event-ID, Cache-Control"}
	ticketPreflight = corsPreflight{methods: "POST", headers: "Authorization, Content-Type"}
)

// corsMaxAge lets a browser reuse a preflight answer for 10 minutes.
const corsMaxAge = "600"

// ApplyCORS sets the CORS response headers for r and reports whether r
// may proceed: no Origin, the request's own origin, or a configured
// origin. Listed origins get their exact value echoed with credentials
// allowed; a "*" would make browsers drop the cookie.
func (g *Gate) ApplyCORS(w http.ResponseWriter, r *http.Request) bool {
	h := w.Header()
	h.Add("Vary", "Origin")
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	if g.origins[origin] {
		h.Set("Access-Control-Allow-Origin", origin)
		h.Set("Access-Control-Allow-Credentials", "true")
		return true
	}
	return sameOrigin(origin, r)
}

// sameOrigin compares scheme, host and port, as browsers do: a page on
// https://host is another origin than http://host, and must not mint
// tickets over the plain connection.
func sameOrigin(origin string, r *http.Request) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || u.Path != "" || u.User != nil {
		return false
	}
	scheme := requestScheme(r)
	return strings.EqualFold(u.Scheme, scheme) && strings.EqualFold(withPort(u.Host, scheme), withPort(r.Host, scheme))
}

// requestScheme is the scheme the client used. Behind a proxy that
// terminates TLS the request arrives as http; X-Forwarded-Proto is
// believed only from a proxy in the server's trusted_proxies, as Caddy's
// reverse_proxy does.
func requestScheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	if trusted, _ := caddyhttp.GetVar(r.Context(), caddyhttp.TrustedProxyVarKey).(bool); trusted {
		if p := strings.ToLower(r.Header.Get("X-Forwarded-Proto")); p == "https" || p == "http" {
			return p
		}
	}
	return "http"
}

// withPort makes the default port explicit, so host and host:443 are the
// same origin over https.
func withPort(host, scheme string) string {
	if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") || !strings.Contains(host, ":") {
		if scheme == "https" {
			return host + ":443"
		}
		return host + ":80"
	}
	return host
}

// Preflight answers OPTIONS on the stream endpoint.
func (g *Gate) Preflight(w http.ResponseWriter, r *http.Request) {
	g.preflight(w, r, streamPreflight)
}

// preflight answers a CORS preflight: 204 with the allowed method and
// headers for a configured origin; 204 without CORS headers for the
// request's own origin or a plain OPTIONS; 403 for any other origin, so
// the browser refuses the real request before it is sent.
func (g *Gate) preflight(w http.ResponseWriter, r *http.Request, p corsPreflight) {
	h := w.Header()
	h.Set("Allow", p.methods+", OPTIONS")
	if !g.ApplyCORS(w, r) {
		g.fail(w, r, nil, newError(http.StatusForbidden, CodeOriginForbidden, "origin not allowed"))
		return
	}
	if h.Get("Access-Control-Allow-Origin") != "" {
		h.Add("Vary", "Access-Control-Request-Method")
		h.Add("Vary", "Access-Control-Request-Headers")
		h.Set("Access-Control-Allow-Methods", p.methods)
		h.Set("Access-Control-Allow-Headers", p.headers)
		h.Set("Access-Control-Max-Age", corsMaxAge)
	}
	w.WriteHeader(http.StatusNoContent)
}

package ssegate

import (
	"errors"
	"fmt"
	"net/http"
	"path"
	"strings"
)

// serveFeature serves the optional endpoints: publish, health and the
// console. It reports whether r was one of them.
func (h *Handler) serveFeature(w http.ResponseWriter, r *http.Request) (bool, error) {
	p := r.URL.Path
	switch {
	case h.Publish != nil && p == h.Publish.Path:
		return true, h.servePublish(w, r)
	case h.presence != nil && p == h.presence.Path():
		h.presence.ServeHTTP(w, r)
		return true, nil
	case h.control != nil && h.control.Matches(p):
		h.control.ServeHTTP(w, r)
		return true, nil
	case h.HealthPath != "" && p == h.HealthPath:
		return true, h.serveHealth(w, r)
	case h.ConsolePath != "" && p != h.ConsolePath+consoleStream &&
		(p == h.ConsolePath || strings.HasPrefix(p, h.ConsolePath+"/")):
		return true, h.serveConsole(w, r)
	}
	return false, nil
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
		if h.Publish.Path == "" {
			return errors.New("publish: a path is required")
		}
		if h.Publish.MaxBody < 0 {
			return errors.New("publish: max_body cannot be negative")
		}
		pub = h.Publish.Path
	}
	var pres, ctrl string
	if h.Presence != nil {
		pres = h.Presence.Path
	}
	if h.Control != nil {
		ctrl = h.Control.Path
	}
	return errors.Join(check("publish", pub), check("health", h.HealthPath), check("console", h.ConsolePath),
		check("presence", pres), check("control", ctrl))
}

package auth

import (
	"fmt"
	"net/http"
	"strings"
)

// Caller is who asked, for endpoints other than streams (presence): the
// holder of a bearer token, a cookie or an auth_url session, never of a
// ticket, which is single use and for streams. A nil *Caller is a request
// without credentials.
type Caller struct {
	g *Gate
	p *principal
}

// Caller authenticates r. A request without credentials gets (nil, nil);
// a bad credential is refused, never treated as none.
func (g *Gate) Caller(r *http.Request) (*Caller, *Error) {
	p, e := g.authenticate(r, false)
	if e != nil {
		g.refused(r, p, e)
		return nil, e
	}
	return g.caller(p), nil
}

// Identify is Caller without the refusal's log line and count, for an
// endpoint that tries other credentials when this one fails, and logs
// and counts its own answer.
func (g *Gate) Identify(r *http.Request) (*Caller, *Error) {
	p, e := g.authenticate(r, false)
	if e != nil {
		return nil, e
	}
	return g.caller(p), nil
}

func (g *Gate) caller(p *principal) *Caller {
	if p == nil {
		return nil
	}
	return &Caller{g: g, p: p}
}

// Sub is the caller's subject; "" for nil.
func (c *Caller) Sub() string {
	if c == nil {
		return ""
	}
	return c.p.sub
}

// Presence reports a "presence": true claim.
func (c *Caller) Presence() bool { return c != nil && c.p.presence }

// Control reports a "control": true claim in a bearer JWT. A cookie's
// claim does not count: any page the user visits could send the cookie,
// as the control endpoint says of itself.
func (c *Caller) Control() bool { return c != nil && c.p.control && c.p.via == viaBearer }

// IsPublic reports whether anyone may read ch.
func (g *Gate) IsPublic(ch string) bool { return g.isPublic(ch) }

// MayRead reports whether c may open a stream on ch (a nil caller: a
// public channel).
func (g *Gate) MayRead(c *Caller, ch string) bool {
	return g.isPublic(ch) || c != nil && c.p.allows(ch)
}

// Controllers authorizes control actions: a configured control key, or a
// bearer JWT with "control": true. Never a cookie (any page the user
// visits could send it) and never a ticket.
type Controllers struct{ p *Publishers }

// Controllers resolves and checks control keys, as publish keys are.
func (g *Gate) Controllers(secrets []string) (*Controllers, error) {
	keys := make([]PublishKey, len(secrets))
	for i, s := range secrets {
		keys[i].Secret = s
	}
	p, err := g.Publishers(keys)
	if err != nil {
		return nil, fmt.Errorf("control: %w", err)
	}
	return &Controllers{p: p}, nil
}

// Authorize says who controls: "key:<n>" for a key, else the JWT's sub.
func (c *Controllers) Authorize(r *http.Request) (string, *Error) {
	sub, e := c.authorize(r)
	if e != nil {
		c.p.g.refused(r, &principal{via: viaBearer, sub: sub}, e)
	}
	return sub, e
}

func (c *Controllers) authorize(r *http.Request) (string, *Error) {
	tok, e := c.p.bearer(r, "control")
	if e != nil {
		return "", e
	}
	if k := c.p.matchKey(tok); k != nil {
		return k.name, nil
	}
	cl, _, _, e := c.p.verify(r.Context(), tok)
	if e != nil {
		return "", e
	}
	if cl.TokenUse == tokenUseTicket {
		return cl.Subject, newError(http.StatusUnauthorized, CodeInvalidToken, "a ticket cannot control")
	}
	if !cl.Control {
		return cl.Subject, newError(http.StatusForbidden, CodeForbidden, "the token grants no control (no control claim)")
	}
	return cl.Subject, nil
}

// Key reports, without logging, whether r carries a control key.
func (c *Controllers) Key(r *http.Request) bool {
	h, e := authorization(r)
	scheme, tok, ok := strings.Cut(h, " ")
	return e == nil && ok && strings.EqualFold(scheme, "Bearer") && c.p.matchKey(strings.TrimSpace(tok)) != nil
}

package auth

import (
	"context"
	"net/http"
	"strings"

	"go.uber.org/zap"
)

// authenticate finds the caller's credential. Order: ticket, bearer,
// cookie, auth_url. The first credential present decides: an invalid one
// is refused, never downgraded to anonymous, so a broken login shows up
// as 401 instead of a silently emptier stream. A nil principal with a
// nil error means the request carried no credential at all.
//
// The returned principal may be non-nil alongside an error, to name the
// credential kind (and sub, when known) in the log.
func (g *Gate) authenticate(r *http.Request, allowTicket bool) (*principal, *Error) {
	ctx := r.Context()
	// Before any credential, and with bearer tokens off too: the header
	// may still reach an auth_url or a proxy in front.
	h, e := authorization(r)
	if e != nil {
		return &principal{via: viaBearer}, e
	}
	if allowTicket {
		t, ambiguous, ok := ticketFrom(r, g.s.TicketParam)
		if len(ambiguous) > 0 {
			return &principal{via: viaTicket}, g.spendStray(ctx, ambiguous)
		}
		if ok {
			return g.fromJWT(ctx, t, viaTicket)
		}
	}
	if !g.s.DisableBearer {
		if scheme, tok, ok := strings.Cut(h, " "); ok && strings.EqualFold(scheme, "Bearer") {
			return g.fromJWT(ctx, strings.TrimSpace(tok), viaBearer)
		}
	}
	if !g.s.DisableCookie {
		if c, err := r.Cookie(g.s.Cookie); err == nil {
			return g.fromJWT(ctx, c.Value, viaCookie)
		}
	}
	if g.callout != nil {
		if fwd, key, present := g.callout.credentials(r); present {
			return g.fromCallout(ctx, fwd, key)
		}
	}
	return nil, nil
}

// authorization is the request's Authorization header. Two of them are
// refused, whatever they hold: a proxy in front may have read the other.
func authorization(r *http.Request) (string, *Error) {
	vals := r.Header.Values("Authorization")
	if len(vals) > 1 {
		return "", newError(http.StatusBadRequest, CodeBadRequest, "more than one Authorization header")
	}
	if len(vals) == 0 {
		return "", nil
	}
	return vals[0], nil
}

func (g *Gate) fromJWT(ctx context.Context, tok string, via credKind) (*principal, *Error) {
	p := &principal{via: via}
	c, e := g.verifier.verify(ctx, tok)
	if e != nil {
		if via == viaTicket && e.Code == CodeInvalidToken {
			e.Code = CodeTicketInvalid
		}
		return p, e
	}
	p.sub = c.Subject
	p.jti, p.iat = c.credential()
	p.presence, p.control = c.Presence, c.Control
	if e := g.checkRevoked(c); e != nil {
		return p, e
	}
	if via == viaTicket {
		if e := g.checkTicket(c); e != nil {
			return p, e
		}
		p.ticket = c
		if c.StreamExp != nil {
			p.expires = c.StreamExp.Time
		}
	} else {
		if c.TokenUse == tokenUseTicket {
			return p, newError(http.StatusUnauthorized, CodeInvalidToken, "a ticket is only accepted once, as the ticket parameter")
		}
		p.expires = c.ExpiresAt.Time
	}
	p.patterns = g.compile(c.Channels, c.Subject)
	return p, nil
}

// spendStray refuses a request that carried its ticket in a form other
// than one plain "ticket=" pair, and spends every genuine ticket in it:
// another parser (a proxy's log, a backend) may have read it, so it must
// not stay usable. Values that do not verify cost no KV write.
func (g *Gate) spendStray(ctx context.Context, vals []string) *Error {
	for _, v := range vals {
		if c, e := g.verifier.verify(ctx, v); e == nil && g.checkTicket(c) == nil {
			_ = g.redeem(ctx, c) // a used one is already spent; a store failure is logged
		}
	}
	return newError(http.StatusBadRequest, CodeBadRequest, "a ticket must be sent once, as a plain ticket= query parameter; it is now spent")
}

// checkRevoked refuses a credential that control revoked.
func (g *Gate) checkRevoked(c *claims) *Error {
	if g.revoked == nil {
		return nil
	}
	if jti, iat := c.credential(); g.revoked(c.Subject, jti, iat) {
		return newError(http.StatusUnauthorized, CodeTokenRevoked, "the credential was revoked")
	}
	return nil
}

func (g *Gate) checkTicket(c *claims) *Error {
	bad := func(d string) *Error { return newError(http.StatusUnauthorized, CodeTicketInvalid, d) }
	switch {
	case c.ID == "":
		return bad("ticket has no jti")
	case c.IssuedAt == nil:
		return bad("ticket has no iat")
	case c.ExpiresAt.Sub(c.IssuedAt.Time) > g.s.ticketMax:
		return bad("ticket lifetime exceeds the allowed maximum")
	case c.TokenUse != "" && c.TokenUse != tokenUseTicket:
		return bad("token_use is not ticket")
	}
	return nil
}

func (g *Gate) fromCallout(ctx context.Context, fwd http.Header, key [32]byte) (*principal, *Error) {
	p := &principal{via: viaCallout}
	res, e := g.callout.ask(ctx, fwd, key)
	if e != nil {
		return p, e
	}
	if res.deny != nil {
		d := *res.deny
		return p, &d
	}
	p.sub, p.expires = res.sub, res.expires
	p.patterns = g.compile(res.channels, res.sub)
	return p, nil
}

// compile expands {sub} and drops patterns that don't parse. Dropping
// narrows access, so a bad pattern can never grant more than intended.
func (g *Gate) compile(raw []string, sub string) []pattern {
	ps, dropped := compilePatterns(raw, sub)
	if len(dropped) > 0 {
		g.log.Info("ignored invalid channel patterns", zap.String("sub", sub), zap.Strings("patterns", dropped))
	}
	return ps
}

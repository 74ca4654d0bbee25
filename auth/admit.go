package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"go.uber.org/zap"
)

// principal is an authenticated caller. A nil *principal is "no
// credentials at all", which may still read public channels.
type principal struct {
	sub      string
	via      credKind
	patterns []pattern
	expires  time.Time
	ticket   *claims
	// jti and iat are the credential's (see claims.credential).
	jti      string
	iat      time.Time
	presence bool
	control  bool
}

// streamEnd is when a stream admitted with p must end: the last moment
// its credential would still verify. A JWT verifies until exp+leeway, so
// a stream ending at exp would admit a token inside its leeway and end it
// at once, and the client would reconnect in a loop until the leeway ran
// out. auth_url expiries are on our own clock and get no leeway.
func (p *principal) streamEnd(leeway time.Duration) time.Time {
	if p.expires.IsZero() || p.via == viaCallout {
		return p.expires
	}
	return p.expires.Add(leeway)
}

func (p *principal) allows(ch string) bool {
	for _, pt := range p.patterns {
		if pt.matches(ch) {
			return true
		}
	}
	return false
}

// Admit authenticates r and authorizes the requested channels; see the
// package README for the order of credentials and the codes returned.
func (g *Gate) Admit(r *http.Request, requested []string) (*Admission, *Error) {
	a, p, e := g.admit(r, requested)
	if e != nil {
		g.refused(r, p, e)
		return nil, e
	}
	return a, nil
}

func (g *Gate) admit(r *http.Request, requested []string) (*Admission, *principal, *Error) {
	for _, ch := range requested {
		if !ValidChannel(ch) {
			return nil, nil, InvalidChannel(ch)
		}
	}
	if e := g.checkChannelCount(len(requested)); e != nil {
		return nil, nil, e
	}
	p, e := g.authenticate(r, true)
	if e == nil {
		var channels []string
		if channels, e = g.authorize(p, requested); e == nil {
			var a *Admission
			if a, e = g.grant(r, p, channels); e == nil {
				return a, p, nil
			}
		}
	}
	// Anyone may read public channels, so for a request naming only those
	// a credential that fails, or an auth_url or ticket store that cannot
	// answer, must not become a status that an EventSource gives up on
	// for good: the stream goes on as anonymous. Limits and a malformed
	// request still refuse.
	if p == nil || !g.allPublic(requested) || e.Status == http.StatusTooManyRequests || e.Status == http.StatusBadRequest {
		return nil, p, e
	}
	g.ignored(r, p, e)
	a, e := g.grant(r, nil, requested)
	return a, nil, e
}

// authorize checks each channel against the public patterns and p's; with
// none requested, the stream gets p's concrete channels.
func (g *Gate) authorize(p *principal, requested []string) ([]string, *Error) {
	channels := requested
	if len(channels) == 0 {
		// Only a credential names channels; an anonymous request must say
		// which public channels it wants.
		if p != nil {
			channels = p.concreteChannels()
		}
		if len(channels) == 0 {
			return nil, newError(http.StatusBadRequest, CodeNoChannel, "no channel requested and the credential names no concrete channel")
		}
	}
	for _, ch := range channels {
		if g.isPublic(ch) || p != nil && p.allows(ch) {
			continue
		}
		if p == nil {
			return nil, newError(http.StatusUnauthorized, CodeUnauthenticated, fmt.Sprintf("channel %q needs credentials", ch))
		}
		return nil, newError(http.StatusForbidden, CodeChannelForbidden, fmt.Sprintf("channel %q is not permitted", ch))
	}
	return channels, g.checkChannelCount(len(channels))
}

// grant takes a connection slot and, last, redeems p's ticket: a request
// refused for any other reason leaves the ticket unspent and costs no KV
// write.
func (g *Gate) grant(r *http.Request, p *principal, channels []string) (*Admission, *Error) {
	sub, via := "", viaAnonymous
	var expires, iat time.Time
	var jti string
	if p != nil {
		sub, via, expires, jti, iat = p.sub, p.via, p.streamEnd(g.s.leeway), p.jti, p.iat
	}
	release, ok := g.limits.acquire(sub, clientAddress(r))
	if !ok {
		return nil, newError(http.StatusTooManyRequests, CodeTooManyConnections, "too many concurrent connections")
	}
	if p != nil && p.ticket != nil {
		if e := g.redeem(r.Context(), p.ticket); e != nil {
			release()
			return nil, e
		}
	}
	g.log.Debug("admitted", zap.String("via", string(via)), zap.String("sub", sub), zap.Strings("channels", channels))
	return &Admission{Subject: sub, Channels: channels, Expires: expires, JTI: jti, IssuedAt: iat, Release: release}, nil
}

// concreteChannels are the channels a stream gets when the request names
// none: the credential's patterns without wildcards.
func (p *principal) concreteChannels() []string {
	var out []string
	for _, pt := range p.patterns {
		if pt.concrete() {
			out = append(out, pt.raw)
		}
	}
	return out
}

// checkChannelCount is the one bound on the channels of a stream, applied
// when a stream is opened and when a ticket for one is minted.
func (g *Gate) checkChannelCount(n int) *Error {
	if g.maxChannels > 0 && n > g.maxChannels {
		return newError(http.StatusBadRequest, CodeTooManyChannels, fmt.Sprintf("%d channels; at most %d per stream", n, g.maxChannels))
	}
	return nil
}

// allPublic reports whether the request names channels and all of them
// are public.
func (g *Gate) allPublic(requested []string) bool {
	for _, ch := range requested {
		if !g.isPublic(ch) {
			return false
		}
	}
	return len(requested) > 0
}

func (g *Gate) isPublic(ch string) bool {
	for _, pt := range g.public {
		if pt.matches(ch) {
			return true
		}
	}
	return false
}

func (g *Gate) redeem(ctx context.Context, c *claims) *Error {
	ttl := c.ExpiresAt.Add(g.s.leeway).Sub(g.now())
	err := g.tickets.redeem(ctx, c.ID, ttl)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errTicketUsed):
		return newError(http.StatusUnauthorized, CodeTicketUsed, "ticket was already used; fetch a new one")
	}
	g.log.Warn("ticket store unavailable", zap.String("error", err.Error()))
	return newError(http.StatusServiceUnavailable, CodeTicketStoreUnavailable, "ticket store unavailable, try again later")
}

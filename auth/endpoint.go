package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"
)

const maxTicketBody = 16 << 10

// IsTicketPath reports whether r is for the ticket endpoint.
func (g *Gate) IsTicketPath(r *http.Request) bool {
	return g.s.TicketPath != "" && r.URL.Path == g.s.TicketPath
}

// ServeTicket mints a short single-use ticket for the caller, who
// authenticates with a cookie, a bearer token or auth_url (not with a
// ticket: a ticket must not beget tickets beyond its one use).
func (g *Gate) ServeTicket(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	switch r.Method {
	case http.MethodOptions:
		g.preflight(w, r, ticketPreflight)
		return
	case http.MethodPost:
	default:
		h.Set("Allow", "POST, OPTIONS")
		g.fail(w, r, nil, newError(http.StatusMethodNotAllowed, CodeMethodNotAllowed, "use POST"))
		return
	}
	if !g.ApplyCORS(w, r) {
		g.fail(w, r, nil, newError(http.StatusForbidden, CodeOriginForbidden, "origin not allowed"))
		return
	}
	p, e := g.authenticate(r, false)
	if e == nil && p == nil {
		e = newError(http.StatusUnauthorized, CodeUnauthenticated, "a cookie or bearer token is required")
	}
	if e != nil {
		g.fail(w, r, p, e)
		return
	}
	requested, e := ticketChannels(r)
	if e != nil {
		g.fail(w, r, p, e)
		return
	}
	var channels []string
	for _, ch := range requested {
		if !p.allows(ch) && !g.isPublic(ch) {
			g.fail(w, r, p, newError(http.StatusForbidden, CodeChannelForbidden, fmt.Sprintf("channel %q is not permitted", ch)))
			return
		}
		channels = append(channels, ch)
	}
	// Redemption applies the channel bound to the request's channels, or
	// without any to the ticket's concrete ones: refuse here what it would.
	counted := len(requested)
	if len(requested) == 0 {
		for _, pt := range p.patterns {
			channels = append(channels, pt.raw)
		}
		counted = len(p.concreteChannels())
	}
	if len(channels) == 0 {
		g.fail(w, r, p, newError(http.StatusBadRequest, CodeNoChannel, "the credential names no channel"))
		return
	}
	if e := g.checkChannelCount(counted); e != nil {
		g.fail(w, r, p, e)
		return
	}
	now := g.now()
	life := g.s.ticketLife
	if !p.expires.IsZero() {
		life = min(life, p.expires.Sub(now))
	}
	if life < time.Second {
		g.fail(w, r, p, newError(http.StatusUnauthorized, CodeTokenExpired, "credential expires too soon to mint a ticket"))
		return
	}
	tok, err := g.signer.mint(mintRequest{
		sub: p.sub, channels: channels, now: now, life: life, streamExp: p.expires,
		audience: g.s.Audience, issuer: g.s.Issuer,
	})
	if err != nil {
		g.log.Error("minting ticket failed", zap.String("error", err.Error()))
		g.fail(w, r, p, newError(http.StatusServiceUnavailable, CodeAuthUnavailable, "could not mint a ticket"))
		return
	}
	if e := g.verifier.checkSize(tok); e != nil {
		g.fail(w, r, p, e)
		return
	}
	g.log.Debug("ticket minted", zap.String("sub", p.sub), zap.String("via", string(p.via)), zap.Strings("channels", channels))
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	_ = json.NewEncoder(w).Encode(struct {
		Ticket    string `json:"ticket"`
		ExpiresIn int64  `json:"expires_in"`
	}{tok, int64(life.Round(time.Second) / time.Second)})
}

func (g *Gate) fail(w http.ResponseWriter, r *http.Request, p *principal, e *Error) {
	g.refused(r, p, e)
	e.Write(w)
}

// ticketChannels reads ?channel=a&channel=b and a JSON {"channels": [...]}.
func ticketChannels(r *http.Request) ([]string, *Error) {
	chans := r.URL.Query()["channel"]
	if r.Body != nil && r.Body != http.NoBody {
		body, err := io.ReadAll(io.LimitReader(r.Body, maxTicketBody+1))
		if err != nil {
			return nil, newError(http.StatusBadRequest, CodeBadRequest, "could not read body")
		}
		if len(body) > maxTicketBody {
			return nil, newError(http.StatusBadRequest, CodeBadRequest, "body too large")
		}
		if len(strings.TrimSpace(string(body))) > 0 {
			var b struct {
				Channels []string `json:"channels"`
			}
			if err := json.Unmarshal(body, &b); err != nil {
				var se *json.SyntaxError
				detail := "body is not {\"channels\": [...]} JSON"
				if errors.As(err, &se) {
					detail = "body is not valid JSON"
				}
				return nil, newError(http.StatusBadRequest, CodeBadRequest, detail)
			}
			chans = append(chans, b.Channels...)
		}
	}
	for _, ch := range chans {
		if !ValidChannel(ch) {
			return nil, newError(http.StatusBadRequest, CodeInvalidChannel, fmt.Sprintf("invalid channel name %q", clip(ch)))
		}
	}
	return chans, nil
}

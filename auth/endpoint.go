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
	if DeclaredOver(w, r, maxTicketBody) {
		g.fail(w, r, p, errTicketBodyTooLarge())
		return
	}
	tok, life, e := g.mintFor(r, p)
	if e != nil {
		g.fail(w, r, p, e)
		return
	}
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	_ = json.NewEncoder(w).Encode(struct {
		Ticket    string `json:"ticket"`
		ExpiresIn int64  `json:"expires_in"`
	}{tok, int64(life.Round(time.Second) / time.Second)})
}

// mintFor mints p's ticket for the channels r asks for. It refuses, with
// redemption's codes, any ticket that redemption would refuse whatever
// the stream request: more channels than a stream may carry, or a token
// over max_token_bytes.
func (g *Gate) mintFor(r *http.Request, p *principal) (string, time.Duration, *Error) {
	requested, e := ticketChannels(r)
	if e != nil {
		return "", 0, e
	}
	for _, ch := range requested {
		if !p.allows(ch) && !g.isPublic(ch) {
			return "", 0, newError(http.StatusForbidden, CodeChannelForbidden, fmt.Sprintf("channel %q is not permitted", ch))
		}
	}
	channels, counted := requested, len(requested)
	if len(requested) == 0 {
		// The ticket carries every pattern; a stream opened without
		// channels gets the concrete ones.
		for _, pt := range p.patterns {
			channels = append(channels, pt.raw)
		}
		counted = len(p.concreteChannels())
	}
	if len(channels) == 0 {
		return "", 0, newError(http.StatusBadRequest, CodeNoChannel, "the credential names no channel")
	}
	if e := g.checkChannelCount(counted); e != nil {
		return "", 0, e
	}
	now := g.now()
	life := g.s.ticketLife
	if !p.expires.IsZero() {
		life = min(life, p.expires.Sub(now))
	}
	if life < time.Second {
		return "", 0, newError(http.StatusUnauthorized, CodeTokenExpired, "credential expires too soon to mint a ticket")
	}
	tok, err := g.signer.mint(mintRequest{
		sub: p.sub, channels: channels, now: now, life: life, streamExp: p.expires,
		audience: g.s.Audience, issuer: g.s.Issuer, credJTI: p.jti, credIAT: p.iat,
	})
	if err != nil {
		g.log.Error("minting ticket failed", zap.String("error", err.Error()))
		return "", 0, newError(http.StatusServiceUnavailable, CodeAuthUnavailable, "could not mint a ticket")
	}
	if e := g.verifier.checkSize(tok); e != nil {
		return "", 0, e
	}
	g.log.Debug("ticket minted", zap.String("sub", p.sub), zap.String("via", string(p.via)), zap.Strings("channels", channels))
	return tok, life, nil
}

func (g *Gate) fail(w http.ResponseWriter, r *http.Request, p *principal, e *Error) {
	g.refused(r, p, e)
	e.Write(w)
}

func errTicketBodyTooLarge() *Error {
	return newError(http.StatusRequestEntityTooLarge, CodeBodyTooLarge, "a ticket request's body is at most 16 KiB")
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
			return nil, errTicketBodyTooLarge()
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
			return nil, InvalidChannel(ch)
		}
	}
	return chans, nil
}

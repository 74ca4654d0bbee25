package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// Gate authenticates and authorizes SSE requests. It is built once per
// config load and is safe for concurrent use.
type Gate struct {
	s        settings
	log      *zap.Logger
	now      func() time.Time
	verifier *verifier
	jwks     *jwksKeys
	signer   *signer
	tickets  *ticketStore
	callout  *callout
	limits   *limiter
	// maxChannels bounds the channels of one stream; 0: no bound.
	maxChannels int
	public      []pattern
	origins     map[string]bool
}

// Admission is a granted stream. Release must be called when the stream
// ends; it is safe to call more than once.
type Admission struct {
	// Subject is the principal's sub; "" for an anonymous reader of
	// public channels.
	Subject  string
	Channels []string
	// Expires is when the credential ends; zero if it does not. The
	// handler ends the stream then, with a retry hint.
	Expires time.Time
	Release func()
}

// Option configures a Gate.
type Option func(*options)

type options struct {
	maxChannels int
	log         *zap.Logger
	js          func(context.Context) (jetstream.JetStream, error)
	hc          *http.Client
	now         func() time.Time
}

// WithMaxChannels refuses (400 too_many_channels) a stream of more than n
// channels, counting those a credential names when none are requested;
// the check comes before a ticket is spent.
func WithMaxChannels(n int) Option { return func(o *options) { o.maxChannels = n } }

// WithLogger sets the logger; the Gate never logs a credential.
func WithLogger(l *zap.Logger) Option { return func(o *options) { o.log = l } }

// WithJetStream gives the Gate a way to reach JetStream once NATS is up,
// for ticket redemption. It is called lazily, never by NewGate.
func WithJetStream(f func(context.Context) (jetstream.JetStream, error)) Option {
	return func(o *options) { o.js = f }
}

// WithHTTPClient sets the client for JWKS fetches and auth_url callouts.
func WithHTTPClient(c *http.Client) Option { return func(o *options) { o.hc = c } }

// WithClock replaces time.Now, for tests.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// NewGate checks cfg and loads its keys. It does not dial NATS, and JWKS
// are fetched in the background, so "caddy validate" works offline.
func NewGate(cfg Config, opts ...Option) (*Gate, error) {
	o := options{log: zap.NewNop(), now: time.Now}
	for _, f := range opts {
		f(&o)
	}
	if o.hc == nil {
		o.hc = &http.Client{Timeout: 10 * time.Second}
	}
	s, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	g := &Gate{s: s, log: o.log, now: o.now, maxChannels: o.maxChannels, limits: newLimiter(s.MaxConnections, s.MaxConnectionsPerSubject)}

	var static []verifyKey
	for i, k := range s.HMACKeys {
		vk, err := loadHMAC(k)
		if err != nil {
			return nil, fmt.Errorf("auth: hmac key %d: %w", i, err)
		}
		static = append(static, vk)
		if g.signer == nil {
			g.signer = &signer{method: jwt.GetSigningMethod(vk.alg), kid: vk.kid, key: vk.key}
		}
	}
	for i, k := range s.PublicKeys {
		vk, err := loadPublic(k)
		if err != nil {
			return nil, fmt.Errorf("auth: public key %d: %w", i, err)
		}
		static = append(static, vk)
	}
	if s.TicketSigningKey != nil {
		sg, vk, err := loadSigning(*s.TicketSigningKey)
		if err != nil {
			return nil, fmt.Errorf("auth: ticket_signing_key: %w", err)
		}
		g.signer = &sg
		static = append(static, vk)
	}
	if len(static) == 0 && len(s.JWKS) == 0 && s.AuthURL == nil && len(s.Public) == 0 {
		return nil, errors.New("auth: no keys, auth_url or public channels: nothing could ever be admitted")
	}
	if s.TicketPath != "" && g.signer == nil {
		return nil, errors.New("auth: ticket_path needs an hmac key or ticket_signing_key to sign tickets")
	}
	for _, p := range s.Public {
		cp, err := parsePattern(p)
		if err != nil {
			return nil, fmt.Errorf("auth: public pattern %q: %w", p, err)
		}
		g.public = append(g.public, cp)
	}
	g.origins = map[string]bool{}
	for _, o := range s.CORSOrigins {
		g.origins[o] = true
	}
	if g.jwks, err = newJWKS(s.JWKS, o.hc, o.log); err != nil {
		return nil, fmt.Errorf("auth: jwks: %w", err)
	}
	g.verifier = newVerifier(s, static, g.jwks, o.now)
	g.tickets = newTicketStore(o.js, s.TicketBucket, s.ticketMax, s.leeway)
	if s.AuthURL != nil {
		g.callout = newCallout(*s.AuthURL, s.calloutTimeout, s.calloutTTL, o.hc, o.now, o.log)
	}
	return g, nil
}

// Close stops the JWKS refresher.
func (g *Gate) Close() error {
	if g.jwks != nil {
		g.jwks.close()
	}
	return nil
}

// principal is an authenticated caller. A nil *principal is "no
// credentials at all", which may still read public channels.
type principal struct {
	sub      string
	via      credKind
	patterns []pattern
	expires  time.Time
	ticket   *claims
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
			return nil, nil, newError(http.StatusBadRequest, CodeInvalidChannel, fmt.Sprintf("invalid channel name %q", clip(ch)))
		}
	}
	p, e := g.authenticate(r, true)
	if e != nil {
		return nil, p, e
	}
	via := viaAnonymous
	if p != nil {
		via = p.via
	}
	channels := requested
	if len(channels) == 0 {
		// Only a credential names channels; an anonymous request must say
		// which public channels it wants.
		if p != nil {
			for _, pt := range p.patterns {
				if pt.concrete() {
					channels = append(channels, pt.raw)
				}
			}
		}
		if len(channels) == 0 {
			return nil, p, newError(http.StatusBadRequest, CodeNoChannel, "no channel requested and the credential names no concrete channel")
		}
	}
	for _, ch := range channels {
		if g.isPublic(ch) || p != nil && p.allows(ch) {
			continue
		}
		if p == nil {
			return nil, p, newError(http.StatusUnauthorized, CodeUnauthenticated, fmt.Sprintf("channel %q needs credentials", ch))
		}
		return nil, p, newError(http.StatusForbidden, CodeChannelForbidden, fmt.Sprintf("channel %q is not permitted", ch))
	}
	sub := ""
	var expires time.Time
	if p != nil {
		sub, expires = p.sub, p.expires
	}
	if g.maxChannels > 0 && len(channels) > g.maxChannels {
		return nil, p, newError(http.StatusBadRequest, CodeTooManyChannels, fmt.Sprintf("%d channels; at most %d per stream", len(channels), g.maxChannels))
	}
	release, ok := g.limits.acquire(sub)
	if !ok {
		return nil, p, newError(http.StatusTooManyRequests, CodeTooManyConnections, "too many concurrent connections")
	}
	// Redeem last: a request refused for any other reason leaves the
	// ticket unspent and costs no KV write.
	if p != nil && p.ticket != nil {
		if e := g.redeem(r.Context(), p.ticket); e != nil {
			release()
			return nil, p, e
		}
	}
	g.log.Debug("admitted", zap.String("via", string(via)), zap.String("sub", sub), zap.Strings("channels", channels))
	return &Admission{Subject: sub, Channels: channels, Expires: expires, Release: release}, p, nil
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

// refused logs a refusal. Only fixed texts, codes and the subject are
// logged, never credentials; the path is logged without its query.
func (g *Gate) refused(r *http.Request, p *principal, e *Error) {
	via := viaAnonymous
	if p != nil {
		via = p.via
	}
	lvl := g.log.Info
	if e.Status >= 500 {
		lvl = g.log.Warn
	}
	fields := []zap.Field{
		zap.Int("status", e.Status),
		zap.String("code", e.Code),
		zap.String("detail", e.Detail),
		zap.String("via", string(via)),
		zap.String("remote", r.RemoteAddr),
		zap.String("path", r.URL.Path),
	}
	if p != nil && p.sub != "" {
		fields = append(fields, zap.String("sub", p.sub))
	}
	lvl("auth refused", fields...)
}

// clip keeps a caller-supplied name short in a detail.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}

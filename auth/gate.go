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
	revoked  func(sub, jti string, iat time.Time) bool
	refusals func(code string) // nil: not counted
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
	// JTI and IssuedAt are the credential's (for a ticket, those of the
	// credential that minted it), for control's disconnects.
	JTI      string
	IssuedAt time.Time
	Release  func()
}

// Option configures a Gate.
type Option func(*options)

type options struct {
	maxChannels int
	log         *zap.Logger
	js          func(context.Context) (jetstream.JetStream, error)
	hc          *http.Client
	now         func() time.Time
	revoked     func(sub, jti string, iat time.Time) bool
	refusals    func(code string)
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

// WithRevocations refuses (401 token_revoked) every JWT credential, and
// every ticket minted from one, for which revoked answers true. It is
// asked on every request, so it must answer from memory.
func WithRevocations(revoked func(sub, jti string, iat time.Time) bool) Option {
	return func(o *options) { o.revoked = revoked }
}

// WithRefusals has every refusal the Gate answers counted by its code:
// streams, tickets, publishing and the console alike.
func WithRefusals(count func(code string)) Option { return func(o *options) { o.refusals = count } }

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
	g := &Gate{s: s, log: o.log, now: o.now, maxChannels: o.maxChannels, revoked: o.revoked, refusals: o.refusals,
		limits: newLimiter(s.MaxConnections, s.MaxConnectionsPerSubject, s.MaxAnonymousConnectionsPerAddress)}
	static, err := g.loadKeys()
	if err != nil {
		return nil, err
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

// loadKeys loads the static verification keys and picks the ticket
// signer: the ticket signing key, or else the first HMAC key.
func (g *Gate) loadKeys() ([]verifyKey, error) {
	var static []verifyKey
	for i, k := range g.s.HMACKeys {
		vk, err := loadHMAC(k)
		if err != nil {
			return nil, fmt.Errorf("auth: hmac key %d: %w", i, err)
		}
		static = append(static, vk)
		if g.signer == nil {
			g.signer = &signer{method: jwt.GetSigningMethod(vk.alg), kid: vk.kid, key: vk.key}
		}
	}
	for i, k := range g.s.PublicKeys {
		vk, err := loadPublic(k)
		if err != nil {
			return nil, fmt.Errorf("auth: public key %d: %w", i, err)
		}
		static = append(static, vk)
	}
	if g.s.TicketSigningKey != nil {
		sg, vk, err := loadSigning(*g.s.TicketSigningKey)
		if err != nil {
			return nil, fmt.Errorf("auth: ticket_signing_key: %w", err)
		}
		g.signer = &sg
		static = append(static, vk)
	}
	return static, nil
}

// Close stops the JWKS refresher.
func (g *Gate) Close() error {
	if g.jwks != nil {
		g.jwks.close()
	}
	return nil
}

// refused logs a refusal. Only fixed texts, codes and the subject are
// logged, never credentials; the path is logged without its query.
func (g *Gate) refused(r *http.Request, p *principal, e *Error) {
	if g.refusals != nil {
		g.refusals(e.Code)
	}
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

// ignored logs a credential refused on a request for public channels
// only, which is then served as anonymous.
func (g *Gate) ignored(r *http.Request, p *principal, e *Error) {
	fields := []zap.Field{
		zap.String("code", e.Code),
		zap.String("via", string(p.via)),
		zap.String("remote", r.RemoteAddr),
		zap.String("path", r.URL.Path),
	}
	if p.sub != "" {
		fields = append(fields, zap.String("sub", p.sub))
	}
	g.log.Info("credential ignored for public channels", fields...)
}

// clip keeps a caller-supplied name short in a detail.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}

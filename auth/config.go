package auth

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// Config is the "auth" object of the ssegate handler. Secrets and paths may
// hold Caddy placeholders such as {env.SSEGATE_JWT_SECRET}; they are
// resolved by NewGate so that the adapted JSON never holds the secret.
type Config struct {
	// HMACKeys verify HS256/384/512 tokens. The first one also signs
	// tickets unless TicketSigningKey is set.
	HMACKeys []HMACKey `json:"hmac_keys,omitempty"`
	// PublicKeys verify RS*, PS*, ES* and EdDSA tokens.
	PublicKeys []PublicKey `json:"public_keys,omitempty"`
	// JWKS are key sets fetched over HTTPS, cached and refreshed.
	JWKS []JWKSSource `json:"jwks,omitempty"`

	// Audience, when set, requires the token's aud to hold one of these.
	Audience []string `json:"audience,omitempty"`
	// Issuer, when set, requires the token's iss to equal it.
	Issuer string `json:"issuer,omitempty"`
	// Leeway tolerates clock skew on exp, nbf and iat. Default 10s.
	Leeway caddy.Duration `json:"leeway,omitempty"`
	// MaxTokenBytes refuses longer credentials before parsing. Default 4096.
	MaxTokenBytes int `json:"max_token_bytes,omitempty"`

	// Cookie names the cookie holding a JWT. Default "ssegate_token".
	Cookie        string `json:"cookie,omitempty"`
	DisableCookie bool   `json:"disable_cookie,omitempty"`
	// DisableBearer ignores "Authorization: Bearer"; useful when that header
	// carries an opaque token meant for AuthURL.
	DisableBearer bool `json:"disable_bearer,omitempty"`

	// Public patterns are readable by anyone, with or without credentials.
	Public []string `json:"public,omitempty"`

	// TicketParam is the query parameter carrying a ticket. Default "ticket".
	TicketParam string `json:"ticket_param,omitempty"`
	// TicketBucket is the NATS KV bucket recording redeemed tickets.
	// Default "ssegate_tickets".
	TicketBucket string `json:"ticket_bucket,omitempty"`
	// TicketMaxLifetime caps exp-iat of any ticket accepted. Default 60s.
	TicketMaxLifetime caddy.Duration `json:"ticket_max_lifetime,omitempty"`
	// TicketLifetime is the lifetime of tickets minted at TicketPath.
	// Default 30s, at most TicketMaxLifetime.
	TicketLifetime caddy.Duration `json:"ticket_lifetime,omitempty"`
	// TicketPath enables the ticket endpoint (POST) at this exact path.
	TicketPath string `json:"ticket_path,omitempty"`
	// TicketSigningKey is a private key for minting tickets; its public half
	// is added to the verification keys.
	TicketSigningKey *SigningKey `json:"ticket_signing_key,omitempty"`
	// CORSOrigins are the exact origins allowed to call the ticket endpoint
	// (and the stream) with credentials.
	CORSOrigins []string `json:"cors_origins,omitempty"`

	// MaxConnections caps concurrent admissions on this Gate; 0 = no cap.
	MaxConnections int `json:"max_connections,omitempty"`
	// MaxConnectionsPerSubject caps concurrent admissions per sub; 0 = no cap.
	MaxConnectionsPerSubject int `json:"max_connections_per_subject,omitempty"`

	// AuthURL asks a backend about requests that carry no JWT.
	AuthURL *Callout `json:"auth_url,omitempty"`
}

// HMACKey is a shared secret pinned to one HS algorithm.
type HMACKey struct {
	Secret string `json:"secret"`
	Alg    string `json:"alg,omitempty"` // default HS256
	KID    string `json:"kid,omitempty"`
}

// PublicKey is a PEM public key or certificate pinned to one algorithm.
type PublicKey struct {
	// Key is a file path or the PEM text itself.
	Key string `json:"key"`
	Alg string `json:"alg"`
	KID string `json:"kid,omitempty"`
}

// SigningKey is a PEM private key pinned to one asymmetric algorithm.
type SigningKey struct {
	Key string `json:"key"`
	Alg string `json:"alg"`
	KID string `json:"kid,omitempty"`
}

// JWKSSource is a remote key set.
type JWKSSource struct {
	URL string `json:"url"`
	// Refresh is the background refresh interval. Default 15m.
	Refresh caddy.Duration `json:"refresh,omitempty"`
	// Algs are accepted for keys that do not name their own alg.
	// Default: RS256 PS256 ES256 ES384 ES512 EdDSA.
	Algs []string `json:"algs,omitempty"`
}

// Callout is an HTTP backend that turns opaque session cookies into a
// principal: GET URL with the forwarded headers, 200 JSON
// {"sub": "...", "channels": [...], "expires_in": N}.
type Callout struct {
	URL string `json:"url"`
	// ForwardHeaders default to Cookie and Authorization.
	ForwardHeaders []string `json:"forward_headers,omitempty"`
	// Timeout defaults to 2s.
	Timeout caddy.Duration `json:"timeout,omitempty"`
	// CacheTTL defaults to 5s; negative disables caching.
	CacheTTL caddy.Duration `json:"cache_ttl,omitempty"`
	// CacheSize bounds the cache entries. Default 10000.
	CacheSize int `json:"cache_size,omitempty"`
	// SessionCookies name the cookies that carry a session for the
	// backend; only they are forwarded, and a request without any of them
	// (or another forwarded header) makes no callout. Default: the auth
	// cookie name ("ssegate_token").
	SessionCookies []string `json:"session_cookies,omitempty"`
	// MaxConcurrent caps the callouts in flight; past it a request that
	// needs one is refused with 503 and Retry-After. Default 64.
	MaxConcurrent int `json:"max_concurrent,omitempty"`
}

const (
	defaultLeeway            = 10 * time.Second
	defaultMaxTokenBytes     = 4096
	defaultCookie            = "ssegate_token"
	defaultTicketParam       = "ticket"
	defaultTicketBucket      = "ssegate_tickets"
	defaultTicketMaxLifetime = 60 * time.Second
	defaultTicketLifetime    = 30 * time.Second
	defaultJWKSRefresh       = 15 * time.Minute
	defaultCalloutTimeout    = 2 * time.Second
	defaultCalloutCacheTTL   = 5 * time.Second
	defaultCalloutCacheSize  = 10000
	defaultCalloutConcurrent = 64
)

var defaultJWKSAlgs = []string{"RS256", "PS256", "ES256", "ES384", "ES512", "EdDSA"}

// settings is Config with defaults applied and placeholders resolved.
type settings struct {
	Config
	leeway, ticketMax, ticketLife time.Duration
	calloutTimeout, calloutTTL    time.Duration
}

func (c Config) resolve() (settings, error) {
	repl := caddy.NewReplacer()
	rep := func(v string) string { return repl.ReplaceKnown(v, "") }
	s := settings{Config: c}
	if err := s.resolveKeys(rep); err != nil {
		return s, err
	}
	if err := s.resolveCredentials(); err != nil {
		return s, err
	}
	if err := s.checkAccess(); err != nil {
		return s, err
	}
	if c.AuthURL != nil {
		a, err := resolveCallout(*c.AuthURL, rep, s.Cookie)
		if err != nil {
			return s, err
		}
		s.calloutTimeout = time.Duration(cmp.Or(a.Timeout, caddy.Duration(defaultCalloutTimeout)))
		s.calloutTTL = time.Duration(cmp.Or(a.CacheTTL, caddy.Duration(defaultCalloutCacheTTL)))
		s.AuthURL = &a
	}
	return s, nil
}

// resolveKeys resolves the placeholders of the keys, the audience and the
// issuer, and applies the JWKS sources' defaults.
func (s *settings) resolveKeys(rep func(string) string) error {
	hmacKeys := make([]HMACKey, len(s.HMACKeys))
	for i, k := range s.HMACKeys {
		k.Secret, k.KID = rep(k.Secret), rep(k.KID)
		hmacKeys[i] = k
	}
	s.HMACKeys = hmacKeys
	publicKeys := make([]PublicKey, len(s.PublicKeys))
	for i, k := range s.PublicKeys {
		k.Key, k.KID = rep(k.Key), rep(k.KID)
		publicKeys[i] = k
	}
	s.PublicKeys = publicKeys
	if s.TicketSigningKey != nil {
		k := *s.TicketSigningKey
		k.Key, k.KID = rep(k.Key), rep(k.KID)
		s.TicketSigningKey = &k
	}
	jwks := make([]JWKSSource, len(s.JWKS))
	for i, j := range s.JWKS {
		j.URL = rep(j.URL)
		if len(j.Algs) == 0 {
			j.Algs = defaultJWKSAlgs
		}
		if j.Refresh <= 0 {
			j.Refresh = caddy.Duration(defaultJWKSRefresh)
		}
		jwks[i] = j
		u, err := url.Parse(j.URL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("auth: jwks url %d is not an http(s) URL", i)
		}
		for _, a := range j.Algs {
			if !isAsymmetric(a) {
				return fmt.Errorf("auth: jwks alg %q is not an asymmetric JWS algorithm", a)
			}
		}
	}
	s.JWKS = jwks
	audience := make([]string, len(s.Audience))
	for i, a := range s.Audience {
		audience[i] = rep(a)
	}
	s.Audience = audience
	s.Issuer = rep(s.Issuer)
	return nil
}

// resolveCredentials applies the defaults of how credentials are carried
// and how long they last, and checks their bounds.
func (s *settings) resolveCredentials() error {
	s.leeway = time.Duration(cmp.Or(s.Leeway, caddy.Duration(defaultLeeway)))
	if s.leeway < 0 || s.leeway > 5*time.Minute {
		return errors.New("auth: leeway must be between 0 and 5m")
	}
	s.MaxTokenBytes = cmp.Or(s.MaxTokenBytes, defaultMaxTokenBytes)
	if s.MaxTokenBytes < 256 {
		return errors.New("auth: max_token_bytes must be at least 256")
	}
	s.Cookie = cmp.Or(s.Cookie, defaultCookie)
	if !validCookieName(s.Cookie) {
		return fmt.Errorf("auth: invalid cookie name %q", s.Cookie)
	}
	s.TicketParam = cmp.Or(s.TicketParam, defaultTicketParam)
	s.TicketBucket = cmp.Or(s.TicketBucket, defaultTicketBucket)
	if !validBucket(s.TicketBucket) {
		return fmt.Errorf("auth: invalid ticket_bucket %q", s.TicketBucket)
	}
	s.ticketMax = time.Duration(cmp.Or(s.TicketMaxLifetime, caddy.Duration(defaultTicketMaxLifetime)))
	s.ticketLife = time.Duration(cmp.Or(s.TicketLifetime, caddy.Duration(defaultTicketLifetime)))
	if s.ticketLife > s.ticketMax {
		return errors.New("auth: ticket_lifetime exceeds ticket_max_lifetime")
	}
	if s.ticketMax > 10*time.Minute {
		return errors.New("auth: ticket_max_lifetime must be at most 10m")
	}
	if s.TicketPath != "" && !strings.HasPrefix(s.TicketPath, "/") {
		return errors.New("auth: ticket_path must start with /")
	}
	return nil
}

// checkAccess checks the public patterns, the CORS origins and the
// connection limits.
func (s *settings) checkAccess() error {
	for _, p := range s.Public {
		if err := checkPatternTemplate(p); err != nil || strings.Contains(p, subPlaceholder) {
			return fmt.Errorf("auth: invalid public pattern %q", p)
		}
	}
	for _, o := range s.CORSOrigins {
		if o == "*" || o == "null" {
			return fmt.Errorf("auth: cors origin %q cannot be used with credentials", o)
		}
		u, err := url.Parse(o)
		if err != nil || u.Scheme == "" || u.Host == "" || u.Path != "" {
			return fmt.Errorf("auth: cors origin %q must be scheme://host[:port]", o)
		}
	}
	if s.MaxConnections < 0 || s.MaxConnectionsPerSubject < 0 {
		return errors.New("auth: connection limits must not be negative")
	}
	return nil
}

// resolveCallout applies auth_url's defaults; the session cookie defaults
// to the auth cookie's name.
func resolveCallout(a Callout, rep func(string) string, cookie string) (Callout, error) {
	a.URL = rep(a.URL)
	u, err := url.Parse(a.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return a, errors.New("auth: auth_url is not an http(s) URL")
	}
	if len(a.ForwardHeaders) == 0 {
		a.ForwardHeaders = []string{"Cookie", "Authorization"}
	}
	a.ForwardHeaders = slices.Clone(a.ForwardHeaders)
	for i, h := range a.ForwardHeaders {
		a.ForwardHeaders[i] = http.CanonicalHeaderKey(h)
	}
	a.CacheSize = cmp.Or(a.CacheSize, defaultCalloutCacheSize)
	a.MaxConcurrent = cmp.Or(a.MaxConcurrent, defaultCalloutConcurrent)
	if a.CacheSize < 0 || a.MaxConcurrent < 0 {
		return a, errors.New("auth: auth_url cache_size and max_concurrent must not be negative")
	}
	if len(a.SessionCookies) == 0 {
		a.SessionCookies = []string{cookie}
	}
	for _, n := range a.SessionCookies {
		if !validCookieName(n) {
			return a, fmt.Errorf("auth: invalid auth_url session cookie name %q", n)
		}
	}
	return a, nil
}

func validCookieName(n string) bool {
	for i := 0; i < len(n); i++ {
		c := n[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("()<>@,;:\\\"/[]?={}", c) >= 0 {
			return false
		}
	}
	return n != ""
}

// validBucket mirrors the NATS KV bucket name rule.
func validBucket(b string) bool {
	for i := 0; i < len(b); i++ {
		c := b[i]
		if !(c == '-' || c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return b != ""
}

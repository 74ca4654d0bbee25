package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/zap"
)

// PublishKey is a configured publisher secret, for backends that do not
// mint JWTs: it is sent as "Authorization: Bearer <secret>".
type PublishKey struct {
	// Secret may be a placeholder such as {env.SSEGATE_PUBLISH_KEY}; it is
	// resolved when the config loads, so adapted JSON never holds it.
	Secret string `json:"secret"`
	// Channels the key may publish to (NATS-style wildcards). Default: all.
	Channels []string `json:"channels,omitempty"`
}

// minPublishKeyLen matches the HS256 secret minimum: a publish key is a
// bearer secret just as guessable as an HMAC key.
const minPublishKeyLen = 32

// Publishers authorizes publishing: by a configured key, or by a JWT that
// the Gate's keys verify and whose "publish" claim lists channel patterns.
// A JWT's "channels" claim never grants publishing.
type Publishers struct {
	g    *Gate
	keys []publisherKey
	// secret scopes the ids of JWT publishers verified by public keys.
	secret []byte
}

type publisherKey struct {
	name     string // "key:<index>", for logs; never the secret
	sum      [sha256.Size]byte
	scope    []byte
	patterns []pattern
}

// publishClaims add the publish patterns to the claims every token has.
type publishClaims struct {
	claims
	Publish []string `json:"publish,omitempty"`
}

// Publishers resolves and checks keys; each must be at least 32 bytes.
func (g *Gate) Publishers(keys []PublishKey) (*Publishers, error) {
	repl := caddy.NewReplacer()
	p := &Publishers{g: g, secret: signerSecret(g.signer)}
	for i, k := range keys {
		secret := repl.ReplaceKnown(k.Secret, "")
		if secret == "" {
			return nil, fmt.Errorf("publish key %d is empty (unset environment variable?)", i)
		}
		if len(secret) < minPublishKeyLen {
			return nil, fmt.Errorf("publish key %d must be at least %d bytes", i, minPublishKeyLen)
		}
		raw := k.Channels
		if len(raw) == 0 {
			raw = []string{">"}
		}
		pk := publisherKey{name: "key:" + strconv.Itoa(i), sum: sha256.Sum256([]byte(secret)), scope: keyScope(secret)}
		for _, r := range raw {
			pt, err := parsePattern(r)
			if err != nil {
				return nil, fmt.Errorf("publish key %d: channel pattern %q: %w", i, r, err)
			}
			pk.patterns = append(pk.patterns, pt)
		}
		p.keys = append(p.keys, pk)
	}
	return p, nil
}

// Authorize says who may publish to channel, from the request's bearer
// credential only: a cookie would let any page the user visits publish
// in their name (CSRF), and tickets are for reading.
func (p *Publishers) Authorize(r *http.Request, channel string) (Publisher, *Error) {
	pub, e := p.authorize(r, channel)
	if e != nil {
		pr := &principal{via: viaBearer, sub: pub.Sub}
		p.g.refused(r, pr, e)
	}
	return pub, e
}

func (p *Publishers) authorize(r *http.Request, channel string) (Publisher, *Error) {
	tok, e := p.bearer(r, "publishing")
	if e != nil {
		return Publisher{}, e
	}
	forbidden := func(sub string) (Publisher, *Error) {
		return Publisher{Sub: sub}, newError(http.StatusForbidden, CodeChannelForbidden, fmt.Sprintf("publishing to channel %q is not permitted", clip(channel)))
	}
	if k := p.matchKey(tok); k != nil {
		if !anyMatch(k.patterns, channel) {
			return forbidden(k.name)
		}
		return Publisher{Sub: k.name, scope: k.scope}, nil
	}
	c, key, hmacKey, e := p.verify(r.Context(), tok)
	if e != nil {
		return Publisher{}, e
	}
	if c.TokenUse == tokenUseTicket {
		return Publisher{Sub: c.Subject}, newError(http.StatusUnauthorized, CodeInvalidToken, "a ticket cannot publish")
	}
	if len(c.Publish) == 0 {
		return Publisher{Sub: c.Subject}, newError(http.StatusForbidden, CodeForbidden, "the token grants no publishing (no publish claim)")
	}
	if !anyMatch(p.g.compile(c.Publish, c.Subject), channel) {
		return forbidden(c.Subject)
	}
	return Publisher{Sub: c.Subject, scope: jwtScope(key, p.scopeSecret(hmacKey), c.Issuer, c.Subject)}, nil
}

// bearer is the request's bearer credential, the only kind that may
// publish or control.
func (p *Publishers) bearer(r *http.Request, what string) (string, *Error) {
	h, e := authorization(r)
	if e != nil {
		return "", e
	}
	scheme, tok, ok := strings.Cut(h, " ")
	tok = strings.TrimSpace(tok)
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return "", newError(http.StatusUnauthorized, CodeUnauthenticated, what+" needs an Authorization: Bearer credential")
	}
	if len(tok) > p.g.s.MaxTokenBytes {
		return "", newError(http.StatusUnauthorized, CodeTokenTooLarge, "credential is larger than allowed")
	}
	return tok, nil
}

// matchKey compares against every key in constant time, so timing tells
// nothing about which key, or how much of one, matched.
func (p *Publishers) matchKey(tok string) *publisherKey {
	sum := sha256.Sum256([]byte(tok))
	var found *publisherKey
	for i := range p.keys {
		if subtle.ConstantTimeCompare(sum[:], p.keys[i].sum[:]) == 1 {
			found = &p.keys[i]
		}
	}
	return found
}

// verify is verifier.verify with the publish claim decoded too; the
// signature, algorithm and registered-claim checks are the Gate's own. It
// returns the bytes of the key that verified the token too, and whether
// it was an HMAC key.
func (p *Publishers) verify(ctx context.Context, tok string) (*publishClaims, []byte, bool, *Error) {
	v := p.g.verifier
	var c publishClaims
	var offered any
	t, err := v.parser.ParseWithClaims(tok, &c, func(t *jwt.Token) (any, error) {
		ks, err := v.keysFor(ctx, t)
		offered = ks
		return ks, err
	})
	if err != nil {
		e := mapJWTError(err)
		if errors.Is(err, errKeysUnavailable) {
			p.g.log.Warn("publisher keys unavailable", zap.String("code", e.Code))
		}
		return nil, nil, false, e
	}
	if c.Subject == "" {
		return nil, nil, false, newError(http.StatusUnauthorized, CodeInvalidToken, "token has no sub")
	}
	if e := p.g.checkRevoked(&c.claims); e != nil {
		return nil, nil, false, e
	}
	key, hmacKey := verifiedBy(t, offered)
	if key == nil {
		return nil, nil, false, newError(http.StatusUnauthorized, CodeInvalidToken, "signature or algorithm not accepted")
	}
	return &c, key, hmacKey, nil
}

func anyMatch(ps []pattern, channel string) bool {
	for _, pt := range ps {
		if pt.matches(channel) {
			return true
		}
	}
	return false
}

// Check is Authorize without the refusal's log line and count, for an
// endpoint that lets publishers in among others, and logs and counts its
// own answer: nil when r's bearer credential may publish to channel, a
// 403 when it is a publisher's that does not cover it, a 401 when it is
// none.
func (p *Publishers) Check(r *http.Request, channel string) *Error {
	_, e := p.authorize(r, channel)
	return e
}

// Authenticated reports who the request's credential (bearer, cookie or
// auth_url; not a ticket, which is single use and for streams) belongs
// to. It is for pages such as the console's figures, which any signed-in
// user may read but anonymous callers may not.
func (g *Gate) Authenticated(r *http.Request) (string, *Error) {
	pr, e := g.authenticate(r, false)
	if e == nil && pr == nil {
		e = newError(http.StatusUnauthorized, CodeUnauthenticated, "a cookie or bearer token is required")
	}
	if e != nil {
		g.refused(r, pr, e)
		return "", e
	}
	return pr.sub, nil
}

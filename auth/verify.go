package auth

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// claims are the JWT claims ssegate reads. TokenUse "ticket" marks a
// minted ticket so that it can't be replayed as a bearer or cookie, which
// would dodge single use. StreamExp carries the minting credential's
// expiry into a ticket, since a stream must not outlive its login.
type claims struct {
	jwt.RegisteredClaims
	Channels  []string         `json:"channels,omitempty"`
	TokenUse  string           `json:"token_use,omitempty"`
	StreamExp *jwt.NumericDate `json:"stream_exp,omitempty"`
	// Presence and Control grant reading presence and controlling
	// streams (packages presence and control).
	Presence bool `json:"presence,omitempty"`
	Control  bool `json:"control,omitempty"`
	// CredJTI and CredIAT carry the minting credential's jti and iat into
	// a ticket, so that revoking the credential revokes its tickets.
	CredJTI string           `json:"cred_jti,omitempty"`
	CredIAT *jwt.NumericDate `json:"cred_iat,omitempty"`
}

// credential is the jti and iat that revocation looks at: for a ticket,
// those of the credential it was minted from.
func (c *claims) credential() (string, time.Time) {
	jti, iat := c.ID, c.IssuedAt
	if c.TokenUse == tokenUseTicket {
		jti, iat = c.CredJTI, c.CredIAT
	}
	if iat == nil {
		return jti, time.Time{}
	}
	return jti, iat.Time
}

const tokenUseTicket = "ticket"

// credKind is where a credential came from; it picks the checks and goes
// into logs (never the credential itself).
type credKind string

const (
	viaTicket    credKind = "ticket"
	viaBearer    credKind = "bearer"
	viaCookie    credKind = "cookie"
	viaCallout   credKind = "auth_url"
	viaAnonymous credKind = "anonymous"
)

// verifier checks signatures and registered claims.
type verifier struct {
	static []verifyKey
	jwks   *jwksKeys
	parser *jwt.Parser
	now    func() time.Time
	max    int
}

func newVerifier(s settings, static []verifyKey, jwks *jwksKeys, now func() time.Time) *verifier {
	seen := map[string]bool{}
	var algs []string
	add := func(a string) {
		if !seen[a] {
			seen[a] = true
			algs = append(algs, a)
		}
	}
	for _, k := range static {
		add(k.alg)
	}
	for _, j := range s.JWKS {
		for _, a := range j.Algs {
			add(a)
		}
	}
	opts := []jwt.ParserOption{
		// The allowed list is built from the keys only, so "none" and any
		// alg without a pinned key fail before a key is even looked up.
		jwt.WithValidMethods(algs),
		jwt.WithLeeway(s.leeway),
		jwt.WithTimeFunc(now),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithStrictDecoding(),
	}
	if len(s.Audience) > 0 {
		opts = append(opts, jwt.WithAudience(s.Audience...))
	}
	if s.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(s.Issuer))
	}
	return &verifier{static: static, jwks: jwks, parser: jwt.NewParser(opts...), now: now, max: s.MaxTokenBytes}
}

// keysFor returns the pinned keys for the token's alg and kid. A token
// without a kid is tried against every key of its alg. A token that names
// a kid only matches keys configured with that kid, as with JWKS: a kid
// is the issuer's statement of which key signed, and one that matches no
// key is a token from another issuer, a retired key or a forgery.
func (v *verifier) keysFor(ctx context.Context, t *jwt.Token) (any, error) {
	if _, ok := t.Header["crit"]; ok {
		// RFC 7515 4.1.11: a token whose header names extensions that
		// must be understood is refused by a verifier that knows none.
		return nil, errCritical
	}
	alg, _ := t.Header["alg"].(string)
	kid, _ := t.Header["kid"].(string)
	var ks jwt.VerificationKeySet
	for _, k := range v.static {
		if k.alg == alg && (kid == "" || k.kid == kid) {
			ks.Keys = append(ks.Keys, k.key)
		}
	}
	if len(ks.Keys) > 0 || v.jwks == nil {
		if len(ks.Keys) == 0 {
			return nil, errUnknownKey
		}
		return ks, nil
	}
	found, err := v.jwks.lookup(ctx, alg, kid, v.now())
	if err != nil {
		return nil, err
	}
	for _, k := range found {
		ks.Keys = append(ks.Keys, k.key)
	}
	return ks, nil
}

// errCritical refuses a token with a "crit" header.
var errCritical = errors.New("critical header extensions are not supported")

// verify parses and checks tok. The *Error it returns has a fixed detail
// so that nothing from the token reaches the client or the log.
func (v *verifier) verify(ctx context.Context, tok string) (*claims, *Error) {
	if e := v.checkSize(tok); e != nil {
		return nil, e
	}
	var c claims
	_, err := v.parser.ParseWithClaims(tok, &c, func(t *jwt.Token) (any, error) { return v.keysFor(ctx, t) })
	if err != nil {
		return nil, mapJWTError(err)
	}
	if c.Subject == "" {
		return nil, newError(http.StatusUnauthorized, CodeInvalidToken, "token has no sub")
	}
	return &c, nil
}

// checkSize refuses a credential too long to parse; the ticket endpoint
// applies it to what it mints, so it never hands out a ticket that
// redemption would refuse.
func (v *verifier) checkSize(tok string) *Error {
	if len(tok) > v.max {
		return newError(http.StatusUnauthorized, CodeTokenTooLarge, "credential is larger than allowed")
	}
	return nil
}

// mapJWTError is the refusal of a token that did not verify: the first
// row whose error err is, or a plain invalid_token.
func mapJWTError(err error) *Error {
	rows := []struct {
		errs         []error
		code, detail string
	}{
		{[]error{errKeysUnavailable}, CodeKeysUnavailable, "signing keys are unavailable, try again later"},
		{[]error{errUnknownKey}, CodeUnknownKey, "no key matches the token's kid and alg"},
		{[]error{errCritical}, CodeInvalidToken, "critical header extensions are not supported"},
		{[]error{jwt.ErrTokenMalformed}, CodeInvalidToken, "malformed token"},
		{[]error{jwt.ErrTokenSignatureInvalid}, CodeInvalidToken, "signature or algorithm not accepted"},
		{[]error{jwt.ErrTokenExpired}, CodeTokenExpired, "token has expired"},
		{[]error{jwt.ErrTokenNotValidYet, jwt.ErrTokenUsedBeforeIssued}, CodeTokenNotYetValid, "token is not valid yet"},
		{[]error{jwt.ErrTokenInvalidAudience}, CodeInvalidToken, "audience not accepted"},
		{[]error{jwt.ErrTokenInvalidIssuer}, CodeInvalidToken, "issuer not accepted"},
		{[]error{jwt.ErrTokenRequiredClaimMissing}, CodeInvalidToken, "token lacks a required claim"},
	}
	for _, row := range rows {
		for _, target := range row.errs {
			if errors.Is(err, target) {
				return newError(http.StatusUnauthorized, row.code, row.detail)
			}
		}
	}
	return newError(http.StatusUnauthorized, CodeInvalidToken, "token not accepted")
}

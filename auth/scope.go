package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

// Publisher is who a publish request speaks for: its sub, for logs, and
// the secret scope of its Idempotency-Keys.
type Publisher struct {
	// Sub is "key:<index>" for a publish key, the JWT's sub otherwise.
	Sub   string
	scope []byte
}

// MsgID maps an Idempotency-Key to a Nats-Msg-Id. JetStream deduplicates
// ids across the whole stream, so an id that another party could compute
// would let it suppress this publisher's event by publishing first. The
// id is an HMAC keyed by the publisher's scope, which is derived from its
// credential's secret: the same on every gateway and after a reload, and
// different for any two credentials whatever their names.
func (p Publisher) MsgID(idempotencyKey string) string {
	mac := hmac.New(sha256.New, p.scope)
	mac.Write([]byte(idempotencyKey))
	return hex.EncodeToString(mac.Sum(nil)[:16])
}

// Labels that keep the two kinds of scope apart: no publish key can ever
// share a scope with a JWT, whatever their names.
const (
	scopeOfKey = "ssegate publish key scope"
	scopeOfJWT = "ssegate publish jwt scope"
)

// keyScope is a publish key's scope, keyed by its secret.
func keyScope(secret string) []byte {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(scopeOfKey))
	return mac.Sum(nil)
}

// jwtScope is a JWT publisher's scope: its issuer and subject, keyed by
// the key that verified its token. A public key is no secret, so a
// deployment whose publishers sign with asymmetric keys scopes ids by the
// issuer and subject under that key only; HMAC keys and publish keys are
// secrets.
func jwtScope(material []byte, iss, sub string) []byte {
	mac := hmac.New(sha256.New, material)
	mac.Write([]byte(scopeOfJWT + "\x00" + iss + "\x00" + sub))
	return mac.Sum(nil)
}

// verifiedBy returns the bytes of the key that verified t, one of those
// keysFor offered: an HMAC secret as it is, a public key in its DER form.
func verifiedBy(t *jwt.Token, offered any) []byte {
	keys := []jwt.VerificationKey{offered}
	if ks, ok := offered.(jwt.VerificationKeySet); ok {
		keys = ks.Keys
	}
	signing := t.Raw[:max(strings.LastIndexByte(t.Raw, '.'), 0)]
	for _, k := range keys {
		if len(keys) > 1 && t.Method.Verify(signing, t.Signature, k) != nil {
			continue
		}
		if b, ok := k.([]byte); ok {
			return b
		}
		if der, err := x509.MarshalPKIXPublicKey(k); err == nil {
			return der
		}
	}
	return nil
}

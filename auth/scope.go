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
// the key that verified its token. An HMAC key is a secret. A public key
// is not, so then the gateway's own secret, the key that signs tickets,
// goes in too; a gateway that verifies with public keys only and signs no
// tickets has no secret, and its JWT publishers' ids are computable by
// whoever knows the public key, issuer and subject.
func jwtScope(material, gatewaySecret []byte, iss, sub string) []byte {
	mac := hmac.New(sha256.New, material)
	mac.Write([]byte(scopeOfJWT + "\x00" + iss + "\x00" + sub + "\x00"))
	mac.Write(gatewaySecret)
	return mac.Sum(nil)
}

// scopeSecret is what a JWT scope takes of the gateway's secret: nothing
// when an HMAC key verified the token, which is a secret itself, so that
// rotating the ticket signer does not change those publishers' ids.
func (p *Publishers) scopeSecret(verifiedWithHMAC bool) []byte {
	if verifiedWithHMAC {
		return nil
	}
	return p.secret
}

// signerSecret is the ticket signer's key as bytes: the first HMAC key,
// or the ticket signing key's private key in PKCS #8; nil without one.
func signerSecret(s *signer) []byte {
	if s == nil {
		return nil
	}
	if b, ok := s.key.([]byte); ok {
		return b
	}
	der, err := x509.MarshalPKCS8PrivateKey(s.key)
	if err != nil {
		return nil
	}
	return der
}

// verifiedBy returns the bytes of the key that verified t, one of those
// keysFor offered: an HMAC secret as it is, a public key in its DER form;
// and whether it was an HMAC secret.
func verifiedBy(t *jwt.Token, offered any) ([]byte, bool) {
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
			return b, true
		}
		if der, err := x509.MarshalPKIXPublicKey(k); err == nil {
			return der, false
		}
	}
	return nil, false
}

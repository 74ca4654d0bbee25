package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

// verifyKey is one key pinned to one algorithm: a token is only checked
// against keys whose alg equals the token's header alg, which is what
// rules out "none" and HS/RS confusion.
type verifyKey struct {
	alg string // empty only for JWKS keys without "alg"; see jwks.go
	kid string
	key any // []byte, *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
}

const minRSABits = 2048

func hmacMinLen(alg string) int {
	switch alg {
	case "HS256":
		return 32
	case "HS384":
		return 48
	case "HS512":
		return 64
	}
	return -1
}

func isAsymmetric(alg string) bool {
	switch alg {
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA":
		return true
	}
	return false
}

// keyFits checks that the Go key type suits alg, so a JWKS key without an
// "alg" member can't be used with an algorithm of another family.
func keyFits(alg string, key any) bool {
	switch k := key.(type) {
	case []byte:
		return hmacMinLen(alg) > 0 && len(k) >= hmacMinLen(alg)
	case *rsa.PublicKey:
		return (strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS")) && k.N.BitLen() >= minRSABits
	case *ecdsa.PublicKey:
		switch alg {
		case "ES256":
			return k.Curve == elliptic.P256()
		case "ES384":
			return k.Curve == elliptic.P384()
		case "ES512":
			return k.Curve == elliptic.P521()
		}
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

func loadHMAC(k HMACKey) (verifyKey, error) {
	alg := k.Alg
	if alg == "" {
		alg = "HS256"
	}
	min := hmacMinLen(alg)
	if min < 0 {
		return verifyKey{}, fmt.Errorf("hmac alg %q is not HS256, HS384 or HS512", alg)
	}
	if k.Secret == "" {
		return verifyKey{}, errors.New("hmac secret is empty (unset environment variable?)")
	}
	if len(k.Secret) < min {
		return verifyKey{}, fmt.Errorf("hmac secret for %s must be at least %d bytes", alg, min)
	}
	return verifyKey{alg: alg, kid: k.KID, key: []byte(k.Secret)}, nil
}

// pemBytes takes inline PEM or a file path, so the Caddyfile can hold
// either without a second directive.
func pemBytes(s string) ([]byte, error) {
	if strings.HasPrefix(strings.TrimSpace(s), "-----BEGIN") {
		return []byte(s), nil
	}
	b, err := os.ReadFile(s)
	if err != nil {
		return nil, fmt.Errorf("reading key file: %w", err)
	}
	return b, nil
}

func loadPublic(k PublicKey) (verifyKey, error) {
	if !isAsymmetric(k.Alg) {
		return verifyKey{}, fmt.Errorf("public key alg %q is not an asymmetric JWS algorithm", k.Alg)
	}
	key, err := parsePEM(k.Alg, k.Key, "public",
		func(b []byte) (any, error) { return jwt.ParseRSAPublicKeyFromPEM(b) },
		func(b []byte) (any, error) { return jwt.ParseECPublicKeyFromPEM(b) },
		func(b []byte) (any, error) { return jwt.ParseEdPublicKeyFromPEM(b) })
	if err != nil {
		return verifyKey{}, err
	}
	if !keyFits(k.Alg, key) {
		return verifyKey{}, fmt.Errorf("public key does not suit %s (type, curve or size)", k.Alg)
	}
	return verifyKey{alg: k.Alg, kid: k.KID, key: key}, nil
}

// signer is the key that mints tickets.
type signer struct {
	method jwt.SigningMethod
	kid    string
	key    any
}

func loadSigning(k SigningKey) (signer, verifyKey, error) {
	if !isAsymmetric(k.Alg) {
		return signer{}, verifyKey{}, fmt.Errorf("ticket signing alg %q is not asymmetric; HMAC keys sign by default", k.Alg)
	}
	key, err := parsePEM(k.Alg, k.Key, "private",
		func(b []byte) (any, error) { return jwt.ParseRSAPrivateKeyFromPEM(b) },
		func(b []byte) (any, error) { return jwt.ParseECPrivateKeyFromPEM(b) },
		func(b []byte) (any, error) {
			p, err := jwt.ParseEdPrivateKeyFromPEM(b)
			if _, ok := p.(crypto.Signer); err == nil && !ok {
				return nil, errors.New("not a signing key")
			}
			return p, err
		})
	if err != nil {
		return signer{}, verifyKey{}, err
	}
	// Every key the three parsers let through signs: RSA and ECDSA
	// private keys, and Ed25519 ones by the check above.
	priv := key.(crypto.Signer)
	pub := priv.Public()
	if !keyFits(k.Alg, pub) {
		return signer{}, verifyKey{}, fmt.Errorf("private key does not suit %s (type, curve or size)", k.Alg)
	}
	return signer{method: jwt.GetSigningMethod(k.Alg), kid: k.KID, key: priv},
		verifyKey{alg: k.Alg, kid: k.KID, key: pub}, nil
}

// parsePEM reads the PEM of an asymmetric key for alg, inline or from a
// file, and parses it with the parser of alg's key type: rsa for RS and
// PS, ec for ES, ed for EdDSA. kind, public or private, names the key in
// errors.
func parsePEM(alg, pem, kind string, rsa, ec, ed func([]byte) (any, error)) (any, error) {
	b, err := pemBytes(pem)
	if err != nil {
		return nil, err
	}
	parse := ed
	switch alg[:2] {
	case "RS", "PS":
		parse = rsa
	case "ES":
		parse = ec
	}
	key, err := parse(b)
	if err != nil {
		return nil, fmt.Errorf("parsing %s %s key: %w", alg, kind, err)
	}
	return key, nil
}

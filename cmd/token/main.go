// Command token mints an HS256 JWT that ssegate accepts as a cookie, a
// bearer token or (with -ticket) a one-time ticket, for development and
// scripts. Backends mint their own tokens; see the README.
//
//	go run ./cmd/token -sub alice -channel 'user.{sub}'
package main

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ssegate/ssegate/internal/devsecret"
)

const (
	// defaultTTL is the lifetime of a cookie or bearer token.
	defaultTTL = time.Hour
	// defaultTicketTTL is the gateway's own ticket_lifetime default, well
	// under its ticket_max_lifetime default (60s): longer tickets are
	// refused with ticket_invalid.
	defaultTicketTTL = 30 * time.Second
	// ticketMaxLifetime is the gateway's ticket_max_lifetime default.
	ticketMaxLifetime = 60 * time.Second
	// minSecretBytes is what the gateway needs of an HS256 secret.
	minSecretBytes = 32
)

type channelFlags []string

func (c *channelFlags) String() string     { return strings.Join(*c, ",") }
func (c *channelFlags) Set(v string) error { *c = append(*c, v); return nil }

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "token:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	sub := fs.String("sub", "", "the principal (required)")
	ttl := fs.Duration("ttl", 0, "lifetime (default 1h, or 30s with -ticket; the gateway refuses tickets over ticket_max_lifetime, 60s by default)")
	ticket := fs.Bool("ticket", false, "mint a one-time ticket (adds jti)")
	aud := fs.String("aud", "", "audience claim, if the gateway checks one")
	iss := fs.String("iss", "", "issuer claim, if the gateway checks one")
	var channels channelFlags
	fs.Var(&channels, "channel", "channel pattern the token grants (repeatable; * and > wildcards, {sub})")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case *sub == "":
		return errors.New("-sub is required")
	case *ttl < 0:
		return errors.New("-ttl cannot be negative")
	}
	lifetime := cmp.Or(*ttl, defaultTTL)
	if *ticket {
		lifetime = cmp.Or(*ttl, defaultTicketTTL)
		if lifetime > ticketMaxLifetime {
			fmt.Fprintf(stderr, "token: a %v ticket is refused unless the gateway's ticket_max_lifetime allows it (default %v)\n", lifetime, ticketMaxLifetime)
		}
	}
	secret, err := signingSecret(stderr)
	if err != nil {
		return err
	}
	claims, err := newClaims(*sub, channels, *aud, *iss, lifetime, *ticket)
	if err != nil {
		return err
	}
	signed, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(secret)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, signed)
	return nil
}

// signingSecret is SSEGATE_JWT_SECRET, or the development secret of
// Caddyfile.example when it is unset. A secret the gateway would refuse
// fails here, rather than as invalid_token later.
func signingSecret(stderr io.Writer) ([]byte, error) {
	secret, set := os.LookupEnv("SSEGATE_JWT_SECRET")
	switch {
	case !set:
		fmt.Fprintln(stderr, "token: SSEGATE_JWT_SECRET is not set; signing with the development secret of Caddyfile.example")
		return []byte(devsecret.Secret), nil
	case len(secret) < minSecretBytes:
		return nil, fmt.Errorf("SSEGATE_JWT_SECRET is %d bytes; the gateway needs at least %d for HS256", len(secret), minSecretBytes)
	}
	return []byte(secret), nil
}

func newClaims(sub string, channels []string, aud, iss string, lifetime time.Duration, ticket bool) (jwt.MapClaims, error) {
	now := time.Now()
	claims := jwt.MapClaims{
		"sub":      sub,
		"iat":      now.Unix(),
		"exp":      now.Add(lifetime).Unix(),
		"channels": channels,
	}
	if aud != "" {
		claims["aud"] = aud
	}
	if iss != "" {
		claims["iss"] = iss
	}
	if ticket {
		id := make([]byte, 16)
		if _, err := rand.Read(id); err != nil {
			return nil, err
		}
		claims["jti"] = hex.EncodeToString(id)
	}
	return claims, nil
}

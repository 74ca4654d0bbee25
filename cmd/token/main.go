// Command token mints an HS256 JWT that ssegate accepts as a cookie, a
// bearer token or (with -ticket) a one-time ticket, for development and
// scripts; with -publish, the token may also publish over HTTP. Backends
// mint their own tokens; see the README.
//
//	go run ./cmd/token -sub alice -channel 'user.{sub}'
//	go run ./cmd/token -sub backend -publish demo
package main

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ssegate/ssegate/internal/cli"
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

// pattern refuses an empty channel pattern, which grants nothing.
func pattern(v string) error {
	if strings.TrimSpace(v) == "" {
		return errors.New("an empty pattern grants nothing")
	}
	return nil
}

// options are the command's flags.
type options struct {
	sub, aud, iss     string
	ttl               time.Duration
	ticket, version   bool
	channels, publish cli.List // channel patterns
}

func main() { cli.Main("token", run) }

func run(args []string, stdout, stderr io.Writer) error {
	o, err := parse(args, stderr)
	if err != nil {
		return err
	}
	if o.version {
		return cli.PrintVersion(stdout, "token")
	}
	lifetime := cmp.Or(o.ttl, defaultTTL)
	if o.ticket {
		lifetime = cmp.Or(o.ttl, defaultTicketTTL)
		if lifetime > ticketMaxLifetime {
			fmt.Fprintf(stderr, "token: a %v ticket is refused unless the gateway's ticket_max_lifetime allows it (default %v)\n", lifetime, ticketMaxLifetime)
		}
	}
	secret, err := signingSecret(stderr)
	if err != nil {
		return err
	}
	claims, err := o.claims(lifetime)
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

func parse(args []string, stderr io.Writer) (*options, error) {
	o := &options{channels: cli.List{Check: pattern}, publish: cli.List{Check: pattern}}
	fs, version := cli.FlagSet("token", stderr)
	fs.StringVar(&o.sub, "sub", "", "the principal (required)")
	fs.DurationVar(&o.ttl, "ttl", 0, "lifetime (default 1h, or 30s with -ticket; the gateway refuses tickets over ticket_max_lifetime, 60s by default)")
	fs.BoolVar(&o.ticket, "ticket", false, "mint a one-time ticket (adds jti)")
	fs.StringVar(&o.aud, "aud", "", "audience claim, if the gateway checks one")
	fs.StringVar(&o.iss, "iss", "", "issuer claim, if the gateway checks one")
	fs.Var(&o.channels, "channel", "channel pattern the token may read (repeatable; * and > wildcards, {sub})")
	fs.Var(&o.publish, "publish", "channel pattern the token may publish to over HTTP, such as POST /events/publish?channel=demo (repeatable; * and > wildcards, {sub})")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	o.version = *version
	switch {
	case o.version:
		return o, nil
	case fs.NArg() > 0:
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case o.sub == "":
		return nil, errors.New("-sub is required")
	case o.ttl < 0:
		return nil, errors.New("-ttl cannot be negative")
	case o.ticket && len(o.publish.Values) > 0:
		// The gateway refuses to publish with a ticket: say so now.
		return nil, errors.New("-ticket and -publish exclude each other: a ticket opens one stream, and cannot publish")
	}
	return o, nil
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

func (o *options) claims(lifetime time.Duration) (jwt.MapClaims, error) {
	now := time.Now()
	claims := jwt.MapClaims{
		"sub":      o.sub,
		"iat":      now.Unix(),
		"exp":      now.Add(lifetime).Unix(),
		"channels": o.channels.Values,
	}
	// The gateway's "publish" claim: patterns this token may publish to.
	if len(o.publish.Values) > 0 {
		claims["publish"] = o.publish.Values
	}
	if o.aud != "" {
		claims["aud"] = o.aud
	}
	if o.iss != "" {
		claims["iss"] = o.iss
	}
	if o.ticket {
		id := make([]byte, 16)
		if _, err := rand.Read(id); err != nil {
			return nil, err
		}
		claims["jti"] = hex.EncodeToString(id)
	}
	return claims, nil
}

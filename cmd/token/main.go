// Command token mints an HS256 JWT that ssegate accepts as a cookie, a
// bearer token or (with -ticket) a one-time ticket, for development and
// scripts. Backends mint their own tokens; see the README.
//
//	go run ./cmd/token -sub alice -channel 'user.{sub}'
package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// devSecret matches the default in Caddyfile.example. Never use it in
// production: set SSEGATE_JWT_SECRET on both sides instead.
const devSecret = "ssegate-dev-secret-not-for-production-use"

type channelFlags []string

func (c *channelFlags) String() string     { return strings.Join(*c, ",") }
func (c *channelFlags) Set(v string) error { *c = append(*c, v); return nil }

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "token:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	sub := fs.String("sub", "", "the principal (required)")
	ttl := fs.Duration("ttl", time.Hour, "lifetime; tickets are capped at ticket_max_lifetime (60s by default)")
	ticket := fs.Bool("ticket", false, "mint a one-time ticket (adds jti; use with a short -ttl such as 30s)")
	aud := fs.String("aud", "", "audience claim, if the gateway checks one")
	iss := fs.String("iss", "", "issuer claim, if the gateway checks one")
	var channels channelFlags
	fs.Var(&channels, "channel", "channel pattern the token grants (repeatable; * and > wildcards, {sub})")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *sub == "" {
		return errors.New("-sub is required")
	}
	secret := os.Getenv("SSEGATE_JWT_SECRET")
	if secret == "" {
		secret = devSecret
		fmt.Fprintln(os.Stderr, "token: SSEGATE_JWT_SECRET is not set; signing with the development secret")
	}
	now := time.Now()
	claims := jwt.MapClaims{
		"sub":      *sub,
		"iat":      now.Unix(),
		"exp":      now.Add(*ttl).Unix(),
		"channels": []string(channels),
	}
	if *aud != "" {
		claims["aud"] = *aud
	}
	if *iss != "" {
		claims["iss"] = *iss
	}
	if *ticket {
		id := make([]byte, 16)
		if _, err := rand.Read(id); err != nil {
			return err
		}
		claims["jti"] = hex.EncodeToString(id)
	}
	signed, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
	if err != nil {
		return err
	}
	fmt.Println(signed)
	return nil
}

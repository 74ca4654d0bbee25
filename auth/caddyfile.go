package auth

import (
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// UnmarshalCaddyfile parses an `auth { ... }` block; d is on the `auth`
// token. Values are kept as written ({env.X} included) and resolved by
// NewGate, so the adapted JSON does not hold secrets.
func (c *Config) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		dir := d.Val()
		switch dir {
		case "hmac_secret", "public_key", "jwks", "audience", "public", "cors_origins":
		default:
			if seen[dir] {
				return d.Errf("%s given more than once", dir)
			}
		}
		seen[dir] = true
		var err error
		switch dir {
		case "hmac_secret":
			err = c.parseHMAC(d)
		case "public_key":
			var k PublicKey
			k.Key, k.Alg, k.KID, err = parseKeyArgs(d)
			c.PublicKeys = append(c.PublicKeys, k)
		case "ticket_signing_key":
			var k SigningKey
			k.Key, k.Alg, k.KID, err = parseKeyArgs(d)
			c.TicketSigningKey = &k
		case "jwks":
			err = c.parseJWKS(d)
		case "audience":
			err = restArgs(d, &c.Audience)
		case "public":
			err = restArgs(d, &c.Public)
		case "cors_origins":
			err = restArgs(d, &c.CORSOrigins)
		case "issuer":
			err = oneArg(d, &c.Issuer)
		case "cookie":
			err = oneArg(d, &c.Cookie)
			if c.Cookie == "off" {
				c.Cookie, c.DisableCookie = "", true
			}
		case "bearer":
			var v string
			if err = oneArg(d, &v); err == nil {
				switch v {
				case "on":
					c.DisableBearer = false
				case "off":
					c.DisableBearer = true
				default:
					err = d.Errf("bearer: expected on or off, got %q", v)
				}
			}
		case "ticket_param":
			err = oneArg(d, &c.TicketParam)
		case "ticket_bucket":
			err = oneArg(d, &c.TicketBucket)
		case "ticket_path":
			err = oneArg(d, &c.TicketPath)
		case "leeway":
			err = durArg(d, &c.Leeway)
		case "ticket_lifetime":
			err = durArg(d, &c.TicketLifetime)
		case "ticket_max_lifetime":
			err = durArg(d, &c.TicketMaxLifetime)
		case "max_token_bytes":
			err = intArg(d, &c.MaxTokenBytes)
		case "max_connections":
			err = intArg(d, &c.MaxConnections)
		case "max_connections_per_subject":
			err = intArg(d, &c.MaxConnectionsPerSubject)
		case "max_anonymous_connections_per_address":
			err = intArg(d, &c.MaxAnonymousConnectionsPerAddress)
		case "auth_url":
			err = c.parseCallout(d)
		default:
			return d.Errf("unknown auth subdirective %q", dir)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// hmac_secret <secret> [HS256|HS384|HS512] [kid <kid>]
func (c *Config) parseHMAC(d *caddyfile.Dispenser) error {
	args := d.RemainingArgs()
	if len(args) == 0 {
		return d.ArgErr()
	}
	k := HMACKey{Secret: args[0]}
	rest := args[1:]
	if len(rest)%2 == 1 {
		k.Alg, rest = rest[0], rest[1:]
		if hmacMinLen(k.Alg) < 0 {
			return d.Errf("hmac_secret: alg must be HS256, HS384 or HS512, got %q", k.Alg)
		}
	}
	switch {
	case len(rest) == 2 && rest[0] == "kid":
		k.KID = rest[1]
	case len(rest) != 0:
		return d.ArgErr()
	}
	c.HMACKeys = append(c.HMACKeys, k)
	return nil
}

// <path|pem> <alg> [kid <kid>]
func parseKeyArgs(d *caddyfile.Dispenser) (key, alg, kid string, err error) {
	dir := d.Val()
	args := d.RemainingArgs()
	switch {
	case len(args) == 2:
	case len(args) == 4 && args[2] == "kid":
		kid = args[3]
	default:
		return "", "", "", d.ArgErr()
	}
	if !isAsymmetric(args[1]) {
		return "", "", "", d.Errf("%s: alg must be one of RS256..512, PS256..512, ES256, ES384, ES512, EdDSA; got %q", dir, args[1])
	}
	return args[0], args[1], kid, nil
}

// jwks <url> [refresh <dur>] [algs <alg>...]
func (c *Config) parseJWKS(d *caddyfile.Dispenser) error {
	args := d.RemainingArgs()
	if len(args) == 0 {
		return d.ArgErr()
	}
	s := JWKSSource{URL: args[0]}
	rest := args[1:]
	for len(rest) > 0 {
		switch rest[0] {
		case "refresh":
			if len(rest) < 2 {
				return d.ArgErr()
			}
			dur, err := caddy.ParseDuration(rest[1])
			if err != nil || dur <= 0 {
				return d.Errf("jwks refresh: invalid duration %q", rest[1])
			}
			s.Refresh, rest = caddy.Duration(dur), rest[2:]
		case "algs":
			if len(rest) < 2 {
				return d.ArgErr()
			}
			for _, a := range rest[1:] {
				if !isAsymmetric(a) {
					return d.Errf("jwks algs: %q is not an asymmetric JWS algorithm", a)
				}
			}
			s.Algs, rest = rest[1:], nil
		default:
			return d.Errf("jwks: unexpected %q", rest[0])
		}
	}
	c.JWKS = append(c.JWKS, s)
	return nil
}

// auth_url <url> { forward_headers ...; session_cookies ...; timeout <dur>;
// cache_ttl <dur>; cache_size <n>; max_concurrent <n> }
func (c *Config) parseCallout(d *caddyfile.Dispenser) error {
	a := &Callout{}
	if err := oneArg(d, &a.URL); err != nil {
		return err
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		var err error
		switch d.Val() {
		case "forward_headers":
			err = restArgs(d, &a.ForwardHeaders)
		case "timeout":
			err = durArg(d, &a.Timeout)
		case "cache_ttl":
			var v string
			if err = oneArg(d, &v); err == nil {
				if v == "off" {
					a.CacheTTL = caddy.Duration(-1)
				} else if dur, perr := caddy.ParseDuration(v); perr != nil || dur <= 0 {
					err = d.Errf("cache_ttl: invalid duration %q", v)
				} else {
					a.CacheTTL = caddy.Duration(dur)
				}
			}
		case "cache_size":
			err = intArg(d, &a.CacheSize)
		case "session_cookies":
			err = restArgs(d, &a.SessionCookies)
		case "max_concurrent":
			err = intArg(d, &a.MaxConcurrent)
		default:
			return d.Errf("unknown auth_url subdirective %q", d.Val())
		}
		if err != nil {
			return err
		}
	}
	c.AuthURL = a
	return nil
}

func oneArg(d *caddyfile.Dispenser, dst *string) error {
	args := d.RemainingArgs()
	if len(args) != 1 {
		return d.ArgErr()
	}
	*dst = args[0]
	return nil
}

func restArgs(d *caddyfile.Dispenser, dst *[]string) error {
	args := d.RemainingArgs()
	if len(args) == 0 {
		return d.ArgErr()
	}
	*dst = append(*dst, args...)
	return nil
}

func durArg(d *caddyfile.Dispenser, dst *caddy.Duration) error {
	dir := d.Val()
	var v string
	if err := oneArg(d, &v); err != nil {
		return err
	}
	dur, err := caddy.ParseDuration(v)
	if err != nil || dur <= 0 {
		return d.Errf("%s: invalid duration %q", dir, v)
	}
	*dst = caddy.Duration(dur)
	return nil
}

func intArg(d *caddyfile.Dispenser, dst *int) error {
	dir := d.Val()
	var v string
	if err := oneArg(d, &v); err != nil {
		return err
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return d.Errf("%s: expected a non-negative integer, got %q", dir, v)
	}
	*dst = n
	return nil
}

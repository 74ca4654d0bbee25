package auth

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/ssegate/ssegate/internal/caddyargs"
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
		if seen[dir] && !repeatable(dir) {
			return d.Errf("%s given more than once", dir)
		}
		seen[dir] = true
		handled, err := c.unmarshalKey(d, dir)
		if !handled {
			err = c.unmarshalOption(d, dir)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// repeatable says whether a subdirective may be given more than once:
// the lists and the keys.
func repeatable(dir string) bool {
	switch dir {
	case "hmac_secret", "public_key", "jwks", "audience", "public", "cors_origins":
		return true
	}
	return false
}

// unmarshalKey reads a line that names a key, and reports whether it was
// one.
func (c *Config) unmarshalKey(d *caddyfile.Dispenser, dir string) (bool, error) {
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
	default:
		return false, nil
	}
	return true, err
}

// unmarshalOption reads any other line of the block.
func (c *Config) unmarshalOption(d *caddyfile.Dispenser, dir string) error {
	switch dir {
	case "audience":
		return caddyargs.Strings(d, &c.Audience)
	case "public":
		return caddyargs.Strings(d, &c.Public)
	case "cors_origins":
		return caddyargs.Strings(d, &c.CORSOrigins)
	case "issuer":
		return caddyargs.String(d, &c.Issuer)
	case "cookie":
		err := caddyargs.String(d, &c.Cookie)
		if c.Cookie == "off" {
			c.Cookie, c.DisableCookie = "", true
		}
		return err
	case "bearer":
		on, err := caddyargs.OnOff(d)
		c.DisableBearer = err == nil && !on
		return err
	case "ticket_param":
		return caddyargs.String(d, &c.TicketParam)
	case "ticket_bucket":
		return caddyargs.String(d, &c.TicketBucket)
	case "ticket_path":
		return caddyargs.String(d, &c.TicketPath)
	case "leeway":
		return caddyargs.Duration(d, &c.Leeway)
	case "ticket_lifetime":
		return caddyargs.Duration(d, &c.TicketLifetime)
	case "ticket_max_lifetime":
		return caddyargs.Duration(d, &c.TicketMaxLifetime)
	case "max_token_bytes":
		return caddyargs.NonNegativeInt(d, &c.MaxTokenBytes)
	case "max_connections":
		return caddyargs.NonNegativeInt(d, &c.MaxConnections)
	case "max_connections_per_subject":
		return caddyargs.NonNegativeInt(d, &c.MaxConnectionsPerSubject)
	case "auth_url":
		return c.parseCallout(d)
	}
	return d.Errf("unknown auth subdirective %q", dir)
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
	if err := caddyargs.String(d, &a.URL); err != nil {
		return err
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		var err error
		switch d.Val() {
		case "forward_headers":
			err = caddyargs.Strings(d, &a.ForwardHeaders)
		case "timeout":
			err = caddyargs.Duration(d, &a.Timeout)
		case "cache_ttl":
			var v string
			if err = caddyargs.String(d, &v); err == nil {
				if v == "off" {
					a.CacheTTL = caddy.Duration(-1)
				} else if dur, perr := caddy.ParseDuration(v); perr != nil || dur <= 0 {
					err = d.Errf("cache_ttl: invalid duration %q", v)
				} else {
					a.CacheTTL = caddy.Duration(dur)
				}
			}
		case "cache_size":
			err = caddyargs.NonNegativeInt(d, &a.CacheSize)
		case "session_cookies":
			err = caddyargs.Strings(d, &a.SessionCookies)
		case "max_concurrent":
			err = caddyargs.NonNegativeInt(d, &a.MaxConcurrent)
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

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
	seen := map[string]bool{}
	return caddyargs.Block(d, func(dir string) error {
		if seen[dir] && !repeatable(dir) {
			return d.Errf("%s given more than once", dir)
		}
		seen[dir] = true
		handled, err := c.unmarshalKey(d, dir)
		if !handled {
			err = c.unmarshalOption(d, dir)
		}
		return err
	})
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
	fields := caddyargs.Fields{
		String: map[string]*string{"issuer": &c.Issuer, "ticket_param": &c.TicketParam,
			"ticket_bucket": &c.TicketBucket, "ticket_path": &c.TicketPath},
		Strings: map[string]*[]string{"audience": &c.Audience, "public": &c.Public, "cors_origins": &c.CORSOrigins},
		Duration: map[string]*caddy.Duration{"leeway": &c.Leeway, "ticket_lifetime": &c.TicketLifetime,
			"ticket_max_lifetime": &c.TicketMaxLifetime},
		NonNegativeInt: map[string]*int{"max_token_bytes": &c.MaxTokenBytes, "max_connections": &c.MaxConnections,
			"max_connections_per_subject": &c.MaxConnectionsPerSubject},
	}
	if ok, err := fields.Read(d, dir); ok {
		return err
	}
	switch dir {
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
	case "auth_url":
		return c.parseCallout(d)
	}
	return d.Errf("unknown auth subdirective %q", dir)
}

// hmac_secret <secret> [HS256|HS384|HS512] [kid <kid>]
func (c *Config) parseHMAC(d *caddyfile.Dispenser) error {
	secret, rest, err := caddyargs.Head(d)
	if err != nil {
		return err
	}
	k := HMACKey{Secret: secret}
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
	url, rest, err := caddyargs.Head(d)
	if err != nil {
		return err
	}
	s := JWKSSource{URL: url}
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
	fields := caddyargs.Fields{
		Strings:        map[string]*[]string{"forward_headers": &a.ForwardHeaders, "session_cookies": &a.SessionCookies},
		Duration:       map[string]*caddy.Duration{"timeout": &a.Timeout},
		NonNegativeInt: map[string]*int{"cache_size": &a.CacheSize, "max_concurrent": &a.MaxConcurrent},
	}
	err := caddyargs.Lines(d, func(key string) error {
		if ok, err := fields.Read(d, key); ok {
			return err
		}
		if key == "cache_ttl" {
			return parseCacheTTL(d, &a.CacheTTL)
		}
		return d.Errf("unknown auth_url subdirective %q", key)
	})
	if err != nil {
		return err
	}
	c.AuthURL = a
	return nil
}

// parseCacheTTL reads a duration, or off for no caching.
func parseCacheTTL(d *caddyfile.Dispenser, dst *caddy.Duration) error {
	var v string
	if err := caddyargs.String(d, &v); err != nil {
		return err
	}
	if v == "off" {
		*dst = caddy.Duration(-1)
		return nil
	}
	dur, err := caddy.ParseDuration(v)
	if err != nil || dur <= 0 {
		return d.Errf("cache_ttl: invalid duration %q", v)
	}
	*dst = caddy.Duration(dur)
	return nil
}

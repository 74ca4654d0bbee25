package control

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// UnmarshalCaddyfile reads the handler's control sub-directive at the
// dispenser's position:
//
//	control <path> {
//	    key                 <secret>
//	    subject_prefix      <prefix>
//	    bucket              <name>
//	    max_credential_life <duration>
//	}
func (c *Config) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	if !d.NextArg() {
		return d.ArgErr()
	}
	c.Path = d.Val()
	if d.NextArg() {
		return d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		key := d.Val()
		args := d.RemainingArgs()
		if len(args) != 1 {
			return d.ArgErr()
		}
		switch key {
		case "key":
			c.Keys = append(c.Keys, args[0])
		case "subject_prefix":
			c.SubjectPrefix = args[0]
		case "bucket":
			c.Bucket = args[0]
		case "max_credential_life":
			dur, err := caddy.ParseDuration(args[0])
			if err != nil || dur <= 0 {
				return d.Errf("max_credential_life: want a positive duration, got %q", args[0])
			}
			c.MaxCredentialLife = caddy.Duration(dur)
		default:
			return d.Errf("unknown control option %q", key)
		}
	}
	return nil
}

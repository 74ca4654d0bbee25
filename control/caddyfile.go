package control

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/ssegate/ssegate/internal/caddyargs"
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
	if err := caddyargs.String(d, &c.Path); err != nil {
		return err
	}
	fields := caddyargs.Fields{
		String:   map[string]*string{"subject_prefix": &c.SubjectPrefix, "bucket": &c.Bucket},
		Duration: map[string]*caddy.Duration{"max_credential_life": &c.MaxCredentialLife},
	}
	return caddyargs.Lines(d, func(key string) error {
		if key == "key" {
			var k string
			err := caddyargs.String(d, &k)
			c.Keys = append(c.Keys, k)
			return err
		}
		if ok, err := fields.Read(d, key); ok {
			return err
		}
		return d.Errf("unknown control option %q", key)
	})
}

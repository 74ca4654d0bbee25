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
	fields := caddyargs.Fields{
		String:   map[string]*string{"subject_prefix": &c.SubjectPrefix, "bucket": &c.Bucket},
		Duration: map[string]*caddy.Duration{"max_credential_life": &c.MaxCredentialLife},
	}
	return caddyargs.Endpoint(d, &c.Path, fields, func(key string) (bool, error) {
		if key != "key" {
			return false, nil
		}
		var k string
		err := caddyargs.String(d, &k)
		c.Keys = append(c.Keys, k)
		return true, err
	})
}

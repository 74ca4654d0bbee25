package history

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/ssegate/ssegate/internal/caddyargs"
)

// maxMaxBytes bounds max_bytes: an answer is built in memory.
const maxMaxBytes = 1 << 30

// UnmarshalCaddyfile reads the history sub-directive of ssegate, the
// dispenser at its name:
//
//	history <path> {
//	    limit     <n>
//	    max_limit <n>
//	    max_bytes <size>
//	}
func (c *Config) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	fields := caddyargs.Fields{PositiveInt: map[string]*int{"limit": &c.Limit, "max_limit": &c.MaxLimit}}
	return caddyargs.Endpoint(d, &c.Path, fields, func(key string) (bool, error) {
		if key != "max_bytes" {
			return false, nil
		}
		var n int64
		err := caddyargs.SizeUpTo(d, &n, maxMaxBytes)
		c.MaxBytes = int(n)
		return true, err
	})
}

// UnmarshalCaddyfile reads the poll sub-directive of ssegate, the
// dispenser at its name:
//
//	poll <path> {
//	    max_wait <duration>
//	}
func (c *PollConfig) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	fields := caddyargs.Fields{Duration: map[string]*caddy.Duration{"max_wait": &c.MaxWait}}
	return caddyargs.Endpoint(d, &c.Path, fields, nil)
}

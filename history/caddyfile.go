package history

import (
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
	if err := caddyargs.String(d, &c.Path); err != nil {
		return err
	}
	return caddyargs.Lines(d, func(key string) error {
		switch key {
		case "limit":
			return caddyargs.PositiveInt(d, &c.Limit)
		case "max_limit":
			return caddyargs.PositiveInt(d, &c.MaxLimit)
		case "max_bytes":
			var n int64
			err := caddyargs.SizeUpTo(d, &n, maxMaxBytes)
			c.MaxBytes = int(n)
			return err
		}
		return d.Errf("unknown history option %q", key)
	})
}

// UnmarshalCaddyfile reads the poll sub-directive of ssegate, the
// dispenser at its name:
//
//	poll <path> {
//	    max_wait <duration>
//	}
func (c *PollConfig) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	if err := caddyargs.String(d, &c.Path); err != nil {
		return err
	}
	return caddyargs.Lines(d, func(key string) error {
		if key == "max_wait" {
			return caddyargs.Duration(d, &c.MaxWait)
		}
		return d.Errf("unknown poll option %q", key)
	})
}

package history

import (
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/dustin/go-humanize"
)

// UnmarshalCaddyfile reads the history sub-directive of ssegate, the
// dispenser at its name:
//
//	history <path> {
//	    limit     <n>
//	    max_limit <n>
//	    max_bytes <size>
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
		var err error
		switch d.Val() {
		case "limit":
			err = positiveInt(d, &c.Limit)
		case "max_limit":
			err = positiveInt(d, &c.MaxLimit)
		case "max_bytes":
			err = size(d, &c.MaxBytes)
		default:
			err = d.Errf("unknown history option %q", d.Val())
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// UnmarshalCaddyfile reads the poll sub-directive of ssegate, the
// dispenser at its name:
//
//	poll <path> {
//	    max_wait <duration>
//	}
func (c *PollConfig) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	if !d.NextArg() {
		return d.ArgErr()
	}
	c.Path = d.Val()
	if d.NextArg() {
		return d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "max_wait":
			if !d.NextArg() {
				return d.ArgErr()
			}
			v, err := caddy.ParseDuration(d.Val())
			if err != nil || v <= 0 {
				return d.Errf("max_wait %q: want a positive duration", d.Val())
			}
			c.MaxWait = caddy.Duration(v)
		default:
			return d.Errf("unknown poll option %q", d.Val())
		}
	}
	return nil
}

func positiveInt(d *caddyfile.Dispenser, dst *int) error {
	name := d.Val()
	if !d.NextArg() {
		return d.ArgErr()
	}
	n, err := strconv.Atoi(d.Val())
	if err != nil || n <= 0 {
		return d.Errf("%s %q: want a positive integer", name, d.Val())
	}
	*dst = n
	return nil
}

func size(d *caddyfile.Dispenser, dst *int) error {
	name := d.Val()
	if !d.NextArg() {
		return d.ArgErr()
	}
	n, err := humanize.ParseBytes(d.Val())
	if err != nil || n == 0 || n > 1<<30 {
		return d.Errf("%s %q: want a size from 1B to 1GiB", name, d.Val())
	}
	*dst = int(n)
	return nil
}

package presence

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// Directives are the handler sub-directives this package reads.
var Directives = []string{"presence", "presence_channels", "presence_events"}

// UnmarshalCaddyfile reads one of the handler's presence sub-directives
// at the dispenser's position, into *cfg (made when nil):
//
//	presence <path> {
//	    subject_prefix <prefix>
//	    bucket         <name>
//	    ttl            <duration>
//	}
//	presence_channels <pattern...>
//	presence_events   <pattern...>
func UnmarshalCaddyfile(d *caddyfile.Dispenser, cfg **Config) error {
	if *cfg == nil {
		*cfg = new(Config)
	}
	c := *cfg
	switch d.Val() {
	case "presence_channels":
		return appendArgs(d, &c.Channels)
	case "presence_events":
		return appendArgs(d, &c.Events)
	}
	if c.Path != "" {
		return d.Err("presence is given more than once")
	}
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
		case "subject_prefix":
			err = oneArg(d, &c.SubjectPrefix)
		case "bucket":
			err = oneArg(d, &c.Bucket)
		case "ttl":
			var v string
			if err = oneArg(d, &v); err == nil {
				var dur, perr = caddy.ParseDuration(v)
				if perr != nil || dur <= 0 {
					return d.Errf("ttl: want a positive duration, got %q", v)
				}
				c.TTL = caddy.Duration(dur)
			}
		default:
			err = d.Errf("unknown presence option %q", d.Val())
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func appendArgs(d *caddyfile.Dispenser, dst *[]string) error {
	args := d.RemainingArgs()
	if len(args) == 0 {
		return d.ArgErr()
	}
	*dst = append(*dst, args...)
	return nil
}

func oneArg(d *caddyfile.Dispenser, dst *string) error {
	if !d.NextArg() {
		return d.ArgErr()
	}
	*dst = d.Val()
	if d.NextArg() {
		return d.ArgErr()
	}
	return nil
}

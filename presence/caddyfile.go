package presence

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/ssegate/ssegate/internal/caddyargs"
)

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
		return caddyargs.Strings(d, &c.Channels)
	case "presence_events":
		return caddyargs.Strings(d, &c.Events)
	}
	if c.Path != "" {
		return d.Err("presence is given more than once")
	}
	fields := caddyargs.Fields{
		String:   map[string]*string{"subject_prefix": &c.SubjectPrefix, "bucket": &c.Bucket},
		Duration: map[string]*caddy.Duration{"ttl": &c.TTL},
	}
	return caddyargs.Endpoint(d, &c.Path, fields, nil)
}

package replay

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/ssegate/ssegate/internal/caddyargs"
)

// UnmarshalCaddyfile reads:
//
//	stream {
//	    name                 <name>
//	    subjects             <subject...>
//	    republish_prefix     <prefix>
//	    storage              file|memory
//	    replicas             <n>
//	    max_age              <duration>
//	    max_msgs_per_subject <n>
//	    max_bytes            <size>
//	}
func (s *StreamConfig) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		var err error
		switch d.Val() {
		case "name":
			err = caddyargs.String(d, &s.Name)
		case "subjects":
			s.Subjects = d.RemainingArgs()
			if len(s.Subjects) == 0 {
				err = d.ArgErr()
			}
		case "republish_prefix":
			err = caddyargs.String(d, &s.RepublishPrefix)
		case "storage":
			if err = caddyargs.String(d, &s.Storage); err == nil && s.Storage != "file" && s.Storage != "memory" {
				err = d.Errf("storage must be file or memory, not %q", s.Storage)
			}
		case "replicas":
			err = caddyargs.PositiveInt(d, &s.Replicas)
		case "max_age":
			err = caddyargs.Duration(d, &s.MaxAge)
		case "max_msgs_per_subject":
			var n int
			if err = caddyargs.PositiveInt(d, &n); err == nil {
				s.MaxMsgsPerSubject = int64(n)
			}
		case "max_bytes":
			err = caddyargs.Size(d, &s.MaxBytes)
		default:
			err = d.Errf("unknown stream option %q", d.Val())
		}
		if err != nil {
			return err
		}
	}
	return nil
}

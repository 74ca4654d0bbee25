package replay

import (
	"github.com/caddyserver/caddy/v2"
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
	fields := caddyargs.Fields{
		String:      map[string]*string{"name": &s.Name, "republish_prefix": &s.RepublishPrefix},
		PositiveInt: map[string]*int{"replicas": &s.Replicas},
		Duration:    map[string]*caddy.Duration{"max_age": &s.MaxAge},
	}
	return caddyargs.Block(d, func(key string) error {
		if ok, err := fields.Read(d, key); ok {
			return err
		}
		switch key {
		case "subjects":
			s.Subjects = nil
			return caddyargs.Strings(d, &s.Subjects)
		case "storage":
			err := caddyargs.String(d, &s.Storage)
			if err == nil && s.Storage != "file" && s.Storage != "memory" {
				err = d.Errf("storage must be file or memory, not %q", s.Storage)
			}
			return err
		case "max_msgs_per_subject":
			var n int
			err := caddyargs.PositiveInt(d, &n)
			s.MaxMsgsPerSubject = int64(n)
			return err
		case "max_bytes":
			return caddyargs.Size(d, &s.MaxBytes)
		}
		return d.Errf("unknown stream option %q", key)
	})
}

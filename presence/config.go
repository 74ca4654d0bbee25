// Package presence tells who is connected to a channel across every
// gateway that shares a NATS system: an HTTP endpoint, join and leave
// messages on NATS, and, opted in per channel, join and leave events in
// the channel's own stream. See docs/presence-and-control.md.
package presence

import (
	"cmp"
	"errors"
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/ssegate/ssegate/internal/kvttl"
)

// Config is the handler's presence settings.
type Config struct {
	// Path is the exact path of the endpoint, such as /events/presence.
	Path string `json:"path"`
	// Channels are the channels whose presence anyone who may read them
	// may see (presence_channels). Others need a "presence": true claim.
	Channels []string `json:"channels,omitempty"`
	// Events are the channels whose streams carry join and leave events
	// (presence_events).
	Events []string `json:"events,omitempty"`
	// Names are the NATS subject prefix of join and leave messages,
	// <prefix>.presence.<channel>, and the KV bucket of presence entries
	// and claims. Default "ssegate" and "ssegate_presence".
	kvttl.Names
	// TTL bounds how long a gateway that died unannounced keeps its users
	// present: its entries expire, and a live gateway publishes their
	// leaves. Entries are refreshed every TTL/3. Default 30s, at least 3s.
	TTL caddy.Duration `json:"ttl,omitempty"`
}

// Defaults.
const (
	DefaultBucket = "ssegate_presence"
	DefaultTTL    = 30 * time.Second
	minTTL        = 3 * time.Second
)

func (c *Config) bucket() string     { return cmp.Or(c.Bucket, DefaultBucket) }
func (c *Config) ttl() time.Duration { return cmp.Or(time.Duration(c.TTL), DefaultTTL) }

// Validate checks the settings; patterns are checked when compiled.
func (c *Config) Validate() error {
	var errs []error
	errs = append(errs, kvttl.CheckPath("presence", c.Path), kvttl.CheckNames("presence", c.bucket(), c.Prefix()))
	if c.TTL != 0 && time.Duration(c.TTL) < minTTL {
		errs = append(errs, fmt.Errorf("presence ttl %v: at least %v", time.Duration(c.TTL), minTTL))
	}
	return errors.Join(errs...)
}

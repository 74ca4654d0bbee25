package publish

import (
	"errors"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/ssegate/ssegate/auth"
	"github.com/ssegate/ssegate/internal/caddyargs"
)

// Config enables publishing over HTTP, for backends without a NATS
// client: POST <path>?channel=<channel>[&event=<name>] with the event's
// data as the body, authorized by a bearer publish key or a JWT whose
// "publish" claim covers the channel.
type Config struct {
	// Path is the exact path that takes POSTs, such as /events/publish.
	Path string `json:"path"`
	// Keys are bearer secrets for publishers that do not mint JWTs.
	Keys []auth.PublishKey `json:"keys,omitempty"`
	// MaxBody bounds an event's data, in bytes. Default 64 KiB; NATS's
	// own max_payload (1 MiB by default) bounds it too.
	MaxBody int64 `json:"max_body,omitempty"`
}

// DefaultMaxBody is the default of Config.MaxBody.
const DefaultMaxBody = 64 << 10

// Validate checks the config; hasAuthKeys says whether the gateway can
// verify JWTs. Without publish keys, publishers need JWTs, and so the
// handler needs keys to verify them.
func (c *Config) Validate(hasAuthKeys bool) error {
	switch {
	case c.Path == "":
		return errors.New("publish: a path is required")
	case c.MaxBody < 0:
		return errors.New("publish: max_body cannot be negative")
	case len(c.Keys) == 0 && !hasAuthKeys:
		return errors.New("publish: no key, and no auth keys to verify publisher JWTs")
	}
	return nil
}

// maxMaxBody bounds max_body: an event is one NATS message, and NATS's
// max_payload is at most 64 MiB.
const maxMaxBody = 64 << 20

// UnmarshalCaddyfile reads:
//
//	publish <path> {
//	    key      <secret> [<channel pattern>...]
//	    max_body <size>
//	}
func (c *Config) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return caddyargs.Endpoint(d, &c.Path, caddyargs.Fields{}, func(key string) (bool, error) {
		switch key {
		case "key":
			secret, channels, err := caddyargs.Head(d)
			if err == nil {
				c.Keys = append(c.Keys, auth.PublishKey{Secret: secret, Channels: channels})
			}
			return true, err
		case "max_body":
			return true, caddyargs.SizeUpTo(d, &c.MaxBody, maxMaxBody)
		}
		return false, nil
	})
}

// Package control lets a backend end streams on every gateway, and revoke
// credentials so that they are refused everywhere until they would have
// expired: over HTTP (POST <path>/disconnect, <path>/revoke) and over NATS
// (<prefix>.control.disconnect, <prefix>.control.revoke). See
// docs/presence-and-control.md.
package control

import (
	"cmp"
	"errors"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/ssegate/ssegate/internal/kvttl"
)

// Config is the handler's control settings.
type Config struct {
	// Path is the endpoint's prefix, such as /events/control.
	Path string `json:"path"`
	// Keys are bearer secrets that may control, for backends that do not
	// mint JWTs; a JWT with "control": true may too.
	Keys []string `json:"keys,omitempty"`
	// Names are the prefix of the control subjects, <prefix>.control.>,
	// and the KV bucket of revocations. Default "ssegate" and
	// "ssegate_revoked".
	kvttl.Names
	// MaxCredentialLife is the longest life of a credential this gateway
	// accepts. A revocation is kept that long when it cannot tell the
	// credential's own expiry. Default 24h.
	MaxCredentialLife caddy.Duration `json:"max_credential_life,omitempty"`
}

// DefaultBucket is the KV bucket of revocations when none is set.
const DefaultBucket = "ssegate_revoked"

func (c *Config) bucket() string { return cmp.Or(c.Bucket, DefaultBucket) }

// DefaultMaxCredentialLife is MaxCredentialLife when unset.
const DefaultMaxCredentialLife = 24 * time.Hour

func (c *Config) maxLife() time.Duration {
	return cmp.Or(time.Duration(c.MaxCredentialLife), DefaultMaxCredentialLife)
}

// Validate checks the settings.
func (c *Config) Validate() error {
	var errs []error
	errs = append(errs, kvttl.CheckPath("control", c.Path), kvttl.CheckNames("control", c.bucket(), c.Prefix()))
	if c.MaxCredentialLife < 0 {
		errs = append(errs, errors.New("control max_credential_life cannot be negative"))
	}
	return errors.Join(errs...)
}

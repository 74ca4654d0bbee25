// Package history serves a channel's events without a stream: pages of
// stored events (the history endpoint) and long-polls answered from the
// live feed (the poll endpoint). Both speak in stream positions, the ids
// the event streams use, so a page can read history and then open a
// stream after its last id and get every later event exactly once.
package history

import (
	"errors"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// Config enables the history endpoint.
type Config struct {
	// Path the endpoint answers on, for example /events/history.
	Path string `json:"path,omitempty"`
	// Limit is the events of one answer when the request names none.
	// Default 100.
	Limit int `json:"limit,omitempty"`
	// MaxLimit is the most events a request may ask for. Default 1000.
	MaxLimit int `json:"max_limit,omitempty"`
	// MaxBytes caps the events' data in one answer; an answer that
	// reaches it says "more". Default 1 MiB.
	MaxBytes int `json:"max_bytes,omitempty"`
}

// PollConfig enables the long-poll endpoint. Its answers are bounded
// like the history endpoint's.
type PollConfig struct {
	// Path the endpoint answers on, for example /events/poll.
	Path string `json:"path,omitempty"`
	// MaxWait caps a poll's wait; the handler's write_timeout and
	// MaxWaitCeiling cap it too. Default MaxWaitCeiling.
	MaxWait caddy.Duration `json:"max_wait,omitempty"`
}

// Defaults and bounds.
const (
	DefaultLimit    = 100
	DefaultMaxLimit = 1000
	DefaultMaxBytes = 1 << 20
	// MaxWaitCeiling is the longest a poll waits, whatever the config.
	MaxWaitCeiling = 60 * time.Second
)

func (c Config) limits() (def, most, bytes int) {
	most = orInt(c.MaxLimit, DefaultMaxLimit)
	return min(orInt(c.Limit, DefaultLimit), most), most, orInt(c.MaxBytes, DefaultMaxBytes)
}

// Validate checks the config offline.
func (c Config) Validate() error {
	if c.Limit < 0 || c.MaxLimit < 0 || c.MaxBytes < 0 {
		return errors.New("history: limit, max_limit and max_bytes cannot be negative")
	}
	if c.Limit > orInt(c.MaxLimit, DefaultMaxLimit) {
		return errors.New("history: limit is above max_limit")
	}
	return nil
}

// Validate checks the config offline.
func (c PollConfig) Validate() error {
	if c.MaxWait < 0 {
		return errors.New("poll: max_wait cannot be negative")
	}
	return nil
}

// maxWait is the longest a poll waits, given the handler's write timeout.
func (c PollConfig) maxWait(writeTimeout time.Duration) time.Duration {
	w := MaxWaitCeiling
	if c.MaxWait > 0 {
		w = min(w, time.Duration(c.MaxWait))
	}
	if writeTimeout > 0 {
		w = min(w, writeTimeout)
	}
	return w
}

func orInt(n, def int) int {
	if n == 0 {
		return def
	}
	return n
}

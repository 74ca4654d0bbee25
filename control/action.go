package control

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"

	"github.com/ssegate/ssegate/auth"
	"github.com/ssegate/ssegate/internal/streams"
)

// Action is a disconnect or a revocation, as posted over HTTP and as
// carried on NATS.
type Action struct {
	// ID names the action in answers and logs; the gateway that takes an
	// HTTP request sets it.
	ID string `json:"id,omitempty"`
	// One selector: a sub, a credential's jti, or a connection id (the
	// last for disconnect only).
	Sub        string `json:"sub,omitempty"`
	JTI        string `json:"jti,omitempty"`
	Connection string `json:"connection,omitempty"`
	// Channels narrows a disconnect to streams carrying one of them.
	Channels []string `json:"channels,omitempty"`
	// IssuedBefore (unix seconds) revokes the sub's credentials issued
	// before it; revoke by sub needs it.
	IssuedBefore int64 `json:"issued_before,omitempty"`
	// Expires (unix seconds), for a revocation by jti, is the credential's
	// exp; the revocation is kept until then. Without it, it is kept for
	// max_credential_life.
	Expires int64 `json:"expires,omitempty"`
}

// Kinds of action, the last token of their NATS subject.
const (
	KindDisconnect = "disconnect"
	KindRevoke     = "revoke"
)

// Limits on what an action may name.
const (
	maxBody     = 4 << 10
	maxSelector = 256
	maxChannels = 64
	// maxUnix is 9999-12-31T23:59:59Z, the latest issued_before or
	// expires.
	maxUnix = 253402300799
)

// parse reads one action of kind from body: strict JSON, one object,
// no unknown fields.
func parse(kind string, body io.Reader) (*Action, error) {
	b, err := io.ReadAll(io.LimitReader(body, maxBody+1))
	if err != nil {
		return nil, errors.New("could not read the body")
	}
	if len(b) > maxBody {
		return nil, fmt.Errorf("body larger than %d bytes", maxBody)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var a Action
	if err := dec.Decode(&a); err != nil {
		return nil, fmt.Errorf("body is not one action object: %s", clip(err.Error()))
	}
	if dec.More() {
		return nil, errors.New("body holds more than one JSON value")
	}
	return &a, a.check(kind)
}

// check enforces one selector that matches what the kind allows.
func (a *Action) check(kind string) error {
	n := 0
	for _, s := range []string{a.Sub, a.JTI, a.Connection} {
		if s != "" {
			n++
		}
		if !plain(s) {
			return errors.New("sub, jti and connection must be at most 256 printable characters without spaces or the wildcards * and >")
		}
	}
	switch {
	case n == 0:
		return errors.New("name a sub, a jti or a connection")
	case n > 1:
		return errors.New("name only one of sub, jti and connection")
	case len(a.Channels) > maxChannels:
		return fmt.Errorf("at most %d channels", maxChannels)
	case a.IssuedBefore < 0 || a.Expires < 0 || a.IssuedBefore > maxUnix || a.Expires > maxUnix:
		// A time in milliseconds is caught here, rather than taken for a
		// year past 50,000.
		return errors.New("issued_before and expires are unix seconds, before the year 10000")
	}
	for _, ch := range a.Channels {
		if !auth.ValidChannel(ch) {
			return fmt.Errorf("invalid channel %q", clip(ch))
		}
	}
	if kind == KindDisconnect {
		if a.IssuedBefore != 0 || a.Expires != 0 {
			return errors.New("issued_before and expires are for revoke")
		}
		return nil
	}
	switch {
	case a.Connection != "":
		return errors.New("revoke a jti, or a sub with issued_before; a connection is disconnected")
	case len(a.Channels) > 0:
		return errors.New("a revocation covers the whole credential; channels are for disconnect")
	case a.Sub != "" && a.IssuedBefore == 0:
		return errors.New("revoking a sub needs issued_before")
	case a.JTI != "" && a.IssuedBefore != 0:
		return errors.New("issued_before goes with sub")
	case a.Sub != "" && a.Expires != 0:
		return errors.New("expires goes with jti")
	}
	return nil
}

// plain: short, printable, no spaces, no NATS wildcards.
func plain(s string) bool {
	if len(s) > maxSelector {
		return false
	}
	for _, r := range s {
		if r == '*' || r == '>' || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

func clip(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}

// matches reports whether the action ends stream s.
func (a *Action) matches(kind string, s *streams.Info) bool {
	switch {
	case a.Connection != "" && s.ID != a.Connection:
		return false
	case a.JTI != "" && s.JTI != a.JTI:
		return false
	case a.Sub != "" && s.Sub != a.Sub:
		return false
	case kind == KindRevoke && a.Sub != "" && issuedBefore(s.IssuedAt, a.IssuedBefore):
		// fallthrough to the channel check
	case kind == KindRevoke && a.Sub != "":
		return false
	}
	if len(a.Channels) == 0 {
		return true
	}
	for _, want := range a.Channels {
		for _, ch := range s.Channels {
			if ch == want {
				return true
			}
		}
	}
	return false
}

// issuedBefore: a credential without iat counts as issued before any time.
func issuedBefore(iat time.Time, before int64) bool {
	return iat.IsZero() || iat.Unix() < before
}

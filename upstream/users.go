package upstream

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	"github.com/ssegate/ssegate/replay"
)

// EmbeddedUser is a client account on the embedded server: a user name
// with a password, or an nkey.
type EmbeddedUser struct {
	User string `json:"user,omitempty"`
	// Password may hold Caddy's global placeholders, such as
	// {env.SSEGATE_NATS_PASSWORD}, resolved when the server starts, and
	// may be a bcrypt hash ($2a$...), which nats-server checks as such.
	Password string `json:"password,omitempty"`
	// NKey is the user's public nkey (U...); the client proves it holds
	// the seed, so no secret is in the config.
	NKey string `json:"nkey,omitempty"`
	// Publish is where the user may publish. Default: the stream's
	// subjects, and nothing else.
	Publish []string `json:"publish,omitempty"`
	// Subscribe is what the user may subscribe to. Default: _INBOX.>, so
	// that a JetStream publish receives its acknowledgement.
	Subscribe []string `json:"subscribe,omitempty"`
}

// Configured names may not start with reservedPrefix, which is kept for
// the gateway's own names (its own users are nkeys made at start).
const (
	reservedPrefix = "_ssegate"
	// InboxPrefix is where the gateway's replies arrive. It is not under
	// _INBOX, which backends may read to get their publish acks.
	InboxPrefix = "_SSEGATE_INBOX"
	// BackendInbox is what a backend subscribes to for its acks.
	BackendInbox = "_INBOX.>"
)

func (u EmbeddedUser) name() string { return cmp.Or(u.User, u.NKey) }

func (u EmbeddedUser) validate() error {
	switch {
	case u.User != "" && u.NKey != "":
		return errors.New("embedded user: give user and password, or nkey, not both")
	case u.User == "" && u.NKey == "":
		return errors.New("embedded user: needs a user name or an nkey")
	case u.NKey != "" && u.Password != "":
		return fmt.Errorf("embedded nkey %s: takes no password; the client signs with its seed", u.NKey)
	case strings.HasPrefix(u.NKey, "S"):
		// Never echo it: a seed is a secret.
		return errors.New("embedded nkey: that is a seed, which stays with the client; give its public key (U...)")
	case u.NKey != "" && !nkeys.IsValidPublicUserKey(u.NKey):
		return fmt.Errorf("embedded nkey %q: not a public user nkey (U...)", u.NKey)
	case u.User != "" && u.Password == "":
		return fmt.Errorf("embedded user %q: password is required", u.User)
	case strings.HasPrefix(u.User, reservedPrefix):
		return fmt.Errorf("embedded user %q: names starting with %s are reserved", u.User, reservedPrefix)
	}
	for _, s := range slices.Concat(u.Publish, u.Subscribe) {
		if !replay.ValidSubject(s, true) {
			return fmt.Errorf("embedded user %q: %q is not a NATS subject", u.name(), s)
		}
	}
	return nil
}

// validateUsers checks the users, and refuses an open server that other
// machines can reach.
func (e EmbeddedConfig) validateUsers() error {
	seen := make(map[string]bool, len(e.Users))
	for _, u := range e.Users {
		if err := u.validate(); err != nil {
			return err
		}
		if seen[u.name()] {
			return fmt.Errorf("embedded user %q is given more than once", u.name())
		}
		seen[u.name()] = true
	}
	if e.Anonymous != nil && *e.Anonymous && !e.loopback() {
		return fmt.Errorf("embedded anonymous on: only for a loopback listen, not %q", e.Listen)
	}
	if len(e.Users) == 0 && !e.loopback() {
		return fmt.Errorf("embedded listen %q is reachable from other hosts, and the embedded server "+
			"has no users, so anyone could publish; add a user (`user <name> { password <secret> }` "+
			"or `nkey <U...>` in the embedded block), or listen on 127.0.0.1", e.Listen)
	}
	return nil
}

// anonymous reports whether clients without credentials get in.
func (e EmbeddedConfig) anonymous() bool {
	return e.loopback() && (e.Anonymous == nil || *e.Anonymous)
}

// loopback reports whether only this machine can reach the listener.
func (e EmbeddedConfig) loopback() bool {
	host, _, err := net.SplitHostPort(e.Listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// resolved returns the users with placeholders in passwords replaced.
func resolved(users []EmbeddedUser) ([]EmbeddedUser, error) {
	repl := caddy.NewReplacer()
	out := make([]EmbeddedUser, len(users))
	for i, u := range users {
		u.Password = repl.ReplaceKnown(u.Password, "")
		if u.User != "" && u.Password == "" {
			return nil, fmt.Errorf("embedded user %q: password is empty once placeholders are replaced", u.User)
		}
		out[i] = u
	}
	return out, nil
}

// backendRole is what anonymous local clients and users without their
// own lists may do: publish to the stream, and read their own acks.
func backendRole(streamSubjects []string) *server.Permissions {
	return permissions(streamSubjects, []string{BackendInbox})
}

func (u EmbeddedUser) permissions(streamSubjects []string) *server.Permissions {
	pub, sub := u.Publish, u.Subscribe
	if len(pub) == 0 {
		pub = streamSubjects
	}
	if len(sub) == 0 {
		sub = []string{BackendInbox}
	}
	return permissions(pub, sub)
}

func permissions(pub, sub []string) *server.Permissions {
	return &server.Permissions{Publish: only(pub), Subscribe: only(sub)}
}

// only allows exactly subjects. nats-server reads an empty allow list as
// "everything", so an empty one denies all instead.
func only(subjects []string) *server.SubjectPermission {
	if len(subjects) == 0 {
		return &server.SubjectPermission{Deny: []string{">"}}
	}
	return &server.SubjectPermission{Allow: append([]string(nil), subjects...)}
}

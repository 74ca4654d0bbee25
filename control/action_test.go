package control

import (
	"strings"
	"testing"
	"time"

	"github.com/ssegate/ssegate/internal/streams"
)

func TestActionMatches(t *testing.T) {
	iat := time.Unix(1000, 0)
	s := &streams.Info{ID: "c1", Sub: "alice", JTI: "j1", IssuedAt: iat, Channels: []string{"room.1", "room.2"}}
	anon := &streams.Info{ID: "c2", Channels: []string{"room.1"}}
	noIAT := &streams.Info{ID: "c3", Sub: "alice", Channels: []string{"room.1"}}
	for _, c := range []struct {
		name string
		kind string
		a    Action
		s    *streams.Info
		want bool
	}{
		{"sub", KindDisconnect, Action{Sub: "alice"}, s, true},
		{"other sub", KindDisconnect, Action{Sub: "bob"}, s, false},
		{"jti", KindDisconnect, Action{JTI: "j1"}, s, true},
		{"connection", KindDisconnect, Action{Connection: "c1"}, s, true},
		{"other connection", KindDisconnect, Action{Connection: "c2"}, s, false},
		{"sub on a channel it carries", KindDisconnect, Action{Sub: "alice", Channels: []string{"room.2"}}, s, true},
		{"sub on a channel it does not carry", KindDisconnect, Action{Sub: "alice", Channels: []string{"room.3"}}, s, false},
		{"anonymous never by sub", KindDisconnect, Action{Sub: "alice"}, anon, false},
		{"revoke issued after", KindRevoke, Action{Sub: "alice", IssuedBefore: 1000}, s, false},
		{"revoke issued before", KindRevoke, Action{Sub: "alice", IssuedBefore: 1001}, s, true},
		{"revoke without iat", KindRevoke, Action{Sub: "alice", IssuedBefore: 1}, noIAT, true},
		{"revoke jti", KindRevoke, Action{JTI: "j1"}, s, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := c.a.matches(c.kind, c.s); got != c.want {
				t.Fatalf("matches: %v, want %v", got, c.want)
			}
		})
	}
}

func TestParseRefuses(t *testing.T) {
	for _, c := range []struct{ kind, body, want string }{
		{KindDisconnect, `{"sub":"alice","x":1}`, "unknown field"},
		{KindDisconnect, `{}`, "name a sub"},
		{KindDisconnect, `{"sub":"a b"}`, "printable"},
		{KindDisconnect, `{"jti":"` + strings.Repeat("j", 300) + `"}`, "at most 256"},
		{KindDisconnect, `{"sub":"a","channels":["` + strings.Repeat(`a","`, 70) + `a"]}`, "at most 64"},
		{KindRevoke, `{"sub":"alice"}`, "needs issued_before"},
		{KindRevoke, `{"jti":"j","issued_before":5}`, "goes with sub"},
		{KindRevoke, `{"sub":"a","issued_before":5,"expires":6}`, "goes with jti"},
		{KindRevoke, `{"jti":"j","issued_before":-1}`, "unix seconds"},
		{KindRevoke, `{"sub":"a","issued_before":1796312151000}`, "unix seconds"},
		{KindRevoke, `{"jti":"j","expires":9223372036854775807}`, "unix seconds"},
	} {
		if _, err := parse(c.kind, strings.NewReader(c.body)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %s: %v, want %q", c.kind, c.body, err, c.want)
		}
	}
}

func TestRevocationsHoldUntilExpiry(t *testing.T) {
	r := newRevocations()
	r.markSynced()
	now := time.Now()
	key, rec, ttl := keyFor(&Action{JTI: "j", Expires: now.Add(time.Hour).Unix()}, time.Hour, now)
	if ttl < time.Hour {
		t.Fatalf("ttl %v shorter than the credential's life", ttl)
	}
	r.apply(key, rec)
	key, rec, _ = keyFor(&Action{Sub: "alice", IssuedBefore: now.Unix()}, time.Hour, now)
	r.apply(key, rec)
	for _, c := range []struct {
		sub, jti string
		iat      time.Time
		want     bool
	}{
		{"x", "j", now, true},
		{"x", "k", now, false},
		{"alice", "", now.Add(-time.Minute), true},
		{"alice", "", now.Add(time.Minute), false},
		{"alice", "", time.Time{}, true},
		{"bob", "", now.Add(-time.Minute), false},
	} {
		if got := r.revoked(c.sub, c.jti, c.iat); got != c.want {
			t.Errorf("revoked(%q, %q, %v) = %v", c.sub, c.jti, c.iat, got)
		}
	}
	// The latest times parse takes are kept a century, not wrapped to a
	// negative TTL (which the KV put raised to a second).
	for _, a := range []*Action{{JTI: "far", Expires: maxUnix}, {Sub: "far", IssuedBefore: maxUnix}} {
		if _, _, ttl := keyFor(a, 24*time.Hour, now); ttl < maxKeep || ttl > maxKeep+time.Hour {
			t.Errorf("%+v kept for %v, want a century", a, ttl)
		}
	}
	// An expired jti revocation no longer holds.
	key, rec, _ = keyFor(&Action{JTI: "old", Expires: now.Add(-time.Hour).Unix()}, time.Hour, now)
	r.apply(key, rec)
	if r.revoked("x", "old", now) {
		t.Error("a revocation past its credential's expiry still holds")
	}
}

package auth

import (
	"net/http"
	"testing"
)

func TestLimits(t *testing.T) {
	now := testNow()
	cfg := hmacConfig()
	cfg.MaxConnections = 3
	cfg.MaxConnectionsPerSubject = 2
	g, obs := newTestGate(t, cfg, now)
	alice := hmacToken(t, claimsFor(now, "alice", "x"))
	bob := hmacToken(t, claimsFor(now, "bob", "x"))

	a1 := mustAdmit(t, g, req("GET", "/", bearer(alice)...), "x")
	a2 := mustAdmit(t, g, req("GET", "/", bearer(alice)...), "x")
	_, e := g.Admit(req("GET", "/", bearer(alice)...), []string{"x"})
	wantErr(t, e, 429, CodeTooManyConnections)
	b1 := mustAdmit(t, g, req("GET", "/", bearer(bob)...), "x")
	_, e = g.Admit(req("GET", "/", bearer(bob)...), []string{"x"})
	wantErr(t, e, 429, CodeTooManyConnections) // global cap
	if !refusalLogged(obs, CodeTooManyConnections) {
		t.Fatal("not logged")
	}
	a1.Release()
	a1.Release() // idempotent
	if total, forAlice := g.limits.counts("alice"); total != 2 || forAlice != 1 {
		t.Fatalf("total %d alice %d", total, forAlice)
	}
	mustAdmit(t, g, req("GET", "/", bearer(alice)...), "x").Release()
	a2.Release()
	b1.Release()
	if total, _ := g.limits.counts("alice"); total != 0 {
		t.Fatalf("leaked %d", total)
	}
	// Anonymous readers share no per-subject slot.
	for range 3 {
		defer mustAdmit(t, g, req("GET", "/"), "demo").Release()
	}
}

// TestAnonymousLimits: anonymous streams are capped per address (an IPv6
// /64), and together at three quarters of the global cap, so a signed-in
// user still gets a slot under anonymous load.
func TestAnonymousLimits(t *testing.T) {
	now := testNow()
	cfg := hmacConfig()
	cfg.MaxConnections = 8
	cfg.MaxAnonymousConnectionsPerAddress = 3
	g, _ := newTestGate(t, cfg, now)
	from := func(addr string) *http.Request {
		r := req("GET", "/")
		r.RemoteAddr = addr
		return r
	}
	for range 3 {
		defer mustAdmit(t, g, from("192.0.2.1:1000"), "demo").Release()
	}
	_, e := g.Admit(from("192.0.2.1:1001"), []string{"demo"})
	wantErr(t, e, 429, CodeTooManyConnections)
	// One host's IPv6 addresses are one address.
	defer mustAdmit(t, g, from("[2001:db8::1]:1000"), "demo").Release()
	defer mustAdmit(t, g, from("[2001:db8::2]:1000"), "demo").Release()
	defer mustAdmit(t, g, from("[2001:db8::3]:1000"), "demo").Release()
	_, e = g.Admit(from("[2001:db8::4]:1000"), []string{"demo"})
	wantErr(t, e, 429, CodeTooManyConnections)
	// Six anonymous streams are three quarters of 8: no more from anyone.
	_, e = g.Admit(from("198.51.100.7:1000"), []string{"demo"})
	wantErr(t, e, 429, CodeTooManyConnections)
	// A signed-in user, from an address full of anonymous streams, too.
	alice := hmacToken(t, claimsFor(now, "alice", "x"))
	r := from("192.0.2.1:1002")
	r.Header.Set("Authorization", "Bearer "+alice)
	defer mustAdmit(t, g, r, "x").Release()
}

// TestAnonymousLimitDefault: without a setting, one address gets
// DefaultMaxAnonymousPerAddress anonymous streams.
func TestAnonymousLimitDefault(t *testing.T) {
	g, _ := newTestGate(t, hmacConfig(), testNow())
	r := req("GET", "/")
	for range DefaultMaxAnonymousPerAddress {
		defer mustAdmit(t, g, r, "demo").Release()
	}
	_, e := g.Admit(r, []string{"demo"})
	wantErr(t, e, 429, CodeTooManyConnections)
	// Loopback clients may be everyone behind a local proxy: not capped.
	local := req("GET", "/")
	local.RemoteAddr = "127.0.0.1:5000"
	for range DefaultMaxAnonymousPerAddress + 1 {
		defer mustAdmit(t, g, local, "demo").Release()
	}
}

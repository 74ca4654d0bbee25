package auth

import (
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

func TestLimits(t *testing.T) {
	now := testNow()
	cfg := hmacConfig()
	cfg.MaxConnections = 3
	cfg.MaxConnectionsPerSubject = 2
	g, obs := newTestGate(t, cfg, now)
	alice := tok(t, jwt.SigningMethodHS256, []byte(testSecret), claimsFor(now, "alice", "x"), "")
	bob := tok(t, jwt.SigningMethodHS256, []byte(testSecret), claimsFor(now, "bob", "x"), "")

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

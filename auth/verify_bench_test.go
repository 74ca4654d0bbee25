package auth

import (
	"context"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// The benchmarks measure the per-connect cost of verify: parse, key
// selection, signature and claims.
func BenchmarkVerifyHMAC(b *testing.B) {
	now := testNow()
	g, _ := newTestGate(b, hmacConfig(), now)
	tk := hmacToken(b, claimsFor(now, "alice", "user.{sub}", "rooms.*"))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, e := g.verifier.verify(ctx, tk); e != nil {
			b.Fatal(e)
		}
	}
}

func BenchmarkVerifyEdDSA(b *testing.B) {
	now := testNow()
	k := genEd(b)
	g, _ := newTestGate(b, Config{PublicKeys: []PublicKey{{Key: pemPublic(b, k.Public()), Alg: "EdDSA"}}}, now)
	tk := tok(b, jwt.SigningMethodEdDSA, k, claimsFor(now, "alice", "user.{sub}", "rooms.*"), "")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, e := g.verifier.verify(ctx, tk); e != nil {
			b.Fatal(e)
		}
	}
}

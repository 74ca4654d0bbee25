package auth

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// parseAuth feeds "ssegate { <body> }" and positions the dispenser on
// `auth`, as the handler's UnmarshalCaddyfile would.
func parseAuth(t *testing.T, body string) (Config, error) {
	t.Helper()
	d := caddyfile.NewTestDispenser("ssegate {\n" + body + "\n}")
	d.Next()
	var c Config
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		if d.Val() != "auth" {
			t.Fatalf("test body must start with auth, got %q", d.Val())
		}
		if err := c.UnmarshalCaddyfile(d); err != nil {
			return c, err
		}
	}
	return c, nil
}

func TestCaddyfileFull(t *testing.T) {
	c, err := parseAuth(t, `auth {
		hmac_secret {env.SSEGATE_JWT_SECRET}
		hmac_secret {env.OLD_SECRET} HS512 kid old
		public_key /etc/ssegate/idp.pem ES256 kid idp1
		public_key /etc/ssegate/ed.pem EdDSA
		jwks https://idp.example/.well-known/jwks.json refresh 10m algs RS256 ES256
		audience ssegate other
		issuer https://idp.example
		leeway 5s
		max_token_bytes 8192
		cookie sess
		bearer off
		public demo news.*
		ticket_param t
		ticket_bucket tickets
		ticket_path /events/ticket
		ticket_lifetime 20s
		ticket_max_lifetime 45s
		ticket_signing_key /etc/ssegate/ticket.pem EdDSA kid t1
		cors_origins https://app.example https://admin.example
		max_connections 10000
		max_connections_per_subject 8
		max_anonymous_connections_per_address 20
		auth_url https://app.example/sse-auth {
			forward_headers Cookie X-Session
			timeout 1s
			cache_ttl 3s
			cache_size 500
			session_cookies sid remember_me
			max_concurrent 16
		}
	}`)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		HMACKeys:   []HMACKey{{Secret: "{env.SSEGATE_JWT_SECRET}"}, {Secret: "{env.OLD_SECRET}", Alg: "HS512", KID: "old"}},
		PublicKeys: []PublicKey{{Key: "/etc/ssegate/idp.pem", Alg: "ES256", KID: "idp1"}, {Key: "/etc/ssegate/ed.pem", Alg: "EdDSA"}},
		JWKS:       []JWKSSource{{URL: "https://idp.example/.well-known/jwks.json", Refresh: caddy.Duration(10 * time.Minute), Algs: []string{"RS256", "ES256"}}},
		Audience:   []string{"ssegate", "other"}, Issuer: "https://idp.example", Leeway: caddy.Duration(5 * time.Second),
		MaxTokenBytes: 8192, Cookie: "sess", DisableBearer: true, Public: []string{"demo", "news.*"},
		TicketParam: "t", TicketBucket: "tickets", TicketPath: "/events/ticket",
		TicketLifetime: caddy.Duration(20 * time.Second), TicketMaxLifetime: caddy.Duration(45 * time.Second),
		TicketSigningKey: &SigningKey{Key: "/etc/ssegate/ticket.pem", Alg: "EdDSA", KID: "t1"},
		CORSOrigins:      []string{"https://app.example", "https://admin.example"},
		MaxConnections:   10000, MaxConnectionsPerSubject: 8, MaxAnonymousConnectionsPerAddress: 20,
		AuthURL: &Callout{URL: "https://app.example/sse-auth", ForwardHeaders: []string{"Cookie", "X-Session"},
			Timeout: caddy.Duration(time.Second), CacheTTL: caddy.Duration(3 * time.Second), CacheSize: 500,
			SessionCookies: []string{"sid", "remember_me"}, MaxConcurrent: 16},
	}
	if !reflect.DeepEqual(c, want) {
		g, _ := json.MarshalIndent(c, "", " ")
		w, _ := json.MarshalIndent(want, "", " ")
		t.Fatalf("got\n%s\nwant\n%s", g, w)
	}
	// The JSON keeps the placeholder, never the secret.
	b, _ := json.Marshal(c)
	if !strings.Contains(string(b), `"secret":"{env.SSEGATE_JWT_SECRET}"`) {
		t.Fatalf("json %s", b)
	}
}

func TestCaddyfileMinimalAndToggles(t *testing.T) {
	c, err := parseAuth(t, "auth {\n hmac_secret s\n cookie off\n bearer on\n auth_url http://x/ { \n cache_ttl off\n }\n}")
	if err != nil {
		t.Fatal(err)
	}
	if !c.DisableCookie || c.DisableBearer || c.AuthURL.CacheTTL >= 0 {
		t.Fatalf("%+v", c)
	}
	if _, err := parseAuth(t, "auth"); err != nil {
		t.Fatalf("empty auth: %v", err)
	}
}

func TestCaddyfileErrors(t *testing.T) {
	bad := []string{
		"auth extra {\n}",
		"auth {\n unknown x\n}",
		"auth {\n hmac_secret\n}",
		"auth {\n hmac_secret s HS999\n}",
		"auth {\n hmac_secret s kid\n}",
		"auth {\n hmac_secret s HS256 kid a b\n}",
		"auth {\n hmac_secret s HS256 id a\n}",
		"auth {\n public_key /k.pem\n}",
		"auth {\n public_key /k.pem HS256\n}",
		"auth {\n public_key /k.pem ES256 kid\n}",
		"auth {\n public_key /k.pem ES256 x y\n}",
		"auth {\n ticket_signing_key /k.pem\n}",
		"auth {\n jwks\n}",
		"auth {\n jwks https://x refresh\n}",
		"auth {\n jwks https://x refresh soon\n}",
		"auth {\n jwks https://x algs\n}",
		"auth {\n jwks https://x algs HS256\n}",
		"auth {\n jwks https://x whatever\n}",
		"auth {\n audience\n}",
		"auth {\n issuer\n}",
		"auth {\n issuer a b\n}",
		"auth {\n leeway\n}",
		"auth {\n leeway ten\n}",
		"auth {\n leeway -1s\n}",
		"auth {\n max_token_bytes many\n}",
		"auth {\n max_connections -1\n}",
		"auth {\n max_connections_per_subject 1 2\n}",
		"auth {\n max_anonymous_connections_per_address -1\n}",
		"auth {\n cookie\n}",
		"auth {\n bearer maybe\n}",
		"auth {\n bearer\n}",
		"auth {\n public\n}",
		"auth {\n ticket_param\n}",
		"auth {\n ticket_bucket a b\n}",
		"auth {\n ticket_path\n}",
		"auth {\n ticket_lifetime 0s\n}",
		"auth {\n ticket_max_lifetime x\n}",
		"auth {\n cors_origins\n}",
		"auth {\n issuer a\n issuer b\n}",
		"auth {\n auth_url\n}",
		"auth {\n auth_url http://x {\n bogus\n }\n}",
		"auth {\n auth_url http://x {\n timeout\n }\n}",
		"auth {\n auth_url http://x {\n cache_ttl never\n }\n}",
		"auth {\n auth_url http://x {\n cache_size -3\n }\n}",
		"auth {\n auth_url http://x {\n forward_headers\n }\n}",
		"auth {\n auth_url http://x {\n session_cookies\n }\n}",
		"auth {\n auth_url http://x {\n max_concurrent -1\n }\n}",
	}
	for _, b := range bad {
		if _, err := parseAuth(t, b); err == nil {
			t.Errorf("accepted:\n%s", b)
		}
	}
}

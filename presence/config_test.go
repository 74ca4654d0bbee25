package presence

import (
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/ssegate/ssegate/internal/kvttl"
)

func TestConfigValidate(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  Config
		want string // "" valid
	}{
		{"defaults", Config{Path: "/events/presence"}, ""},
		{"everything", Config{Path: "/p", Names: kvttl.Names{SubjectPrefix: "acme.app", Bucket: "acme_p-1"}, TTL: caddy.Duration(5 * time.Second)}, ""},
		{"no path", Config{}, "presence path"},
		{"relative path", Config{Path: "p"}, "presence path"},
		{"wildcard path", Config{Path: "/p/*"}, "presence path"},
		{"short ttl", Config{Path: "/p", TTL: caddy.Duration(time.Second)}, "at least 3s"},
		{"wildcard prefix", Config{Path: "/p", Names: kvttl.Names{SubjectPrefix: "acme.*"}}, "subject_prefix"},
		{"empty token prefix", Config{Path: "/p", Names: kvttl.Names{SubjectPrefix: "acme..x"}}, "subject_prefix"},
		{"bad bucket", Config{Path: "/p", Names: kvttl.Names{Bucket: "a.b"}}, "bucket"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.cfg.Validate()
			if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
				t.Fatalf("Validate: %v, want %q", err, c.want)
			}
		})
	}
	if _, err := New(Config{Path: "/p", Events: []string{"room.**"}}, nil); err == nil {
		t.Fatal("a bad presence_events pattern was taken")
	}
}

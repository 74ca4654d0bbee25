package auth

import (
	"strings"
	"testing"
)

func TestPatternMatching(t *testing.T) {
	cases := []struct {
		pattern, channel string
		want             bool
	}{
		{"demo", "demo", true},
		{"demo", "demo.x", false},
		{"news.*", "news.today", true},
		{"news.*", "news", false},
		{"news.*", "news.a.b", false},
		{"news.>", "news.a.b", true},
		{"news.>", "news", false},
		{">", "anything.at.all", true},
		{"*.x", "a.x", true},
		{"*.x", "a.y", false},
		{"a.*.c", "a.b.c", true},
		{"a.*.c", "a.b.d", false},
	}
	for _, c := range cases {
		p, err := parsePattern(c.pattern)
		if err != nil {
			t.Fatalf("%s: %v", c.pattern, err)
		}
		if got := p.matches(c.channel); got != c.want {
			t.Errorf("%q matches %q = %v", c.pattern, c.channel, got)
		}
	}
	for _, bad := range []string{"", ".", "a..b", ".a", "a.", "a.>.b", "a*", "a>", "a b", "a{b", "é"} {
		if _, err := parsePattern(bad); err == nil {
			t.Errorf("parsePattern(%q) accepted", bad)
		}
	}
}

func TestExpandSub(t *testing.T) {
	good := map[string]string{"alice": "user.alice", "a-b_c@d": "user.a-b_c@d"}
	for sub, want := range good {
		got, err := expandSub("user.{sub}", sub)
		if err != nil || got != want {
			t.Errorf("%q: %q %v", sub, got, err)
		}
	}
	for _, sub := range []string{"", "*", ">", "a.b", "..", "a b", "{sub}", "x}", "\x00"} {
		if got, err := expandSub("user.{sub}", sub); err == nil {
			t.Errorf("sub %q expanded to %q", sub, got)
		}
	}
	for _, p := range []string{"user.x{sub}", "user.{sub", "user.{other}"} {
		if got, err := expandSub(p, "alice"); err == nil {
			t.Errorf("pattern %q expanded to %q", p, got)
		}
	}
}

// FuzzParseChannelPattern checks that a pattern which parses never lets a
// {sub} widen access and that matching agrees with a naive reference.
func FuzzParseChannelPattern(f *testing.F) {
	for _, s := range []string{"demo", "user.{sub}", "news.*", "a.>", ">", "*", "a..b", "user.{sub}.>", "x.*.y", ".", "a{b}", "\xff"} {
		f.Add(s, "alice", "user.alice")
	}
	f.Add("user.{sub}", "*", "user.bob")
	f.Add("user.{sub}.>", "a.b", "user.a.b.c")
	f.Fuzz(func(t *testing.T, raw, sub, channel string) {
		expanded, err := expandSub(raw, sub)
		if err != nil {
			return
		}
		p, err := parsePattern(expanded)
		if err != nil {
			return
		}
		if strings.Contains(raw, subPlaceholder) && strings.ContainsAny(sub, ".*>{}") {
			t.Fatalf("sub %q was expanded into %q", sub, raw)
		}
		if strings.Count(expanded, "*")+strings.Count(expanded, ">") > strings.Count(raw, "*")+strings.Count(raw, ">") {
			t.Fatalf("expansion added wildcards: %q -> %q", raw, expanded)
		}
		if !ValidChannel(channel) {
			return
		}
		if got, want := p.matches(channel), naiveMatch(expanded, channel); got != want {
			t.Fatalf("%q vs %q: %v, reference %v", expanded, channel, got, want)
		}
		if p.concrete() && !p.matches(expanded) {
			t.Fatalf("concrete %q does not match itself", expanded)
		}
	})
}

func naiveMatch(pattern, channel string) bool {
	pt, ct := strings.Split(pattern, "."), strings.Split(channel, ".")
	for i, tok := range pt {
		if tok == ">" {
			return len(ct) > i
		}
		if i >= len(ct) || tok != "*" && tok != ct[i] {
			return false
		}
	}
	return len(ct) == len(pt)
}

// TestValidChannelIsTheOneRule: the gateway's one rule for channel names,
// which streams, the publish endpoint and the ticket endpoint all apply.
// 200 bytes is the limit (see maxChannelLen): 200 pass, 201 do not.
func TestValidChannelIsTheOneRule(t *testing.T) {
	at200 := strings.Repeat("a", 99) + "." + strings.Repeat("b", 100)
	tests := []struct {
		name, channel string
		valid         bool
	}{
		{"plain", "orders.eu", true},
		{"200 bytes", at200, true},
		{"201 bytes", at200 + "c", false},
		{"33 tokens", strings.Repeat("a.", 32) + "a", false},
		{"32 tokens", strings.Repeat("a.", 31) + "a", true},
		{"empty", "", false},
		{"empty token", "a..b", false},
		{"trailing dot", "a.", false},
		{"star", "a.*", false},
		{"tail", "a.>", false},
		{"space", "a b", false},
		{"control", "a\x01", false},
		{"brace", "a{sub}", false},
		{"not ASCII", "café", false},
	}
	for _, tc := range tests {
		if got := ValidChannel(tc.channel); got != tc.valid {
			t.Errorf("%s: ValidChannel(%q) = %v, want %v", tc.name, tc.channel, got, tc.valid)
		}
		if e := InvalidChannel(tc.channel); e.Status != 400 || e.Code != CodeInvalidChannel {
			t.Errorf("%s: refusal %+v", tc.name, e)
		}
	}
}

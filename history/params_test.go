package history

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// TestParseParams: what history and poll accept, their defaults, and
// the refusal code for each bad input.
func TestParseParams(t *testing.T) {
	for _, tc := range []struct {
		query string
		code  string // "" accepted
		limit int
		last  int
		after string
	}{
		{query: "", limit: 100},
		{query: "limit=1", limit: 1},
		{query: "limit=1000", limit: 1000},
		{query: "limit=0", code: "invalid_limit"},
		{query: "limit=-1", code: "invalid_limit"},
		{query: "limit=1000000000", code: "invalid_limit"},
		{query: "limit=1001", code: "invalid_limit"},
		{query: "limit=ten", code: "invalid_limit"},
		{query: "limit=5&limit=6", code: "invalid_limit"},
		{query: "last=50", limit: 50, last: 50},
		{query: "last=50&limit=10", limit: 50, last: 50},
		{query: "last=0", code: "invalid_last"},
		{query: "last=1001", code: "invalid_last"},
		{query: "after=12-abc&last=5", code: "conflicting_params"},
		{query: "since=2026-01-01T00:00:00Z&last=5", code: "conflicting_params"},
		{query: "after=12-abc", limit: 100, after: "12-abc"},
		// A position that is no id is answered with a reset, not refused.
		{query: "after=bogus", limit: 100, after: "bogus"},
		{query: "after=", limit: 100},
		{query: "event=a&event=b", limit: 100},
		{query: "event=", code: "invalid_event"},
		{query: "event=" + strings.Repeat("x", 129), code: "invalid_event"},
	} {
		q, err := url.ParseQuery(tc.query)
		if err != nil {
			t.Fatal(err)
		}
		p, perr := parseParams(q, 100, 1000)
		switch {
		case tc.code != "":
			if perr == nil || perr.Code != tc.code || perr.Status != 400 {
				t.Errorf("%q: got %+v, want 400 %s", tc.query, perr, tc.code)
			}
		case perr != nil:
			t.Errorf("%q: refused %+v", tc.query, perr)
		case p.limit != tc.limit || p.last != tc.last || p.after != tc.after || p.hasAfter != strings.Contains(tc.query, "after="):
			t.Errorf("%q: got limit %d last %d after %q (given %v)", tc.query, p.limit, p.last, p.after, p.hasAfter)
		}
	}
}

// TestParseParamsSinceAndFilter: since is kept as given (history parses
// it, with a reset for a bad one) and the filter is read.
func TestParseParamsSinceAndFilter(t *testing.T) {
	p, perr := parseParams(url.Values{"since": {"yesterday"}, "event": {"order.paid"}}, 100, 1000)
	if perr != nil || p.since != "yesterday" || !p.filter.Active() || !p.filter.Passes("order.paid") || p.filter.Passes("other") {
		t.Fatalf("got %+v %+v", p, perr)
	}
}

// TestParseWait: a duration or whole seconds, capped at the most a poll
// may wait; absent is the most.
func TestParseWait(t *testing.T) {
	const most = 30 * time.Second
	for _, tc := range []struct {
		wait string
		want time.Duration
		code string
	}{
		{"", most, ""},
		{"25s", 25 * time.Second, ""},
		{"250ms", 250 * time.Millisecond, ""},
		{"25", 25 * time.Second, ""},
		{"0", 0, ""},
		{"1h", most, ""},
		{"3600", most, ""},
		{"-1s", 0, "invalid_wait"},
		{"-5", 0, "invalid_wait"},
		{"soon", 0, "invalid_wait"},
		{"99999999999", 0, "invalid_wait"},
	} {
		q := url.Values{}
		if tc.wait != "" {
			q.Set("wait", tc.wait)
		}
		got, err := parseWait(q, most)
		switch {
		case tc.code != "":
			if err == nil || err.Code != tc.code {
				t.Errorf("wait=%q: got %v %+v, want %s", tc.wait, got, err, tc.code)
			}
		case err != nil || got != tc.want:
			t.Errorf("wait=%q: got %v %+v, want %v", tc.wait, got, err, tc.want)
		}
	}
	// Given twice, as limit and last may not be.
	if got, err := parseWait(url.Values{"wait": {"1s", "3s"}}, most); err == nil || err.Code != "invalid_wait" {
		t.Errorf("wait twice: got %v %+v, want invalid_wait", got, err)
	}
}

// TestMaxWait: max_wait, the handler's write_timeout and the 60 s
// ceiling each cap a poll's wait.
func TestMaxWait(t *testing.T) {
	for _, tc := range []struct {
		maxWait, writeTimeout, want time.Duration
	}{
		{0, 0, MaxWaitCeiling},
		{2 * time.Minute, 0, MaxWaitCeiling},
		{20 * time.Second, 0, 20 * time.Second},
		{20 * time.Second, 10 * time.Second, 10 * time.Second},
		{0, 45 * time.Second, 45 * time.Second},
	} {
		c := PollConfig{MaxWait: caddy.Duration(tc.maxWait)}
		if got := c.maxWait(tc.writeTimeout); got != tc.want {
			t.Errorf("max_wait %v, write_timeout %v: %v, want %v", tc.maxWait, tc.writeTimeout, got, tc.want)
		}
	}
}

// TestConfigLimits: defaults, and the checks Validate makes.
func TestConfigLimits(t *testing.T) {
	def, most, bytes := Config{}.limits()
	if def != DefaultLimit || most != DefaultMaxLimit || bytes != DefaultMaxBytes {
		t.Fatalf("defaults %d %d %d", def, most, bytes)
	}
	if def, most, _ := (Config{MaxLimit: 50}).limits(); def != 50 || most != 50 {
		t.Fatalf("max_limit below the default limit: %d %d", def, most)
	}
	for _, bad := range []Config{{Limit: -1}, {MaxLimit: -1}, {MaxBytes: -1}, {Limit: 2000}, {Limit: 20, MaxLimit: 10}} {
		if bad.Validate() == nil {
			t.Errorf("%+v validated", bad)
		}
	}
	if (PollConfig{MaxWait: -1}).Validate() == nil {
		t.Error("a negative max_wait validated")
	}
}

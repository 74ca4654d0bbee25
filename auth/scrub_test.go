package auth

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	_ "github.com/caddyserver/caddy/v2/modules/logging"
)

func TestScrubTicketUnit(t *testing.T) {
	cases := []struct {
		target, wantPath, wantQuery, wantTicket string
		wantStray                               []string
	}{
		{"/events?channel=a&ticket=T1&last_event_id=5", "/events", "channel=a&last_event_id=5", "T1", nil},
		{"/events?tick%65t=T2&channel=a", "/events", "channel=a", "T2", nil},
		{"/events?ticket=", "/events", "", "-", nil},
		{"/events?channel=a", "/events", "channel=a", "", nil},
		{"/events?channel=ticket&ticketing=1", "/events", "channel=ticket&ticketing=1", "", nil},
		// Any other form is ambiguous: scrubbed, and its values kept to
		// be spent.
		{"/events?ticket=T3&ticket=T4", "/events", "", "", []string{"T3", "T4"}},
		{"/events?ticket=T5;x=1&channel=b", "/events", "channel=b", "", []string{"T5"}},
		{"/events?channel=a;ticket=T6", "/events", "", "", []string{"T6"}},
		{"/events?channel=a;tick%65t=T7&x=1", "/events", "x=1", "", []string{"T7"}},
		{"/events?TICKET=T8&channel=a", "/events", "channel=a", "", []string{"T8"}},
		{"/events?ticket[]=T9&channel=a", "/events", "channel=a", "", []string{"T9"}},
		{"/events?channel=a%26ticket%3DT10", "/events", "", "", []string{"T10"}},
		{"/events?channel=a%2526ticket%253DT11", "/events", "", "", []string{"T11"}},
		{"/events?channel=a&amp;ticket=T12", "/events", "channel=a", "", []string{"T12"}},
		{"/events?channel=a#ticket=T13", "/events", "", "", []string{"T13"}},
		{"/events?tick%zzet=x&ticket+=T14", "/events", "tick%zzet=x", "", []string{"T14"}},
		{"/events;ticket=T15?channel=a", "/events", "channel=a", "", []string{"T15"}},
		{"/events%3Bticket=T16?channel=a", "/events", "channel=a", "", []string{"T16"}},
		{"/events?ticket=T17&channel=a&Ticket=T18", "/events", "channel=a", "", []string{"T17", "T18"}},
	}
	for _, c := range cases {
		r := req("GET", c.target)
		orig := *r.URL
		ctx := context.WithValue(r.Context(), caddyhttp.OriginalRequestCtxKey, http.Request{URL: &orig, RequestURI: r.RequestURI})
		ctx = context.WithValue(ctx, caddyhttp.VarsCtxKey, map[string]any{})
		r = r.WithContext(ctx)
		r.Header.Set(ticketHeader, "forged")
		r.Header.Set(strayHeader, "forged")
		ScrubTicket(r, "ticket")
		if r.URL.RawQuery != c.wantQuery || r.URL.Path != c.wantPath {
			t.Errorf("%s: path %q query %q", c.target, r.URL.Path, r.URL.RawQuery)
		}
		if strings.Contains(r.RequestURI, "T") {
			t.Errorf("%s: RequestURI %q", c.target, r.RequestURI)
		}
		if orig.RawQuery != c.wantQuery || orig.Path != c.wantPath {
			t.Errorf("%s: original URL %q %q", c.target, orig.Path, orig.RawQuery)
		}
		if got := r.Header.Get(ticketHeader); got != c.wantTicket {
			t.Errorf("%s: stashed %q", c.target, got)
		}
		if got := r.Header.Values(strayHeader); strings.Join(got, ",") != strings.Join(c.wantStray, ",") {
			t.Errorf("%s: stray %q, want %q", c.target, got, c.wantStray)
		}
		skip, _ := caddyhttp.GetVar(r.Context(), caddyhttp.LogSkipVar).(bool)
		if skip != (c.wantTicket != "" || len(c.wantStray) > 0) {
			t.Errorf("%s: log_skip %v", c.target, skip)
		}
	}
}

// scrubProbe is a handler module that runs ScrubTicket when told, so the
// test can look at Caddy's real access log.
type scrubProbe struct {
	Scrub bool `json:"scrub,omitempty"`
}

func (scrubProbe) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.handlers.ssegate_auth_scrub_probe", New: func() caddy.Module { return new(scrubProbe) }}
}

func (p *scrubProbe) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	if p.Scrub {
		ScrubTicket(r, "ticket")
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func init() { caddy.RegisterModule(scrubProbe{}) }

// TestScrubTicketCaddyAccessLog runs Caddy with an access log and checks
// that a scrubbed ticket is absent while an unscrubbed one (the control)
// is present, proving the check can fail.
func TestScrubTicketCaddyAccessLog(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_DATA_HOME", filepath.Join(dir, "data"))
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config"))
	logFile := filepath.Join(dir, "access.log")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cfg := fmt.Sprintf(`{
	  "admin": {"disabled": true},
	  "logging": {"logs": {
	    "default": {"exclude": ["http.log.access"], "level": "ERROR"},
	    "acc": {"writer": {"output": "file", "filename": %q}, "encoder": {"format": "json"}, "include": ["http.log.access"]}
	  }},
	  "apps": {"http": {"servers": {"s": {
	    "listen": [%q],
	    "automatic_https": {"disable": true},
	    "logs": {},
	    "routes": [
	      {"match": [{"path": ["/scrub"]}], "handle": [{"handler": "ssegate_auth_scrub_probe", "scrub": true}]},
	      {"match": [{"path": ["/raw"]}], "handle": [{"handler": "ssegate_auth_scrub_probe"}]}
	    ]
	  }}}}
	}`, logFile, addr)
	if err := caddy.Load([]byte(cfg), true); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = caddy.Stop() })

	get := func(path string) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	get("/scrub?channel=a&ticket=SCRUBBED-SECRET-TICKET")
	get("/raw?channel=a&ticket=CONTROL-TICKET")
	if err := caddy.Stop(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	log := string(b)
	if !strings.Contains(log, "CONTROL-TICKET") {
		t.Fatalf("control: unscrubbed ticket should be in the access log; the test is blind:\n%s", log)
	}
	if strings.Contains(log, "SCRUBBED-SECRET-TICKET") || strings.Contains(log, url.QueryEscape("SCRUBBED-SECRET-TICKET")) {
		t.Fatalf("scrubbed ticket reached the access log:\n%s", log)
	}
}

// FuzzScrubTicket: whatever the request line, scrubbing never panics and
// leaves no part of the path or query that the loosest parser would read
// as a ticket.
func FuzzScrubTicket(f *testing.F) {
	for _, s := range []string{
		"/events?channel=a;ticket=T", "/events?tick%65t=T&ticket=U", "/events;TICKET=T?x=1",
		"/events?a=%2574icket%253DT", "/events?channel=a#ticket=T", "/events?ticket[x]=T&&",
		"/events?%zz=1&ticket", "/events?ticket=%", "/e%3Bticket=T", "/events?x=1;;&;ticket",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, target string) {
		r, err := http.NewRequest("GET", "http://h"+target, nil)
		if err != nil || r.URL.Host != "h" {
			return
		}
		r.RequestURI = r.URL.RequestURI()
		r = r.WithContext(context.WithValue(r.Context(), caddyhttp.VarsCtxKey, map[string]any{}))
		ScrubTicket(r, "ticket")
		for _, s := range []string{r.URL.Path, r.URL.RawQuery, r.RequestURI} {
			if v := ticketValues(s, "ticket"); len(v) > 0 {
				t.Fatalf("%q: %q still holds a ticket %q", target, s, v)
			}
		}
	})
}

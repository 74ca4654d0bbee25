package console

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ssegate/ssegate/auth"
	"github.com/ssegate/ssegate/internal/health"
	"github.com/ssegate/ssegate/internal/refusal"
)

func testConsole(codes *[]string) *Console {
	starting := func() (*nats.Conn, jetstream.JetStream) { return nil, nil }
	return New("/c", Paths{ChannelParam: "ch", Publish: "/p"}, Sources{
		Authenticated: func(r *http.Request) *auth.Error {
			if r.Header.Get("Authorization") == "" {
				return &auth.Error{Status: 401, Code: auth.CodeUnauthenticated, Detail: "no credential"}
			}
			return nil
		},
		Health:   health.New(starting, "EVENTS", refusal.Refuser{}),
		Clients:  func() int { return 3 },
		Channels: func() int { return 2 },
	}, refusal.New(nil, func(code string) { *codes = append(*codes, code) }))
}

// TestConsoleServesItsFilesAndNothingElse: each request under the console
// path gets its file, its answer or a short JSON error.
func TestConsoleServesItsFilesAndNothingElse(t *testing.T) {
	var codes []string
	c := testConsole(&codes)
	tests := []struct {
		method, path string
		status       int
		ctype        string
	}{
		{"GET", "/c", 308, ""},
		{"GET", "/c/", 200, "text/html"},
		{"GET", "/c/console.js", 200, "text/javascript"},
		{"HEAD", "/c/console.css", 200, "text/css"},
		{"GET", "/c/config.json", 200, "application/json"},
		{"GET", "/c/nope.js", 404, "application/json"},
		{"GET", "/c/console.go", 404, "application/json"},
		{"GET", "/c/../plugin.go", 404, "application/json"},
		{"POST", "/c/", 405, "application/json"},
		{"GET", "/c/stats", 401, "application/json"},
	}
	for _, tc := range tests {
		rec := httptest.NewRecorder()
		if err := c.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil)); err != nil {
			t.Fatalf("%s %s: %v", tc.method, tc.path, err)
		}
		if rec.Code != tc.status || !strings.HasPrefix(rec.Header().Get("Content-Type"), tc.ctype) {
			t.Errorf("%s %s: %d %q, want %d %q", tc.method, tc.path, rec.Code, rec.Header().Get("Content-Type"), tc.status, tc.ctype)
		}
	}
	if strings.Join(codes, ",") != "not_found,not_found,not_found,method_not_allowed" {
		t.Errorf("refusals counted: %v", codes)
	}
	// Every file the console names is embedded.
	for name, ctype := range consoleTypes() {
		rec := httptest.NewRecorder()
		_ = c.ServeHTTP(rec, httptest.NewRequest("GET", "/c/"+name, nil))
		if rec.Code != 200 || rec.Header().Get("Content-Type") != ctype || rec.Body.Len() == 0 {
			t.Errorf("%s: %d %q, %d bytes", name, rec.Code, rec.Header().Get("Content-Type"), rec.Body.Len())
		}
	}
	// A browser that has a file revalidates it without a download; the
	// page's own headers stay.
	rec := httptest.NewRecorder()
	_ = c.ServeHTTP(rec, httptest.NewRequest("GET", "/c/console.js", nil))
	req := httptest.NewRequest("GET", "/c/console.js", nil)
	req.Header.Set("If-None-Match", rec.Header().Get("ETag"))
	again := httptest.NewRecorder()
	_ = c.ServeHTTP(again, req)
	if rec.Header().Get("ETag") == "" || again.Code != http.StatusNotModified || again.Body.Len() != 0 ||
		!strings.Contains(rec.Header().Get("Content-Security-Policy"), "default-src 'none'") || rec.Header().Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("revalidation: %d %v, then %d with %d bytes", rec.Code, rec.Header(), again.Code, again.Body.Len())
	}
}

// TestConsoleSettingsAndStats: the page learns where the endpoints are,
// and a signed-in user gets aggregates only.
func TestConsoleSettingsAndStats(t *testing.T) {
	var codes []string
	c := testConsole(&codes)
	rec := httptest.NewRecorder()
	_ = c.ServeHTTP(rec, httptest.NewRequest("GET", "/c/config.json", nil))
	var s Settings
	if err := json.Unmarshal(rec.Body.Bytes(), &s); err != nil || s != (Settings{Stream: "/c/stream", ChannelParam: "ch", Publish: "/p"}) {
		t.Fatalf("config.json %q: %+v %v", rec.Body, s, err)
	}
	req := httptest.NewRequest("GET", "/c/stats", nil)
	req.Header.Set("Authorization", "Bearer x")
	rec = httptest.NewRecorder()
	_ = c.ServeHTTP(rec, req)
	var st Stats
	if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil || st.Clients != 3 || st.Channels != 2 || st.NATS != "unknown" || st.JetStream != "unknown" {
		t.Fatalf("stats %q: %+v %v", rec.Body, st, err)
	}
	if rec.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("stats Cache-Control %q", rec.Header().Get("Cache-Control"))
	}
}

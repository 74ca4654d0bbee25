package refusal

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// TestRefuseLogsThePathNotTheQuery: the body, the count and the log line,
// which never holds the query, where a ticket may be.
func TestRefuseLogsThePathNotTheQuery(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	var counted []string
	f := New(zap.New(core), func(code string) { counted = append(counted, code) })
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/events?channel=x&ticket=SECRET", nil)
	if err := f.Refuse(rec, req, 400, "invalid_channel", "bad name"); err != nil {
		t.Fatal(err)
	}
	var body struct{ Error, Detail string }
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || rec.Code != 400 || body.Error != "invalid_channel" || body.Detail != "bad name" {
		t.Fatalf("%d %q", rec.Code, rec.Body)
	}
	if len(counted) != 1 || counted[0] != "invalid_channel" {
		t.Fatalf("counted %v", counted)
	}
	entries := logs.All()
	if len(entries) != 1 || entries[0].ContextMap()["path"] != "/events" {
		t.Fatalf("log %+v", entries)
	}
	for _, e := range entries {
		for k, v := range e.ContextMap() {
			if s, ok := v.(string); ok && strings.Contains(s, "SECRET") {
				t.Errorf("log field %s holds the ticket: %q", k, s)
			}
		}
	}
	// The zero Refuser writes the body alone.
	rec = httptest.NewRecorder()
	_ = Refuser{}.Refuse(rec, req, 404, "not_found", "no")
	if rec.Code != 404 {
		t.Fatalf("zero Refuser: %d", rec.Code)
	}
}

// TestNotRead: a read-only endpoint takes GET and HEAD and refuses the
// rest with 405, Allow and the JSON body.
func TestNotRead(t *testing.T) {
	for method, refused := range map[string]bool{"GET": false, "HEAD": false, "POST": true, "PUT": true, "DELETE": true, "OPTIONS": true, "BREW": true} {
		rec := httptest.NewRecorder()
		if got := (Refuser{}).NotRead(rec, httptest.NewRequest(method, "/events/client.js", nil)); got != refused {
			t.Errorf("%s: refused %v, want %v", method, got, refused)
		}
		if !refused {
			if rec.Body.Len() != 0 || rec.Header().Get("Allow") != "" {
				t.Errorf("%s: wrote %q, Allow %q", method, rec.Body, rec.Header().Get("Allow"))
			}
			continue
		}
		var body struct{ Error string }
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || rec.Code != 405 || body.Error != "method_not_allowed" || rec.Header().Get("Allow") != "GET, HEAD" {
			t.Errorf("%s: %d %v %q", method, rec.Code, rec.Header(), rec.Body)
		}
	}
}

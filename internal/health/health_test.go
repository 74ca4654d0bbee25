package health

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ssegate/ssegate/internal/natstest"
	"github.com/ssegate/ssegate/internal/refusal"
)

func serve(t *testing.T, c *Checker, method string) (int, Report, http.Header) {
	t.Helper()
	rec := httptest.NewRecorder()
	if err := c.ServeHTTP(rec, httptest.NewRequest(method, "/health", nil)); err != nil {
		t.Fatal(err)
	}
	var rep Report
	if method == http.MethodGet {
		if err := json.Unmarshal(rec.Body.Bytes(), &rep); err != nil {
			t.Fatalf("%s: body %q: %v", method, rec.Body, err)
		}
	}
	return rec.Code, rep, rec.Header()
}

// TestCheckerFollowsTheConnection: starting, ready, and the stream gone,
// each with its status code and fixed words.
func TestCheckerFollowsTheConnection(t *testing.T) {
	var nc *nats.Conn
	var js jetstream.JetStream
	c := New(func() (*nats.Conn, jetstream.JetStream) { return nc, js }, "EVENTS", refusal.Refuser{})
	if code, rep, hdr := serve(t, c, http.MethodGet); code != 503 || rep.Status != "starting" || hdr.Get("Retry-After") == "" {
		t.Fatalf("starting: %d %+v", code, rep)
	}
	nc, js = natstest.Connect(t, natstest.Server(t))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "EVENTS", Subjects: []string{"events.>"}}); err != nil {
		t.Fatal(err)
	}
	if code, rep, _ := serve(t, c, http.MethodGet); code != 200 || rep != (Report{Status: "ok", NATS: "connected", JetStream: "ok"}) {
		t.Fatalf("ready: %d %+v", code, rep)
	}
	if code, _, _ := serve(t, c, http.MethodHead); code != 200 {
		t.Fatalf("HEAD: %d", code)
	}
	if err := js.DeleteStream(ctx, "EVENTS"); err != nil {
		t.Fatal(err)
	}
	// The answer is cached for checkTTL: the next check after it sees the
	// stream gone.
	later := time.Now().Add(2 * checkTTL)
	if rep, _ := c.Check(later); rep != (Report{Status: "unavailable", NATS: "connected", JetStream: "stream_missing"}) {
		t.Fatalf("stream deleted: %+v", rep)
	}
}

// TestCheckerRefusesOtherMethods: only GET and HEAD are checks.
func TestCheckerRefusesOtherMethods(t *testing.T) {
	var codes []string
	c := New(func() (*nats.Conn, jetstream.JetStream) { return nil, nil }, "EVENTS",
		refusal.New(nil, func(code string) { codes = append(codes, code) }))
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
		rec := httptest.NewRecorder()
		_ = c.ServeHTTP(rec, httptest.NewRequest(m, "/health", nil))
		if rec.Code != 405 || rec.Header().Get("Allow") != "GET, HEAD" {
			t.Errorf("%s: %d, Allow %q", m, rec.Code, rec.Header().Get("Allow"))
		}
	}
	if len(codes) != 3 || codes[0] != "method_not_allowed" {
		t.Fatalf("counted %v", codes)
	}
}

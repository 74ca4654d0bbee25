package auth

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

func TestCalloutCaching(t *testing.T) {
	now := testNow()
	var hits atomic.Int32
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		c, err := r.Cookie("sid")
		if err != nil || r.Header.Get("X-Other") != "" {
			w.WriteHeader(401)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"sub": %q, "channels": ["user.{sub}", "team.*"], "expires_in": 120}`, c.Value)
	}))
	t.Cleanup(backend.Close)
	var skew atomic.Int64
	clock := func() time.Time { return now.Add(time.Duration(skew.Load())) }
	cfg := Config{Public: []string{"demo"}, AuthURL: &Callout{URL: backend.URL, SessionCookies: []string{"sid"}}}
	g, obs := newTestGate(t, cfg, now, WithClock(clock))

	for range 3 {
		a := mustAdmit(t, g, req("GET", "/events", "Cookie", "sid=alice", "X-Other", ""), "user.alice", "team.x")
		if a.Subject != "alice" || !a.Expires.Equal(now.Add(120*time.Second)) {
			t.Fatalf("%+v", a)
		}
		a.Release()
	}
	if hits.Load() != 1 {
		t.Fatalf("%d backend hits, want 1 (cached)", hits.Load())
	}
	// Another session is another cache entry.
	mustAdmit(t, g, req("GET", "/events", "Cookie", "sid=bob"), "user.bob").Release()
	_, e := g.Admit(req("GET", "/events", "Cookie", "sid=bob"), []string{"user.alice"})
	wantErr(t, e, 403, CodeChannelForbidden)
	if hits.Load() != 2 {
		t.Fatalf("%d hits", hits.Load())
	}
	// After cache_ttl (5s) the backend is asked again.
	skew.Store(int64(6 * time.Second))
	mustAdmit(t, g, req("GET", "/events", "Cookie", "sid=alice"), "user.alice").Release()
	if hits.Load() != 3 {
		t.Fatalf("%d hits after ttl", hits.Load())
	}
	// No forwarded header at all: anonymous, no callout.
	mustAdmit(t, g, req("GET", "/events"), "demo").Release()
	if hits.Load() != 3 {
		t.Fatal("anonymous request reached the backend")
	}
	assertNoSecrets(t, obs, "sid=alice", "sid=bob")
}

func TestCalloutCacheBounded(t *testing.T) {
	now := testNow()
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"sub": "x", "channels": ["a"]}`)
	}))
	t.Cleanup(backend.Close)
	g, _ := newTestGate(t, Config{AuthURL: &Callout{URL: backend.URL, CacheSize: 4, SessionCookies: []string{"sid"}}}, now)
	for i := range 20 {
		mustAdmit(t, g, req("GET", "/", "Cookie", fmt.Sprintf("sid=%d", i)), "a").Release()
	}
	g.callout.mu.Lock()
	n := len(g.callout.cache)
	g.callout.mu.Unlock()
	if n > 4 {
		t.Fatalf("cache holds %d entries", n)
	}
}

// TestCalloutSharedByConcurrentRequests: many requests with one session
// at once make one callout.
func TestCalloutSharedByConcurrentRequests(t *testing.T) {
	now := testNow()
	var hits atomic.Int32
	release := make(chan struct{})
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		<-release
		fmt.Fprint(w, `{"sub": "erin", "channels": ["user.{sub}"]}`)
	}))
	t.Cleanup(backend.Close)
	g, _ := newTestGate(t, Config{AuthURL: &Callout{URL: backend.URL, SessionCookies: []string{"sid"}}}, now)
	const n = 20
	errs := make(chan *Error, n)
	for range n {
		go func() {
			a, e := g.Admit(req("GET", "/events", "Cookie", "sid=erin"), []string{"user.erin"})
			if a != nil {
				a.Release()
			}
			errs <- e
		}()
	}
	// Wait until the one callout is in flight, then let it answer.
	deadline := time.Now().Add(5 * time.Second)
	for hits.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	close(release)
	for range n {
		if e := <-errs; e != nil {
			t.Fatalf("refused: %v", e)
		}
	}
	if got := hits.Load(); got != 1 {
		t.Fatalf("%d callouts for one session, want 1", got)
	}
}

package auth

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"
)

const maxCalloutBody = 64 << 10

// calloutResult is the backend's answer, cached per credential.
type calloutResult struct {
	sub      string
	channels []string
	expires  time.Time // zero: none given
	deny     *Error    // non-nil for a cached 401/403
	cachedAt time.Time
}

type callout struct {
	cfg     Callout
	timeout time.Duration
	ttl     time.Duration
	client  *http.Client
	now     func() time.Time
	log     *zap.Logger
	// sessionCookies are the cookies forwarded; others never leave.
	sessionCookies map[string]bool
	// slots bounds the callouts in flight; a request past it is refused
	// at once rather than queued behind a slow backend.
	slots chan struct{}

	flight singleflight.Group
	mu     sync.Mutex
	cache  map[[32]byte]calloutResult
}

func newCallout(cfg Callout, timeout, ttl time.Duration, hc *http.Client, now func() time.Time, log *zap.Logger) *callout {
	c := &callout{
		cfg: cfg, timeout: timeout, ttl: ttl, client: hc, now: now, log: log,
		sessionCookies: map[string]bool{},
		slots:          make(chan struct{}, cfg.MaxConcurrent),
		cache:          map[[32]byte]calloutResult{},
	}
	for _, n := range cfg.SessionCookies {
		c.sessionCookies[n] = true
	}
	return c
}

// credentials picks what a request carries that is meant for the
// backend: the configured session cookies out of Cookie, and the other
// forwarded headers whole. Unrelated cookies, such as analytics ones,
// are dropped: they are not credentials, they must not reach the backend,
// and varying them must not make a new cache entry or a new callout.
// The key hashes exactly what is forwarded, so the cache never keeps a
// session in memory in the clear. present is false when the request
// carries nothing for the backend, which makes it anonymous.
func (c *callout) credentials(r *http.Request) (fwd http.Header, key [32]byte, present bool) {
	fwd = http.Header{}
	h := sha256.New()
	add := func(name, v string) {
		fwd.Add(name, v)
		_, _ = io.WriteString(h, name)
		_, _ = h.Write([]byte{0})
		_, _ = io.WriteString(h, v)
		_, _ = h.Write([]byte{0})
	}
	for _, name := range c.cfg.ForwardHeaders {
		if name != "Cookie" {
			for _, v := range r.Header.Values(name) {
				add(name, v)
			}
			continue
		}
		var kept []string
		for _, ck := range r.Cookies() {
			if c.sessionCookies[ck.Name] {
				kept = append(kept, ck.Name+"="+ck.Value)
			}
		}
		if len(kept) > 0 {
			add(name, strings.Join(kept, "; "))
		}
	}
	h.Sum(key[:0])
	return fwd, key, len(fwd) > 0
}

func (c *callout) lookup(key [32]byte, now time.Time) (calloutResult, bool) {
	if c.ttl <= 0 {
		return calloutResult{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	res, ok := c.cache[key]
	if !ok {
		return res, false
	}
	if now.Sub(res.cachedAt) >= c.ttl || (!res.expires.IsZero() && !now.Before(res.expires)) {
		delete(c.cache, key)
		return res, false
	}
	return res, true
}

func (c *callout) store(key [32]byte, res calloutResult) {
	if c.ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.cache) >= c.cfg.CacheSize {
		for k, v := range c.cache {
			if res.cachedAt.Sub(v.cachedAt) >= c.ttl {
				delete(c.cache, k)
			}
		}
		// Still full: drop arbitrary entries. A miss only costs a callout.
		for k := range c.cache {
			if len(c.cache) < c.cfg.CacheSize {
				break
			}
			delete(c.cache, k)
		}
	}
	c.cache[key] = res
}

// ask returns the backend's verdict for r. Failures of the backend (down,
// timeout, 5xx, unreadable answer) are 503: the client may retry, and we
// never admit on a doubt. 401/403 pass through as such.
//
// Concurrent requests with the same credential share one callout: a page
// that opens several streams at once, or many clients reconnecting after
// a restart, must not multiply the backend's load. The shared callout is
// not tied to the first caller's request, which may go away.
func (c *callout) ask(ctx context.Context, fwd http.Header, key [32]byte) (calloutResult, *Error) {
	if res, ok := c.lookup(key, c.now()); ok {
		return res, nil
	}
	ch := c.flight.DoChan(string(key[:]), func() (any, error) {
		// A flight that ended between the lookup above and this one has
		// filled the cache.
		if res, ok := c.lookup(key, c.now()); ok {
			return flightResult{res, nil}, nil
		}
		select {
		case c.slots <- struct{}{}:
			defer func() { <-c.slots }()
		default:
			// Every slot is busy: a flood of new credentials, or a slow
			// backend. Queueing would only hold more requests open.
			return flightResult{err: newError(http.StatusServiceUnavailable, CodeAuthUnavailable, "too many authentication requests in progress, try again later")}, nil
		}
		res, e := c.fetch(context.WithoutCancel(ctx), fwd, key)
		return flightResult{res, e}, nil
	})
	select {
	case out := <-ch:
		fr := out.Val.(flightResult)
		return fr.res, fr.err
	case <-ctx.Done():
		return calloutResult{}, c.unavailable("request ended while waiting for the callout", ctx.Err())
	}
}

type flightResult struct {
	res calloutResult
	err *Error
}

// fetch asks the backend and caches its verdict.
func (c *callout) fetch(ctx context.Context, fwd http.Header, key [32]byte) (calloutResult, *Error) {
	now := c.now()
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.cfg.URL, nil)
	if err != nil {
		return calloutResult{}, c.unavailable("building request", err)
	}
	for name, vs := range fwd {
		req.Header[name] = vs
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return calloutResult{}, c.unavailable("request failed", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxCalloutBody+1))
	if err != nil {
		return calloutResult{}, c.unavailable("reading answer", err)
	}
	res := calloutResult{cachedAt: now}
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusUnauthorized:
		res.deny = newError(http.StatusUnauthorized, CodeUnauthenticated, "session not accepted")
		c.store(key, res)
		return res, nil
	case http.StatusForbidden:
		res.deny = newError(http.StatusForbidden, CodeForbidden, "session may not use this gateway")
		c.store(key, res)
		return res, nil
	default:
		return calloutResult{}, c.unavailable("unexpected status", errors.New(resp.Status))
	}
	if len(body) > maxCalloutBody {
		return calloutResult{}, c.unavailable("answer too large", nil)
	}
	var ans struct {
		Sub       string   `json:"sub"`
		Channels  []string `json:"channels"`
		ExpiresIn *int64   `json:"expires_in"`
	}
	if err := json.Unmarshal(body, &ans); err != nil || ans.Sub == "" {
		return calloutResult{}, c.unavailable("answer is not {sub, channels, expires_in} JSON", nil)
	}
	res.sub, res.channels = ans.Sub, ans.Channels
	if ans.ExpiresIn != nil {
		if *ans.ExpiresIn <= 0 {
			return calloutResult{}, &Error{Status: http.StatusUnauthorized, Code: CodeUnauthenticated, Detail: "session has expired"}
		}
		res.expires = now.Add(time.Duration(min(*ans.ExpiresIn, 1<<31)) * time.Second)
	}
	c.store(key, res)
	return res, nil
}

func (c *callout) unavailable(what string, err error) *Error {
	// The URL is operator config, but its query could hold an API key.
	fields := []zap.Field{zap.String("reason", what)}
	if err != nil && !errors.Is(err, context.Canceled) {
		var ue interface{ Timeout() bool }
		if errors.As(err, &ue) && ue.Timeout() || errors.Is(err, context.DeadlineExceeded) {
			fields = append(fields, zap.Bool("timeout", true))
		} else {
			fields = append(fields, zap.String("error", errText(err)))
		}
	}
	c.log.Warn("auth_url callout failed", fields...)
	return newError(http.StatusServiceUnavailable, CodeAuthUnavailable, "authentication service unavailable, try again later")
}

// errText drops the URL that *url.Error prints, since a query string in
// auth_url could carry a key.
func errText(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}

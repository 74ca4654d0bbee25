package auth

import (
	"net"
	"net/http"
	"net/netip"
	"sync"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// DefaultMaxAnonymousPerAddress is the default of
// Config.MaxAnonymousConnectionsPerAddress: room for the tabs of a whole
// office behind one NAT address, far from what it takes to fill a cap.
const DefaultMaxAnonymousPerAddress = 100

// limiter counts live admissions. It lives in the Gate, so a config
// reload starts with the new Gate's own counts; old streams are ended by
// the handler on reload anyway.
//
// Anonymous readers are counted by address, and together they may take
// at most three quarters of the global cap: a flood of anonymous streams
// never leaves a signed-in user without a slot.
type limiter struct {
	max, perSubject, perAddress int

	mu        sync.Mutex
	total     int
	anonymous int
	bySub     map[string]int
	byAddr    map[string]int
}

func newLimiter(max, perSubject, perAddress int) *limiter {
	return &limiter{max: max, perSubject: perSubject, perAddress: perAddress, bySub: map[string]int{}, byAddr: map[string]int{}}
}

// anonymousCap is the part of the global cap anonymous readers may hold.
func (l *limiter) anonymousCap() int { return l.max - l.max/4 }

// acquire takes one slot for sub, or for an anonymous reader (sub "") at
// addr. Anonymous principals share no per-subject count: they would all be
// one subject and lock each other out.
func (l *limiter) acquire(sub, addr string) (release func(), ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.max > 0 && l.total >= l.max {
		return nil, false
	}
	count, key := l.bySub, sub
	limit := l.perSubject
	if sub == "" {
		if l.max > 0 && l.anonymous >= l.anonymousCap() {
			return nil, false
		}
		count, key, limit = l.byAddr, addr, l.perAddress
	}
	if limit > 0 && count[key] >= limit && key != loopback {
		return nil, false
	}
	l.total++
	count[key]++
	if sub == "" {
		l.anonymous++
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.total--
			if sub == "" {
				l.anonymous--
			}
			if count[key]--; count[key] <= 0 {
				delete(count, key)
			}
		})
	}, true
}

func (l *limiter) counts(sub string) (total, forSub int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total, l.bySub[sub]
}

// loopback is the address of every loopback client: this machine, or a
// proxy on it that Caddy does not trust to name the client. Such clients
// are not capped per address, since they may be everyone.
const loopback = "loopback"

// clientAddress is what anonymous streams are counted by: the client's
// IP as Caddy determined it (trusted_proxies), else the peer's. An IPv6
// client counts by its /64, which is what one host usually gets.
func clientAddress(r *http.Request) string {
	ip, _ := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string)
	if ip == "" {
		ip, _, _ = net.SplitHostPort(r.RemoteAddr)
	}
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	if a = a.Unmap(); a.IsLoopback() {
		return loopback
	}
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

package auth

import (
	"context"
	"crypto"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/lestrrat-go/httprc/v3"
	"github.com/lestrrat-go/httprc/v3/errsink"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"go.uber.org/zap"
)

// forcedRefreshEvery bounds refreshes triggered by unknown kids, so a
// stream of tokens with random kids cannot make us hammer the IdP.
const forcedRefreshEvery = 10 * time.Second

// refreshTimeout bounds a refresh done while a client waits.
const refreshTimeout = 5 * time.Second

var (
	errUnknownKey      = errors.New("no key for this kid and alg")
	errKeysUnavailable = errors.New("key set unavailable")
)

// jwksKeys owns one jwk.Cache for all configured JWKS URLs.
type jwksKeys struct {
	cache   *jwk.Cache
	cancel  context.CancelFunc
	sources []*jwksSource
}

type jwksSource struct {
	url  string
	algs map[string]bool

	// refreshMu serialises forced refreshes: waiters then see the fresh set
	// instead of queueing refreshes of their own.
	refreshMu   sync.Mutex
	lastForced  time.Time
	everForced  bool
	convertedMu sync.Mutex
	converted   jwk.Set
	keys        []verifyKey
}

func newJWKS(srcs []JWKSSource, hc *http.Client, log *zap.Logger) (*jwksKeys, error) {
	if len(srcs) == 0 {
		return nil, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	client := httprc.NewClient(httprc.WithErrorSink(errsink.NewFunc(func(_ context.Context, err error) {
		log.Warn("jwks fetch failed", zap.Error(err))
	})))
	cache, err := jwk.NewCache(ctx, client)
	if err != nil {
		cancel()
		return nil, err
	}
	j := &jwksKeys{cache: cache, cancel: cancel}
	for _, s := range srcs {
		// WaitReady(false): "caddy validate" and start-up must not depend
		// on the IdP being reachable; tokens fail closed until it is.
		opts := []jwk.RegisterOption{
			jwk.WithWaitReady(false),
			jwk.WithConstantInterval(time.Duration(s.Refresh)),
			jwk.WithHTTPClient(hc),
		}
		if err := cache.Register(ctx, s.URL, opts...); err != nil {
			j.close()
			return nil, err
		}
		algs := map[string]bool{}
		for _, a := range s.Algs {
			algs[a] = true
		}
		j.sources = append(j.sources, &jwksSource{url: s.URL, algs: algs})
	}
	return j, nil
}

func (j *jwksKeys) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = j.cache.Shutdown(ctx)
	j.cancel()
}

// lookup returns the keys of every source that fit alg and kid. When a
// kid is unknown it forces one rate-limited refresh, which is how key
// rotation at the IdP reaches us before the next scheduled refresh.
func (j *jwksKeys) lookup(ctx context.Context, alg, kid string, now time.Time) ([]verifyKey, error) {
	var out []verifyKey
	available := false
	for _, s := range j.sources {
		if !s.algs[alg] {
			continue
		}
		keys, err := s.current(ctx, j.cache)
		if err == nil {
			available = true
			out = appendMatching(out, keys, alg, kid)
		}
	}
	if len(out) > 0 {
		return out, nil
	}
	for _, s := range j.sources {
		if !s.algs[alg] {
			continue
		}
		s.forceRefresh(ctx, j.cache, now)
		if keys, err := s.current(ctx, j.cache); err == nil {
			available = true
			out = appendMatching(out, keys, alg, kid)
		}
	}
	switch {
	case len(out) > 0:
		return out, nil
	case !available:
		return nil, errKeysUnavailable
	}
	return nil, errUnknownKey
}

func appendMatching(out, keys []verifyKey, alg, kid string) []verifyKey {
	for _, k := range keys {
		if (k.alg == "" || k.alg == alg) && (kid == "" || k.kid == kid) && keyFits(alg, k.key) {
			out = append(out, k)
		}
	}
	return out
}

// current converts the cached set to raw keys once per fetched set.
func (s *jwksSource) current(ctx context.Context, c *jwk.Cache) ([]verifyKey, error) {
	set, err := c.Lookup(ctx, s.url)
	if err != nil {
		return nil, err
	}
	s.convertedMu.Lock()
	defer s.convertedMu.Unlock()
	if set == s.converted {
		return s.keys, nil
	}
	var keys []verifyKey
	for i := range set.Len() {
		k, ok := set.Key(i)
		if !ok {
			continue
		}
		if use, ok := k.KeyUsage(); ok && use != "sig" {
			continue
		}
		var raw any
		if err := jwk.Export(k, &raw); err != nil {
			continue
		}
		if _, symmetric := raw.([]byte); symmetric {
			// A symmetric key served over HTTP is a shared secret in the
			// open; accepting it would let anyone mint tokens.
			continue
		}
		if pk, ok := raw.(interface{ Public() crypto.PublicKey }); ok {
			raw = pk.Public()
		}
		vk := verifyKey{key: raw}
		vk.kid, _ = k.KeyID()
		if a, ok := k.Algorithm(); ok {
			vk.alg = a.String()
		}
		keys = append(keys, vk)
	}
	s.converted, s.keys = set, keys
	return keys, nil
}

// forceRefresh refetches the set unless that was done recently. A
// failure is left to the caller's next lookup: the cache keeps the last
// good set, and with none the lookup fails closed.
func (s *jwksSource) forceRefresh(ctx context.Context, c *jwk.Cache, now time.Time) {
	s.refreshMu.Lock()
	defer s.refreshMu.Unlock()
	if s.everForced && now.Sub(s.lastForced) < forcedRefreshEvery {
		return
	}
	s.everForced, s.lastForced = true, now
	ctx, cancel := context.WithTimeout(ctx, refreshTimeout)
	defer cancel()
	_, _ = c.Refresh(ctx, s.url)
}

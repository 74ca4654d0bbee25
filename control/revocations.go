package control

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// revocations is every gateway's shared list, as this gateway holds it in
// memory: every request is checked against it, so the check must not
// wait on NATS. The KV watch fills it, and a gateway that starts later
// gets every revocation still in force from the same watch.
//
// KV keys:
//
//	jti.<sha256 of the jti>  {"expires": <unix>}
//	sub.<base64url of sub>   {"issued_before": <unix>}
type revocations struct {
	mu   sync.RWMutex
	jtis map[string]time.Time // key → until
	subs map[string]int64     // key → issued_before
	// synced is closed when the watch has delivered what the bucket held.
	synced   chan struct{}
	syncOnce sync.Once
}

func newRevocations() *revocations {
	return &revocations{jtis: map[string]time.Time{}, subs: map[string]int64{}, synced: make(chan struct{})}
}

func jtiKey(jti string) string {
	sum := sha256.Sum256([]byte(jti))
	return "jti." + hex.EncodeToString(sum[:])
}

func subKey(sub string) string { return "sub." + base64.RawURLEncoding.EncodeToString([]byte(sub)) }

// record is a revocation's KV value.
type record struct {
	Expires      int64 `json:"expires,omitempty"`
	IssuedBefore int64 `json:"issued_before,omitempty"`
}

// keyFor is where a (checked) revocation is stored, what is stored, and
// for how long: until the credential would have expired anyway, plus a
// margin for clock skew and leeway.
func keyFor(a *Action, maxLife time.Duration, now time.Time) (string, record, time.Duration) {
	if a.JTI != "" {
		until := now.Add(maxLife)
		if a.Expires != 0 {
			until = time.Unix(a.Expires, 0)
		}
		return jtiKey(a.JTI), record{Expires: until.Unix()}, keepFor(until, now)
	}
	// A credential issued before T lives until T + maxLife at the latest.
	until := time.Unix(a.IssuedBefore, 0).Add(maxLife)
	return subKey(a.Sub), record{IssuedBefore: a.IssuedBefore}, keepFor(until, now)
}

// maxKeep is the longest a revocation is kept: a century is for good.
// Time.Sub saturates at 292 years, and the margin added to that would
// wrap to a negative TTL, which the KV put raises to a second.
const maxKeep = 100 * 365 * 24 * time.Hour

// keepFor is the TTL of a revocation that must hold until until: the
// time left, plus a margin for clock skew and leeway, at most maxKeep.
func keepFor(until, now time.Time) time.Duration {
	const margin = 2 * time.Minute
	return min(until.Sub(now), maxKeep) + margin
}

// apply takes a revocation into memory.
func (r *revocations) apply(key string, rec record) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case strings.HasPrefix(key, "jti."):
		if until := time.Unix(rec.Expires, 0); until.After(r.jtis[key]) {
			r.jtis[key] = until
		}
	case strings.HasPrefix(key, "sub."):
		r.subs[key] = max(r.subs[key], rec.IssuedBefore)
	}
}

func (r *revocations) forget(key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.jtis, key)
	delete(r.subs, key)
}

// syncWait is how long a check waits, once, for the watch to deliver the
// bucket's revocations, before answering from what it has.
const syncWait = 2 * time.Second

// revoked answers from memory. Until the first sync it waits a little:
// a gateway that just started must not admit a credential revoked before.
func (r *revocations) revoked(sub, jti string, iat time.Time) bool {
	select {
	case <-r.synced:
	default:
		select {
		case <-r.synced:
		case <-time.After(syncWait):
			// Answer from what is known: a bucket that cannot be read
			// must not stop every stream (health says so).
			r.markSynced()
		}
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	if jti != "" {
		if until, ok := r.jtis[jtiKey(jti)]; ok && time.Now().Before(until.Add(2*time.Minute)) {
			return true
		}
	}
	if sub != "" && len(r.subs) > 0 {
		if before, ok := r.subs[subKey(sub)]; ok && issuedBefore(iat, before) {
			return true
		}
	}
	return false
}

func (r *revocations) markSynced() { r.syncOnce.Do(func() { close(r.synced) }) }

func (r *revocations) size() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.jtis) + len(r.subs)
}

// watch fills the list until w stops.
func (r *revocations) watch(w jetstream.KeyWatcher) {
	defer func() { _ = w.Stop() }()
	for upd := range w.Updates() {
		if upd == nil {
			r.markSynced()
			continue
		}
		if upd.Operation() != jetstream.KeyValuePut {
			r.forget(upd.Key())
			continue
		}
		var rec record
		if json.Unmarshal(upd.Value(), &rec) == nil {
			r.apply(upd.Key(), rec)
		}
	}
}

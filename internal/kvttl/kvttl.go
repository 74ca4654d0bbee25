// Package kvttl holds the two NATS KV operations that presence and
// control share: a bucket whose keys may carry their own TTL, and a put
// with a TTL, which the KV API offers only for a key's creation.
package kvttl

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// markerTTL is how long a removed key's marker stays: long enough for
// every watcher to see it.
const markerTTL = time.Minute

// Ensure opens bucket, creating it with per-key TTLs allowed, or enabling
// them on an existing one while keeping an operator's other settings.
func Ensure(ctx context.Context, js jetstream.JetStream, bucket, description string) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:         bucket,
			Description:    description,
			History:        1,
			LimitMarkerTTL: markerTTL,
		})
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = js.KeyValue(ctx, bucket)
		}
	}
	if err != nil {
		return nil, err
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return nil, err
	}
	if st.LimitMarkerTTL() > 0 {
		return kv, nil
	}
	cfg := st.Config()
	cfg.LimitMarkerTTL = markerTTL
	return js.UpdateKeyValue(ctx, cfg)
}

// Put stores value under key with a TTL: a plain publish to the key's
// subject with the Nats-TTL header, which is what a KV create does.
func Put(ctx context.Context, js jetstream.JetStream, bucket, key string, value []byte, ttl time.Duration) (uint64, error) {
	ttl = max(ttl, time.Second).Round(time.Second)
	ack, err := js.Publish(ctx, "$KV."+bucket+"."+key, value, jetstream.WithMsgTTL(ttl))
	if err != nil {
		return 0, err
	}
	return ack.Sequence, nil
}

// Missing reports whether err says the bucket does not exist.
func Missing(err error) bool {
	return errors.Is(err, jetstream.ErrBucketNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) ||
		errors.Is(err, jetstream.ErrNoStreamResponse)
}

// Bucket states for health endpoints.
const (
	StateStarting      = "starting"
	StateOK            = "ok"
	StateBucketMissing = "bucket_missing"
	StateUnavailable   = "unavailable"
)

// BucketHealth checks a bucket for health endpoints, at most once a
// second and apart from the work that uses the bucket, so a slow write
// never delays the answer.
type BucketHealth struct {
	mu    sync.Mutex
	js    jetstream.JetStream
	at    time.Time
	state string
}

// healthTimeout bounds one check.
const healthTimeout = 2 * time.Second

// Use sets the JetStream handle to check with, once connected.
func (p *BucketHealth) Use(js jetstream.JetStream) {
	p.mu.Lock()
	p.js = js
	p.mu.Unlock()
}

// State is the bucket's state, checked at most once a second.
func (p *BucketHealth) State(bucket string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.js == nil {
		return StateStarting
	}
	if now := time.Now(); p.state == "" || now.Sub(p.at) >= time.Second {
		ctx, cancel := context.WithTimeout(context.Background(), healthTimeout)
		_, err := p.js.KeyValue(ctx, bucket)
		cancel()
		p.at, p.state = now, StateOK
		if err != nil {
			p.state = StateUnavailable
			if Missing(err) {
				p.state = StateBucketMissing
			}
		}
	}
	return p.state
}

// Names are the NATS names of a feature kept in a KV bucket, presence or
// control, as configured: the prefix of its subjects (DefaultSubjectPrefix
// when unset) and its bucket (each feature has its own default). The
// features' configs embed Names, so that its fields are theirs in JSON.
type Names struct {
	SubjectPrefix string `json:"subject_prefix,omitempty"`
	Bucket        string `json:"bucket,omitempty"`
}

// DefaultSubjectPrefix starts the subjects of presence and control.
const DefaultSubjectPrefix = "ssegate"

// Prefix is the subject prefix as configured, DefaultSubjectPrefix when
// unset: the one rule for both features.
func (n Names) Prefix() string { return cmp.Or(n.SubjectPrefix, DefaultSubjectPrefix) }

// CheckNames checks a bucket name and a subject prefix from a config:
// what is set, once defaults are applied. what names the config.
func CheckNames(what, bucket, prefix string) error {
	var errs []error
	for _, r := range bucket {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			errs = append(errs, fmt.Errorf("%s bucket %q: want letters, digits, '-' and '_'", what, bucket))
			break
		}
	}
	for _, t := range strings.Split(prefix, ".") {
		if t == "" || strings.ContainsAny(t, "*> \t\r\n") {
			errs = append(errs, fmt.Errorf("%s subject_prefix %q: want NATS subject tokens without wildcards", what, prefix))
			break
		}
	}
	return errors.Join(errs...)
}

// CheckPath checks an endpoint's path: clean, absolute, no wildcards.
func CheckPath(what, p string) error {
	if p == "" || !strings.HasPrefix(p, "/") || p != path.Clean(p) || strings.ContainsAny(p, "*?# \t") {
		return fmt.Errorf("%s path %q: want a clean absolute path without wildcards", what, p)
	}
	return nil
}

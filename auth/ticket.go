package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/nats-io/nats.go/jetstream"
)

var (
	errTicketUsed       = errors.New("ticket already redeemed")
	errStoreUnavailable = errors.New("ticket store unavailable")
)

const (
	// keyTTLMargin keeps a redeemed key well past the last moment its
	// ticket could verify; kv.Create succeeds again once the key is gone.
	keyTTLMargin   = time.Minute
	markerTTL      = time.Minute
	kvTimeout      = 3 * time.Second
	ticketJTIBytes = 18
)

// ticketStore records redeemed ticket ids in a NATS KV bucket shared by
// every gateway instance, so a ticket works once across the fleet.
type ticketStore struct {
	js        func(context.Context) (jetstream.JetStream, error)
	bucket    string
	bucketTTL time.Duration

	mu sync.Mutex
	kv jetstream.KeyValue
}

func newTicketStore(js func(context.Context) (jetstream.JetStream, error), bucket string, ticketMax, leeway time.Duration) *ticketStore {
	// exp-now of an accepted ticket is at most ticketMax+leeway (iat may be
	// leeway in the future), and it verifies until exp+leeway.
	return &ticketStore{js: js, bucket: bucket, bucketTTL: ticketMax + 2*leeway + 2*keyTTLMargin}
}

// keyFor hashes the jti: any string is a valid jti, but KV keys may not
// hold spaces, wildcards or leading dots.
func keyFor(jti string) string {
	sum := sha256.Sum256([]byte(jti))
	return hex.EncodeToString(sum[:])
}

func (s *ticketStore) handle(ctx context.Context) (jetstream.KeyValue, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.kv != nil {
		return s.kv, nil
	}
	if s.js == nil {
		return nil, errors.New("no JetStream configured")
	}
	js, err := s.js(ctx)
	if err != nil {
		return nil, err
	}
	kv, err := s.ensureBucket(ctx, js)
	if err != nil {
		return nil, err
	}
	s.kv = kv
	return kv, nil
}

// ensureBucket creates the bucket, or raises an existing one's TTL and
// enables limit markers (needed for per-key TTL), keeping the rest of an
// operator's config such as replicas.
func (s *ticketStore) ensureBucket(ctx context.Context, js jetstream.JetStream) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, s.bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:         s.bucket,
			Description:    "ssegate redeemed tickets (sha256 of jti)",
			History:        1,
			TTL:            s.bucketTTL,
			LimitMarkerTTL: markerTTL,
		})
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = js.KeyValue(ctx, s.bucket)
		}
	}
	if err != nil {
		return nil, err
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return nil, err
	}
	// TTL 0 keeps entries forever, which is safe: each key has its own TTL.
	if (st.TTL() == 0 || st.TTL() >= s.bucketTTL) && st.LimitMarkerTTL() > 0 {
		return kv, nil
	}
	cfg := st.Config()
	if cfg.TTL != 0 && cfg.TTL < s.bucketTTL {
		cfg.TTL = s.bucketTTL
	}
	if cfg.LimitMarkerTTL == 0 {
		cfg.LimitMarkerTTL = markerTTL
	}
	return js.UpdateKeyValue(ctx, cfg)
}

// redeem marks jti as used until expiresAt+margin. Create is atomic on
// the server, so of two instances racing on one ticket exactly one wins.
func (s *ticketStore) redeem(ctx context.Context, jti string, ttl time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, kvTimeout)
	defer cancel()
	kv, err := s.handle(ctx)
	if err != nil {
		return fmt.Errorf("%w: %w", errStoreUnavailable, err)
	}
	ttl = min(max(ttl+keyTTLMargin, time.Second), s.bucketTTL).Round(time.Second)
	_, err = kv.Create(ctx, keyFor(jti), []byte{'1'}, jetstream.KeyTTL(ttl))
	if err == nil {
		return nil
	}
	var apiErr *jetstream.APIError
	if errors.Is(err, jetstream.ErrKeyExists) || errors.As(err, &apiErr) &&
		(apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
		return errTicketUsed
	}
	if errors.Is(err, jetstream.ErrBucketNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
		// Someone deleted the bucket; set it up again on the next ticket.
		s.mu.Lock()
		s.kv = nil
		s.mu.Unlock()
	}
	return fmt.Errorf("%w: %w", errStoreUnavailable, err)
}

// newJTI is 144 random bits: unguessable and unique without coordination.
func newJTI() string {
	b := make([]byte, ticketJTIBytes)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

type mintRequest struct {
	sub       string
	channels  []string
	now       time.Time
	life      time.Duration
	streamExp time.Time
	audience  []string
	issuer    string
	credJTI   string
	credIAT   time.Time
}

func (s signer) mint(m mintRequest) (string, error) {
	c := claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   m.sub,
			ID:        newJTI(),
			IssuedAt:  jwt.NewNumericDate(m.now),
			ExpiresAt: jwt.NewNumericDate(m.now.Add(m.life)),
			Issuer:    m.issuer,
		},
		Channels: m.channels,
		TokenUse: tokenUseTicket,
	}
	if len(m.audience) > 0 {
		c.Audience = jwt.ClaimStrings{m.audience[0]}
	}
	c.CredJTI = m.credJTI
	if !m.credIAT.IsZero() {
		c.CredIAT = jwt.NewNumericDate(m.credIAT)
	}
	if !m.streamExp.IsZero() {
		c.StreamExp = jwt.NewNumericDate(m.streamExp)
	}
	t := jwt.NewWithClaims(s.method, c)
	if s.kid != "" {
		t.Header["kid"] = s.kid
	}
	return t.SignedString(s.key)
}

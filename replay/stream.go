package replay

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// StreamConfig describes the JetStream stream that stores events and
// republishes them to the live path.
type StreamConfig struct {
	// Name of the stream. Default SSEGATE.
	Name string `json:"name,omitempty"`
	// Subjects captured by the stream. Default ["events.>"].
	Subjects []string `json:"subjects,omitempty"`
	// RepublishPrefix is put in front of every stored subject to form the
	// live subject the gateway subscribes to. Default "ssegate.live".
	RepublishPrefix string `json:"republish_prefix,omitempty"`
	// Storage is "file" (default) or "memory".
	Storage string `json:"storage,omitempty"`
	// Replicas, 1 to 5. Use 3 in a cluster. Default 1.
	Replicas int `json:"replicas,omitempty"`
	// MaxAge is how long events are kept for replay. Default 24h.
	MaxAge caddy.Duration `json:"max_age,omitempty"`
	// MaxMsgsPerSubject caps the history of each channel. 0 means no cap.
	MaxMsgsPerSubject int64 `json:"max_msgs_per_subject,omitempty"`
	// MaxBytes caps the stream's size. 0 means no cap.
	MaxBytes int64 `json:"max_bytes,omitempty"`
	// Unmanaged leaves the stream to its owner: the gateway only checks
	// that it exists and is usable, and says what is missing if not.
	Unmanaged bool `json:"unmanaged,omitempty"`
}

// Defaults.
const (
	DefaultStreamName      = "SSEGATE"
	DefaultSubjects        = "events.>"
	DefaultRepublishPrefix = "ssegate.live"
	DefaultMaxAge          = 24 * time.Hour
)

// WithDefaults returns c with every unset field at its default.
func (c StreamConfig) WithDefaults() StreamConfig {
	if c.Name == "" {
		c.Name = DefaultStreamName
	}
	if len(c.Subjects) == 0 {
		c.Subjects = []string{DefaultSubjects}
	}
	if c.RepublishPrefix == "" {
		c.RepublishPrefix = DefaultRepublishPrefix
	}
	if c.Storage == "" {
		c.Storage = "file"
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.MaxAge == 0 {
		c.MaxAge = caddy.Duration(DefaultMaxAge)
	}
	return c
}

// Validate checks the config offline.
func (c StreamConfig) Validate() error {
	c = c.WithDefaults()
	if strings.ContainsAny(c.Name, ". *>\t\r\n/\\") {
		return fmt.Errorf("stream name %q: no dots, spaces, wildcards or slashes", c.Name)
	}
	if c.Storage != "file" && c.Storage != "memory" {
		return fmt.Errorf("stream storage %q: want file or memory", c.Storage)
	}
	if c.Replicas < 1 || c.Replicas > 5 {
		return fmt.Errorf("stream replicas %d: want 1 to 5", c.Replicas)
	}
	if c.MaxAge < 0 || c.MaxMsgsPerSubject < 0 || c.MaxBytes < 0 {
		return errors.New("stream limits cannot be negative")
	}
	if !ValidSubject(c.RepublishPrefix, false) {
		return fmt.Errorf("republish_prefix %q is not a plain NATS subject", c.RepublishPrefix)
	}
	for _, s := range c.Subjects {
		if !ValidSubject(s, true) {
			return fmt.Errorf("stream subject %q is not a NATS subject", s)
		}
		if SubjectMatches(s, c.RepublishPrefix+".x") || SubjectMatches(c.RepublishPrefix+".>", s) {
			return fmt.Errorf("stream subject %q overlaps republish_prefix %q: events would loop", s, c.RepublishPrefix)
		}
	}
	return nil
}

// LiveSubject is where the stream republishes a message stored on subject.
func (c StreamConfig) LiveSubject(subject string) string {
	return c.RepublishPrefix + "." + subject
}

// Captures reports whether the stream stores messages published to subject.
func (c StreamConfig) Captures(subject string) bool {
	for _, s := range c.Subjects {
		if SubjectMatches(s, subject) {
			return true
		}
	}
	return false
}

func (c StreamConfig) jetstreamConfig() jetstream.StreamConfig {
	storage := jetstream.FileStorage
	if c.Storage == "memory" {
		storage = jetstream.MemoryStorage
	}
	maxBytes := c.MaxBytes
	if maxBytes == 0 {
		maxBytes = -1
	}
	perSubject := c.MaxMsgsPerSubject
	if perSubject == 0 {
		perSubject = -1
	}
	return jetstream.StreamConfig{
		Name:              c.Name,
		Description:       "ssegate event history",
		Subjects:          c.Subjects,
		Storage:           storage,
		Replicas:          c.Replicas,
		MaxAge:            time.Duration(c.MaxAge),
		MaxBytes:          maxBytes,
		MaxMsgsPerSubject: perSubject,
		MaxMsgs:           -1,
		Discard:           jetstream.DiscardOld,
		AllowDirect:       true,
		RePublish: &jetstream.RePublish{
			Source:      ">",
			Destination: c.RepublishPrefix + ".>",
		},
	}
}

// Stream is the state of the stream the gateway uses.
type Stream struct {
	Name  string
	Epoch string
	// Differs lists where the existing stream's config differs from the
	// gateway's, which Ensure kept as it was.
	Differs []string
}

// Ensure creates the stream from c, or, when it exists, keeps its config:
// gateways share the stream, and one whose config differs must not
// rewrite what the others use. It returns the differences, and an error
// when the stream cannot serve this gateway (another republish prefix,
// subjects that do not cover c's). With c.Unmanaged it never creates it.
func Ensure(ctx context.Context, js jetstream.JetStream, c StreamConfig) (Stream, error) {
	c = c.WithDefaults()
	if err := accountInfo(ctx, js); err != nil {
		if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
			return Stream{}, errors.New("JetStream is not enabled on this NATS server or account; ssegate stores events in JetStream (run nats-server with -js)")
		}
		return Stream{}, fmt.Errorf("JetStream unavailable: %w", err)
	}
	var (
		s   jetstream.Stream
		err error
	)
	if c.Unmanaged {
		s, err = js.Stream(ctx, c.Name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return Stream{}, fmt.Errorf("stream %q does not exist; create it or remove `manage_stream off` to let ssegate manage it", c.Name)
		}
	} else {
		s, err = createOrKeep(ctx, js, c.jetstreamConfig())
	}
	if err != nil {
		return Stream{}, fmt.Errorf("stream %q: %w", c.Name, err)
	}
	info := s.CachedInfo()
	if problems := c.check(info.Config); len(problems) > 0 {
		return Stream{}, fmt.Errorf("stream %q cannot serve ssegate: %s", c.Name, strings.Join(problems, "; "))
	}
	out := Stream{Name: c.Name, Epoch: Epoch(info.Created)}
	if !c.Unmanaged {
		out.Differs = c.Differences(info.Config)
	}
	return out, nil
}

// Differences lists where got, an existing stream's config, differs from
// what c would create, in the Caddyfile's terms.
func (c StreamConfig) Differences(got jetstream.StreamConfig) []string {
	want := c.WithDefaults().jetstreamConfig()
	var out []string
	diff := func(name string, have, wanted any) {
		if fmt.Sprint(have) != fmt.Sprint(wanted) {
			out = append(out, fmt.Sprintf("%s: the stream has %v, this gateway %v", name, have, wanted))
		}
	}
	diff("subjects", got.Subjects, want.Subjects)
	if got.RePublish != nil {
		diff("republish_prefix", strings.TrimSuffix(got.RePublish.Destination, ".>"), c.WithDefaults().RepublishPrefix)
	}
	diff("storage", got.Storage, want.Storage)
	diff("replicas", got.Replicas, want.Replicas)
	diff("max_age", got.MaxAge, want.MaxAge)
	diff("max_msgs_per_subject", got.MaxMsgsPerSubject, want.MaxMsgsPerSubject)
	diff("max_bytes", got.MaxBytes, want.MaxBytes)
	return out
}

// check lists what an existing stream lacks for the gateway's live path.
func (c StreamConfig) check(got jetstream.StreamConfig) []string {
	var problems []string
	for _, want := range c.Subjects {
		covered := false
		for _, have := range got.Subjects {
			if SubjectMatches(have, want) {
				covered = true
			}
		}
		if !covered {
			problems = append(problems, fmt.Sprintf("subjects %v do not include %q", got.Subjects, want))
		}
	}
	wantDest := c.RepublishPrefix + ".>"
	switch rp := got.RePublish; {
	case rp == nil:
		problems = append(problems, fmt.Sprintf("no republish rule; add source \">\" destination %q", wantDest))
	case rp.Destination != wantDest || (rp.Source != ">" && rp.Source != ""):
		problems = append(problems, fmt.Sprintf("republish is %q -> %q; want \">\" -> %q", rp.Source, rp.Destination, wantDest))
	case rp.HeadersOnly:
		problems = append(problems, "republish is headers_only; the live path needs the message bodies")
	}
	if got.Retention != jetstream.LimitsPolicy {
		problems = append(problems, "retention must be limits: interest or work-queue retention deletes events before a client can replay them")
	}
	return problems
}

// accountInfo asks for the account's JetStream info until it answers (see
// Retry).
func accountInfo(ctx context.Context, js jetstream.JetStream) error {
	return Retry(ctx, func(ctx context.Context) error {
		_, err := js.AccountInfo(ctx)
		if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
			return Final(err)
		}
		return err
	})
}

// Retry runs a JetStream request again and again, each try bounded by
// tryTimeout, until it succeeds, fails with an error wrapped by Final, or
// ctx ends: a request sent while a cluster has no meta leader, or while it
// elects a stream's leader (a node was just killed), gets no answer at
// all, and the leader comes seconds later.
func Retry(ctx context.Context, try func(context.Context) error) error {
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, time.Second) {
		tctx, cancel := context.WithTimeout(ctx, tryTimeout)
		err := try(tctx)
		cancel()
		var final finalError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &final):
			return final.err
		case ctx.Err() != nil:
			return err
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return err
		}
	}
}

// Final marks an error that Retry must not try again.
func Final(err error) error { return finalError{err} }

type finalError struct{ err error }

func (e finalError) Error() string { return e.err.Error() }
func (e finalError) Unwrap() error { return e.err }

// tryTimeout bounds one try of Retry.
const tryTimeout = 2 * time.Second

// createOrKeep creates the stream, or returns the one that exists as it
// is, retrying until ctx ends. When several gateways create the same
// replicated stream at once on a fresh cluster, the server creates it but
// may answer none of them; a later attempt then finds it at once.
func createOrKeep(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	const attemptTimeout = 5 * time.Second
	backoff := 100 * time.Millisecond
	for {
		attempt, cancel := context.WithTimeout(ctx, attemptTimeout)
		s, err := js.CreateStream(attempt, cfg)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			s, err = js.Stream(attempt, cfg.Name)
		}
		cancel()
		if err == nil || ctx.Err() != nil || !transient(err) {
			return s, err
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return nil, err
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// transient reports errors that a retry may cure: no answer, or a cluster
// that is still electing its leaders.
func transient(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		// 10008: JetStream temporarily unavailable.
		return apiErr.ErrorCode == 10008 || apiErr.Code == 503
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse)
}

// Package publish serves the publish endpoint: events POSTed over HTTP,
// stored in the gateway's stream, for backends without a NATS client.
package publish

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/ssegate/ssegate/auth"
	"github.com/ssegate/ssegate/internal/refusal"
	"github.com/ssegate/ssegate/replay"
)

// Store is the gateway's stream, where events are stored, once the
// gateway runs.
type Store struct {
	JS jetstream.JetStream
	// Stream is the stream's name; an ack from another is refused.
	Stream string
	// MaxPayload is the NATS server's max_payload.
	MaxPayload int64
	// Epoch is the stream's epoch, for the ids the endpoint answers with.
	Epoch string
}

// Gateway is what the endpoint needs of the gateway.
type Gateway struct {
	// Channel checks a channel's name and maps it to its subject.
	Channel func(channel string) (subject string, err *auth.Error)
	// Store waits for the running gateway's stream.
	Store func(ctx context.Context) (Store, error)
	// Publishers authorizes publishers.
	Publishers *auth.Publishers
	Log        *zap.Logger
	Refuse     refusal.Refuser
}

// Endpoint is the publish endpoint.
type Endpoint struct {
	cfg Config
	gw  Gateway
}

// New returns the endpoint of cfg.
func New(cfg Config, gw Gateway) *Endpoint {
	if gw.Log == nil {
		gw.Log = zap.NewNop()
	}
	return &Endpoint{cfg: cfg, gw: gw}
}

// publishTimeout bounds waiting for the app and for JetStream's ack.
const publishTimeout = 5 * time.Second

// published is the answer to a stored event.
type published struct {
	ID        string `json:"id"`
	Duplicate bool   `json:"duplicate,omitempty"`
}

// ServeHTTP stores one event and answers with its id: 201 when it was
// stored now, 200 when its Idempotency-Key had stored it before.
func (h *Endpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return h.refuse(w, r, http.StatusMethodNotAllowed, auth.CodeMethodNotAllowed, "publish with POST")
	}
	q := r.URL.Query()
	chans := q["channel"]
	if len(chans) != 1 {
		return h.refuse(w, r, http.StatusBadRequest, auth.CodeNoChannel, "name exactly one channel, as ?channel=")
	}
	channel := chans[0]
	subject, cerr := h.gw.Channel(channel)
	if cerr != nil {
		return h.refuse(w, r, cerr.Status, cerr.Code, cerr.Detail)
	}
	name, named := once(slices.Concat(q["event"], r.Header.Values(replay.EventHeader)))
	if !named {
		return h.refuse(w, r, http.StatusBadRequest, auth.CodeInvalidEvent, "give the event name once, as ?event= or Sse-Event")
	}
	if err := checkEventName(name); err != "" {
		return h.refuse(w, r, http.StatusBadRequest, auth.CodeInvalidEvent, err)
	}
	idem, keyed := once(r.Header.Values("Idempotency-Key"))
	if !keyed || !validIdempotencyKey(idem) {
		return h.refuse(w, r, http.StatusBadRequest, auth.CodeInvalidIdempotencyKey, fmt.Sprintf("Idempotency-Key must be 1 to %d printable ASCII characters without spaces", maxIdempotencyKey))
	}
	pub, aerr := h.gw.Publishers.Authorize(r, channel)
	if aerr != nil {
		aerr.Write(w) // logged and counted by the gate, with its challenge
		return nil
	}
	data, derr := readEventData(w, r, h.maxBody())
	if derr != nil {
		return h.refuse(w, r, derr.Status, derr.Code, derr.Detail)
	}
	ctx, cancel := context.WithTimeout(r.Context(), publishTimeout)
	defer cancel()
	out, err := h.store(ctx, func(stream string) *nats.Msg { return eventMsg(subject, stream, channel, name, data, pub, idem) })
	switch {
	case errors.Is(err, errTooLarge):
		return h.refuse(w, r, http.StatusRequestEntityTooLarge, auth.CodeBodyTooLarge, "the event with its headers is larger than NATS's max_payload")
	case errors.Is(err, errKeyReused):
		return h.refuse(w, r, http.StatusUnprocessableEntity, auth.CodeIdempotencyKeyReused, "this Idempotency-Key was used for another event (channel, event name or data); use a new key")
	case err != nil:
		h.gw.Log.Warn("publish failed", zap.String("channel", channel), zap.String("sub", pub.Sub), zap.Error(err))
		return h.refuse(w, r, http.StatusServiceUnavailable, auth.CodeUnavailable, "the event could not be stored; try again (with the same Idempotency-Key)")
	}
	h.gw.Log.Debug("published", zap.String("channel", channel), zap.String("sub", pub.Sub), zap.String("id", out.ID), zap.Bool("duplicate", out.Duplicate))
	return writePublished(w, out)
}

// errTooLarge is an event that NATS's max_payload cannot take.
var errTooLarge = errors.New("larger than max_payload")

// store publishes the event msg makes for the gateway's stream, and waits
// for the ack. A duplicate ack is checked against the event stored first.
func (h *Endpoint) store(ctx context.Context, msg func(stream string) *nats.Msg) (published, error) {
	store, err := h.gw.Store(ctx)
	if err != nil {
		return published{}, err
	}
	m := msg(store.Stream)
	if msgSize(m) > store.MaxPayload {
		return published{}, errTooLarge
	}
	ack, err := store.JS.PublishMsg(ctx, m)
	if err == nil && ack.Duplicate {
		err = checkRetry(ctx, store.JS, store.Stream, ack.Sequence, m)
	}
	if err != nil {
		return published{}, err
	}
	return published{ID: replay.ID{Seq: ack.Sequence, Epoch: store.Epoch}.String(), Duplicate: ack.Duplicate}, nil
}

// writePublished answers 201 with a new event's id, 200 with a duplicate's.
func writePublished(w http.ResponseWriter, out published) error {
	hdr := w.Header()
	hdr.Set("Content-Type", "application/json")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Content-Type-Options", "nosniff")
	if out.Duplicate {
		w.WriteHeader(http.StatusOK)
	} else {
		w.WriteHeader(http.StatusCreated)
	}
	return json.NewEncoder(w).Encode(out)
}

func (h *Endpoint) maxBody() int64 {
	return cmp.Or(h.cfg.MaxBody, DefaultMaxBody)
}

func (h *Endpoint) refuse(w http.ResponseWriter, r *http.Request, status int, code, detail string) error {
	return h.gw.Refuse.Refuse(w, r, status, code, detail)
}

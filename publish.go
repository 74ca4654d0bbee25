package ssegate

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/dustin/go-humanize"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/ssegate/ssegate/auth"
	"github.com/ssegate/ssegate/replay"
)

// PublishConfig enables publishing over HTTP, for backends without a NATS
// client: POST <path>?channel=<channel>[&event=<name>] with the event's
// data as the body, authorized by a bearer publish key or a JWT whose
// "publish" claim covers the channel.
type PublishConfig struct {
	// Path is the exact path that takes POSTs, such as /events/publish.
	Path string `json:"path"`
	// Keys are bearer secrets for publishers that do not mint JWTs.
	Keys []auth.PublishKey `json:"keys,omitempty"`
	// MaxBody bounds an event's data, in bytes. Default 64 KiB; NATS's
	// own max_payload (1 MiB by default) bounds it too.
	MaxBody int64 `json:"max_body,omitempty"`
}

// DefaultPublishMaxBody is the default of PublishConfig.MaxBody.
const DefaultPublishMaxBody = 64 << 10

const (
	// publishTimeout bounds waiting for the app and for JetStream's ack.
	publishTimeout = 5 * time.Second
	// maxEventName and maxIdempotencyKey keep header values short.
	maxEventName      = 128
	maxIdempotencyKey = 128
	// resetEvent is the gateway's own event (README: The reset event); a
	// publisher must not be able to fake one.
	resetEvent = "reset"
)

// Error codes of the publish endpoint, besides those of package auth.
const (
	codeBodyTooLarge   = "body_too_large"
	codeEmptyData      = "empty_data"
	codeInvalidData    = "invalid_data"
	codeInvalidEvent   = "invalid_event"
	codeInvalidIdemKey = "invalid_idempotency_key"
	codeUnavailable    = "unavailable"
	codeIdemKeyReused  = "idempotency_key_reused"
)

// published is the answer to a stored event.
type published struct {
	ID        string `json:"id"`
	Duplicate bool   `json:"duplicate,omitempty"`
}

// servePublish stores one event and answers with its id: 201 when it was
// stored now, 200 when its Idempotency-Key had stored it before.
func (h *Handler) servePublish(w http.ResponseWriter, r *http.Request) error {
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
	if err := h.checkChannel(channel); err != nil {
		ce := err.(*channelError)
		return h.refuse(w, r, http.StatusBadRequest, ce.code, ce.detail)
	}
	name := cmp.Or(q.Get("event"), r.Header.Get(replay.EventHeader))
	if err := checkEventName(name); err != "" {
		return h.refuse(w, r, http.StatusBadRequest, codeInvalidEvent, err)
	}
	idem := r.Header.Get("Idempotency-Key")
	if !validIdempotencyKey(idem) {
		return h.refuse(w, r, http.StatusBadRequest, codeInvalidIdemKey, fmt.Sprintf("Idempotency-Key must be 1 to %d printable ASCII characters without spaces", maxIdempotencyKey))
	}
	pub, aerr := h.publishers.Authorize(r, channel)
	if aerr != nil {
		if aerr.Status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="ssegate publish"`)
		}
		aerr.Write(w)
		return nil
	}
	data, derr := readEventData(w, r, h.publishMaxBody())
	if derr != nil {
		return h.refuse(w, r, derr.Status, derr.Code, derr.Detail)
	}
	msg := h.eventMsg(channel, name, data, pub, idem)

	ctx, cancel := context.WithTimeout(r.Context(), publishTimeout)
	defer cancel()
	out, err := h.store(ctx, msg)
	switch {
	case errors.Is(err, errTooLarge):
		return h.refuse(w, r, http.StatusRequestEntityTooLarge, codeBodyTooLarge, "the event with its headers is larger than NATS's max_payload")
	case errors.Is(err, errKeyReused):
		return h.refuse(w, r, http.StatusUnprocessableEntity, codeIdemKeyReused, "this Idempotency-Key was used for another event (channel, event name or data); use a new key")
	case err != nil:
		h.log.Warn("publish failed", zap.String("channel", channel), zap.String("sub", pub.Sub), zap.Error(err))
		return h.refuse(w, r, http.StatusServiceUnavailable, codeUnavailable, "the event could not be stored; try again (with the same Idempotency-Key)")
	}
	h.log.Debug("published", zap.String("channel", channel), zap.String("sub", pub.Sub), zap.String("id", out.ID), zap.Bool("duplicate", out.Duplicate))
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

// errTooLarge is an event that NATS's max_payload cannot take.
var errTooLarge = errors.New("larger than max_payload")

// store publishes msg over the publish connection and waits for the ack.
// A duplicate ack is checked against the event stored first.
func (h *Handler) store(ctx context.Context, msg *nats.Msg) (published, error) {
	run, err := h.app.running(ctx)
	if err != nil {
		return published{}, err
	}
	nc, js, err := h.publisher.get(run.conn)
	if err != nil {
		return published{}, err
	}
	if msgSize(msg) > nc.MaxPayload() {
		return published{}, errTooLarge
	}
	ack, err := js.PublishMsg(ctx, msg)
	if err == nil && ack.Duplicate {
		err = checkRetry(ctx, js, h.app.Stream.Name, ack.Sequence, msg)
	}
	if err != nil {
		return published{}, err
	}
	return published{ID: replay.ID{Seq: ack.Sequence, Epoch: run.history.Epoch()}.String(), Duplicate: ack.Duplicate}, nil
}

// eventMsg carries only what the gateway sets: the event name, and the
// headers that make the ack prove the event is in the gateway's stream and
// map an Idempotency-Key to a Nats-Msg-Id. Headers from the request never
// reach NATS, so no publisher can forge Nats-* position headers through
// this endpoint.
func (h *Handler) eventMsg(channel, name string, data []byte, pub auth.Publisher, idem string) *nats.Msg {
	msg := nats.NewMsg(h.subject(channel))
	msg.Data = data
	if name != "" {
		msg.Header.Set(replay.EventHeader, name)
	}
	msg.Header.Set(jetstream.ExpectedStreamHeader, h.app.Stream.Name)
	if idem != "" {
		msg.Header.Set(jetstream.MsgIDHeader, pub.MsgID(idem))
		msg.Header.Set(digestHeader, eventDigest(channel, name, data))
	}
	return msg
}

// msgSize is what NATS's max_payload bounds: the headers as sent
// ("NATS/1.0", each "Key: value", CRLFs) and the data.
func msgSize(msg *nats.Msg) int64 {
	n := len("NATS/1.0\r\n\r\n") + len(msg.Data)
	for k, vs := range msg.Header {
		for _, v := range vs {
			n += len(k) + len(": ") + len(v) + len("\r\n")
		}
	}
	return int64(n)
}

// readEventData reads the body: non-empty (an EventSource dispatches no
// event without data), UTF-8 (the event stream is UTF-8), within limit.
func readEventData(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, *auth.Error) {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return nil, &auth.Error{Status: http.StatusRequestEntityTooLarge, Code: codeBodyTooLarge, Detail: fmt.Sprintf("the event's data is limited to %s", humanize.IBytes(uint64(limit)))}
	case err != nil:
		return nil, &auth.Error{Status: http.StatusBadRequest, Code: auth.CodeBadRequest, Detail: "could not read the body"}
	case len(data) == 0:
		return nil, &auth.Error{Status: http.StatusBadRequest, Code: codeEmptyData, Detail: "the body is the event's data and must not be empty"}
	case !utf8.Valid(data):
		return nil, &auth.Error{Status: http.StatusBadRequest, Code: codeInvalidData, Detail: "the event's data must be UTF-8 text"}
	}
	return data, nil
}

// checkEventName returns why name cannot be an event name, or "".
func checkEventName(name string) string {
	if len(name) > maxEventName {
		return fmt.Sprintf("the event name is limited to %d bytes", maxEventName)
	}
	if strings.Trim(name, " ") != name {
		// NATS trims header values, so the name would be delivered
		// otherwise than it was checked: " reset" arrives as "reset".
		return "the event name must not begin or end with a space"
	}
	if name == resetEvent {
		return "the event name reset is reserved for the gateway"
	}
	if !utf8.ValidString(name) {
		return "the event name must be UTF-8"
	}
	for _, c := range name {
		if c < ' ' || c == 0x7f {
			return "the event name must not hold control characters"
		}
	}
	return ""
}

func validIdempotencyKey(k string) bool {
	if len(k) > maxIdempotencyKey {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] <= ' ' || k[i] >= 0x7f {
			return false
		}
	}
	return true
}

func (h *Handler) publishMaxBody() int64 {
	return cmp.Or(h.Publish.MaxBody, DefaultPublishMaxBody)
}

// provisionFeatures sets up the optional endpoints. Without publish keys,
// publishers need JWTs, and so the handler needs keys to verify them.
func (h *Handler) provisionFeatures() error {
	h.probe = new(jsProbe)
	if h.Publish == nil {
		return nil
	}
	h.publisher = new(publishConn)
	p := h.Publish
	if len(p.Keys) == 0 && (h.Auth == nil || len(h.Auth.HMACKeys)+len(h.Auth.PublicKeys)+len(h.Auth.JWKS) == 0) {
		return errors.New("publish: no key, and no auth keys to verify publisher JWTs")
	}
	var err error
	h.publishers, err = h.gate.Publishers(p.Keys)
	return err
}

// parsePublish reads:
//
//	publish <path> {
//	    key      <secret> [<channel pattern>...]
//	    max_body <size>
//	}
func (h *Handler) parsePublish(d *caddyfile.Dispenser) error {
	if h.Publish != nil {
		return d.Err("publish is given more than once")
	}
	h.Publish = new(PublishConfig)
	if !d.NextArg() {
		return d.ArgErr()
	}
	h.Publish.Path = d.Val()
	if d.NextArg() {
		return d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "key":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.ArgErr()
			}
			h.Publish.Keys = append(h.Publish.Keys, auth.PublishKey{Secret: args[0], Channels: args[1:]})
		case "max_body":
			var v string
			if err := oneString(d, &v); err != nil {
				return err
			}
			n, err := humanize.ParseBytes(v)
			if err != nil || n == 0 || n > 64<<20 {
				return d.Errf("max_body %q: want a size from 1B to 64MiB", v)
			}
			h.Publish.MaxBody = int64(n)
		default:
			return d.Errf("unknown publish option %q", d.Val())
		}
	}
	return nil
}

package publish

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/dustin/go-humanize"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ssegate/ssegate/auth"
	"github.com/ssegate/ssegate/replay"
)

// What a publisher may send as an event, checked before anything is
// stored, and the NATS message the gateway makes of it.

const (
	// maxEventName and maxIdempotencyKey keep header values short.
	maxEventName      = 128
	maxIdempotencyKey = 128
	// resetEvent is the gateway's own event (README: The reset event); a
	// publisher must not be able to fake one.
	resetEvent = "reset"
)

// eventMsg carries only what the gateway sets: the event name, and the
// headers that make the ack prove the event is in the gateway's stream and
// map an Idempotency-Key to a Nats-Msg-Id scoped to the publisher's
// credential. Headers from the request never reach NATS, so no publisher
// can forge Nats-* position headers through this endpoint.
func eventMsg(subject, stream, channel, name string, data []byte, pub auth.Publisher, idem string) *nats.Msg {
	msg := nats.NewMsg(subject)
	msg.Data = data
	if name != "" {
		msg.Header.Set(replay.EventHeader, name)
	}
	msg.Header.Set(jetstream.ExpectedStreamHeader, stream)
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

// dataTooLarge refuses an event's data over limit; built only when
// refused, not for every publish.
func dataTooLarge(limit int64) *auth.Error {
	return &auth.Error{Status: http.StatusRequestEntityTooLarge, Code: auth.CodeBodyTooLarge, Detail: fmt.Sprintf("the event's data is limited to %s", humanize.IBytes(uint64(limit)))}
}

// readEventData reads the body: non-empty (an EventSource dispatches no
// event without data), UTF-8 (the event stream is UTF-8), within limit.
func readEventData(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, *auth.Error) {
	if auth.DeclaredOver(w, r, limit) {
		// Answered without the body, and before a client that expects
		// 100-continue sends it.
		return nil, dataTooLarge(limit)
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var overLimit *http.MaxBytesError
	switch {
	case errors.As(err, &overLimit):
		return nil, dataTooLarge(limit)
	case err != nil:
		return nil, &auth.Error{Status: http.StatusBadRequest, Code: auth.CodeBadRequest, Detail: "could not read the body"}
	case len(data) == 0:
		return nil, &auth.Error{Status: http.StatusBadRequest, Code: auth.CodeEmptyData, Detail: "the body is the event's data and must not be empty"}
	case !utf8.Valid(data):
		return nil, &auth.Error{Status: http.StatusBadRequest, Code: auth.CodeInvalidData, Detail: "the event's data must be UTF-8 text"}
	}
	return data, nil
}

// once is the value that the non-empty vals give, "" for none; ok is
// false when they disagree, so that no reader of the request takes
// another one. An empty value is an absent one.
func once(vals []string) (v string, ok bool) {
	for _, x := range vals {
		switch {
		case x == "":
		case v == "":
			v = x
		case x != v:
			return "", false
		}
	}
	return v, true
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

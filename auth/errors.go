package auth

import (
	"net/http"

	"github.com/ssegate/ssegate/internal/jsonout"
)

// Error is a refusal that the handler sends before any stream byte. Its
// Detail is written for the client, so it never carries a token, a ticket,
// a secret or a key id supplied by the caller.
type Error struct {
	Status int
	Code   string
	Detail string
}

func (e *Error) Error() string { return e.Code + ": " + e.Detail }

// Error codes. They are part of the public contract (README), so a client
// can tell "fetch a new ticket" (401) from "you may not read this" (403).
const (
	CodeUnauthenticated        = "unauthenticated"
	CodeInvalidToken           = "invalid_token"
	CodeTokenExpired           = "token_expired"
	CodeTokenNotYetValid       = "token_not_yet_valid"
	CodeTokenTooLarge          = "token_too_large"
	CodeUnknownKey             = "unknown_key"
	CodeKeysUnavailable        = "keys_unavailable"
	CodeTicketInvalid          = "ticket_invalid"
	CodeTicketUsed             = "ticket_used"
	CodeTokenRevoked           = "token_revoked"
	CodeTicketStoreUnavailable = "ticket_store_unavailable"
	CodeAuthUnavailable        = "auth_unavailable"
	CodeForbidden              = "forbidden"
	CodeChannelForbidden       = "channel_forbidden"
	CodeOriginForbidden        = "origin_forbidden"
	CodeNoChannel              = "no_channel"
	CodeInvalidChannel         = "invalid_channel"
	CodeBadRequest             = "bad_request"
	CodeMethodNotAllowed       = "method_not_allowed"
	CodeTooManyConnections     = "too_many_connections"
	CodeTooManyChannels        = "too_many_channels"
	CodeNotFound               = "not_found"

	// The publish endpoint's own.
	CodeBodyTooLarge          = "body_too_large"
	CodeEmptyData             = "empty_data"
	CodeInvalidData           = "invalid_data"
	CodeInvalidEvent          = "invalid_event"
	CodeInvalidIdempotencyKey = "invalid_idempotency_key"
	CodeUnavailable           = "unavailable"
	// CodeIdempotencyKeyReused: a key used before for another event
	// (channel, event name or data); 422, and nothing is stored.
	CodeIdempotencyKeyReused = "idempotency_key_reused"

	// The history and poll endpoints' own: a parameter out of its range
	// or given twice, one that the endpoint does not take, or two that
	// exclude each other. An event filter's error is CodeInvalidEvent.
	CodeInvalidLimit      = "invalid_limit"
	CodeInvalidLast       = "invalid_last"
	CodeInvalidSince      = "invalid_since"
	CodeInvalidWait       = "invalid_wait"
	CodeConflictingParams = "conflicting_params"
)

// challenge is the RFC 6750 WWW-Authenticate value of a 401. A request
// that carried no credential gets no error attribute (section 3.1); a
// credential that was presented and refused is "invalid_token", with the
// ssegate code as the description so a client can tell expired from used.
// A channel outside the credential's patterns is "insufficient_scope"
// (section 3.1); other statuses carry no challenge.
func (e *Error) challenge() string {
	switch {
	case e.Status == http.StatusUnauthorized && e.Code == CodeUnauthenticated:
		return `Bearer realm="ssegate"`
	case e.Status == http.StatusUnauthorized:
		return `Bearer realm="ssegate", error="invalid_token", error_description="` + e.Code + `"`
	case e.Code == CodeChannelForbidden:
		return `Bearer realm="ssegate", error="insufficient_scope", error_description="` + e.Code + `"`
	}
	return ""
}

func newError(status int, code, detail string) *Error {
	return &Error{Status: status, Code: code, Detail: detail}
}

// Write sends the refusal as JSON. no-store keeps proxies and the browser
// from replaying an auth decision for another credential.
func (e *Error) Write(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if e.Status == http.StatusServiceUnavailable || e.Status == http.StatusTooManyRequests {
		h.Set("Retry-After", "5")
	}
	if c := e.challenge(); c != "" {
		h.Set("WWW-Authenticate", c)
	}
	w.WriteHeader(e.Status)
	_ = jsonout.Encode(w, struct {
		Error  string `json:"error"`
		Detail string `json:"detail,omitempty"`
	}{e.Code, e.Detail})
}

// DeclaredOver reports whether r declares a body longer than limit, which
// is then refused without being read. Over HTTP/1 it asks for the
// connection to close after the answer: the server would otherwise read
// what is left of the body (Caddy's idle reader lets it wait for it)
// before answering.
func DeclaredOver(w http.ResponseWriter, r *http.Request, limit int64) bool {
	if r.ContentLength <= limit {
		return false
	}
	if r.ProtoMajor == 1 {
		w.Header().Set("Connection", "close")
	}
	return true
}

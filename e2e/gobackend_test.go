package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/ssegate/ssegate/internal/natstest"
)

// goBackend is backend.mjs in Go, as the README shows it: tickets signed
// with golang-jwt, events published with nats.go's JetStream client.
type goBackend struct {
	secret []byte
	origin string
	js     jetstream.JetStream
}

// startGoBackend serves the backend on loopback until the test ends and
// returns its URL.
func startGoBackend(t *testing.T, natsURL, secret, origin string) string {
	t.Helper()
	_, js := natstest.ConnectURL(t, natsURL, nats.Name("ssegate-go-backend"))
	b := &goBackend{secret: []byte(secret), origin: origin, js: js}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ticket", b.ticket)
	mux.HandleFunc("POST /publish", b.publish)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

// mintTicket signs a ticket for one EventSource connection: single use
// (jti), short-lived (the gateway refuses more than ticket_max_lifetime,
// 60s by default), for the channels the user may read.
func (b *goBackend) mintTicket(sub string) (string, error) {
	if len(b.secret) == 0 {
		return "", errors.New("SSEGATE_JWT_SECRET is empty")
	}
	jti := make([]byte, 16)
	if _, err := rand.Read(jti); err != nil {
		return "", err
	}
	now := time.Now()
	return jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub":      sub,
		"jti":      hex.EncodeToString(jti),
		"iat":      now.Unix(),
		"exp":      now.Add(30 * time.Second).Unix(),
		"channels": []string{"user.{sub}"},
	}).SignedString(b.secret)
}

func (b *goBackend) reply(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Access-Control-Allow-Origin", b.origin)
	w.Header().Set("Vary", "Origin")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func (b *goBackend) ticket(w http.ResponseWriter, _ *http.Request) {
	tok, err := b.mintTicket("alice") // the signed-in user
	if err != nil {
		b.reply(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		return
	}
	b.reply(w, http.StatusOK, map[string]string{"ticket": tok})
}

func (b *goBackend) publish(w http.ResponseWriter, r *http.Request) {
	var in struct{ Channel, Event, Data string }
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&in); err != nil {
		b.reply(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	msg := nats.NewMsg("events." + in.Channel)
	msg.Data = []byte(in.Data)
	if in.Event != "" {
		msg.Header.Set("Sse-Event", in.Event)
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	ack, err := b.js.PublishMsg(ctx, msg)
	if err != nil {
		b.reply(w, http.StatusBadGateway, map[string]string{"error": err.Error()})
		return
	}
	b.reply(w, http.StatusOK, map[string]uint64{"seq": ack.Sequence})
}

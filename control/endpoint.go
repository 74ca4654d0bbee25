package control

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"
	"go.uber.org/zap"

	"github.com/ssegate/ssegate/auth"
)

// Matches reports whether path is under the endpoint.
func (s *Service) Matches(path string) bool {
	return path == s.cfg.Path || strings.HasPrefix(path, s.cfg.Path+"/")
}

// ServeHTTP takes POST <path>/disconnect and <path>/revoke and answers
// 202 {"id": ...} once the action is on its way to every gateway (and a
// revocation stored).
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	kind := strings.TrimPrefix(r.URL.Path, s.cfg.Path+"/")
	if kind != KindDisconnect && kind != KindRevoke {
		_ = s.refusal.Refuse(w, r, http.StatusNotFound, auth.CodeNotFound, "POST to "+s.cfg.Path+"/disconnect or /revoke")
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		_ = s.refusal.Refuse(w, r, http.StatusMethodNotAllowed, auth.CodeMethodNotAllowed, "use POST")
		return
	}
	if s.ctrl == nil {
		_ = s.refusal.Refuse(w, r, http.StatusForbidden, auth.CodeForbidden, "control is not enabled")
		return
	}
	who, e := s.ctrl.Authorize(r)
	if e != nil {
		e.Write(w) // logged and counted by the gate
		return
	}
	a, err := parse(kind, r.Body)
	if err != nil {
		_ = s.refusal.Refuse(w, r, http.StatusBadRequest, auth.CodeBadRequest, err.Error())
		return
	}
	a.ID = nuid.Next()
	if err := s.send(r.Context(), kind, a); err != nil {
		s.log.Warn("control: action failed", zap.String("action", kind), zap.String("id", a.ID), zap.Error(err))
		_ = s.refusal.Refuse(w, r, http.StatusServiceUnavailable, auth.CodeUnavailable, "the action could not be sent; try again")
		return
	}
	s.log.Info("control requested", zap.String("action", kind), zap.String("id", a.ID), zap.String("by", who))
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusAccepted)
	_ = json.NewEncoder(w).Encode(struct {
		ID string `json:"id"`
	}{a.ID})
}

// send stores a revocation, then publishes the action to every gateway,
// this one included.
func (s *Service) send(ctx context.Context, kind string, a *Action) error {
	c := s.nc.Load()
	if c == nil {
		return errNotConnected
	}
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	if kind == KindRevoke {
		if err := s.store(ctx, c.js, a); err != nil {
			return err
		}
	}
	msg := nats.NewMsg(s.cfg.Prefix() + ".control." + kind)
	msg.Data, _ = json.Marshal(a)
	if kind == KindRevoke {
		// Stored above: the gateway that would store a backend's
		// revocation need not store it again.
		msg.Header.Set(storedHeader, "1")
	}
	if err := c.nc.PublishMsg(msg); err != nil {
		return err
	}
	return c.nc.FlushWithContext(ctx)
}

type constErr string

func (e constErr) Error() string { return string(e) }

const errNotConnected = constErr("control: not connected to NATS yet")

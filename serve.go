package ssegate

import (
	"context"
	"net/http"

	"github.com/ssegate/ssegate/auth"
	"github.com/ssegate/ssegate/internal/session"
)

// serveSession hands an admitted request over to its session, which
// attaches it to the hub through attach. The session owns adm from here,
// and releases it at its end.
func (h *Handler) serveSession(w http.ResponseWriter, r *http.Request, subjects []string, position string, adm *auth.Admission, opts ...session.Option) {
	h.sessions.Serve(w, r, subjects, position, adm, h.attach, opts...)
}

// attach attaches a stream's subjects to the running app's hub, waiting
// for the app to start if it is under way.
func (h *Handler) attach(ctx context.Context, subjects []string, replaying bool) (session.Client, session.History, error) {
	run, err := h.app.running(ctx)
	if err != nil {
		return nil, nil, err
	}
	client, err := run.hub.Attach(ctx, subjects, h.queueSize(), replaying)
	if err != nil {
		return nil, nil, err
	}
	return client, run.history, nil
}

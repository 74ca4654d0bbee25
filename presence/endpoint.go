package presence

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/ssegate/ssegate/auth"
)

// Access decides who may read a channel's presence.
type Access struct {
	// Gate authenticates readers.
	Gate *auth.Gate
	// Publishers, if set, lets any publish credential covering the
	// channel read its presence.
	Publishers *auth.Publishers
	// Controllers, if set, lets control credentials read presence, with
	// connection ids.
	Controllers *auth.Controllers
}

// ServeHTTP answers GET <path>?channel=<channel>.
func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	hdr := w.Header()
	hdr.Set("Cache-Control", "no-store")
	if r.refusal.NotRead(w, req) {
		return
	}
	q := req.URL.Query()
	chans := q["channel"]
	if len(chans) != 1 || len(q) != 1 {
		_ = r.refusal.Refuse(w, req, http.StatusBadRequest, auth.CodeBadRequest, "name exactly one channel, as ?channel=, and nothing else")
		return
	}
	ch := chans[0]
	if !auth.ValidChannel(ch) {
		_ = r.refusal.Refuse(w, req, http.StatusBadRequest, auth.CodeInvalidChannel, "not a valid channel name")
		return
	}
	withIDs, e := r.authorize(req, ch)
	if e != nil {
		_ = r.refusal.Refuse(w, req, e.Status, e.Code, e.Detail)
		return
	}
	es := r.view.others(r.id, ch, time.Now().Add(-r.cfg.ttl()))
	es = append(es, r.loc.snapshot(r.id, ch))
	hdr.Set("Content-Type", "application/json")
	hdr.Set("X-Content-Type-Options", "nosniff")
	if req.Method == http.MethodHead {
		return
	}
	_ = json.NewEncoder(w).Encode(sum(ch, es, withIDs))
}

// authorize lets in, in this order: a control credential (with
// connection ids); a reader of the channel with a presence claim, or of
// a presence_channels channel; a publish credential covering it.
func (r *Registry) authorize(req *http.Request, ch string) (withIDs bool, e *auth.Error) {
	a := r.access
	if a.Controllers != nil && a.Controllers.Key(req) {
		return true, nil
	}
	if a.Gate == nil {
		return false, &auth.Error{Status: http.StatusForbidden, Code: auth.CodeForbidden, Detail: "presence is not readable here"}
	}
	// Identify, not Caller: a credential the gate refuses may still be a
	// publish key, and the answer is logged and counted once, by ServeHTTP.
	caller, e := a.Gate.Identify(req)
	if e == nil && caller.Control() {
		return true, nil
	}
	if e == nil && a.Gate.MayRead(caller, ch) && (caller.Presence() || r.visible.Match(ch)) {
		return false, nil
	}
	var pe *auth.Error
	if a.Publishers != nil && req.Header.Get("Authorization") != "" {
		if pe = a.Publishers.Check(req, ch); pe == nil {
			return false, nil
		}
	}
	switch {
	case e != nil && (pe == nil || pe.Status != http.StatusForbidden):
		// The gate refused the credential, and it is no publish key
		// either (or the publishers could not tell).
		return false, e
	case e == nil && caller == nil:
		return false, &auth.Error{Status: http.StatusUnauthorized, Code: auth.CodeUnauthenticated, Detail: "presence needs credentials"}
	}
	return false, &auth.Error{Status: http.StatusForbidden, Code: auth.CodeForbidden, Detail: fmt.Sprintf("may not see the presence of channel %q", ch)}
}

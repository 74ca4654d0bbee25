package ssegate

import (
	"context"
	"net/http"

	"github.com/ssegate/ssegate/browser"
	"github.com/ssegate/ssegate/history"
)

// provisionHistory sets up the history and poll endpoints, when enabled.
// They read over the replay connection and attach to the hub like a
// stream, so they share its budget and its live feed.
func (h *Handler) provisionHistory() {
	if h.ClientPath != "" {
		h.script = browser.New()
	}
	if h.History == nil && h.Poll == nil {
		return
	}
	var opts []history.Option
	if h.History != nil {
		opts = append(opts, history.WithHistory(*h.History))
	}
	if h.Poll != nil {
		opts = append(opts, history.WithPoll(*h.Poll))
	}
	h.past = history.NewServer(h.historyBackend,
		append(opts, history.WithLogger(h.log), history.RefusingWith(h.refusal.Named("history")), history.CappingWaitAt(h.writeTimeout()),
			history.CountingWaitsIn(h.app.metrics.pollsWaiting.Add))...)
}

func (h *Handler) historyBackend(ctx context.Context) (history.Source, history.Hub, error) {
	run, err := h.app.running(ctx)
	if err != nil {
		return nil, nil, err
	}
	return run.history, run.hub, nil
}

// serveHistory checks a history or poll request as a stream is checked
// (method, channels, credential) and hands it to serve.
func (h *Handler) serveHistory(w http.ResponseWriter, r *http.Request, serve func(http.ResponseWriter, *http.Request, history.Request)) error {
	if !h.gets(w, r, "history and poll are read with GET") {
		return nil
	}
	adm, subjects, ok := h.admit(w, r)
	if !ok {
		return nil
	}
	defer adm.Release()
	serve(w, r, history.Request{Channels: adm.Channels, Subjects: subjects, Expires: adm.Expires})
	return nil
}

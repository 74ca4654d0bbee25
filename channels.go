package ssegate

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/caddyserver/caddy/v2"

	"github.com/ssegate/ssegate/auth"
)

// channels reads, checks and de-duplicates the channels of r.
func (h *Handler) channels(r *http.Request) ([]string, *auth.Error) {
	var raw []string
	switch {
	case len(h.Channels) > 0:
		raw = h.Channels
	case h.ChannelPlaceholder != "":
		repl, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
		if repl == nil {
			repl = caddy.NewReplacer()
		}
		if v := repl.ReplaceKnown(h.ChannelPlaceholder, ""); v != "" {
			raw = strings.Split(v, ",")
		}
	default:
		raw = r.URL.Query()[h.channelParam()]
	}
	if len(raw) > h.maxChannels() {
		return nil, &auth.Error{Status: http.StatusBadRequest, Code: auth.CodeTooManyChannels, Detail: fmt.Sprintf("at most %d channels per stream", h.maxChannels())}
	}
	seen := make(map[string]bool, len(raw))
	out := make([]string, 0, len(raw))
	for _, ch := range raw {
		if err := h.checkChannel(ch); err != nil {
			return nil, err
		}
		if !seen[ch] {
			seen[ch] = true
			out = append(out, ch)
		}
	}
	return out, nil
}

// checkChannel refuses a channel that breaks the gateway's rule for
// channel names (auth.ValidChannel) or the handler's channel_pattern.
func (h *Handler) checkChannel(ch string) *auth.Error {
	if !auth.ValidChannel(ch) || !h.channelRE.MatchString(ch) {
		return auth.InvalidChannel(ch)
	}
	return nil
}

// channelSubject checks a channel and maps it to its subject.
func (h *Handler) channelSubject(ch string) (string, *auth.Error) {
	if err := h.checkChannel(ch); err != nil {
		return "", err
	}
	return h.subject(ch), nil
}

func compileChannelPattern(p string) (*regexp.Regexp, error) {
	if p == "" {
		p = DefaultChannelPattern
	}
	re, err := regexp.Compile(p)
	if err != nil {
		return nil, fmt.Errorf("channel_pattern: %w", err)
	}
	return re, nil
}

// subject maps a channel to its NATS subject through the subject template.
func (h *Handler) subject(ch string) string {
	return strings.ReplaceAll(h.subjectTemplate(), "{channel}", ch)
}

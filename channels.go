package ssegate

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/caddyserver/caddy/v2"
)

// DefaultChannelPattern admits dot-separated tokens of letters, digits,
// '_' and '-'. Channel tokens become NATS subject tokens, so whatever a
// configured pattern allows, wildcards and empty tokens are refused too.
const DefaultChannelPattern = `^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$`

const maxChannelLen = 200

// channelError is a client mistake in naming channels.
type channelError struct {
	code, detail string
}

func (e *channelError) Error() string { return e.code + ": " + e.detail }

// channels reads, checks and de-duplicates the channels of r.
func (h *Handler) channels(r *http.Request) ([]string, error) {
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
		return nil, &channelError{"too_many_channels", fmt.Sprintf("at most %d channels per stream", h.maxChannels())}
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

func (h *Handler) checkChannel(ch string) error {
	if ch == "" || len(ch) > maxChannelLen || !h.channelRE.MatchString(ch) || !plainTokens(ch) {
		return &channelError{"invalid_channel", fmt.Sprintf("channel %q is not a valid channel name", truncate(ch, 64))}
	}
	return nil
}

// plainTokens reports whether ch is non-empty dot-separated tokens without
// NATS wildcards, whitespace or control characters.
func plainTokens(ch string) bool {
	for _, tok := range strings.Split(ch, ".") {
		if tok == "" {
			return false
		}
		for _, c := range tok {
			if c <= ' ' || c == 0x7f || c == '*' || c == '>' {
				return false
			}
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
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

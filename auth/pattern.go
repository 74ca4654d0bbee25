package auth

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Limits on channel names keep a hostile token from costing much to match
// and keep names usable as NATS subject suffixes.
//
// maxChannelLen is 200 bytes, the stricter of the two limits the gateway
// had: every stream and publish request went through a 200-byte check as
// well as this one, so only ticket requests could name a longer channel,
// for streams that would then be refused. 200 bytes leave room under
// NATS's subject limits for the subject template around the channel.
const (
	maxChannelLen    = 200
	maxChannelTokens = 32
	subPlaceholder   = "{sub}"
)

var (
	errEmptyToken    = errors.New("empty token")
	errBadToken      = errors.New("token has a character that is not allowed")
	errWildcardPlace = errors.New("'>' may only be the last token")
	errTooLong       = errors.New("too long")
	errBadSub        = errors.New("sub is not a single channel token")
)

// validToken admits printable ASCII except the NATS separators and
// wildcards, and braces so that nothing can smuggle in a "{sub}".
func validToken(t string) bool {
	if t == "" {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if c <= ' ' || c >= 0x7f || c == '.' || c == '*' || c == '>' || c == '{' || c == '}' {
			return false
		}
	}
	return true
}

// ValidChannel reports whether name is a concrete channel: dot-separated
// tokens, none empty, no wildcards. It is the gateway's one rule for
// channel names; a handler's channel_pattern only narrows it.
func ValidChannel(name string) bool {
	return parseChannel(name) == nil
}

// InvalidChannel is the refusal of a channel name that breaks the rule.
func InvalidChannel(name string) *Error {
	return newError(http.StatusBadRequest, CodeInvalidChannel, fmt.Sprintf("channel %q is not a valid channel name", clip(name)))
}

func parseChannel(name string) error {
	if len(name) > maxChannelLen {
		return errTooLong
	}
	n := 0
	for tok := range strings.SplitSeq(name, ".") {
		n++
		if n > maxChannelTokens {
			return errTooLong
		}
		if tok == "" {
			return errEmptyToken
		}
		if !validToken(tok) {
			return errBadToken
		}
	}
	return nil
}

// pattern is a compiled channel pattern: '*' matches one token and a
// trailing '>' matches one or more tokens, as in NATS subjects.
type pattern struct {
	raw    string
	tokens []string
	// tail is true when the last token was '>'; it is not kept in tokens.
	tail bool
}

// parsePattern compiles a pattern that has already had {sub} expanded.
func parsePattern(s string) (pattern, error) {
	if len(s) > maxChannelLen {
		return pattern{}, errTooLong
	}
	toks := strings.Split(s, ".")
	if len(toks) > maxChannelTokens {
		return pattern{}, errTooLong
	}
	p := pattern{raw: s}
	for i, t := range toks {
		switch {
		case t == "":
			return pattern{}, errEmptyToken
		case t == ">":
			if i != len(toks)-1 {
				return pattern{}, errWildcardPlace
			}
			p.tail = true
			continue
		case t == "*", validToken(t):
		default:
			return pattern{}, errBadToken
		}
		p.tokens = append(p.tokens, t)
	}
	return p, nil
}

// checkPatternTemplate validates a configured pattern that may still hold
// {sub} as a whole token, so config errors show at load time.
func checkPatternTemplate(s string) error {
	_, err := parsePattern(strings.ReplaceAll(s, subPlaceholder, "x"))
	return err
}

// expandSub replaces whole-token "{sub}" with sub. sub must be exactly one
// valid token: a sub of "*", ">", "a.b" or "" would otherwise widen the
// pattern or alias another principal's channels ("user.{sub}.>" for "a"
// would cover "user.a.b", the exact channel of sub "a.b").
func expandSub(s, sub string) (string, error) {
	if !strings.Contains(s, "{") && !strings.Contains(s, "}") {
		return s, nil
	}
	if !validToken(sub) {
		return "", errBadSub
	}
	toks := strings.Split(s, ".")
	for i, t := range toks {
		if t == subPlaceholder {
			toks[i] = sub
		}
	}
	out := strings.Join(toks, ".")
	if strings.ContainsAny(out, "{}") {
		return "", errBadToken
	}
	return out, nil
}

// compilePatterns expands and compiles raw patterns for one principal.
// Bad patterns are dropped, never widened; the names of the dropped ones
// are returned for logging.
func compilePatterns(raw []string, sub string) (ps []pattern, dropped []string) {
	for _, r := range raw {
		s, err := expandSub(r, sub)
		if err == nil {
			var p pattern
			if p, err = parsePattern(s); err == nil {
				ps = append(ps, p)
				continue
			}
		}
		dropped = append(dropped, r)
	}
	return ps, dropped
}

// matches reports whether the concrete channel is covered by p. It walks
// the name without allocating, since it runs for every requested channel.
func (p pattern) matches(channel string) bool {
	rest := channel
	done := false
	for _, t := range p.tokens {
		if done {
			return false
		}
		tok, r, found := strings.Cut(rest, ".")
		if t != "*" && t != tok {
			return false
		}
		rest, done = r, !found
	}
	if p.tail {
		return !done
	}
	return done
}

// concrete reports whether p names exactly one channel.
func (p pattern) concrete() bool {
	if p.tail {
		return false
	}
	for _, t := range p.tokens {
		if t == "*" {
			return false
		}
	}
	return true
}

// Patterns is a compiled list of channel patterns (NATS-style wildcards),
// for settings outside this package such as presence_channels.
type Patterns []pattern

// CompilePatterns parses raw; a bad pattern is an error.
func CompilePatterns(raw []string) (Patterns, error) {
	ps := make(Patterns, 0, len(raw))
	for _, r := range raw {
		p, err := parsePattern(r)
		if err != nil {
			return nil, fmt.Errorf("channel pattern %q: %w", r, err)
		}
		ps = append(ps, p)
	}
	return ps, nil
}

// Match reports whether any pattern matches channel.
func (ps Patterns) Match(channel string) bool { return anyMatch(ps, channel) }

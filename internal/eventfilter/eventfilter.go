// Package eventfilter keeps the events a client asked for by name
// (`event=` on streams, history and poll). Names are compared as the
// client receives them: the name an EventSource dispatches, "message" for
// an event published without one.
package eventfilter

import (
	"bytes"
	"fmt"
	"net/url"
	"strings"
)

// Param is the query parameter that names an event; it may repeat.
const Param = "event"

// Limits on what a request may ask for.
const (
	MaxNames   = 32
	MaxNameLen = 128
)

// Unnamed is the name of an event published without one.
const Unnamed = "message"

// Filter is a set of event names. The zero Filter passes every event.
type Filter struct {
	names map[string]struct{}
}

// Parse reads the event parameters of q. It returns a description of the
// mistake for a request the gateway should refuse.
func Parse(q url.Values) (Filter, error) {
	raw := q[Param]
	if len(raw) == 0 {
		return Filter{}, nil
	}
	if len(raw) > MaxNames {
		return Filter{}, fmt.Errorf("at most %d event names", MaxNames)
	}
	f := Filter{names: make(map[string]struct{}, len(raw))}
	for _, n := range raw {
		if n == "" || len(n) > MaxNameLen || strings.ContainsAny(n, "\r\n\x00") {
			return Filter{}, fmt.Errorf("event names are 1 to %d bytes without line breaks", MaxNameLen)
		}
		f.names[n] = struct{}{}
	}
	return f, nil
}

// Active reports whether the filter drops anything.
func (f Filter) Active() bool { return f.names != nil }

// Passes reports whether an event of this name is kept; "" is Unnamed.
func (f Filter) Passes(name string) bool {
	if f.names == nil {
		return true
	}
	if name == "" {
		name = Unnamed
	}
	_, ok := f.names[name]
	return ok
}

// PassesFrame reports whether an encoded event (sse.AppendEvent) is kept.
func (f Filter) PassesFrame(frame []byte) bool {
	if f.names == nil {
		return true
	}
	_, ok := f.names[string(nameOf(frame))]
	return ok
}

// nameOf finds the event field of an encoded event without copying it.
func nameOf(frame []byte) []byte {
	for len(frame) > 0 {
		line := frame
		i := bytes.IndexByte(frame, '\n')
		if i >= 0 {
			line, frame = frame[:i], frame[i+1:]
		} else {
			frame = nil
		}
		switch {
		case len(line) == 0 || bytes.HasPrefix(line, []byte("data:")):
			// The data ends the fields the encoder writes first.
			return []byte(Unnamed)
		case bytes.HasPrefix(line, []byte("event: ")):
			return line[len("event: "):]
		}
	}
	return []byte(Unnamed)
}

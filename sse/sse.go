// Package sse encodes the text/event-stream wire format defined by the WHATWG
// HTML standard (server-sent events).
//
// Encoders append to a caller-supplied buffer so that a frame can be built once
// per event and shared, read-only, by every client that receives it.
package sse

import (
	"bytes"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Event is one message on the stream. Data may span several lines; every line
// break (CR, LF or CRLF) becomes a new "data:" line so the client reassembles
// it with LF separators.
type Event struct {
	ID   string
	Name string
	Data []byte
}

// AppendEvent appends ev to dst. The ID and Name fields are sanitised with
// Field, because a stray line break in either would let a publisher inject
// arbitrary fields into every client's stream.
func AppendEvent(dst []byte, ev Event) []byte {
	if ev.ID != "" {
		dst = append(dst, "id: "...)
		dst = appendField(dst, ev.ID)
		dst = append(dst, '\n')
	}
	if ev.Name != "" {
		dst = append(dst, "event: "...)
		dst = appendField(dst, ev.Name)
		dst = append(dst, '\n')
	}
	dst = appendData(dst, ev.Data)
	return append(dst, '\n')
}

// AppendID appends an id-only block. A block without data fires no event in
// the browser but still sets its last event ID, which is how a stream moves
// a client's resume position without delivering anything.
func AppendID(dst []byte, id string) []byte {
	dst = append(dst, "id: "...)
	dst = appendField(dst, id)
	return append(dst, "\n\n"...)
}

// AppendRetry appends a retry field: the reconnection delay the client should
// use from now on.
func AppendRetry(dst []byte, d time.Duration) []byte {
	dst = append(dst, "retry: "...)
	dst = strconv.AppendInt(dst, d.Milliseconds(), 10)
	return append(dst, "\n\n"...)
}

// AppendComment appends a comment line. Comments keep intermediaries from
// timing the connection out and are ignored by clients. Line breaks in text
// start new comment lines rather than ending the comment.
func AppendComment(dst []byte, text string) []byte {
	for {
		i := strings.IndexAny(text, "\r\n")
		dst = append(dst, ':')
		line := text
		if i >= 0 {
			line = text[:i]
		}
		if line != "" {
			dst = append(dst, ' ')
			dst = append(dst, line...)
		}
		dst = append(dst, '\n')
		if i < 0 {
			return append(dst, '\n')
		}
		text = text[skipBreak(text, i):]
	}
}

// Field reports s with CR, LF and NUL removed. The standard ignores an id that
// contains NUL and ends a field at any line break, so neither may reach the wire.
func Field(s string) string {
	if strings.IndexAny(s, "\r\n\x00") < 0 {
		return s
	}
	return strings.Map(func(r rune) rune {
		switch r {
		case '\r', '\n', 0:
			return -1
		}
		return r
	}, s)
}

func appendField(dst []byte, s string) []byte {
	return append(dst, strings.ToValidUTF8(Field(s), "\uFFFD")...)
}

// appendData splits data at CR, LF and CRLF alike; an empty payload still
// produces one empty data line so that the event is dispatched. Invalid UTF-8
// becomes U+FFFD here, as a browser would decode it, so that every client,
// browser or not, reads the same text.
func appendData(dst []byte, data []byte) []byte {
	if !utf8.Valid(data) {
		data = bytes.ToValidUTF8(data, []byte("\uFFFD"))
	}
	for {
		i := indexBreak(data)
		line := data
		if i >= 0 {
			line = data[:i]
		}
		dst = append(dst, "data: "...)
		dst = append(dst, line...)
		dst = append(dst, '\n')
		if i < 0 {
			return dst
		}
		data = data[skipBreak(data, i):]
	}
}

func indexBreak(b []byte) int {
	for i, c := range b {
		if c == '\r' || c == '\n' {
			return i
		}
	}
	return -1
}

// skipBreak returns the index just past the line break at i, treating CRLF as
// one break.
func skipBreak[T ~string | ~[]byte](s T, i int) int {
	if s[i] == '\r' && i+1 < len(s) && s[i+1] == '\n' {
		return i + 2
	}
	return i + 1
}

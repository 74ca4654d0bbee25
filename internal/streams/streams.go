// Package streams is the small interface between an event stream and the
// features that watch streams from outside it (presence, control): the
// stream reports its open and its close, and may be told to end.
package streams

import (
	"crypto/rand"
	"encoding/base64"
	"time"
)

// Info describes one open event stream.
type Info struct {
	// ID names the connection in logs, presence entries and disconnects.
	ID string
	// Sub is the credential's subject; "" for an anonymous reader.
	Sub string
	// JTI and IssuedAt are the credential's (for a ticket, those of the
	// credential it was minted from); either may be empty.
	JTI      string
	IssuedAt time.Time
	// Channels are the stream's channels.
	Channels []string
}

// Watcher is told about each stream.
type Watcher interface {
	// Opened is called once a stream is attached. kick ends the stream
	// with ": end: disconnected"; it may be called from any goroutine, at
	// any time, more than once. Opened returns what the stream calls when
	// it closes.
	Opened(s *Info, kick func()) (closed func())
}

// Open tells every watcher about s and returns what tells them it closed.
func Open(ws []Watcher, s *Info, kick func()) func() {
	if len(ws) == 0 {
		return func() {}
	}
	closers := make([]func(), 0, len(ws))
	for _, w := range ws {
		closers = append(closers, w.Opened(s, kick))
	}
	return func() {
		for _, c := range closers {
			c()
		}
	}
}

// NewID is a connection id: 72 random bits, short enough for a log line
// and unguessable, since a control credential can disconnect by it.
func NewID() string {
	b := make([]byte, 9)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

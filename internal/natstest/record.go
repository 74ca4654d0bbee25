package natstest

import (
	"sync"
	"testing"

	"github.com/nats-io/nats.go"
)

// Recorder keeps the messages that a subscription receives, for a test to
// count.
type Recorder struct {
	mu   sync.Mutex
	msgs []*nats.Msg
}

// Record subscribes nc to subject and keeps every message it receives.
// The server has the subscription when Record returns, so nothing
// published after it is missed.
func Record(t testing.TB, nc *nats.Conn, subject string) *Recorder {
	t.Helper()
	r := new(Recorder)
	if _, err := nc.Subscribe(subject, func(m *nats.Msg) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.msgs = append(r.msgs, m)
	}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return r
}

// Count is how many of the messages kept so far match.
func (r *Recorder) Count(match func(*nats.Msg) bool) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, m := range r.msgs {
		if match(m) {
			n++
		}
	}
	return n
}

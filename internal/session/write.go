package session

import (
	"errors"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// boundWrites makes sure no write or flush can block for longer than the
// write timeout: a client that stops reading would otherwise hold its
// goroutine until the connection dies. Caddy already bounds every write
// and flush of a response with its idle timeout writer; the stream only
// tightens it. Where the server's write_idle_timeout is off, the session
// sets deadlines itself.
func (s *session) boundWrites(r *http.Request) (restore func()) {
	if _, w := caddyhttp.IdleTimeoutsFromContext(r.Context()); w != nil {
		return w.Override(s.sv.cfg.WriteTimeout, 0, 0)
	}
	s.ownDeadline = true
	// On HTTP/2 a pending deadline resets the stream when it passes, even
	// if nothing is being written. Elsewhere only the next write sees it,
	// and that write arms a fresh one first.
	s.clearDeadline = r.ProtoMajor == 2
	return func() {}
}

// write writes b, under the write timeout. A timed-out client counts as
// slow, like one whose queue overflowed. After a failed write, nothing
// more is written.
func (s *session) write(b []byte) error {
	if s.broken {
		return errBroken
	}
	if s.ownDeadline {
		// Armed afresh at most every quarter of the timeout: every write
		// is bounded by at least three quarters of it, and a busy stream
		// does not update a timer for each batch.
		if now := time.Now(); s.armedAt.IsZero() || now.Sub(s.armedAt) > s.sv.cfg.WriteTimeout/4 {
			_ = s.setDeadline(now.Add(s.sv.cfg.WriteTimeout))
			s.armedAt = now
		}
	}
	n, err := s.out.Write(b)
	s.sv.m.Written(n)
	return s.failed(err)
}

func (s *session) flush() error {
	if err := s.flushOut(); err != nil {
		return s.failed(err)
	}
	if s.clearDeadline && !s.armedAt.IsZero() {
		s.armedAt = time.Time{}
		_ = s.setDeadline(time.Time{})
	}
	return nil
}

// failed marks the stream broken after a failed write or flush. A write
// that timed out ends it as slow: the client stopped reading, so it is
// slow, not gone.
func (s *session) failed(err error) error {
	if err == nil {
		return nil
	}
	s.broken = true
	if errors.Is(err, os.ErrDeadlineExceeded) {
		s.end(endSlow)
	}
	return err
}

// bufferPool lends sessions the buffer a batch of frames is gathered in,
// for the length of one write: an idle stream then holds none, and the
// buffers in use are about as many as the writes under way.
type bufferPool struct{ pool sync.Pool }

func (p *bufferPool) get() *[]byte {
	if b, ok := p.pool.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 0, maxBuffered)
	return &b
}

func (p *bufferPool) put(b *[]byte) {
	*b = (*b)[:0]
	p.pool.Put(b)
}

package session

import (
	"bytes"
	"net"
	"net/http"
	"time"

	"github.com/ssegate/ssegate/sse"
)

// takeOver serves an HTTP/1.1 stream from the connection itself, when the
// handler's http1_takeover is on: the handler goroutine returns, and with
// it go Caddy's handler chain's stack, net/http's background reader and
// the connection's buffers; a goroutine with a shallow stack writes the
// stream. An idle stream then costs a fraction of its memory.
//
// What it gives up: an encoder in front (the stream is written raw; a
// takeover is refused when the writer cannot be hijacked, and the stream
// is served normally), the access log's duration and size (the "stream
// closed" line still has them), and the server's timeouts, which the
// session replaces with its own write deadline. The body ends with the
// connection, so no chunked framing is needed. A client that leaves is
// noticed at the next write, a heartbeat at the latest.
//
// It returns the connection, or nil when the stream is not taken over;
// once taken over, the response writer must not be used.
func (s *session) takeOver(r *http.Request) net.Conn {
	if !s.sv.cfg.HTTP1Takeover || r.ProtoMajor != 1 {
		return nil
	}
	conn, _, err := s.rc.Hijack()
	if err != nil {
		return nil
	}
	hdr := s.w.Header().Clone()
	streamHeaders(hdr)
	hdr.Set("Connection", "close")
	if hdr.Get("Date") == "" {
		hdr.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	}
	var head bytes.Buffer
	head.WriteString("HTTP/1.1 200 OK\r\n")
	_ = hdr.Write(&head)
	head.WriteString("\r\n")
	head.Write(sse.AppendRetry(sse.AppendComment(nil, "ssegate"), s.sv.cfg.Retry))

	s.out, s.setDeadline = conn, conn.SetWriteDeadline
	s.flushOut = func() error { return nil } // every write goes out at once
	s.ownDeadline = true
	// The response writer and its buffers go with the handler.
	s.w, s.rc = nil, nil
	// A failed write ends the stream at its first step.
	_ = s.write(head.Bytes())
	return conn
}

package session

import (
	"context"
	"time"

	"github.com/ssegate/ssegate/sse"
	"github.com/ssegate/ssegate/upstream"
)

// live streams queued events and heartbeats until the client leaves, the
// hub ends the stream, or the credential expires, and returns why it ends.
func (s *session) live(ctx context.Context, expires time.Time) string {
	// An idle stream holds no buffer of its own: a batch borrows one.
	s.buf = nil
	// The heartbeat is a comment after an interval of silence. Its timer is
	// not moved on every write, which would be a runtime timer update per
	// batch: when it fires early, it is set again for what remains.
	interval := s.sv.cfg.Heartbeat
	heartbeat := time.NewTimer(interval)
	defer heartbeat.Stop()
	s.lastWrite = time.Now()
	var expiry <-chan time.Time
	if !expires.IsZero() {
		t := time.NewTimer(time.Until(expires))
		defer t.Stop()
		expiry = t.C
	}
	var batch []upstream.Frame
	for {
		select {
		case <-s.client.Ready():
			var err error
			if batch, err = s.drain(batch); err != nil {
				return endStopped
			}
		case <-heartbeat.C:
			// Now, not when the timer fired: a long batch may have
			// kept the loop from it.
			now := time.Now()
			if rest := interval - now.Sub(s.lastWrite); rest > 0 {
				heartbeat.Reset(rest)
				continue
			}
			if s.write(sse.AppendComment(nil, "")) != nil || s.flush() != nil {
				return endStopped
			}
			s.lastWrite = now
			heartbeat.Reset(interval)
		case <-s.client.Done():
			return s.hubEnding()
		case <-s.kicked:
			return endDisconnected
		case <-expiry:
			// Reconnecting picks up the browser's refreshed cookie.
			return endExpired
		case <-ctx.Done():
			return endStopped
		}
	}
}

// drain writes every queued frame, in batches of at most maxBatch, each
// in one write and one flush: every write and flush is a deadline update
// and a trip through the writers. It returns batch for reuse.
func (s *session) drain(batch []upstream.Frame) ([]upstream.Frame, error) {
	for more := true; more; {
		batch, more = s.client.Take(batch[:0], maxBatch)
		if len(batch) == 0 {
			break
		}
		err := s.sendBatch(batch)
		// The frames' data is shared with other clients; do not keep it.
		clear(batch)
		if err != nil {
			return batch, err
		}
	}
	return batch, nil
}

// sendBatch writes frames the hub queued, each once and in order, then
// flushes them.
func (s *session) sendBatch(batch []upstream.Frame) error {
	if batch = s.keep(batch); len(batch) == 0 {
		return nil
	}
	first, last := batch[0], batch[len(batch)-1]
	// Counted as the client's before the write: should it fail part-way,
	// the client may hold them, and it resumes from its own last id.
	s.lastSent, s.known = last.Seq, true
	s.sent += len(batch)
	var err error
	if len(batch) == 1 {
		// A frame alone is written as it is, shared with the other clients.
		err = s.write(first.Data)
	} else {
		err = s.writeFrames(batch)
	}
	if err != nil {
		return err
	}
	if err := s.flush(); err != nil {
		return err
	}
	s.lastWrite = time.Now()
	s.sv.m.Delivered(len(batch))
	if first.Stored != 0 {
		// The batch's oldest event stands for the batch.
		s.sv.m.Latency(s.lastWrite.Sub(time.Unix(0, first.Stored)).Seconds())
	}
	return nil
}

// writeFrames gathers frames in a borrowed buffer and writes it whenever
// the next frame would take it past maxBuffered. A frame too large to be
// gathered is written as it is.
func (s *session) writeFrames(batch []upstream.Frame) error {
	lent := s.sv.buffers.get()
	defer s.sv.buffers.put(lent)
	b := (*lent)[:0]
	for _, f := range batch {
		if len(b) > 0 && len(b)+len(f.Data) > maxBuffered {
			if err := s.write(b); err != nil {
				return err
			}
			b = b[:0]
		}
		if len(f.Data) >= maxBuffered {
			if err := s.write(f.Data); err != nil {
				return err
			}
			continue
		}
		b = append(b, f.Data...)
	}
	if len(b) > 0 {
		return s.write(b)
	}
	return nil
}

package session

import (
	"context"
	"time"

	"github.com/ssegate/ssegate/internal/eventfilter"
	"github.com/ssegate/ssegate/replay"
	"github.com/ssegate/ssegate/upstream"
)

// Option shapes one stream.
type Option func(*session)

// OnlyEvents keeps the events f passes. A dropped event is not written
// and advances no client's id, so a client that resumes with the same
// filter gets every matching event once; reset events and the last frame
// always pass. The stream's log line counts the dropped as skipped.
func OnlyEvents(f eventfilter.Filter) Option { return func(s *session) { s.filter = f } }

// ResumingSince starts a stream that has no position at the first event
// stored at or after raw, an RFC 3339 time. Before the oldest event kept,
// after events were removed, it sends a reset (expired) and then every
// event kept; a time in the future, or one that does not parse, gets a
// reset (malformed) and goes live, as a bad Last-Event-ID does.
func ResumingSince(raw string) Option { return func(s *session) { s.since = raw } }

// keep drops the frames the filter does not pass, in place.
func (s *session) keep(batch []upstream.Frame) []upstream.Frame {
	if !s.filter.Active() {
		return batch
	}
	kept := batch[:0]
	for _, f := range batch {
		if s.filter.PassesFrame(f.Data) {
			kept = append(kept, f)
		}
	}
	s.skipped += len(batch) - len(kept)
	return kept
}

// TimeIndex is what resuming by time needs of the history besides
// History (replay.History has it).
type TimeIndex interface {
	AfterTime(ctx context.Context, subjects []string, t time.Time) (after uint64, expired bool, err error)
}

// malformedSince is a position no id parses as: catchUp answers it as it
// answers a bad Last-Event-ID.
const malformedSince = "since"

// catchUpSince turns the since time into a position and catches up from
// it.
func (s *session) catchUpSince(ctx context.Context) (why string, live bool) {
	t, err := time.Parse(time.RFC3339Nano, s.since)
	idx, ok := s.history.(TimeIndex)
	if err != nil || t.After(time.Now()) || !ok {
		return s.catchUp(ctx, malformedSince)
	}
	after, expired, err := idx.AfterTime(ctx, s.subjects, t)
	if err != nil {
		if ctx.Err() != nil {
			return endStopped, false
		}
		s.sv.log.Warn("cannot find the position of a time")
		return endUnavailable, false
	}
	pos := replay.ID{Seq: after, Epoch: s.history.Epoch()}
	if expired {
		s.reset(replay.ResetExpired, pos)
	}
	return s.catchUp(ctx, pos.String())
}

package replay

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Reset reasons, sent to the client in the data of a "reset" event when its
// position cannot be honoured. The client should reload its state.
const (
	// ResetMalformed: the id was not one the gateway writes.
	ResetMalformed = "malformed"
	// ResetStreamRecreated: the id belongs to an earlier incarnation of the
	// stream, which was deleted and created again.
	ResetStreamRecreated = "stream_recreated"
	// ResetUnknown: the position lies beyond the end of the stream.
	ResetUnknown = "unknown_position"
	// ResetExpired: events after the position were removed by retention
	// (max_age, max_bytes, a purge, or max_msgs_per_subject).
	ResetExpired = "expired"
	// ResetTooFarBehind: more events were missed than the replay limit.
	ResetTooFarBehind = "too_far_behind"
)

// Resolution is what a client's claimed position means now.
type Resolution struct {
	// After is the sequence to replay from (exclusive) when Reset is "".
	After uint64
	// Reset, when set, says why the position could not be honoured; the
	// client then continues from Current with no replay.
	Reset string
	// Current is the stream's last sequence at the time of resolution.
	Current ID
}

// Resolve checks a Last-Event-ID against the stream and the subjects to be
// replayed. The stream's state is read fresh, so a recreated stream is
// noticed and the epoch refreshed. Resolve calls wait in line like reads
// (the same number at once), so a reconnect storm does not send the
// JetStream API more requests than it answers in time.
func (h *History) Resolve(ctx context.Context, raw string, subjects []string) (Resolution, error) {
	if len(subjects) > MaxSubjects {
		return Resolution{}, ErrTooManySubjects
	}
	id, perr := Parse(raw)
	s, release, err := h.streamPast(ctx, id, perr == nil)
	if err != nil {
		return Resolution{}, err
	}
	defer release()
	info := s.CachedInfo()
	epoch := Epoch(info.Created)
	if epoch != h.Epoch() {
		h.epoch.Store(&epoch)
	}
	r := Resolution{Current: ID{Seq: info.State.LastSeq, Epoch: epoch}}
	switch {
	case perr != nil:
		r.Reset = ResetMalformed
	case id.Epoch != "" && id.Epoch != epoch:
		r.Reset = ResetStreamRecreated
	case id.Seq > info.State.LastSeq:
		r.Reset = ResetUnknown
	case id.Seq+1 < info.State.FirstSeq:
		r.Reset = ResetExpired
	default:
		removed, err := removedAfter(ctx, s, info, subjects, id.Seq)
		if err != nil {
			return Resolution{}, err
		}
		if removed {
			r.Reset = ResetExpired
		} else {
			r.After = id.Seq
		}
	}
	return r, nil
}

// streamPast reads the stream's info, holding a lookup slot, and returns
// the stream with the func that lets the slot go. A position past the stream's last sequence is
// read again a few times first: right after a failover, the new leader
// may answer before it has applied what the old one stored, and the
// client's position, taken from a gateway that saw those events, is real.
// A position that is still beyond the stream after that is unknown. The
// slot is let go between the reads: a made-up position must not keep
// other clients' lookups waiting for seconds.
func (h *History) streamPast(ctx context.Context, id ID, parsed bool) (jetstream.Stream, func(), error) {
	for try := 0; ; try++ {
		release, err := acquire(ctx, h.lookups)
		if err != nil {
			return nil, nil, err
		}
		s, err := h.js.Stream(ctx, h.stream)
		if err != nil {
			release()
			return nil, nil, fmt.Errorf("reading stream %q: %w", h.stream, err)
		}
		info := s.CachedInfo()
		if !parsed || id.Seq <= info.State.LastSeq || try == positionTries ||
			(id.Epoch != "" && id.Epoch != Epoch(info.Created)) {
			return s, release, nil
		}
		release()
		select {
		case <-time.After(positionWait):
		case <-ctx.Done():
			// The caller is gone; what was read answers it.
			return s, func() {}, nil
		}
	}
}

// A position past the stream is read again positionTries times,
// positionWait apart, before it counts as unknown.
const (
	positionTries = 6
	positionWait  = 500 * time.Millisecond
)

// removedAfter reports whether events on subjects after position may have
// been removed without moving the stream's first sequence: by
// max_msgs_per_subject, or by a purge of some subjects (`nats stream purge
// --subject`). Both remove the oldest events of a subject, so a subject
// whose oldest remaining event is at or before position+1 lost nothing
// after it. For one whose oldest event is later (or that has none), the
// lost events' sequences are gone too, so the check takes two signs that
// they lay after position: the subject is at its per-subject limit, or the
// event at position itself was removed (the client's own last event,
// usually on one of its subjects). It errs on the side of a reset.
//
// A stream without interior deletes and without a per-subject limit
// answers from the stream info alone.
func removedAfter(ctx context.Context, s jetstream.Stream, info *jetstream.StreamInfo, subjects []string, position uint64) (bool, error) {
	limit := info.Config.MaxMsgsPerSubject
	if info.State.NumDeleted == 0 && limit <= 0 {
		return false, nil
	}
	ownGone := false
	if info.State.NumDeleted > 0 && position >= info.State.FirstSeq && position > 0 {
		_, err := s.GetMsg(ctx, position)
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound):
			ownGone = true
		case err != nil:
			return false, err
		}
	}
	for _, subj := range subjects {
		first, err := s.GetMsg(ctx, 1, jetstream.WithGetMsgSubject(subj))
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound):
		case err != nil:
			return false, err
		case first.Sequence <= position+1:
			continue
		}
		if ownGone {
			return true, nil
		}
		if limit <= 0 || first == nil {
			continue
		}
		si, err := s.Info(ctx, jetstream.WithSubjectFilter(subj))
		if err != nil {
			return false, err
		}
		if si.State.Subjects[subj] >= uint64(limit) {
			return true, nil
		}
	}
	return false, nil
}

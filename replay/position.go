package replay

import (
	"context"
	"errors"
	"fmt"

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
// noticed and the epoch refreshed.
func (h *History) Resolve(ctx context.Context, raw string, subjects []string) (Resolution, error) {
	s, err := h.js.Stream(ctx, h.stream)
	if err != nil {
		return Resolution{}, fmt.Errorf("reading stream %q: %w", h.stream, err)
	}
	info := s.CachedInfo()
	epoch := Epoch(info.Created)
	if epoch != h.Epoch() {
		h.epoch.Store(&epoch)
	}
	r := Resolution{Current: ID{Seq: info.State.LastSeq, Epoch: epoch}}
	id, err := Parse(raw)
	switch {
	case err != nil:
		r.Reset = ResetMalformed
	case id.Epoch != "" && id.Epoch != epoch:
		r.Reset = ResetStreamRecreated
	case id.Seq > info.State.LastSeq:
		r.Reset = ResetUnknown
	case id.Seq+1 < info.State.FirstSeq:
		r.Reset = ResetExpired
	default:
		r.After = id.Seq
		if limit := info.Config.MaxMsgsPerSubject; limit > 0 {
			trimmed, err := trimmedAfter(ctx, s, subjects, id.Seq, uint64(limit))
			if err != nil {
				return Resolution{}, err
			}
			if trimmed {
				r.After, r.Reset = 0, ResetExpired
			}
		}
	}
	return r, nil
}

// trimmedAfter reports whether the per-subject limit may have removed an
// event after position on one of subjects. Such removals leave the
// stream's first sequence alone, so they need a look at each subject: one
// that is at its limit and whose oldest event is newer than position+1
// may have lost events in between. It errs on the side of a reset.
func trimmedAfter(ctx context.Context, s jetstream.Stream, subjects []string, position, limit uint64) (bool, error) {
	for _, subj := range subjects {
		first, err := s.GetMsg(ctx, 1, jetstream.WithGetMsgSubject(subj))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return false, err
		}
		if first.Sequence <= position+1 {
			continue
		}
		info, err := s.Info(ctx, jetstream.WithSubjectFilter(subj))
		if err != nil {
			return false, err
		}
		if info.State.Subjects[subj] >= limit {
			return true, nil
		}
	}
	return false, nil
}

package replay

import (
	"context"
	"fmt"
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
	// ResetExpired: events after the position were removed by retention.
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

// Resolve checks a Last-Event-ID against the stream. The stream's state is
// read fresh, so a recreated stream is noticed and the epoch refreshed.
func (h *History) Resolve(ctx context.Context, raw string) (Resolution, error) {
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
	}
	return r, nil
}

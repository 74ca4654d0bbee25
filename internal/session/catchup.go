package session

import (
	"context"
	"errors"

	"go.uber.org/zap"

	"github.com/ssegate/ssegate/replay"
	"github.com/ssegate/ssegate/sse"
)

// maxCatchUpPasses bounds how often a replay reads again because live
// delivery moved on meanwhile. A channel busier than the client can read
// would otherwise keep it replaying for ever.
const maxCatchUpPasses = 4

// catchUp replays what the client missed, then hands it over to live
// delivery, which held its events meanwhile. When live delivery may have
// lost one in the meantime, it reads again from where it stopped. It
// reports whether the stream goes live, and if not, why it ends.
func (s *session) catchUp(ctx context.Context, position string) (why string, live bool) {
	res, err := s.history.Resolve(ctx, position, s.subjects)
	if err != nil {
		s.sv.log.Warn("cannot read stream state for replay", zap.Error(err))
		return endUnavailable, false
	}
	s.lastSent, s.read = res.After, res.After
	if res.Reset != "" {
		s.reset(res.Reset, res.Current)
		s.lastSent, s.read = res.Current.Seq, res.Current.Seq
	}
	for pass := 1; ; pass++ {
		// The read must pass the hub's position at attach (or at the
		// last overflow of the hold): the hub queues what comes after.
		err := s.history.Read(ctx, s.subjects, s.read, s.client.Start(), s.sv.cfg.ReplayLimit, s.replayOne)
		switch {
		case errors.Is(err, replay.ErrTooFarBehind) && pass == 1:
			s.reset(replay.ResetTooFarBehind, res.Current)
			s.lastSent = max(s.lastSent, res.Current.Seq)
			s.read = max(s.read, res.Current.Seq)
		case errors.Is(err, replay.ErrTooFarBehind):
			// It fell behind again while replaying: a slow client.
			return endSlow, false
		case err != nil && (ctx.Err() != nil || s.broken):
			// The client left, or a write to it failed, which ended it.
			return endStopped, false
		case err != nil:
			s.sv.log.Warn("replay failed", zap.Error(err))
			return endUnavailable, false
		}
		if s.flush() != nil {
			return endStopped, false
		}
		if s.client.EndReplay(s.read) {
			return endStopped, true
		}
		if pass == maxCatchUpPasses {
			return endSlow, false
		}
	}
}

func (s *session) replayOne(m replay.Msg) error {
	s.buf = replay.Encode(s.buf[:0], m, s.history.Epoch())
	s.read = m.Seq
	if !s.filter.PassesFrame(s.buf) {
		s.skipped++
		return nil
	}
	if err := s.write(s.buf); err != nil {
		return err
	}
	s.lastSent = m.Seq
	s.sent++
	s.sv.m.Replayed()
	s.sv.m.Delivered(1)
	if s.sent%maxBatch == 0 {
		// A long replay reaches the client as it goes, not only when
		// the read has caught up.
		return s.flush()
	}
	return nil
}

// reset tells the client its position could not be honoured. The event's
// id is the position it continues from, so a reconnect does not repeat it.
func (s *session) reset(reason string, current replay.ID) {
	s.sv.m.Reset(reason)
	s.buf = sse.AppendEvent(s.buf[:0], sse.Event{
		ID:   current.String(),
		Name: "reset",
		Data: []byte(`{"reason":"` + reason + `"}`),
	})
	s.known = true
	_ = s.write(s.buf)
}

package ssegate

import (
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/ssegate/ssegate/replay"
)

// reportStreamConfig says, loudly, that the shared stream's config is not
// this gateway's. Ensure kept the stream's: gateways share it, and the one
// that starts last must not rewrite what the others use. The health
// endpoint and the stream_config_differs gauge say so for as long as it
// lasts (see docs/operations-shared-stream.md for rolling out a change).
func (a *App) reportStreamConfig(s replay.Stream) {
	a.metrics.setStreamDiffers(len(s.Differs) > 0)
	if len(s.Differs) == 0 {
		return
	}
	a.log.Error("the stream's config differs from this gateway's: the stream's is kept and this gateway's is not applied; "+
		"change the stream itself once every gateway has the new config (docs/operations-shared-stream.md)",
		zap.String("stream", s.Name), zap.Strings("differences", s.Differs))
}

// streamDiffers says whether the stream's config, as a health check
// found it, differs from this gateway's: checked each time, so that once
// an operator has applied the change to the stream, the gateway says so.
func (a *App) streamDiffers(got jetstream.StreamConfig) bool {
	return !a.Stream.Unmanaged && len(a.Stream.Differences(got)) > 0
}

// replayDrops is how often the replay connection was cut, for health.
func (a *App) replayDrops() uint64 {
	if run := a.current(); run != nil && run.replay != nil {
		return run.replay.Drops()
	}
	return 0
}

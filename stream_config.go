package ssegate

import (
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

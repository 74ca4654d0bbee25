package upstream

import (
	"context"
	"time"
)

// retry runs a request until it succeeds, the hub closes, or JetStream has
// failed to answer for recoverTimeout while NATS was connected: after a
// failover the stream has no leader for a moment.
func retry[T any](h *Hub, req func(context.Context) (T, error)) (T, error) {
	var zero T
	wait := 100 * time.Millisecond
	failingSince := time.Now()
	for {
		ctx, cancel := context.WithTimeout(h.ctx, requestTimeout)
		v, err := req(ctx)
		cancel()
		if err == nil {
			return v, nil
		}
		if h.ctx.Err() != nil {
			return zero, err
		}
		if !h.conn.NC.IsConnected() {
			failingSince = time.Now()
		} else if time.Since(failingSince) > recoverTimeout {
			return zero, err
		}
		select {
		case <-time.After(wait):
		case <-h.ctx.Done():
			return zero, h.ctx.Err()
		}
		wait = min(2*wait, 2*time.Second)
	}
}

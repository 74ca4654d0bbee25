package ssegate

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ssegate/ssegate/upstream"
)

// metrics are registered on Caddy's registry, so they appear on its
// /metrics endpoint; promauto's default registry would be invisible there.
type metrics struct {
	clients    prometheus.Gauge
	slow       prometheus.Counter
	backfilled prometheus.Counter
	replayed   prometheus.Counter
	resets     *prometheus.CounterVec
	ended      *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	const ns = "ssegate"
	return &metrics{
		clients: register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Name: "clients",
			Help: "Open event streams.",
		})),
		slow: register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Name: "slow_client_disconnects_total",
			Help: "Streams ended because the client could not keep up; each resumes from its last id.",
		})),
		backfilled: register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Name: "backfilled_events_total",
			Help: "Live events that core NATS lost and the gateway recovered from JetStream.",
		})),
		replayed: register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Name: "replayed_events_total",
			Help: "Events sent from history to reconnecting clients.",
		})),
		resets: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "resets_total",
			Help: "Reset events sent because a client's position could not be honoured.",
		}, []string{"reason"})),
		ended: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "streams_ended_total",
			Help: "Streams ended by the gateway, by reason.",
		}, []string{"reason"})),
	}
}

// register adds c to reg, which may be nil, and returns the collector to
// use: the one already there when an earlier config load registered it.
func register[T prometheus.Collector](reg prometheus.Registerer, c T) T {
	if reg == nil {
		return c
	}
	var are prometheus.AlreadyRegisteredError
	if err := reg.Register(c); errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(T); ok {
			return existing
		}
	}
	return c
}

func (m *metrics) hub() upstream.Metrics {
	return upstream.Metrics{
		SlowClient: m.slow.Inc,
		Backfilled: func(n int) { m.backfilled.Add(float64(n)) },
	}
}

package ssegate

import (
	"errors"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/ssegate/ssegate/auth"
	"github.com/ssegate/ssegate/internal/session"
	"github.com/ssegate/ssegate/replay"
	"github.com/ssegate/ssegate/upstream"
)

// metricsPool keeps the collectors across config reloads. Caddy gives each
// config its own registry, so collectors made per config would start from
// zero on every reload, and the streams a reload ends would be counted in
// a registry that is already gone. Every config registers the same
// collectors instead.
var metricsPool = caddy.NewUsagePool()

const metricsKey = "ssegate.metrics"

// metrics are registered on Caddy's registry, so they appear on its
// /metrics endpoint; promauto's default registry would be invisible there.
type metrics struct {
	clients        prometheus.Gauge
	connections    *prometheus.GaugeVec
	refusals       *prometheus.CounterVec
	slow           prometheus.Counter
	backfilled     prometheus.Counter
	replayed       prometheus.Counter
	delivered      prometheus.Counter
	bytes          prometheus.Counter
	latency        prometheus.Histogram
	resets         *prometheus.CounterVec
	ended          *prometheus.CounterVec
	natsConnected  prometheus.Gauge
	reconnects     prometheus.Counter
	channels       prometheus.Gauge
	recovering     prometheus.Gauge
	replaysWaiting prometheus.Gauge
	pollsWaiting   prometheus.Gauge
	streamDiffers  prometheus.Gauge
	replayDrops    prometheus.Counter
}

// Destruct implements caddy.Destructor; the collectors hold nothing.
func (*metrics) Destruct() error { return nil }

// acquireMetrics returns the shared collectors, registered on reg (which
// may be nil). Each call needs one releaseMetrics.
func acquireMetrics(reg prometheus.Registerer) *metrics {
	v, _, _ := metricsPool.LoadOrNew(metricsKey, func() (caddy.Destructor, error) { return newMetrics(), nil })
	m := v.(*metrics)
	if reg != nil {
		for _, c := range m.collectors() {
			var are prometheus.AlreadyRegisteredError
			if err := reg.Register(c); err != nil && !errors.As(err, &are) {
				// Another module took one of our names; it stays off
				// /metrics rather than failing the config.
				continue
			}
		}
	}
	return m
}

func releaseMetrics() { _, _ = metricsPool.Delete(metricsKey) }

func newMetrics() *metrics {
	const ns = "ssegate"
	// Label values known in advance, so that every series exists from the
	// start and a rate() over it has a zero to begin from.
	var (
		knownProtocols = session.ProtoLabels()
		knownEndings   = session.Endings()
		knownResets    = []string{replay.ResetMalformed, replay.ResetStreamRecreated, replay.ResetUnknown, replay.ResetExpired, replay.ResetTooFarBehind}
		knownRefusals  = refusalCodes()
	)
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: name, Help: help})
	}
	gauge := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: name, Help: help})
	}
	counterVec := func(name, help, label string, known []string) *prometheus.CounterVec {
		v := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: name, Help: help}, []string{label})
		for _, l := range known {
			v.WithLabelValues(l)
		}
		return v
	}
	m := &metrics{
		clients: gauge("clients", "Open event streams."),
		connections: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "streams",
			Help: "Open event streams by HTTP protocol."}, []string{"proto"}),
		refusals:       counterVec("refusals_total", "Requests refused, by error code: streams before they opened, and every endpoint beside them.", "code", knownRefusals),
		slow:           counter("slow_client_disconnects_total", "Streams ended because the client could not keep up; each resumes from its last id."),
		backfilled:     counter("backfilled_events_total", "Events that core NATS lost on the way and the gateway read back from JetStream for a local client."),
		replayed:       counter("replayed_events_total", "Events sent from history to reconnecting clients."),
		delivered:      counter("delivered_events_total", "Events written to clients, live and replayed."),
		bytes:          counter("written_bytes_total", "Bytes written to event streams, heartbeats included."),
		resets:         counterVec("resets_total", "Reset events sent because a client's position could not be honoured.", "reason", knownResets),
		ended:          counterVec("streams_ended_total", "Streams ended, by reason.", "reason", knownEndings),
		natsConnected:  gauge("nats_connected", "1 while the gateway's NATS connection is up."),
		reconnects:     counter("nats_reconnects_total", "Reconnections of the gateway's NATS connection."),
		channels:       gauge("channel_subscriptions", "Channels with local clients on this instance."),
		recovering:     gauge("channels_recovering", "Channels whose clients wait while events that core NATS lost are read back: all of them, or none."),
		replaysWaiting: gauge("replays_waiting", "Replays waiting for a slot (replay_concurrency) or for their share of replay_budget."),
		pollsWaiting:   gauge("polls_waiting", "Long-polls attached to the live feed, waiting for an event."),
		replayDrops:    counter("replay_connection_drops_total", "Times the replay connection was cut as a slow consumer (cut while the live connection stayed up) or lost messages as one; replays then fail and resume."),
		streamDiffers:  gauge("stream_config_differs", "1 while the shared stream's config differs from this gateway's, which keeps the stream's."),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "delivery_latency_seconds",
			Help:    "From the event's storage in JetStream (Nats-Time-Stamp) to its write to a client, live events only.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}}),
	}
	for _, p := range knownProtocols {
		m.connections.WithLabelValues(p)
	}
	return m
}

// refusalCodes are the error codes of every refusal the gateway answers:
// streams, tickets, publishing, history and poll, presence, control,
// client.js, the console and health.
func refusalCodes() []string {
	return []string{
		auth.CodeUnauthenticated, auth.CodeInvalidToken, auth.CodeTokenExpired, auth.CodeTokenNotYetValid,
		auth.CodeTokenTooLarge, auth.CodeUnknownKey, auth.CodeKeysUnavailable, auth.CodeTicketInvalid,
		auth.CodeTicketUsed, auth.CodeTokenRevoked, auth.CodeTicketStoreUnavailable, auth.CodeAuthUnavailable, auth.CodeForbidden,
		auth.CodeChannelForbidden, auth.CodeOriginForbidden, auth.CodeNoChannel, auth.CodeInvalidChannel,
		auth.CodeBadRequest, auth.CodeMethodNotAllowed, auth.CodeTooManyConnections, auth.CodeTooManyChannels,
		auth.CodeNotFound,
		auth.CodeBodyTooLarge, auth.CodeEmptyData, auth.CodeInvalidData, auth.CodeInvalidEvent, auth.CodeInvalidIdempotencyKey,
		auth.CodeIdempotencyKeyReused, auth.CodeUnavailable,
		auth.CodeInvalidLimit, auth.CodeInvalidLast, auth.CodeInvalidSince, auth.CodeInvalidWait, auth.CodeConflictingParams,
	}
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.clients, m.connections, m.refusals, m.slow, m.backfilled, m.replayed,
		m.delivered, m.bytes, m.latency, m.resets, m.ended, m.natsConnected, m.reconnects, m.channels, m.recovering, m.replaysWaiting,
		m.pollsWaiting, m.streamDiffers, m.replayDrops}
}

// refused counts a refusal: the Gate's (streams, tickets, publishing,
// the console) and the endpoints' own.
func (m *metrics) refused(code string) { m.refusals.WithLabelValues(code).Inc() }

// openStreams reads the clients gauge, for the console's figures.
func (m *metrics) openStreams() int {
	var d dto.Metric
	if m.clients.Write(&d) != nil {
		return 0
	}
	return int(d.GetGauge().GetValue())
}

// session counts what the sessions do.
func (m *metrics) session() session.Metrics {
	return session.Metrics{
		Opened: func(proto string) {
			m.clients.Inc()
			m.connections.WithLabelValues(proto).Inc()
		},
		Closed: func(proto string) {
			m.clients.Dec()
			m.connections.WithLabelValues(proto).Dec()
		},
		Replayed:  m.replayed.Inc,
		Delivered: func(n int) { m.delivered.Add(float64(n)) },
		Written:   func(n int) { m.bytes.Add(float64(n)) },
		Latency:   m.latency.Observe,
		Reset:     func(reason string) { m.resets.WithLabelValues(reason).Inc() },
		Ended:     func(reason string) { m.ended.WithLabelValues(reason).Inc() },
		Slow:      m.slow.Inc,
	}
}

func (m *metrics) hub() upstream.Metrics {
	return upstream.Metrics{
		Backfilled: func(n int) { m.backfilled.Add(float64(n)) },
		Channels:   m.channels.Add,
		Recovering: m.recovering.Add,
	}
}

// replaysWaitingGauge is the replays_waiting gauge's Add, or nil when
// there are no metrics.
func (m *metrics) replaysWaitingGauge() func(float64) {
	if m == nil {
		return nil
	}
	return m.replaysWaiting.Add
}

// replayDropped is the replay_connection_drops_total counter's Inc, or nil
// when there are no metrics.
func (m *metrics) replayDropped() func() {
	if m == nil {
		return nil
	}
	return m.replayDrops.Inc
}

// natsWatcher keeps the connection gauges current.
func (m *metrics) natsWatcher() *upstream.Watcher {
	return &upstream.Watcher{
		Disconnected: func() { m.natsConnected.Set(0) },
		Reconnected: func() {
			m.natsConnected.Set(1)
			m.reconnects.Inc()
		},
	}
}

// setStreamDiffers sets the stream_config_differs gauge.
func (m *metrics) setStreamDiffers(differs bool) {
	v := 0.0
	if differs {
		v = 1
	}
	m.streamDiffers.Set(v)
}

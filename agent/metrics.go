package agent

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the WebSocket agent link's Prometheus metrics. Every label
// takes a value from a short fixed list.
type Metrics struct {
	active          prometheus.Gauge
	connectFailures *prometheus.CounterVec
	messages        *prometheus.CounterVec
	drops           *prometheus.CounterVec
	malformed       *prometheus.CounterVec
	ended           *prometheus.CounterVec
	clearedFrames   prometheus.Counter
	uplink          prometheus.Histogram
	downlink        prometheus.Histogram

	in, out map[string]prometheus.Counter
}

// Message types counted in handoff_agent_messages_total; anything else an
// agent sends is "other".
var (
	messageTypesOut = []string{evConnected, evStart, evMedia, evDTMF, evMark, evStop, evListenOnly}
	messageTypesIn  = []string{evMedia, evMark, evClear, evComplete, "other"}
)

// Drop reasons (handoff_agent_dropped_total).
const (
	dropSendQueue    = "send_queue_full"    // caller audio: the socket is slower than real time
	dropControlQueue = "control_queue_full" // DTMF or mark echo: the socket is stuck
	dropPlayoutFull  = "playout_full"       // agent audio beyond the playout buffer
	dropListenOnly   = "listen_only"        // agent audio while the call is bridged
	dropMarks        = "marks_full"         // too many marks waiting
)

// Malformed reasons (handoff_agent_malformed_messages_total).
const (
	badJSON      = "json"
	badEvent     = "event"
	badPayload   = "payload"
	badOversized = "oversized"
	badBinary    = "binary"
)

// NewMetrics creates the metrics and registers them on reg when it is not
// nil (it panics if they are registered twice on the same registry).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	// 50 µs .. 205 ms: the work Handoff adds is sub-millisecond, the wait for
	// the 20 ms pacer tick up to 20 ms.
	buckets := prometheus.ExponentialBuckets(0.00005, 2, 13)
	m := &Metrics{
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "handoff_agent_sessions_active",
			Help: "WebSocket agent sessions open now.",
		}),
		connectFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "handoff_agent_connect_failures_total",
			Help: "WebSocket agent connections that could not be opened (the call got 503), by reason: timeout, rejected (HTTP answer other than 101), error.",
		}, []string{"reason"}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "handoff_agent_messages_total",
			Help: "Well-formed messages on the agent link, by direction (in: from the agent, out: to the agent) and event type.",
		}, []string{"direction", "type"}),
		drops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "handoff_agent_dropped_total",
			Help: "Frames or messages dropped by a bounded queue of the agent link, by reason.",
		}, []string{"reason"}),
		malformed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "handoff_agent_malformed_messages_total",
			Help: "Agent messages rejected and ignored, by reason: json, event, payload, oversized, binary.",
		}, []string{"reason"}),
		ended: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "handoff_agent_sessions_ended_total",
			Help: "WebSocket agent sessions by how the conversation ended: complete (handoff.complete), agent_closed, agent_disconnected, agent_unresponsive, max_duration (fallback applied), call_ended (the call ended first).",
		}, []string{"reason"}),
		clearedFrames: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "handoff_agent_cleared_frames_total",
			Help: "20 ms frames of queued agent audio dropped by clear (barge-in).",
		}),
		uplink: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "handoff_agent_uplink_latency_seconds",
			Help:    "Caller audio: from the frame's hand-over by the media session (RTP arrival) to its WebSocket frame written.",
			Buckets: buckets,
		}),
		downlink: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "handoff_agent_downlink_latency_seconds",
			Help:    "Agent audio arriving to an empty playout queue: from its WebSocket message read to its first frame handed to the RTP pacer.",
			Buckets: buckets,
		}),
		in:  map[string]prometheus.Counter{},
		out: map[string]prometheus.Counter{},
	}
	for _, t := range messageTypesOut {
		m.out[t] = m.messages.WithLabelValues("out", t)
	}
	for _, t := range messageTypesIn {
		m.in[t] = m.messages.WithLabelValues("in", t)
	}
	for _, r := range []string{dropSendQueue, dropControlQueue, dropPlayoutFull, dropListenOnly, dropMarks} {
		m.drops.WithLabelValues(r)
	}
	for _, r := range []string{badJSON, badEvent, badPayload, badOversized, badBinary} {
		m.malformed.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m)
	}
	return m
}

func (m *Metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.active, m.connectFailures, m.messages, m.drops, m.malformed, m.ended, m.clearedFrames, m.uplink, m.downlink}
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.collectors() {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.collectors() {
		c.Collect(ch)
	}
}

func (m *Metrics) countIn(event string) {
	c, ok := m.in[event]
	if !ok {
		c = m.in["other"]
	}
	c.Inc()
}

func (m *Metrics) countOut(event string) {
	if c, ok := m.out[event]; ok {
		c.Inc()
	}
}

package media

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

type dropReason uint8

const (
	dropWrongSource dropReason = iota
	dropWrongSSRC
	dropMalformed
	dropLate
	dropPayloadType
	dropSRTPAuth
	numDropReasons
)

var dropReasonNames = [numDropReasons]string{"wrong_source", "wrong_ssrc", "malformed", "late", "payload_type", "srtp_auth"}

// Metrics are the process-wide media counters shared by all sessions. Label
// children are resolved once so the per-packet path is a plain atomic add.
type Metrics struct {
	packetsIn, packetsOut prometheus.Counter
	bytesIn, bytesOut     prometheus.Counter
	lost                  prometheus.Counter
	jitter                prometheus.Histogram
	dtmf, dtmfInfo        prometheus.Counter
	dropped               [numDropReasons]prometheus.Counter
	sessions              prometheus.Gauge
}

// NewMetrics creates the media metrics and registers them with reg (nil: not
// registered). Registering twice on the same registry reuses the existing
// collectors, so tests and restarts within a process are safe.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	packets := register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "handoff_rtp_packets_total", Help: "RTP packets received and sent.",
	}, []string{"direction"}))
	bytes := register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "handoff_rtp_bytes_total", Help: "RTP bytes (whole RTP packets) received and sent.",
	}, []string{"direction"}))
	lost := register(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "handoff_rtp_packets_lost_total", Help: "Inbound RTP packets lost in the network (RFC 3550 expected minus received).",
	}))
	jitter := register(reg, prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "handoff_rtp_jitter_seconds",
		Help:    "Inbound RTP interarrival jitter (RFC 3550), observed per RTCP interval and at session end.",
		Buckets: []float64{.001, .002, .005, .01, .02, .03, .05, .1, .2, .5},
	}))
	dtmf := register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "handoff_dtmf_events_total", Help: "DTMF events received.",
	}, []string{"source"}))
	dropped := register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "handoff_rtp_dropped_packets_total", Help: "Inbound RTP packets dropped, by reason (srtp_auth also counts SRTCP packets failing authentication).",
	}, []string{"reason"}))
	sessions := register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "handoff_media_sessions_active", Help: "Running media sessions.",
	}))

	m := &Metrics{
		packetsIn:  packets.WithLabelValues("in"),
		packetsOut: packets.WithLabelValues("out"),
		bytesIn:    bytes.WithLabelValues("in"),
		bytesOut:   bytes.WithLabelValues("out"),
		lost:       lost,
		jitter:     jitter,
		dtmf:       dtmf.WithLabelValues("rfc4733"),
		dtmfInfo:   dtmf.WithLabelValues("sip_info"),
		sessions:   sessions,
	}
	for i, name := range dropReasonNames {
		m.dropped[i] = dropped.WithLabelValues(name)
	}
	return m
}

func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(err) // a name clash with a different metric is a programming error
	}
	return c
}

// The helpers tolerate a nil *Metrics so sessions need not check.

func (m *Metrics) received(bytes int) {
	if m != nil {
		m.packetsIn.Inc()
		m.bytesIn.Add(float64(bytes))
	}
}

func (m *Metrics) sent(bytes int) {
	if m != nil {
		m.packetsOut.Inc()
		m.bytesOut.Add(float64(bytes))
	}
}

func (m *Metrics) drop(r dropReason) {
	if m != nil {
		m.dropped[r].Inc()
	}
}

func (m *Metrics) dtmfEvent() {
	if m != nil {
		m.dtmf.Inc()
	}
}

// DTMFInfo counts a key press that arrived as SIP INFO, so DTMF is one
// metric whatever carried it.
func (m *Metrics) DTMFInfo() {
	if m != nil {
		m.dtmfInfo.Inc()
	}
}

func (m *Metrics) packetsLost(n int64) {
	if m != nil && n > 0 {
		m.lost.Add(float64(n))
	}
}

func (m *Metrics) observeJitter(seconds float64) {
	if m != nil {
		m.jitter.Observe(seconds)
	}
}

func (m *Metrics) sessionStarted(delta float64) {
	if m != nil {
		m.sessions.Add(delta)
	}
}

package media

import (
	"errors"
	"sync"
	"sync/atomic"

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

// counters are a session's packet counters, the only ones kept per packet:
// Stats reads them, and the process-wide metrics are derived from them
// when scraped (see sessionTotals), so a packet is counted once.
type counters struct {
	packetsIn, packetsOut atomic.Uint64
	bytesIn, bytesOut     atomic.Uint64
	payloadOut            atomic.Uint64
	drops                 [numDropReasons]atomic.Uint64
	skipped               atomic.Uint64
	dtmfEvents            atomic.Uint64
	rtcpIn, rtcpOut       atomic.Uint64
}

// total is a plain copy of the counters the process metrics show.
type total struct {
	packetsIn, packetsOut, bytesIn, bytesOut, dtmfEvents uint64
	drops                                                [numDropReasons]uint64
}

func (t *total) add(c *counters) {
	t.packetsIn += c.packetsIn.Load()
	t.packetsOut += c.packetsOut.Load()
	t.bytesIn += c.bytesIn.Load()
	t.bytesOut += c.bytesOut.Load()
	t.dtmfEvents += c.dtmfEvents.Load()
	for i := range t.drops {
		t.drops[i] += c.drops[i].Load()
	}
}

// Metrics are the process-wide media metrics shared by all sessions.
type Metrics struct {
	sessions *sessionTotals
	started  *prometheus.CounterVec
	lost     prometheus.Counter
	jitter   prometheus.Histogram
}

// NewMetrics creates the media metrics and registers them with reg (nil: not
// registered). Registering twice on the same registry reuses the existing
// collectors, so tests and restarts within a process are safe.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		sessions: register(reg, newSessionTotals()),
		started: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "handoff_media_sessions_total", Help: "Media sessions started, by the codec they started with (G722, PCMU or PCMA).",
		}, []string{"codec"})),
		lost: register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "handoff_rtp_packets_lost_total", Help: "Inbound RTP packets lost in the network (RFC 3550 expected minus received).",
		})),
		jitter: register(reg, prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "handoff_rtp_jitter_seconds",
			Help:    "Inbound RTP interarrival jitter (RFC 3550), observed per RTCP interval and at session end.",
			Buckets: []float64{.001, .002, .005, .01, .02, .03, .05, .1, .2, .5},
		})),
	}
	for _, c := range []Codec{G722, PCMU, PCMA} { // the codecs a session can carry
		m.started.WithLabelValues(c.Name)
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

// sessionTotals derives the packet, byte, drop and DTMF counters and the
// session gauge from the counters of the running sessions, plus what the
// ended ones had counted. The per-packet paths touch only their session's
// atomics; the sums are made when Prometheus collects.
type sessionTotals struct {
	mu       sync.Mutex
	live     map[*counters]struct{}
	retired  total
	dtmfInfo atomic.Uint64

	packets, bytes, dropped, dtmf, active *prometheus.Desc
}

func newSessionTotals() *sessionTotals {
	return &sessionTotals{
		live:    map[*counters]struct{}{},
		packets: prometheus.NewDesc("handoff_rtp_packets_total", "RTP packets received and sent.", []string{"direction"}, nil),
		bytes:   prometheus.NewDesc("handoff_rtp_bytes_total", "RTP bytes (whole RTP packets) received and sent.", []string{"direction"}, nil),
		dropped: prometheus.NewDesc("handoff_rtp_dropped_packets_total",
			"Inbound RTP packets dropped, by reason (srtp_auth also counts SRTCP packets failing authentication).", []string{"reason"}, nil),
		dtmf:   prometheus.NewDesc("handoff_dtmf_events_total", "DTMF events received.", []string{"source"}, nil),
		active: prometheus.NewDesc("handoff_media_sessions_active", "Running media sessions.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (t *sessionTotals) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{t.packets, t.bytes, t.dropped, t.dtmf, t.active} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (t *sessionTotals) Collect(ch chan<- prometheus.Metric) {
	t.mu.Lock()
	sum := t.retired
	for c := range t.live {
		sum.add(c)
	}
	active := len(t.live)
	t.mu.Unlock()

	counter := func(d *prometheus.Desc, v uint64, label string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), label)
	}
	counter(t.packets, sum.packetsIn, "in")
	counter(t.packets, sum.packetsOut, "out")
	counter(t.bytes, sum.bytesIn, "in")
	counter(t.bytes, sum.bytesOut, "out")
	for i, name := range dropReasonNames {
		counter(t.dropped, sum.drops[i], name)
	}
	counter(t.dtmf, sum.dtmfEvents, "rfc4733")
	counter(t.dtmf, t.dtmfInfo.Load(), "sip_info")
	ch <- prometheus.MustNewConstMetric(t.active, prometheus.GaugeValue, float64(active))
}

// The helpers tolerate a nil *Metrics so sessions need not check.

// sessionStarted counts a session under its codec and makes its counters
// part of the totals.
func (m *Metrics) sessionStarted(c *counters, codec Codec) {
	if m != nil {
		if f, err := ParseCodec(codec.Name); err == nil { // bounded: only the codecs we speak
			m.started.WithLabelValues(f.Name).Inc()
		}
		m.sessions.mu.Lock()
		m.sessions.live[c] = struct{}{}
		m.sessions.mu.Unlock()
	}
}

// sessionEnded keeps an ended session's final counts in the totals.
func (m *Metrics) sessionEnded(c *counters) {
	if m != nil {
		m.sessions.mu.Lock()
		if _, ok := m.sessions.live[c]; ok {
			delete(m.sessions.live, c)
			m.sessions.retired.add(c)
		}
		m.sessions.mu.Unlock()
	}
}

// DTMFInfo counts a key press that arrived as SIP INFO, so DTMF is one
// metric whatever carried it.
func (m *Metrics) DTMFInfo() {
	if m != nil {
		m.sessions.dtmfInfo.Add(1)
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

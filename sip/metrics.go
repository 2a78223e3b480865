package sip

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	active        prometheus.Gauge
	invites       *prometheus.CounterVec
	ended         *prometheus.CounterVec
	answerLatency prometheus.Histogram
	returns       *prometheus.CounterVec
	dropped       *prometheus.CounterVec
	uuiIgnored    *prometheus.CounterVec

	agentLegs       *prometheus.CounterVec // placed, by result and code
	agentLegsActive prometheus.Gauge
	agentLegsEnded  *prometheus.CounterVec // by ending
}

func newMetrics() *metrics {
	return &metrics{
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "handoff_sip_calls_active",
			Help: "Calls in progress (answering or answered).",
		}),
		invites: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "handoff_sip_invites_total",
			Help: "Initial INVITEs by the final SIP status we answered.",
		}, []string{"code"}),
		ended: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "handoff_sip_calls_ended_total",
			Help: "Answered calls that ended, by end reason.",
		}, []string{"reason"}),
		answerLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "handoff_sip_invite_answer_seconds",
			Help:    "Time from receiving an INVITE to sending its 200 OK.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}),
		returns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "handoff_sip_returns_total",
			Help: "Calls handed back after the agent finished, by return type (BYE, REFER, INVITE) and result (succeeded, failed).",
		}, []string{"type", "result"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "handoff_sip_requests_refused_total",
			Help: "Out-of-dialog requests refused before any processing, by reason (rate_limited, scanner).",
		}, []string{"reason"}),
		uuiIgnored: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "handoff_sip_uui_ignored_total",
			Help: "Inbound User-to-User values ignored, by reason (malformed, oversized, duplicate).",
		}, []string{"reason"}),
		agentLegs:       newAgentLegCounter(),
		agentLegsActive: newAgentLegGauge(),
		agentLegsEnded:  newAgentLegEndings(),
	}
}

// precreate makes the series dashboards and alerts divide by exist from
// the start, before the first event.
func (m *metrics) precreate() {
	for _, t := range []string{"BYE", "REFER", "INVITE"} {
		for _, r := range []string{"succeeded", "failed"} {
			m.returns.WithLabelValues(t, r)
		}
	}
	for _, r := range []string{"rate_limited", "scanner"} {
		m.dropped.WithLabelValues(r)
	}
	for _, r := range []string{uuiMalformed, uuiOversized, uuiDuplicate} {
		m.uuiIgnored.WithLabelValues(r)
	}
	for _, code := range []int{200, 401, 403, 404, 486, 487, 488, 503} {
		m.invites.WithLabelValues(statusLabel(code))
	}
	m.precreateAgentLegs()
}

func (m *metrics) register(reg prometheus.Registerer) error {
	m.precreate()
	for _, c := range []prometheus.Collector{m.active, m.invites, m.ended, m.answerLatency, m.returns, m.dropped, m.uuiIgnored,
		m.agentLegs, m.agentLegsActive, m.agentLegsEnded} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// statusLabel keeps the code label bounded to real SIP statuses.
func statusLabel(code int) string {
	if code < 100 || code > 699 {
		return "other"
	}
	return strconv.Itoa(code)
}

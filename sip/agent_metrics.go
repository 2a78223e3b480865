package sip

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/handoff/handoff/transfer"
)

// The SIP agent leg's metrics (agent mode sip). Labels take values from
// short fixed lists: the results and endings below, SIP status codes.

func newAgentLegCounter() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "handoff_sip_agent_legs_total",
		Help: "SIP agent legs placed, by result (answered, rejected, unauthorized, timeout, cancelled, unreachable, unusable, no_ports) and the agent's final SIP status (none when it sent none).",
	}, []string{"result", "code"})
}

func newAgentLegGauge() prometheus.Gauge {
	return prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "handoff_sip_agent_legs_active",
		Help: "SIP agent legs answered and not yet ended.",
	})
}

func newAgentLegEndings() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "handoff_sip_agent_legs_ended_total",
		Help: "Answered SIP agent legs that ended, by how: the agent finished (bye_outcome, bye, refer, info), Handoff ended it (max_duration, agent_media_timeout, agent_session_expired, agent_lost), or the call ended first (its end reason, or call_not_answered).",
	}, []string{"ending"})
}

// precreateAgentLegs makes the series alerts divide by exist from the start.
func (m *metrics) precreateAgentLegs() {
	m.agentLegs.WithLabelValues(agentAnswered, statusLabel(200))
	m.agentLegs.WithLabelValues(agentNoAnswer, "none")
	m.agentLegs.WithLabelValues(agentUnreachable, "none")
	for _, e := range []string{endingByeOutcome, endingBye, endingRefer, endingInfo, endingMaxDuration,
		endingMediaTimeout, endingSessionExpired, string(transfer.EndCallerHangup)} {
		m.agentLegsEnded.WithLabelValues(e)
	}
}

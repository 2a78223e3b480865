package sip

import (
	"context"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/handoff/handoff/agent"
)

// admissionMetrics are the gate's metrics (docs/metrics.md).
type admissionMetrics struct {
	refused  *prometheus.CounterVec
	pending  prometheus.Gauge
	handling prometheus.Histogram
	queued   prometheus.Histogram
}

func newAdmissionMetrics() *admissionMetrics {
	m := &admissionMetrics{
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "handoff_sip_admission_refused_total",
			Help: "Initial INVITEs refused with 503 by admission control, by the limit that refused them.",
		}, []string{"reason"}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "handoff_sip_invites_pending",
			Help: "Initial INVITEs admitted and not yet given a final response (the overload backlog).",
		}),
		handling: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "handoff_sip_invite_handling_seconds",
			Help:    "Handoff's own INVITE handling time: from receipt to the final response or the start of the agent session (the overload latency signal).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}),
		queued: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "handoff_sip_invite_queue_seconds",
			Help:    "How long new INVITEs waited in the UDP socket before the read path read them (the kernel's receive stamp to the read; the overload queue signal).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}),
	}
	for _, r := range admissionReasons {
		m.refused.WithLabelValues(r)
	}
	return m
}

func (m *admissionMetrics) register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.refused, m.pending, m.handling, m.queued} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// admitted puts the gate in front of the INVITE handler: a new INVITE over
// a limit is refused before it costs anything (authentication, a store
// round trip, ports, an agent session); an admitted one holds its call
// slot until the handler returns, which is when its call has ended.
// In-dialog INVITEs (re-INVITEs) pass, and so, while draining, does
// everything (the handler answers "Draining"). Retransmissions of an
// admitted INVITE never get here: its transaction absorbs them.
func (s *Server) admitted(next sipgo.RequestHandler) sipgo.RequestHandler {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		if (req.To() != nil && req.To().Params.Has("tag")) || s.draining.Load() {
			next(req, tx)
			return
		}
		t, r := s.gate.enter(req.Source(), callID(req))
		if r != nil {
			s.turnAway(req, tx, r)
			return
		}
		defer t.leave()
		next(req, &gatedTx{ServerTransaction: tx, t: t})
	}
}

// turnAway answers a refused INVITE with 503, Retry-After and a Reason
// naming the limit (RFC 3326), statelessly: no transaction timers, no
// retransmissions of our answer (a retransmitted INVITE is judged again),
// which is what keeps a flood of refusals cheap.
func (s *Server) turnAway(req *sip.Request, tx sip.ServerTransaction, r *refusal) {
	s.countRefusal(r)
	res := s.loadResponse(req, r)
	var err error
	if c, ok := tx.(interface{ Connection() sip.Connection }); ok && c.Connection() != nil {
		err = c.Connection().WriteMsg(res)
	} else {
		err = tx.Respond(res)
	}
	s.log.Debug("INVITE refused by admission control", "call_id", callID(req), "reason", r.reason, "err", err)
}

// loadResponse is the 503 for a refusal r of req, with the To tag of our
// stateless answers (so the read path absorbs its ACK).
func (s *Server) loadResponse(req *sip.Request, r *refusal) *sip.Response {
	res := sip.NewResponseFromRequest(req, sip.StatusServiceUnavailable, "Service Unavailable", nil)
	if to := res.To(); to != nil {
		to.Params.Add("tag", s.shedTag)
	}
	res.AppendHeader(sip.NewHeader("Retry-After", r.retryAfterValue()))
	res.AppendHeader(sip.NewHeader("Reason", r.reasonValue()))
	return res
}

// countRefusal counts a 503 of admission control, by its reason and among
// the INVITEs answered.
func (s *Server) countRefusal(r *refusal) {
	s.gate.metrics.refused.WithLabelValues(r.reason).Inc()
	s.metrics.invites.WithLabelValues(statusLabel(sip.StatusServiceUnavailable)).Inc()
}

// optionsBusy answers an out-of-dialog OPTIONS with 503 while the node, or
// the prober's own source, is full, so a dispatcher probing with OPTIONS
// stops sending calls; it reports whether it did.
func (s *Server) optionsBusy(req *sip.Request, tx sip.ServerTransaction) bool {
	r := s.gate.busy(req.Source())
	if r == nil {
		return false
	}
	res := s.loadResponse(req, r)
	if err := tx.Respond(res); err != nil {
		s.log.Debug("respond failed", "call_id", callID(req), "code", res.StatusCode, "err", err)
	}
	return true
}

// gatedTx is an admitted INVITE's transaction: its first final response
// takes the INVITE out of the backlog and times it.
type gatedTx struct {
	sip.ServerTransaction
	t *ticket
}

func (tx *gatedTx) Respond(res *sip.Response) error {
	if res.StatusCode >= 200 {
		tx.t.answer()
	}
	return tx.ServerTransaction.Respond(res)
}

// timedPipeline tells the gate when an INVITE starts waiting for its agent:
// the time the agent takes to connect is not the node's own handling time.
type timedPipeline struct {
	agent.Pipeline
	g *gate
}

func (p timedPipeline) Open(ctx context.Context, info agent.CallInfo) (agent.Session, error) {
	p.g.agentStarting(info.CallID)
	return p.Pipeline.Open(ctx, info)
}

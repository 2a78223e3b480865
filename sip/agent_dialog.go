package sip

import (
	"context"
	"strconv"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/handoff/handoff/agent"
	"github.com/handoff/handoff/media"
)

// The agent leg's in-dialog requests from the agent (dialogHandler): its
// three ways of finishing (BYE, REFER, INFO with JSON), its key presses,
// and its re-INVITEs and UPDATEs (hold, a new address, session refresh).

func (l *agentLeg) onAck(req *sip.Request, tx sip.ServerTransaction) { l.ackAnswer(req) }

// onBye: the agent hangs up, with an outcome in X-Handoff- headers, or
// without one (the fallback).
func (l *agentLeg) onBye(req *sip.Request, tx sip.ServerTransaction) {
	if out, ok := byeOutcome(req); ok {
		l.finish(legEnd{out: out, how: endingByeOutcome})
	} else {
		l.finish(legEnd{out: l.fallback(reasonAgentHungUp), how: endingBye})
	}
	if err := l.dlg.ReadBye(req, tx); err != nil {
		l.log.Debug("BYE from the agent", "err", err)
	}
}

// onOffer answers the agent's re-INVITE or UPDATE on the agent leg alone
// (the caller's leg keeps its own negotiation): hold and resume change
// what the leg sends, and a Session-Expires in it makes the agent the
// refresher from then on (it is the UAC of that request).
func (l *agentLeg) onOffer(req *sip.Request, tx sip.ServerTransaction) {
	interval, minSE := negotiateSessionTimer(req, l.s.cfg.MinSE)
	if minSE != nil {
		l.s.respond(req, tx, statusIntervalTooSmall, "Session Interval Too Small", minSE)
		return
	}
	var st sessionTimer
	answered := l.s.respondOffer(&l.dlg.Dialog, &l.leg, req, tx, func() []sip.Header {
		st.refresh(interval)
		return st.headers()
	})
	if !answered {
		return
	}
	l.timer.mu.Lock()
	l.timer.interval, l.timer.ours, l.timer.retry = interval, false, false
	l.timer.mu.Unlock()
	select {
	case l.refreshed <- struct{}{}:
	default:
	}
}

// onInfo takes an outcome (application/json) or a key press for the
// caller (application/dtmf-relay, application/dtmf).
func (l *agentLeg) onInfo(req *sip.Request, tx sip.ServerTransaction) {
	if !isJSON(req) {
		l.s.readInfo(&l.dlg.Dialog, req, tx, func(d agent.DTMF) {
			l.agentDTMF(media.DTMFEvent{Digit: d.Digit, Duration: d.Duration})
		})
		return
	}
	if !l.s.inOrder(&l.dlg.Dialog, req, tx) {
		return
	}
	out, err := infoOutcome(req.Body())
	if !l.mayEnd(req, tx, err, "Bad Outcome") {
		return
	}
	l.s.respond(req, tx, sip.StatusOK, "OK")
	l.finish(legEnd{out: out, how: endingInfo, then: func() { l.bye(reasonHeader(endingInfo)) }})
}

// mayEnd refuses an ending the agent sent that cannot be read (400, why
// in a Warning) or comes after another (403); it reports whether to go on.
func (l *agentLeg) mayEnd(req *sip.Request, tx sip.ServerTransaction, err error, refusal string) bool {
	switch {
	case err != nil:
		l.log.Info(string(req.Method)+" from the agent refused", "err", err)
		l.s.respond(req, tx, sip.StatusBadRequest, refusal, warning(err))
		return false
	case l.finished.Load():
		l.s.respond(req, tx, sip.StatusForbidden, "Agent Already Finished")
		return false
	}
	return true
}

// onOther takes a REFER (the agent's transfer) and refuses the rest.
func (l *agentLeg) onOther(req *sip.Request, tx sip.ServerTransaction) {
	if req.Method != sip.REFER {
		l.s.respond(req, tx, statusBadEvent, "Bad Event")
		return
	}
	if !l.s.inOrder(&l.dlg.Dialog, req, tx) {
		return
	}
	target, out, err := referOutcome(req)
	if !l.mayEnd(req, tx, err, "Bad Refer-To") {
		return
	}
	if !l.cfg.FollowRefer {
		target = ""
	}
	// 202 first: the NOTIFYs that follow must not overtake it.
	l.s.respond(req, tx, sip.StatusAccepted, "Accepted", l.s.contactFor(req.Transport()))
	l.finish(legEnd{out: out, how: endingRefer, referTo: target, then: func() {
		l.notifyRefer()
		l.bye(reasonHeader(endingRefer))
	}})
}

// notifyRefer reports the REFER's progress (RFC 3515): Handoff has taken
// the call back, which is all the agent's transfer asks of it; the
// return itself is Handoff's business (returnResult).
func (l *agentLeg) notifyRefer() {
	for _, n := range []struct{ frag, state string }{
		{"SIP/2.0 100 Trying", "active;expires=60"},
		{"SIP/2.0 200 OK", "terminated;reason=noresource"},
	} {
		req := l.request(sip.NOTIFY)
		req.AppendHeader(sip.NewHeader("Event", "refer"))
		req.AppendHeader(sip.NewHeader("Subscription-State", n.state))
		req.AppendHeader(sip.NewHeader("Content-Type", "message/sipfrag;version=2.0"))
		req.SetBody([]byte(n.frag + "\r\n"))
		if !l.send(req, "NOTIFY") {
			return
		}
	}
}

// send sends an in-dialog request and waits for its final answer,
// reporting whether it was a 2xx.
func (l *agentLeg) send(req *sip.Request, what string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), byeTimeout)
	defer cancel()
	res, err := l.dlg.Do(ctx, req)
	if err != nil || !res.IsSuccess() {
		code := 0
		if res != nil {
			code = res.StatusCode
		}
		l.log.Info(what+" to the agent not accepted", "sip_code", code, "err", err)
		return false
	}
	return true
}

// sendDTMFInfo sends a key press by INFO to whichever side lacks
// telephone-event.
func (l *agentLeg) sendDTMFInfo(j dtmfJob) {
	if j.toAgent {
		req := l.request(sip.INFO)
		setDTMFRelay(req, j.ev)
		l.send(req, "INFO")
		return
	}
	if c := l.call.Load(); c != nil {
		c.sendDTMFInfo(j.ev)
	}
}

// sendDTMFInfo sends a key press to the caller by INFO.
func (c *Call) sendDTMFInfo(ev media.DTMFEvent) {
	req := c.inDialogRequest(sip.INFO)
	setDTMFRelay(req, ev)
	ctx, cancel := context.WithTimeout(context.Background(), byeTimeout)
	defer cancel()
	if res, err := c.dlg.Do(ctx, req); err != nil || !res.IsSuccess() {
		c.log.Info("INFO to the caller not accepted", "err", err)
	}
}

// setDTMFRelay makes req carry ev as application/dtmf-relay.
func setDTMFRelay(req *sip.Request, ev media.DTMFEvent) {
	ms := ev.Duration / time.Millisecond
	if ms <= 0 {
		ms = 160
	}
	req.AppendHeader(sip.NewHeader("Content-Type", "application/dtmf-relay"))
	req.SetBody([]byte("Signal=" + string(ev.Digit) + "\r\nDuration=" + strconv.Itoa(int(ms)) + "\r\n"))
}

package sip

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
)

// sessionRetry is how soon a session refresh the agent refused for a
// passing reason (491, 5xx) is tried again.
const sessionRetry = 5 * time.Second

// legTimer is the agent leg's session timer (RFC 4028). Our INVITE asks
// to be the refresher; the agent's answer, or a later re-INVITE or UPDATE
// of its own, may make it the refresher instead. Zero interval: no timer.
type legTimer struct {
	mu       sync.Mutex
	interval time.Duration
	ours     bool // Handoff refreshes
	retry    bool // the last refresh of ours failed for a passing reason
}

// fromAnswer takes the session timer the agent's 2xx settled: ours unless
// it names the UAS (the agent) as the refresher.
func (t *legTimer) fromAnswer(res *sip.Response) {
	interval, refresher := sessionExpires(res)
	t.mu.Lock()
	t.interval, t.ours, t.retry = interval, refresher != "uas", false
	t.mu.Unlock()
}

// next is when the timer is due and whether we refresh then (else the
// session expires); 0 for no timer.
func (t *legTimer) next() (time.Duration, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.interval == 0:
		return 0, false
	case t.ours && t.retry:
		return sessionRetry, true
	case t.ours:
		return t.interval / 2, true
	}
	return t.interval - min(32*time.Second, t.interval/3), false
}

// armSession sets timer to the session timer's next event.
func (l *agentLeg) armSession(timer *time.Timer) {
	if d, _ := l.timer.next(); d > 0 && !l.finished.Load() {
		timer.Reset(d)
	} else {
		timer.Stop()
	}
}

// sessionDue refreshes the session when it is ours to refresh, and ends a
// session the agent stopped refreshing.
func (l *agentLeg) sessionDue() {
	if l.finished.Load() {
		return
	}
	if _, ours := l.timer.next(); !ours {
		l.finishAndHangUp(reasonAgentSessionEnded, endingSessionExpired)
		return
	}
	l.refreshSession()
}

// refreshSession sends a session refresh: a re-INVITE with our current
// offer (the same body, so the same o= version: no change, RFC 3264 §8).
// An agent that answers 481 or 408, or not at all, is gone.
func (l *agentLeg) refreshSession() {
	req := l.request(sip.INVITE)
	req.SetBody(l.reoffer())
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.AppendHeader(sip.NewHeader("Supported", "timer"))
	l.timer.mu.Lock()
	secs := strconv.Itoa(int(l.timer.interval / time.Second))
	l.timer.mu.Unlock()
	req.AppendHeader(sip.NewHeader("Session-Expires", secs+";refresher=uac"))
	ctx, cancel := context.WithTimeout(context.Background(), byeTimeout)
	defer cancel()
	res, err := l.dlg.Do(ctx, req)
	switch {
	case err != nil || res.StatusCode == sip.StatusCallTransactionDoesNotExists || res.StatusCode == sip.StatusRequestTimeout:
		l.log.Warn("session refresh failed: the agent is gone", "err", err)
		l.finishAndHangUp(reasonAgentSessionEnded, endingSessionExpired)
	case res.IsSuccess():
		l.acceptRefresh(res)
	default:
		l.log.Info("session refresh refused; retrying", "sip_code", res.StatusCode)
		l.timer.mu.Lock()
		l.timer.retry = true
		l.timer.mu.Unlock()
	}
}

// acceptRefresh takes the 2xx of our refresh: its SDP answer, its session
// timer, and the ACK.
func (l *agentLeg) acceptRefresh(res *sip.Response) {
	if body := res.Body(); len(body) > 0 {
		if err := l.takeAnswer(body); err != nil {
			l.log.Warn("session refresh answer unusable; media unchanged", "err", err)
		}
	}
	l.timer.fromAnswer(res)
	ack := l.request(sip.ACK)
	if err := l.dlg.WriteRequest(ack); err != nil {
		l.log.Info("ACK of the session refresh not sent", "err", err)
	}
}

// reoffer is our offer again, with the codecs and SRTP of the first.
func (l *agentLeg) reoffer() []byte {
	return l.prefs.offer(l.local, l.offered)
}

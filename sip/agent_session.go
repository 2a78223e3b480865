package sip

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/handoff/handoff/agent"
	"github.com/handoff/handoff/media"
	"github.com/handoff/handoff/transfer"
)

// agentLeg is the SIP agent leg of one call: the dialog Handoff placed to
// the agent, its RTP session, and the call's agent.Session, so the call
// converses, finishes and returns exactly as with the other agent modes.
// The caller's audio is queued for the leg's pacer and the agent's audio
// for the caller's; DTMF crosses both ways (RFC 4733, or INFO where the
// other side has no telephone-event). One goroutine (run) owns the leg's
// timers and the requests it sends after the start; in-dialog requests
// from the agent arrive on sipgo's goroutines.
type agentLeg struct {
	outLeg
	cfg      *AgentLegConfig
	task     string // the transfer's inputContext.taskName, for the fallback
	toAgent  *media.FrameQueue
	toCaller *media.FrameQueue
	call     atomic.Pointer[Call] // the caller's side, once the call exists
	timer    legTimer
	offered  []media.OfferOption // the options of our first offer, for refreshes
	started  time.Time

	finished  atomic.Bool   // the agent has finished (done is closed)
	done      chan struct{} // closed by finish
	after     chan func()   // what run does once the agent has finished
	dtmf      chan dtmfJob  // INFO key presses for run to send
	refreshed chan struct{} // the agent refreshed the session
	closing   chan struct{} // Close was called
	ran       chan struct{} // run has returned
	closeOnce sync.Once

	endMu    sync.Mutex // guards out, ending, referTo, callEnd
	out      transfer.OutputContext
	ending   string        // how the leg ended (agentEnding* or the call's end reason)
	referTo  string        // the agent's Refer-To URI, when FollowRefer takes it
	callEnd  string        // why the call ended before the agent finished
	framesIn atomic.Uint64 // caller frames the leg's pacer sent the agent
	framesUp atomic.Uint64 // agent frames the caller's pacer took
}

// How an agent leg ended (handoff_sip_agent_legs_ended_total, and
// returnResult.agentLeg.ending). The call's end reasons complete the list
// for legs the call ended first.
const (
	endingByeOutcome     = "bye_outcome" // BYE with X-Handoff- outcome headers
	endingBye            = "bye"         // BYE without them: the fallback
	endingRefer          = "refer"
	endingInfo           = "info"
	endingMaxDuration    = "max_duration"
	endingMediaTimeout   = "agent_media_timeout"
	endingSessionExpired = "agent_session_expired"
	endingLost           = "agent_lost"        // the dialog ended otherwise
	endingNotAnswered    = "call_not_answered" // the caller's leg never came up
)

// Fallback reasons (outputContext.referenceVariables.reason).
const (
	reasonAgentHungUp       = "agent_hung_up"
	reasonAgentMediaTimeout = "agent_media_timeout"
	reasonAgentSessionEnded = "agent_session_expired"
	reasonAgentLost         = "agent_lost"
)

// dtmfJob is a key press to send by INFO: to the agent, or to the caller.
type dtmfJob struct {
	toAgent bool
	ev      media.DTMFEvent
}

func newAgentLeg(s *Server, ports *media.Ports, a *admission) *agentLeg {
	l := &agentLeg{
		outLeg:    newOutLeg(s, ports, a.log.With("leg", "agent")),
		cfg:       s.cfg.AgentLeg,
		toAgent:   media.NewFrameQueue(bridgeDepth),
		toCaller:  media.NewFrameQueue(bridgeDepth),
		done:      make(chan struct{}),
		after:     make(chan func(), 1),
		dtmf:      make(chan dtmfJob, 16),
		refreshed: make(chan struct{}, 1),
		closing:   make(chan struct{}),
		ran:       make(chan struct{}),
	}
	l.srtp = l.cfg.SRTP
	if in := a.transfer.InputContext; in != nil {
		l.task = in.TaskName
	}
	return l
}

// start begins the conversation once the agent has answered.
func (l *agentLeg) start() {
	l.started = time.Now()
	l.s.metrics.agentLegs.WithLabelValues(agentAnswered, statusLabel(sip.StatusOK)).Inc()
	l.s.metrics.agentLegsActive.Inc()
	l.log.Info("agent leg answered", "agent_uri", l.cfg.URI)
	go l.run()
}

func (l *agentLeg) callID() string {
	if h := l.dlg.InviteRequest.CallID(); h != nil {
		return h.Value()
	}
	return ""
}

// legEnd is how the agent finished: its outcome, the ending's name, the
// agent's Refer-To when the return follows it, and what the leg's
// goroutine does afterwards (NOTIFY, BYE), if anything.
type legEnd struct {
	out     transfer.OutputContext
	how     string
	referTo string
	then    func()
}

// finish ends the conversation, once: the call then hands the caller
// back. It reports whether e was taken.
func (l *agentLeg) finish(e legEnd) bool {
	l.endMu.Lock()
	if l.finished.Load() {
		l.endMu.Unlock()
		return false
	}
	l.out, l.ending, l.referTo = e.out, e.how, e.referTo
	l.finished.Store(true)
	l.endMu.Unlock()
	close(l.done)
	l.log.Info("agent finished", "ending", e.how, "transfer_type", e.out.TransferType)
	if e.then != nil {
		l.after <- e.then // buffered: finish runs once
	}
	return true
}

// fallback is the outcome of an agent that ends without one, as the
// WebSocket link's: the configured transfer type, the task, and why.
func (l *agentLeg) fallback(reason string) transfer.OutputContext {
	return transfer.OutputContext{
		TransferType:       l.cfg.FallbackTransferType,
		CurrentTaskName:    l.task,
		ReferenceVariables: map[string]string{"reason": reason},
	}
}

// finishAndHangUp ends a conversation the agent did not end: with the
// fallback, and a BYE to the agent.
func (l *agentLeg) finishAndHangUp(reason, ending string) {
	l.finish(legEnd{out: l.fallback(reason), how: ending, then: func() { l.bye(reasonHeader(reason)) }})
}

// run owns the leg's timers (max duration, session timer) and sends what
// must not block a media or sipgo goroutine, until the dialog ends or the
// call closes the leg.
func (l *agentLeg) run() {
	defer close(l.ran)
	maxDuration := make(<-chan time.Time)
	if l.cfg.MaxDuration > 0 {
		t := time.NewTimer(l.cfg.MaxDuration)
		defer t.Stop()
		maxDuration = t.C
	}
	session := time.NewTimer(time.Hour)
	defer session.Stop()
	l.armSession(session)
	mediaDone := l.rtp.Done()
	for {
		select {
		case <-l.closing:
			select {
			case then := <-l.after: // an ending's NOTIFY and BYE still due
				then()
			default:
			}
			l.bye(reasonHeader(l.callEndReason()))
			return
		case <-l.dlg.Context().Done():
			l.finish(legEnd{out: l.fallback(reasonAgentLost), how: endingLost}) // unless a BYE finished it first
			return
		case <-mediaDone:
			mediaDone = nil // closed for good
			l.finishAndHangUp(reasonAgentMediaTimeout, endingMediaTimeout)
		case <-maxDuration:
			l.finishAndHangUp(agent.ReasonMaxDuration, endingMaxDuration)
		case <-session.C:
			l.sessionDue()
			l.armSession(session)
		case <-l.refreshed:
			l.armSession(session)
		case then := <-l.after:
			then()
		case j := <-l.dtmf:
			l.sendDTMFInfo(j)
		}
	}
}

// callEndReason is the BYE reason when the call closes the leg.
func (l *agentLeg) callEndReason() string {
	l.endMu.Lock()
	defer l.endMu.Unlock()
	if l.callEnd == "" {
		return endingNotAnswered
	}
	return l.callEnd
}

// callEnded tells the leg why the call ended; it matters only when the
// call ended before the agent finished (the BYE's reason, the ending).
func (l *agentLeg) callEnded(reason transfer.EndReason) {
	l.endMu.Lock()
	l.callEnd = string(reason)
	l.endMu.Unlock()
}

// PushAudio queues the caller's audio for the agent (the destination's,
// during an INVITE return, is not the agent's business: the leg has ended).
func (l *agentLeg) PushAudio(track agent.Track, frame []int16) {
	if track != agent.TrackCaller || l.finished.Load() {
		return
	}
	l.toAgent.Push(frame)
}

// PushDTMF forwards the caller's key press to the agent: RFC 4733 when
// the agent leg negotiated telephone-event, else INFO.
func (l *agentLeg) PushDTMF(d agent.DTMF) {
	if l.finished.Load() {
		return
	}
	l.forwardDTMF(l.rtpSession(), dtmfJob{toAgent: true, ev: media.DTMFEvent{Digit: d.Digit, Duration: d.Duration}})
}

// forwardDTMF sends j over m, or queues it for INFO when m has no
// telephone-event. It never blocks: a full queue drops the key.
func (l *agentLeg) forwardDTMF(m *media.Session, j dtmfJob) {
	if m == nil {
		return
	}
	if err := m.SendDTMF(j.ev); !errors.Is(err, media.ErrDTMFNotNegotiated) {
		return
	}
	select {
	case l.dtmf <- j:
	default:
		l.log.Warn("DTMF dropped: the INFO queue is full", "digit", string(j.ev.Digit))
	}
}

// agentDTMF forwards the agent's key press to the caller.
func (l *agentLeg) agentDTMF(ev media.DTMFEvent) {
	if c := l.call.Load(); c != nil {
		l.forwardDTMF(c.rtpSession(), dtmfJob{ev: ev})
	}
}

// toAgentFrame is the leg's pacer source: the caller's audio, counted as
// it leaves for the agent.
func (l *agentLeg) toAgentFrame() ([]int16, bool) {
	f, ok := l.toAgent.Pop()
	if ok {
		l.framesIn.Add(1)
	}
	return f, ok
}

// agentAudio queues the agent's audio for the caller.
func (l *agentLeg) agentAudio(pcm []int16) { l.toCaller.Push(pcm) }

// NextFrame is the agent's audio for the caller's pacer.
func (l *agentLeg) NextFrame() ([]int16, bool) {
	f, ok := l.toCaller.Pop()
	if ok {
		l.framesUp.Add(1)
	}
	return f, ok
}

func (l *agentLeg) Done() <-chan struct{} { return l.done }

func (l *agentLeg) Result() transfer.OutputContext {
	l.endMu.Lock()
	defer l.endMu.Unlock()
	return l.out
}

// ListenOnly does nothing: every way the agent finishes ends its leg, so
// an INVITE return bridges the caller without it (a SIP agent has no
// listen-only mode, and would talk, and bill, on).
func (l *agentLeg) ListenOnly() {}

// Close hangs the leg up if it is still up (the caller hung up, the call
// failed or is shut down), waits for its goroutine and frees it.
func (l *agentLeg) Close() {
	l.closeOnce.Do(func() {
		close(l.closing)
		<-l.ran
		l.endMu.Lock()
		if !l.finished.Load() {
			l.ending = l.callEnd
			if l.ending == "" {
				l.ending = endingNotAnswered
			}
			l.finished.Store(true)
			close(l.done)
		}
		ending := l.ending
		l.endMu.Unlock()
		l.report(ending)
		l.close()
	})
}

// report logs and counts how the leg ended and what it carried.
func (l *agentLeg) report(ending string) {
	l.s.metrics.agentLegsActive.Dec()
	l.s.metrics.agentLegsEnded.WithLabelValues(ending).Inc()
	st := l.rtp.Stats()
	l.log.Info("agent leg ended", "ending", ending, "duration", time.Since(l.started).Round(time.Millisecond).String(),
		"frames_to_agent", l.framesIn.Load(), "frames_to_caller", l.framesUp.Load(),
		"rtp_in", st.PacketsIn, "rtp_out", st.PacketsOut, "rtp_lost", st.PacketsLost)
}

// result is returnResult.agentLeg.
func (l *agentLeg) result() *transfer.AgentLeg {
	l.endMu.Lock()
	defer l.endMu.Unlock()
	return &transfer.AgentLeg{URI: l.cfg.URI, CallID: l.callID(), Ending: l.ending}
}

// followed is the agent's Refer-To URI when the call must follow it.
func (l *agentLeg) followed() string {
	l.endMu.Lock()
	defer l.endMu.Unlock()
	return l.referTo
}

// The call's hooks into its SIP agent leg; no-ops for other agent modes.

// bindAgentLeg lets the call's agent leg reach the caller (DTMF).
func (c *Call) bindAgentLeg() {
	if l, ok := c.agent.(*agentLeg); ok {
		l.call.Store(c)
	}
}

// agentLegCallEnded tells the agent leg why the call ended.
func (c *Call) agentLegCallEnded(reason transfer.EndReason) {
	if l, ok := c.agent.(*agentLeg); ok {
		l.callEnded(reason)
	}
}

// agentLegResult is returnResult.agentLeg, nil without an agent leg.
func (c *Call) agentLegResult() *transfer.AgentLeg {
	if l, ok := c.agent.(*agentLeg); ok {
		return l.result()
	}
	return nil
}

// followedRefer is the agent's Refer-To URI when the return must follow
// it (AgentLegConfig.FollowRefer), else "".
func (c *Call) followedRefer() string {
	if l, ok := c.agent.(*agentLeg); ok {
		return l.followed()
	}
	return ""
}

// reasonHeader is the Reason of a BYE we send (RFC 3326).
func reasonHeader(text string) sip.Header {
	return sip.NewHeader("Reason", `Q.850;cause=16;text="`+text+`"`)
}

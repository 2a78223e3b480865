package agent

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/coder/websocket"

	"github.com/handoff/handoff/transfer"
)

// Reasons a conversation ends, recorded as outputContext.referenceVariables.reason
// on the fallback and counted in handoff_agent_sessions_ended_total.
const (
	ReasonComplete          = "complete"
	ReasonAgentClosed       = "agent_closed"       // the agent closed the socket without handoff.complete
	ReasonAgentDisconnected = "agent_disconnected" // the connection broke
	ReasonAgentUnresponsive = "agent_unresponsive" // no pong, or a write stuck, for ResponseTimeout
	ReasonMaxDuration       = "max_duration"       // the conversation outlasted MaxDuration
	reasonCallEnded         = "call_ended"
)

// wsState is where a session is in its life. Two things end separately:
// the conversation (the agent's outcome, which closes Done) and the link
// (the socket), because after an INVITE return the socket keeps streaming
// the bridged call. The states are the combinations that can happen:
//
//	talking ──complete──▶ finishing ──goodbye played──▶ finished ──link lost──▶ lost
//	talking ──complete with nothing queued, link lost or max_duration──▶ finished
//	finishing ──link lost or max_duration──▶ finished
//	talking, finishing, finished ──Close──▶ closing ──link lost──▶ closed
//	lost ──Close──▶ closed
//
// A lost link always finishes the conversation first (with the pending
// outcome or the fallback), so lost is entered from finished only. Nothing
// finishes once Close has begun.
type wsState uint32

const (
	stateTalking   wsState = iota // no outcome yet
	stateFinishing                // handoff.complete came; the agent audio queued before it is playing out
	stateFinished                 // the outcome is final and Done is closed; the link stays up
	stateLost                     // the link is gone; the outcome is final
	stateClosing                  // Close has begun with the link up: the writer says goodbye
	stateClosed                   // Close has begun and the link is gone
)

var stateNames = [...]string{"talking", "finishing", "finished", "lost", "closing", "closed"}

func (st wsState) String() string { return stateNames[st] }

// linkUp reports whether the socket is still there.
func (st wsState) linkUp() bool { return st != stateLost && st != stateClosed }

// legalMoves is, for each state, where it may go next.
var legalMoves = [...][]wsState{
	stateTalking:   {stateFinishing, stateFinished, stateClosing},
	stateFinishing: {stateFinished, stateClosing},
	stateFinished:  {stateLost, stateClosing},
	stateLost:      {stateClosed},
	stateClosing:   {stateClosed},
	stateClosed:    nil,
}

// ending is the outcome recorded by a move to finishing or finished.
type ending struct {
	out    transfer.OutputContext
	reason string
}

// state is the session's state. It is written under mu and may be read
// without it (the media goroutines' pushes do).
func (s *wsSession) state() wsState { return wsState(s.st.Load()) }

// gone reports whether pushes are ignored: the link is gone or closing.
func (s *wsSession) gone() bool { return s.state() > stateFinished }

// finished reports whether the conversation has its final outcome.
func (s *wsSession) finished() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// transitionLocked moves the session to state to and does what entering
// it implies. It is the one place that decides which moves are legal: an
// illegal one changes nothing and reports false. end is the outcome of a
// move to finishing or finished.
func (s *wsSession) transitionLocked(to wsState, end ending) bool {
	from := s.state()
	if !slices.Contains(legalMoves[from], to) {
		return false
	}
	s.st.Store(uint32(to))
	switch to {
	case stateFinishing:
		s.outcome = end.out
		s.pendingAt = s.play.queued
		// The pacer may stop pulling (the call is ending): finish anyway
		// after the queued audio's duration plus a second.
		wait := time.Duration(s.play.n)*time.Second/8000 + time.Second
		s.completeTimer = time.AfterFunc(wait, s.finishPending)
	case stateFinished:
		s.outcome, s.endReason = end.out, end.reason
		s.m.ended.WithLabelValues(end.reason).Inc()
		close(s.done)
	case stateClosing, stateClosed:
		if from == stateTalking || from == stateFinishing {
			s.m.ended.WithLabelValues(reasonCallEnded).Inc()
		}
		s.stop() // the writer says goodbye (if the link is up), the pinger returns
	}
	if to >= stateFinished {
		// The timers only ever finish a conversation still running.
		stopTimer(s.completeTimer)
		stopTimer(s.maxTimer)
	}
	return true
}

func stopTimer(t *time.Timer) {
	if t != nil {
		t.Stop()
	}
}

// finishPending finishes a conversation whose goodbye has played (or
// whose completeTimer fired).
func (s *wsSession) finishPending() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state() == stateFinishing {
		s.transitionLocked(stateFinished, ending{s.outcome, ReasonComplete})
	}
}

// startMaxTimer arms MaxDuration: a conversation still running then
// finishes with the fallback.
func (s *wsSession) startMaxTimer() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.maxTimer = time.AfterFunc(s.cfg.MaxDuration, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.transitionLocked(stateFinished, ending{s.fallback(ReasonMaxDuration), ReasonMaxDuration}) {
			s.log.Info("agent conversation reached max_duration: fallback", "max_duration", s.cfg.MaxDuration)
		}
	})
}

// complete finishes the conversation with out once the audio queued before
// it has played. via names the request in the log when it comes too late.
// It reports whether out was taken.
func (s *wsSession) complete(out transfer.OutputContext, via string) bool {
	if out.TransferType == "" {
		out.TransferType = TransferSystem
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state() != stateTalking {
		s.log.Info(via+" ignored: the conversation is already finishing", "state", s.state().String())
		return false
	}
	next := stateFinishing
	if s.play.n == 0 {
		next = stateFinished
	}
	return s.transitionLocked(next, ending{out, ReasonComplete})
}

// fallback is the outcome when the agent goes away without finishing.
func (s *wsSession) fallback(reason string) transfer.OutputContext {
	return transfer.OutputContext{
		TransferType:       s.cfg.FallbackTransferType,
		CurrentTaskName:    s.info.Input.TaskName,
		ReferenceVariables: map[string]string{"reason": reason},
	}
}

// lose handles the end of the connection; the first loss's reason wins. A
// conversation still running finishes: a pending handoff.complete stands,
// otherwise the fallback applies.
func (s *wsSession) lose(reason string, err error) {
	s.mu.Lock()
	st := s.state()
	if !st.linkUp() {
		s.mu.Unlock()
		return
	}
	switch st {
	case stateTalking:
		s.log.Warn("agent link lost: fallback", "reason", reason, "err", err, "transfer_type", s.cfg.FallbackTransferType)
		s.transitionLocked(stateFinished, ending{s.fallback(reason), reason})
	case stateFinishing:
		s.transitionLocked(stateFinished, ending{s.outcome, ReasonComplete})
	case stateFinished:
		s.log.Info("agent link ended", "reason", reason, "err", err)
	}
	if st == stateClosing {
		s.transitionLocked(stateClosed, ending{})
	} else {
		s.transitionLocked(stateLost, ending{})
	}
	s.mu.Unlock()
	_ = s.conn.CloseNow()
}

// lostReason classifies a read or write error.
func lostReason(err error) string {
	switch websocket.CloseStatus(err) {
	case websocket.StatusNormalClosure, websocket.StatusGoingAway:
		return ReasonAgentClosed
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return ReasonAgentUnresponsive
	}
	return ReasonAgentDisconnected
}

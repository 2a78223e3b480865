package sip

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/handoff/handoff/agent"
	"github.com/handoff/handoff/media"
	"github.com/handoff/handoff/transfer"
)

// byeTimeout bounds how long we wait for the answer to our BYE.
const byeTimeout = 10 * time.Second

// Call is one inbound call: its dialog, media session and agent session. It
// is the only place that changes its transfer's status while the call lives.
// The INVITE handler goroutine runs it from setup to teardown; in-dialog
// requests arrive on other goroutines and meet it under mu.
type Call struct {
	leg
	s        *Server
	log      *slog.Logger
	dlg      *sipgo.DialogServerSession
	tx       sip.ServerTransaction
	dialogID string
	callID   string
	transfer *transfer.Transfer
	agent    agent.Session
	timer    *sessionTimer

	refreshed   chan struct{}     // a session refresh arrived (RFC 4028)
	notifies    chan *sip.Request // NOTIFYs for the REFER return
	ackTimedOut atomic.Bool
	hungUp      atomic.Bool                // the dialog has ended on the wire
	bridge      atomic.Pointer[bridge]     // set while an INVITE return is bridged
	ringback    atomic.Pointer[media.Tone] // set while the return call rings
}

// newCall takes the resources an admitted call needs before it is
// answered: a dialog, RTP ports and the agent session. While that takes
// long, the caller hears ringing (Config.RingingAfter). On failure it
// frees what it took and says how to refuse the INVITE.
func (s *Server) newCall(tx sip.ServerTransaction, a *admission) (*Call, *rejection) {
	dlg, err := s.dialogUA.ReadInvite(a.req, tx)
	if err != nil {
		return nil, reject(sip.StatusBadRequest, "Bad Request")
	}
	defer s.ringWhileSlow(dlg, tx, a.log)()
	ports, err := s.cfg.Ports.Allocate()
	if err != nil {
		a.log.Warn("no RTP ports", "err", err)
		return nil, s.unavailable("No Media Ports")
	}
	sess, err := s.openAgent(dlg.Context(), a)
	if err != nil {
		s.cfg.Ports.Release(ports)
		if errors.Is(context.Cause(dlg.Context()), sip.ErrTransactionCanceled) {
			a.log.Info("call cancelled while the agent connected")
			return nil, reject(sip.StatusRequestTerminated, "Request Terminated")
		}
		a.log.Warn("agent unavailable", "err", err)
		return nil, s.unavailable("Agent Unavailable")
	}
	c := &Call{
		leg:       newLeg(s, ports),
		s:         s,
		log:       a.log,
		dlg:       dlg,
		tx:        tx,
		dialogID:  dlg.ID,
		callID:    callID(a.req),
		transfer:  a.transfer,
		agent:     sess,
		refreshed: make(chan struct{}, 1),
		notifies:  make(chan *sip.Request, 8),
		timer:     &sessionTimer{},
	}
	c.timer.refresh(a.interval)
	c.bindAgentLeg()
	if !s.addCall(c) {
		c.release()
		return nil, s.unavailable("Shutting Down")
	}
	return c, nil
}

// run answers the call, then lives it until it ends, then cleans up.
func (c *Call) run(a *admission) {
	defer c.s.removeCall(c)
	defer c.release()

	if !c.answer(a.offer, a.negotiated, a.received) {
		return
	}
	reason, out := c.converse()
	c.agentLegCallEnded(reason)
	c.complete(reason, out)
	if reason == transfer.EndAgentFinished {
		c.handBack(*out)
	}
	st := c.rtp.Stats()
	c.log.Info("call ended", "end_reason", reason, "codec", st.Codec.Name, "rtp_in", st.PacketsIn, "rtp_out", st.PacketsOut, "rtp_lost", st.PacketsLost)
}

// answer sends 200 OK and waits for the ACK. It reports whether the call
// is confirmed and its transfer ONGOING; if not, the transfer is left
// ACTIVE for a retry.
func (c *Call) answer(offer *media.Description, negotiated media.Negotiated, received time.Time) bool {
	if code, confirmed := c.sendOK(offer, negotiated, received); !confirmed {
		c.s.metrics.invites.WithLabelValues(statusLabel(code)).Inc()
		c.s.unclaim(c.transfer.ID, c.callID, c.log)
		return false
	}
	c.s.metrics.invites.WithLabelValues(statusLabel(sip.StatusOK)).Inc()

	answerErr := c.confirmedAnswer()
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if answerErr == nil {
		var t *transfer.Transfer
		if t, answerErr = c.s.svc.Answer(ctx, c.transfer.ID, c.callID); answerErr == nil {
			c.transfer = t
		}
	}
	if answerErr != nil {
		c.log.Warn("call confirmed but unusable", "err", answerErr)
		c.bye(transfer.EndError)
		c.s.unclaim(c.transfer.ID, c.callID, c.log)
		return false
	}
	return c.startMedia()
}

// sendOK sends the 200 OK (our SDP answer, or our offer) until its ACK. It
// reports whether the ACK came, and if not, the final status the caller
// ended up with: 487 for a CANCEL that won the race, else the 200.
func (c *Call) sendOK(offer *media.Description, negotiated media.Negotiated, received time.Time) (code int, confirmed bool) {
	res := sip.NewSDPResponseFromRequest(c.dlg.InviteRequest, c.offerOrAnswer(offer, negotiated))
	res.AppendHeader(c.s.contactFor(c.dlg.InviteRequest.Transport()))
	res.AppendHeader(allowHeader)
	res.AppendHeader(sip.NewHeader("Supported", "timer"))
	for _, h := range c.timer.headers() {
		res.AppendHeader(h)
	}
	// WriteResponse retransmits the 200 until the ACK (or 64*T1); the
	// configured ACK timeout ends the transaction sooner.
	ackTimer := time.AfterFunc(c.s.cfg.AckTimeout, func() {
		c.ackTimedOut.Store(true)
		c.tx.Terminate()
	})
	c.s.metrics.answerLatency.Observe(time.Since(received).Seconds())
	err := c.dlg.WriteResponse(res)
	ackTimer.Stop()
	switch {
	case c.dlg.LoadState() == sip.DialogStateConfirmed && err == nil:
		return sip.StatusOK, true
	case errors.Is(context.Cause(c.dlg.Context()), sip.ErrTransactionCanceled):
		c.log.Info("call cancelled before answer")
		return sip.StatusRequestTerminated, false
	case c.hungUp.Load():
		c.log.Info("caller hung up before ACK")
	default:
		c.log.Warn("no ACK for 200 OK", "err", err)
		c.ackTimedOut.Store(true)
		c.bye(transfer.EndAckTimeout)
	}
	return sip.StatusOK, false
}

func (c *Call) startMedia() bool {
	err := c.leg.startMedia(media.SessionConfig{
		OnAudio:    c.callerAudio,
		OnDTMF:     c.callerDTMF,
		Source:     c.callerSource,
		RTPTimeout: c.s.cfg.RTPTimeout,
		Metrics:    c.s.mediaMetrics,
		Logger:     c.log,
	})
	if err != nil {
		c.log.Error("media session failed", "err", err)
		c.bye(transfer.EndError)
		c.complete(transfer.EndError, nil)
		return false
	}
	return true
}

// callerAudio takes the caller's audio: to the agent always (it listens
// even while a return is bridged), and to the return's destination.
func (c *Call) callerAudio(pcm []int16) {
	c.agent.PushAudio(agent.TrackCaller, pcm)
	if b := c.bridge.Load(); b != nil {
		b.toDestination.Push(pcm)
	}
}

func (c *Call) callerDTMF(ev media.DTMFEvent) {
	c.agent.PushDTMF(agent.DTMF{Digit: ev.Digit, Duration: ev.Duration, Source: "rfc4733"})
	if b := c.bridge.Load(); b != nil {
		b.sendDestinationDTMF(ev)
	}
}

// callerSource is what the caller hears: the bridged destination, the
// ringback of a return call, or the agent.
func (c *Call) callerSource() ([]int16, bool) {
	if b := c.bridge.Load(); b != nil {
		return b.toCaller.Pop()
	}
	if r := c.ringback.Load(); r != nil {
		return r.Next()
	}
	return c.agent.NextFrame()
}

// converse waits for whatever ends the call and returns why, with the
// agent's outcome when it finished.
func (c *Call) converse() (reason transfer.EndReason, out *transfer.OutputContext) {
	expiry := c.timer.newTimer()
	defer expiry.Stop()
	for {
		select {
		case <-c.agent.Done():
			result := c.agent.Result()
			return transfer.EndAgentFinished, &result
		case <-c.rtp.Done():
			c.bye(transfer.EndMediaTimeout)
			return transfer.EndMediaTimeout, nil
		case <-c.dlg.Context().Done():
			return transfer.EndCallerHangup, nil
		case <-c.refreshed:
			c.timer.reset(expiry)
		case <-expiry.C:
			c.bye(transfer.EndSessionExpired)
			return transfer.EndSessionExpired, nil
		case <-c.s.closing:
			c.bye(transfer.EndShutdown)
			return transfer.EndShutdown, nil
		}
	}
}

// complete records the call's end on its transfer (COMPLETED). A store
// that is briefly away is retried for storeRetryFor, so the outcome of a
// call that was answered is not lost to a blip.
func (c *Call) complete(reason transfer.EndReason, out *transfer.OutputContext) {
	c.s.metrics.ended.WithLabelValues(string(reason)).Inc()
	deadline := time.Now().Add(storeRetryFor)
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
		_, err := c.s.svc.Complete(ctx, c.transfer.ID, reason, out, nil)
		cancel()
		if err == nil || errors.Is(err, transfer.ErrIllegalTransition) || errors.Is(err, transfer.ErrNotFound) {
			if err != nil {
				c.log.Warn("call end not recorded", "err", err)
			}
			return
		}
		if time.Now().Add(wait).After(deadline) {
			c.log.Error("recording the call's end failed; giving up", "err", err, "end_reason", reason)
			return
		}
		c.log.Warn("recording the call's end failed; retrying", "err", err, "retry_in", wait.String())
		time.Sleep(wait)
	}
}

// storeRetryFor bounds how long a call's end is retried against the store.
var storeRetryFor = 30 * time.Second

// release frees the call's media ports and agent session.
func (c *Call) release() {
	if m := c.rtpSession(); m != nil {
		m.Close()
	}
	c.agent.Close()
	c.s.cfg.Ports.Release(c.ports)
	_ = c.dlg.Close()
}

// inDialogRequest starts a request of ours inside the caller's dialog: to
// the caller's Contact, over the call's transport, with our Contact for it.
func (c *Call) inDialogRequest(method sip.RequestMethod) *sip.Request {
	req := sip.NewRequest(method, c.dlg.InviteRequest.Contact().Address)
	req.SetTransport(c.dlg.InviteRequest.Transport())
	req.AppendHeader(c.s.contactFor(req.Transport()))
	c.s.fromListener(req)
	return req
}

// bye hangs up the call from our side, with a Reason header (RFC 3326).
func (c *Call) bye(reason transfer.EndReason) {
	if c.hungUp.Swap(true) || c.dlg.LoadState() == sip.DialogStateEnded {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), byeTimeout)
	defer cancel()
	req := c.inDialogRequest(sip.BYE)
	req.AppendHeader(reasonHeader(string(reason)))
	if err := c.dlg.WriteBye(ctx, req); err != nil {
		c.log.Info("BYE not confirmed", "err", err)
	}
}

func (c *Call) onAck(req *sip.Request, tx sip.ServerTransaction) {
	c.ackAnswer(req)
	if err := c.dlg.ReadAck(req, tx); err != nil {
		c.log.Debug("ACK ignored", "err", err)
	}
}

func (c *Call) onBye(req *sip.Request, tx sip.ServerTransaction) {
	c.hungUp.Store(true)
	if err := c.dlg.ReadBye(req, tx); err != nil {
		c.s.respond(req, tx, sip.StatusBadRequest, "Bad Request")
	}
}

// onOffer handles a re-INVITE or UPDATE from the caller, and its session
// timer: a refresh restarts the expiry.
func (c *Call) onOffer(req *sip.Request, tx sip.ServerTransaction) {
	interval, reject := negotiateSessionTimer(req, c.s.cfg.MinSE)
	if reject != nil {
		c.s.respond(req, tx, statusIntervalTooSmall, "Session Interval Too Small", reject)
		return
	}
	if !c.s.respondOffer(&c.dlg.Dialog, &c.leg, req, tx, func() []sip.Header {
		c.timer.refresh(interval)
		return c.timer.headers()
	}) {
		return
	}
	select {
	case c.refreshed <- struct{}{}:
	default:
	}
}

func (c *Call) onInfo(req *sip.Request, tx sip.ServerTransaction) {
	c.s.readInfo(&c.dlg.Dialog, req, tx, func(d agent.DTMF) {
		c.agent.PushDTMF(d)
		if b := c.bridge.Load(); b != nil {
			b.sendDestinationDTMF(media.DTMFEvent{Digit: d.Digit, Duration: d.Duration})
		}
	})
}

// readInfo answers an INFO, handing the DTMF it carries to deliver first,
// so key presses sent one after another arrive in order.
func (s *Server) readInfo(dlg *sipgo.Dialog, req *sip.Request, tx sip.ServerTransaction, deliver func(agent.DTMF)) {
	if !s.inOrder(dlg, req, tx) {
		return
	}
	if len(req.Body()) == 0 {
		s.respond(req, tx, sip.StatusOK, "OK") // keep-alive
		return
	}
	d, err := parseInfoDTMF(req)
	if err != nil {
		s.respond(req, tx, sip.StatusUnsupportedMediaType, "Unsupported Media Type",
			sip.NewHeader("Accept", "application/dtmf-relay, application/dtmf"))
		return
	}
	s.mediaMetrics.DTMFInfo()
	deliver(d)
	s.respond(req, tx, sip.StatusOK, "OK")
}

// onOther handles NOTIFY (the REFER return's progress) and REFER (not
// offered to callers: Handoff hands calls back, it is not moved by them).
func (c *Call) onOther(req *sip.Request, tx sip.ServerTransaction) {
	if req.Method == sip.REFER {
		c.s.respond(req, tx, sip.StatusForbidden, "Transfer Not Allowed")
		return
	}
	if !isReferEvent(req) {
		c.s.respond(req, tx, statusBadEvent, "Bad Event", sip.NewHeader("Allow-Events", "refer"))
		return
	}
	if !c.s.inOrder(&c.dlg.Dialog, req, tx) {
		return
	}
	// Answer first: the return step may send BYE as soon as it reads a
	// final NOTIFY, and the 200 must not come after that BYE.
	c.s.respond(req, tx, sip.StatusOK, "OK")
	select {
	case c.notifies <- req:
	default:
		c.log.Warn("NOTIFY dropped: the return step is not reading")
	}
}

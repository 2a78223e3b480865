package sip

import (
	"context"
	"errors"
	"log/slog"
	"sync"
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
	s        *Server
	log      *slog.Logger
	dlg      *sipgo.DialogServerSession
	tx       sip.ServerTransaction
	dialogID string
	callID   string
	transfer *transfer.Transfer
	ports    *media.Ports
	local    *media.LocalSDP
	agent    agent.Session
	timer    *sessionTimer

	mu             sync.Mutex
	media          *media.Session    // nil until the call is confirmed
	negotiated     media.Negotiated  // current remote description
	awaitingAnswer bool              // our SDP offer waits for the answer in an ACK
	answerErr      error             // the ACK's answer was unusable
	refreshed      chan struct{}     // a session refresh arrived (RFC 4028)
	notifies       chan *sip.Request // NOTIFYs for the return step
	ackTimedOut    atomic.Bool
	hungUp         atomic.Bool // the dialog has ended on the wire
}

// newCall takes the resources a call needs before it is answered: RTP
// ports, the agent session, and a dialog. On failure it returns the status
// to answer and frees what it took.
func (s *Server) newCall(req *sip.Request, tx sip.ServerTransaction, t *transfer.Transfer, log *slog.Logger) (*Call, int, string, []sip.Header) {
	dlg, err := s.dialogUA.ReadInvite(req, tx)
	if err != nil {
		return nil, sip.StatusBadRequest, "Bad Request", nil
	}
	if err := dlg.Respond(sip.StatusTrying, "Trying", nil); err != nil {
		return nil, sip.StatusRequestTerminated, "Request Terminated", nil
	}
	ports, err := s.cfg.Ports.Allocate()
	if err != nil {
		log.Warn("no RTP ports", "err", err)
		return nil, sip.StatusServiceUnavailable, "No Media Ports", []sip.Header{s.retryAfter()}
	}
	sess, err := s.cfg.Pipeline.Open(dlg.Context(), callInfo(req, t))
	if err != nil {
		s.cfg.Ports.Release(ports)
		log.Warn("agent unavailable", "err", err)
		return nil, sip.StatusServiceUnavailable, "Agent Unavailable", []sip.Header{s.retryAfter()}
	}
	c := &Call{
		s:         s,
		log:       log,
		dlg:       dlg,
		tx:        tx,
		dialogID:  dlg.ID,
		callID:    callID(req),
		transfer:  t,
		ports:     ports,
		local:     media.NewLocalSDP(s.cfg.MediaAddr, ports.Port, "handoff"),
		agent:     sess,
		refreshed: make(chan struct{}, 1),
		notifies:  make(chan *sip.Request, 8),
		timer:     &sessionTimer{},
	}
	if !s.addCall(c) {
		c.release()
		return nil, sip.StatusServiceUnavailable, "Shutting Down", []sip.Header{s.retryAfter()}
	}
	return c, 0, "", nil
}

// run answers the call, then lives it until it ends, then cleans up.
func (c *Call) run(offer *media.Description, negotiated media.Negotiated, received time.Time) {
	defer c.s.removeCall(c)
	defer c.release()

	if !c.answer(offer, negotiated, received) {
		return
	}
	reason, out, extra := c.converse()
	c.end(reason, out, extra)
}

// answer sends 200 OK and waits for the ACK. It reports whether the call
// is confirmed and its transfer ONGOING; if not, the transfer is left
// ACTIVE for a retry.
func (c *Call) answer(offer *media.Description, negotiated media.Negotiated, received time.Time) bool {
	var body []byte
	c.mu.Lock()
	if offer != nil {
		c.negotiated = negotiated
		body = c.local.Answer(negotiated, negotiated.RemoteDirection.Reverse())
	} else {
		// Delayed offer: we offer in the 200, the answer comes in the ACK.
		c.awaitingAnswer = true
		body = c.local.Offer(supportedCodecs, offerDTMFPayloadType, media.SendRecv)
	}
	c.mu.Unlock()

	res := sip.NewSDPResponseFromRequest(c.dlg.InviteRequest, body)
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

	if c.dlg.LoadState() != sip.DialogStateConfirmed || err != nil {
		code := sip.StatusRequestTerminated
		switch {
		case errors.Is(context.Cause(c.dlg.Context()), sip.ErrTransactionCanceled):
			c.log.Info("call cancelled before answer")
		case c.hungUp.Load():
			c.log.Info("caller hung up before ACK")
			code = sip.StatusOK
		default:
			c.log.Warn("no ACK for 200 OK", "err", err)
			code = sip.StatusOK
			c.ackTimedOut.Store(true)
			c.bye("ack_timeout")
		}
		c.s.metrics.invites.WithLabelValues(statusLabel(code)).Inc()
		c.s.unclaim(c.transfer.ID, c.callID, c.log)
		return false
	}
	c.s.metrics.invites.WithLabelValues(statusLabel(sip.StatusOK)).Inc()

	c.mu.Lock()
	answerErr := c.answerErr
	if c.awaitingAnswer && answerErr == nil {
		answerErr = errors.New("ACK carried no SDP answer")
	}
	c.awaitingAnswer = false
	c.mu.Unlock()

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

func (c *Call) startMedia() bool {
	c.mu.Lock()
	n := c.negotiated
	sess, err := media.NewSession(media.SessionConfig{
		Ports:           c.ports,
		Remote:          n.Remote,
		Codec:           n.Codec,
		DTMFPayloadType: n.DTMFPayloadType,
		RemoteDirection: n.RemoteDirection,
		OnAudio:         func(pcm []int16) { c.agent.PushAudio(agent.TrackCaller, pcm) },
		OnDTMF: func(ev media.DTMFEvent) {
			c.agent.PushDTMF(agent.DTMF{Digit: ev.Digit, Duration: ev.Duration, Source: "rfc4733"})
		},
		Source:     c.agent.NextFrame,
		RTPTimeout: c.s.cfg.RTPTimeout,
		Metrics:    c.s.media,
		Logger:     c.log,
	})
	if err == nil {
		c.media = sess
		sess.Start()
	}
	c.mu.Unlock()
	if err != nil {
		c.log.Error("media session failed", "err", err)
		c.bye(transfer.EndError)
		c.end(transfer.EndError, nil, nil)
		return false
	}
	return true
}

// converse waits for whatever ends the call and returns why, with the
// agent's outcome when it has one.
func (c *Call) converse() (reason string, out *transfer.OutputContext, extra func(*transfer.Transfer)) {
	expiry := c.timer.newTimer()
	defer expiry.Stop()
	for {
		select {
		case <-c.agent.Done():
			result := c.agent.Result()
			extra := c.s.returner.Return(c.dlg.Context(), c, result)
			return transfer.EndAgentFinished, &result, extra
		case <-c.media.Done():
			c.bye(transfer.EndMediaTimeout)
			return transfer.EndMediaTimeout, nil, nil
		case <-c.dlg.Context().Done():
			return transfer.EndCallerHangup, nil, nil
		case <-c.refreshed:
			c.timer.reset(expiry)
		case <-expiry.C:
			c.bye(EndSessionExpired)
			return EndSessionExpired, nil, nil
		case <-c.s.closing:
			c.bye(transfer.EndShutdown)
			return transfer.EndShutdown, nil, nil
		}
	}
}

// EndSessionExpired is the end reason when the caller stopped refreshing
// its session timer (RFC 4028).
const EndSessionExpired = "session_expired"

// end records the call's outcome on its transfer.
func (c *Call) end(reason string, out *transfer.OutputContext, extra func(*transfer.Transfer)) {
	if c.media != nil {
		c.media.Close()
		st := c.media.Stats()
		c.log.Info("call ended", "end_reason", reason, "rtp_in", st.PacketsIn, "rtp_out", st.PacketsOut, "rtp_lost", st.PacketsLost)
	}
	c.s.metrics.ended.WithLabelValues(reason).Inc()
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if _, err := c.s.svc.Complete(ctx, c.transfer.ID, reason, out, extra); err != nil {
		c.log.Error("recording the call's end failed", "err", err)
	}
}

// release frees the call's media ports and agent session.
func (c *Call) release() {
	if c.media != nil {
		c.media.Close()
	}
	c.agent.Close()
	c.s.cfg.Ports.Release(c.ports)
	_ = c.dlg.Close()
}

// bye hangs up the call from our side, with a Reason header (RFC 3326).
func (c *Call) bye(reason string) {
	if c.hungUp.Swap(true) || c.dlg.LoadState() == sip.DialogStateEnded {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), byeTimeout)
	defer cancel()
	req := sip.NewRequest(sip.BYE, c.dlg.InviteRequest.Contact().Address)
	req.SetTransport(c.dlg.InviteRequest.Transport())
	req.AppendHeader(sip.NewHeader("Reason", `Q.850;cause=16;text="`+reason+`"`))
	req.AppendHeader(c.s.contactFor(req.Transport()))
	if err := c.dlg.WriteBye(ctx, req); err != nil {
		c.log.Info("BYE not confirmed", "err", err)
	}
}

// Hangup ends the call with BYE; the return step uses it.
func (c *Call) Hangup(reason string) { c.bye(reason) }

// Transfer is the transfer this call serves.
func (c *Call) Transfer() *transfer.Transfer { return c.transfer }

// Notifies delivers NOTIFYs received in this call's dialog.
func (c *Call) Notifies() <-chan *sip.Request { return c.notifies }

// Dialog is the inbound dialog, for in-dialog requests of the return step.
func (c *Call) Dialog() *sipgo.DialogServerSession { return c.dlg }

// Log is the call's logger, carrying transfer_id and call_id.
func (c *Call) Log() *slog.Logger { return c.log }

func (c *Call) onAck(req *sip.Request, tx sip.ServerTransaction) {
	c.mu.Lock()
	if c.awaitingAnswer && len(req.Body()) > 0 {
		c.answerErr = c.takeAnswerLocked(req.Body())
		c.awaitingAnswer = c.answerErr != nil && c.media == nil
	}
	c.mu.Unlock()
	if err := c.dlg.ReadAck(req, tx); err != nil {
		c.log.Debug("ACK ignored", "err", err)
	}
}

// takeAnswerLocked applies the SDP answer to our offer.
func (c *Call) takeAnswerLocked(body []byte) error {
	d, err := media.ParseSDP(body)
	if err != nil {
		return err
	}
	n, err := media.Negotiate(d, supportedCodecs)
	if err != nil {
		return err
	}
	c.negotiated = n
	c.awaitingAnswer = false
	if c.media != nil {
		c.media.Update(n)
	}
	return nil
}

func (c *Call) onBye(req *sip.Request, tx sip.ServerTransaction) {
	c.hungUp.Store(true)
	if err := c.dlg.ReadBye(req, tx); err != nil {
		c.s.respond(req, tx, sip.StatusBadRequest, "Bad Request")
	}
}

// onOffer handles a re-INVITE or UPDATE: hold, resume, a new address or
// codec, or a session refresh.
func (c *Call) onOffer(req *sip.Request, tx sip.ServerTransaction) {
	if err := c.dlg.ReadRequest(req, tx); err != nil {
		c.s.respond(req, tx, sip.StatusInternalServerError, "CSeq Out Of Order", sip.NewHeader("Retry-After", "1"))
		return
	}
	c.mu.Lock()
	if c.awaitingAnswer {
		c.mu.Unlock()
		c.s.respond(req, tx, sip.StatusRequestPending, "Request Pending")
		return
	}
	var body []byte
	switch {
	case len(req.Body()) > 0:
		d, err := media.ParseSDP(req.Body())
		var n media.Negotiated
		if err == nil {
			n, err = media.Negotiate(d, supportedCodecs)
		}
		if err != nil {
			c.mu.Unlock()
			c.s.respond(req, tx, sip.StatusNotAcceptableHere, "Not Acceptable Here", warning(err))
			return
		}
		c.negotiated = n
		if c.media != nil { // else startMedia picks it up
			c.media.Update(n)
		}
		body = c.local.Answer(n, n.RemoteDirection.Reverse())
	case req.IsInvite():
		// A re-INVITE without SDP asks for our offer; the answer is in its ACK.
		c.awaitingAnswer = true
		body = c.local.Offer(supportedCodecs, offerDTMFPayloadType, media.SendRecv)
	}
	c.mu.Unlock()

	timer, reject := negotiateSessionTimer(req, c.s.cfg.MinSE)
	if reject != nil {
		c.s.respond(req, tx, statusIntervalTooSmall, "Session Interval Too Small", reject)
		return
	}
	c.timer.refresh(timer)
	select {
	case c.refreshed <- struct{}{}:
	default:
	}
	var res *sip.Response
	if body != nil {
		res = sip.NewSDPResponseFromRequest(req, body)
	} else {
		res = sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil)
	}
	res.AppendHeader(c.s.contactFor(req.Transport()))
	for _, h := range c.timer.headers() {
		res.AppendHeader(h)
	}
	if err := tx.Respond(res); err != nil {
		c.log.Debug("re-INVITE answer failed", "err", err)
	}
}

func (c *Call) onInfo(req *sip.Request, tx sip.ServerTransaction) {
	if err := c.dlg.ReadRequest(req, tx); err != nil {
		c.s.respond(req, tx, sip.StatusInternalServerError, "CSeq Out Of Order", sip.NewHeader("Retry-After", "1"))
		return
	}
	if len(req.Body()) == 0 {
		c.s.respond(req, tx, sip.StatusOK, "OK") // keep-alive
		return
	}
	d, err := parseInfoDTMF(req)
	if err != nil {
		c.s.respond(req, tx, sip.StatusUnsupportedMediaType, "Unsupported Media Type",
			sip.NewHeader("Accept", "application/dtmf-relay, application/dtmf"))
		return
	}
	c.s.metrics.infoDTMF.Inc()
	c.agent.PushDTMF(d)
	c.s.respond(req, tx, sip.StatusOK, "OK")
}

// onOther handles NOTIFY (for the return step) and REFER (not offered to
// callers: Handoff hands calls back, it is not transferred away by them).
func (c *Call) onOther(req *sip.Request, tx sip.ServerTransaction) {
	if req.Method == sip.REFER {
		c.s.respond(req, tx, sip.StatusForbidden, "Transfer Not Allowed")
		return
	}
	select {
	case c.notifies <- req:
	default:
		c.log.Warn("NOTIFY dropped: return step not reading")
	}
	c.s.respond(req, tx, sip.StatusOK, "OK")
}

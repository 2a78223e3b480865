package sip

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/handoff/handoff/transfer"
)

// ReturnConfig tunes how finished calls are handed back.
type ReturnConfig struct {
	// ReferTimeout bounds the wait for the REFER's final NOTIFY.
	ReferTimeout time.Duration
	// RingTimeout bounds the wait for the return INVITE's answer (then CANCEL).
	RingTimeout time.Duration
	// Fallback is applied when a REFER or INVITE return fails: BYE (the
	// default) or REFER (only after a failed INVITE, to the same returnUri).
	Fallback transfer.ReturnType
	// ContextEncoding is how the outcome rides on the Refer-To URI (and the
	// return INVITE): ContextHeaders (the default), ContextParams or
	// ContextUUI.
	ContextEncoding ContextEncoding
	// MaxContextBytes caps the encoded outcome; past it variables are
	// dropped (in key order, last first) and a truncation marker is added.
	MaxContextBytes int
	// UUIPassthrough sends the inbound User-to-User value back on the
	// return (in the Refer-To URI, as a header of the return INVITE) when
	// neither the returnUri nor ContextUUI gives one. The configuration's
	// default is on (DefaultUUIPassthrough); the zero value is off.
	UUIPassthrough bool
}

// ContextEncoding is how the agent's outcome rides on a return URI.
type ContextEncoding string

const (
	// ContextHeaders: URI headers, which become headers of the transferee's INVITE.
	ContextHeaders ContextEncoding = "headers"
	// ContextParams: URI parameters.
	ContextParams ContextEncoding = "params"
	// ContextUUI: URI headers, and the outcome also as User-to-User (hex):
	// inside the Refer-To URI for REFER, a header of the return INVITE.
	ContextUUI ContextEncoding = "uui"
)

// ParseContextEncoding reads an encoding as configured: headers, params or
// uui.
func ParseContextEncoding(s string) (ContextEncoding, error) {
	switch e := ContextEncoding(s); e {
	case ContextHeaders, ContextParams, ContextUUI:
		return e, nil
	}
	return "", fmt.Errorf("%q: want headers, params or uui", s)
}

// Defaults of the ReturnConfig fields left zero.
const (
	DefaultReferTimeout    = 30 * time.Second
	DefaultRingTimeout     = 60 * time.Second
	DefaultFallback        = transfer.ReturnBye
	DefaultContextEncoding = ContextHeaders
	DefaultMaxContextBytes = 1024
	DefaultUUIPassthrough  = true
)

func (c *ReturnConfig) defaults() {
	if c.ReferTimeout <= 0 {
		c.ReferTimeout = DefaultReferTimeout
	}
	if c.RingTimeout <= 0 {
		c.RingTimeout = DefaultRingTimeout
	}
	if c.Fallback == "" {
		c.Fallback = DefaultFallback
	}
	if c.ContextEncoding == "" {
		c.ContextEncoding = DefaultContextEncoding
	}
	if c.MaxContextBytes <= 0 {
		c.MaxContextBytes = DefaultMaxContextBytes
	}
}

// statusBadEvent is 489 Bad Event (RFC 6665).
const statusBadEvent = 489

// handBack returns the call as its transfer says, applies the fallback when
// that fails, and records the result on the (already COMPLETED) transfer.
func (c *Call) handBack(out transfer.OutputContext) {
	method := transfer.ReturnBye
	if c.transfer.Type == transfer.TypeSIP && c.transfer.SIP != nil && c.transfer.SIP.ReturnTransferType != "" {
		method = c.transfer.SIP.ReturnTransferType
	}
	if c.followedRefer() != "" {
		method = transfer.ReturnRefer // the SIP agent's REFER, followed
	}
	res := &transfer.ReturnResult{Method: method, StartedAt: c.s.svc.Now(), AgentLeg: c.agentLegResult()}
	switch method {
	case transfer.ReturnRefer:
		c.returnRefer(out, res)
	case transfer.ReturnInvite:
		c.returnInvite(out, res)
	default:
		c.bye(transfer.EndAgentFinished)
		res.Result = transfer.ReturnSucceeded
	}
	if res.Result == transfer.ReturnFailed {
		c.log.Warn("return failed", "method", method, "sip_code", res.SIPCode, "reason", res.Reason)
		c.fallback(method, out, res)
	}
	if res.EndedAt.IsZero() {
		res.EndedAt = c.s.svc.Now()
	}
	c.s.metrics.returns.WithLabelValues(string(method), res.Result).Inc()
	c.recordReturn(res)
}

// fallback hands the call back another way after a failed return.
func (c *Call) fallback(failed transfer.ReturnType, out transfer.OutputContext, res *transfer.ReturnResult) {
	if c.hungUp.Load() {
		return // nothing left to hand back
	}
	if c.s.cfg.Return.Fallback == transfer.ReturnRefer && failed == transfer.ReturnInvite {
		res.Fallback = transfer.ReturnRefer
		var referred transfer.ReturnResult
		c.returnRefer(out, &referred)
		if referred.Result == transfer.ReturnSucceeded {
			return
		}
	}
	res.Fallback = transfer.ReturnBye
	c.bye(transfer.EndAgentFinished)
}

func (c *Call) recordReturn(res *transfer.ReturnResult) {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if _, err := c.s.svc.Amend(ctx, c.transfer.ID, func(t *transfer.Transfer) { t.Return = res }); err != nil {
		c.log.Error("recording the return failed", "err", err)
	}
}

// fail records a failed return. reason is ours, for the IVR to read in
// returnResult.reason: never a Go error's text (log that instead).
func fail(res *transfer.ReturnResult, code int, reason string) {
	res.Result, res.SIPCode, res.Reason = transfer.ReturnFailed, code, reason
}

// seconds writes a timeout the way a reason shows it: "30 s", "0.7 s".
func seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + " s"
}

// returnRefer is the blind return: an in-dialog REFER to returnUri, then
// the implicit subscription's NOTIFYs tell how the transfer went (RFC 3515).
func (c *Call) returnRefer(out transfer.OutputContext, res *transfer.ReturnResult) {
	res.Method = transfer.ReturnRefer
	target, reason := c.referTarget(out)
	if reason != "" {
		fail(res, 0, reason)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.s.cfg.Return.ReferTimeout)
	defer cancel()
	req := c.inDialogRequest(sip.REFER)
	req.AppendHeader(sip.NewHeader("Refer-To", "<"+target+">"))
	req.AppendHeader(sip.NewHeader("Referred-By", "<"+req.Contact().Address.String()+">"))
	answer, err := c.dlg.Do(ctx, req)
	switch {
	case err != nil:
		c.log.Info("REFER got no answer", "err", err)
		fail(res, 0, c.referUnanswered(ctx, err))
		return
	case answer.StatusCode >= 300:
		fail(res, answer.StatusCode, "REFER rejected")
		return
	}
	res.SIPCode = answer.StatusCode
	c.awaitReferOutcome(ctx, res)
}

// awaitReferOutcome reads the REFER subscription's NOTIFYs until one is
// final (RFC 3515), the leg ends, or ctx does.
func (c *Call) awaitReferOutcome(ctx context.Context, res *transfer.ReturnResult) {
	for {
		select {
		case n := <-c.notifies:
			code, terminated := sipfragStatus(n)
			switch {
			case code >= 100 && code < 200 && !terminated:
				continue
			case code >= 200 && code < 300:
				res.Result, res.SIPCode = transfer.ReturnSucceeded, code
				c.bye(transfer.EndAgentFinished)
			case code >= 300:
				fail(res, code, "transfer failed at the target")
			default:
				fail(res, code, "subscription ended without a final status")
			}
			return
		case <-c.dlg.Context().Done():
			// The transferee tore our leg down after accepting the REFER:
			// the transfer went ahead (the common blind-transfer shortcut).
			res.Result, res.Reason = transfer.ReturnSucceeded, "caller leg ended after REFER accepted"
			return
		case <-ctx.Done():
			fail(res, res.SIPCode, "no final NOTIFY within "+seconds(c.s.cfg.Return.ReferTimeout))
			return
		}
	}
}

// isReferEvent reports whether a NOTIFY belongs to a REFER subscription
// (Event: refer, or its compact form o:).
func isReferEvent(req *sip.Request) bool {
	h := req.GetHeader("Event")
	if h == nil {
		h = req.GetHeader("o")
	}
	if h == nil {
		return false
	}
	ev, _, _ := strings.Cut(h.Value(), ";")
	return strings.EqualFold(strings.TrimSpace(ev), "refer")
}

// sipfragStatus reads the status code of a NOTIFY's message/sipfrag body
// ("SIP/2.0 200 OK") and whether the subscription has terminated.
func sipfragStatus(req *sip.Request) (code int, terminated bool) {
	if h := req.GetHeader("Subscription-State"); h != nil {
		terminated = strings.HasPrefix(strings.ToLower(strings.TrimSpace(h.Value())), "terminated")
	}
	line, _, _ := strings.Cut(string(req.Body()), "\n")
	fields := strings.Fields(line)
	if len(fields) >= 2 && strings.HasPrefix(fields[0], "SIP/") && len(fields[1]) == 3 {
		// A status is three digits, 100-699 (RFC 3261 §7.2); anything else
		// ("-1", "+20", "099") is no status at all.
		if c, err := strconv.Atoi(fields[1]); err == nil && c >= 100 && c <= 699 {
			code = c
		}
	}
	return code, terminated
}

// referUnanswered says, in our words, why a REFER got no final answer.
func (c *Call) referUnanswered(ctx context.Context, err error) string {
	switch {
	case ctx.Err() != nil:
		return "no answer to REFER within " + seconds(c.s.cfg.Return.ReferTimeout)
	case errors.Is(err, sip.ErrTransactionTimeout): // before the REFER timeout
		return "no answer to REFER within " + seconds(sip.Timer_F)
	case c.dlg.Context().Err() != nil:
		return "caller hung up before answering the REFER"
	}
	return "REFER could not be sent"
}

// referTarget is returnUri with the agent's outcome attached, or why there
// is none.
func (c *Call) referTarget(out transfer.OutputContext) (target, reason string) {
	if uri := c.followedRefer(); uri != "" {
		return uri, ""
	}
	if c.transfer.SIP == nil || c.transfer.SIP.ReturnURI == "" {
		return "", "no returnUri"
	}
	rc := newReturnContext(c.transfer, out, c.s.cfg.Return)
	target, err := withContext(c.transfer.SIP.ReturnURI, rc, c.s.cfg.Return.ContextEncoding)
	if err != nil {
		c.log.Warn("returnUri unusable", "err", err)
		return "", "returnUri is not a valid SIP URI"
	}
	return target, ""
}

package sip

import (
	"context"
	"errors"
	"strings"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/handoff/handoff/agent"
	"github.com/handoff/handoff/media"
	"github.com/handoff/handoff/transfer"
)

// bridgeDepth is how many 20 ms frames may wait between the legs (bounded
// delay when one leg's clock runs ahead of the other's).
const bridgeDepth = 5

// bridge carries audio between the caller and the destination of an
// INVITE return. Each leg decodes to PCM at its codec's rate and encodes
// with its own codec, so payload types map and PCMU<->PCMA transcode on
// their own; the queues keep each frame's rate, and the pacer of a leg
// whose codec runs at the other rate resamples (G.722 16 kHz <-> G.711
// 8 kHz), once.
type bridge struct {
	toDestination *media.FrameQueue
	toCaller      *media.FrameQueue
	dest          *returnLeg
}

func (b *bridge) sendDestinationDTMF(ev media.DTMFEvent) {
	if m := b.dest.session(); m != nil {
		_ = m.SendDTMF(ev) // not negotiated: the destination gets no DTMF
	}
}

// returnLeg is the outbound dialog of an INVITE return.
type returnLeg struct {
	leg
	call *Call
	dlg  *sipgo.DialogClientSession
	id   string
}

var errCredentialsRejected = errors.New("credentials rejected")

// returnInvite places a new call to returnUri, answers digest challenges
// with the transfer's credentials, and bridges it to the caller while the
// agent keeps listening to both sides, until either side hangs up.
func (c *Call) returnInvite(out transfer.OutputContext, res *transfer.ReturnResult) {
	res.Method = transfer.ReturnInvite
	ret := c.transfer.SIP
	var target sip.Uri
	if ret == nil || ret.ReturnURI == "" || sip.ParseUri(ret.ReturnURI, &target) != nil {
		fail(res, 0, "no usable returnUri")
		return
	}
	ports, err := c.s.cfg.Ports.Allocate()
	if err != nil {
		fail(res, 0, "no media ports")
		return
	}
	r := &returnLeg{leg: newLeg(c.s, ports), call: c}
	defer r.close()

	req := c.returnRequest(target, out, r.prefs.offer(r.local, c.returnOfferOptions(target)))
	// The caller hanging up while it rings cancels the return call.
	ringCtx, cancel := context.WithTimeout(c.dlg.Context(), c.s.cfg.Return.RingTimeout)
	defer cancel()
	c.s.fromListener(req)
	r.dlg, err = c.s.dialogUA.WriteInvite(ringCtx, req)
	if err != nil {
		fail(res, 0, "INVITE not sent: "+err.Error())
		return
	}
	var username, password string
	if ret.Auth != nil {
		username, password = ret.Auth.Username, ret.Auth.Password
	}
	challenges := 0
	err = r.dlg.WaitAnswer(ringCtx, sipgo.AnswerOptions{
		Username: username,
		Password: password,
		OnResponse: func(resp *sip.Response) error {
			switch resp.StatusCode {
			case sip.StatusUnauthorized, sip.StatusProxyAuthRequired:
				challenges++
				if challenges > 1 && !staleChallenge(resp) {
					return errCredentialsRejected
				}
			case sip.StatusRinging, sip.StatusSessionInProgress:
				c.earlyMedia(r, resp)
			}
			return nil
		},
	})
	c.ringback.Store(nil)
	if err != nil {
		c.bridge.Store(nil)
		var rejected *sipgo.ErrDialogResponse
		switch {
		case errors.As(err, &rejected):
			fail(res, rejected.Res.StatusCode, "return call rejected")
		case errors.Is(err, errCredentialsRejected):
			fail(res, sip.StatusUnauthorized, "credentials rejected")
		case c.dlg.Context().Err() != nil:
			fail(res, 0, "caller hung up while the return call rang")
		case ringCtx.Err() != nil:
			fail(res, sip.StatusRequestTerminated, "no answer before the ring timeout")
		default:
			fail(res, 0, "return call failed: "+err.Error())
		}
		return
	}
	if err := r.dlg.Ack(context.Background()); err != nil {
		// The destination answered but cannot be confirmed: a bridge would
		// carry no call. Hang it up and let the fallback hand the call back.
		r.bye()
		fail(res, sip.StatusOK, "return call answered but the ACK could not be sent: "+err.Error())
		return
	}
	r.id = r.dlg.ID
	c.s.addDialog(r.id, r)
	if len(r.dlg.InviteResponse.Body()) > 0 {
		if err := r.takeAnswer(r.dlg.InviteResponse.Body()); err != nil {
			c.hangupBoth(r)
			fail(res, sip.StatusOK, "return call answered with unusable SDP: "+err.Error())
			return
		}
	}
	if err := c.startBridge(r); err != nil {
		c.hangupBoth(r)
		fail(res, sip.StatusOK, "bridge failed: "+err.Error())
		return
	}
	c.agent.ListenOnly()
	res.Result, res.SIPCode, res.EndedAt = transfer.ReturnSucceeded, sip.StatusOK, c.s.svc.Now()
	c.recordReturn(res)
	c.log.Info("return call bridged", "return_call_id", r.dlg.InviteRequest.CallID().Value())

	c.runBridge(r)
	res.BridgeEndedAt = c.s.svc.Now()
}

// returnOfferOptions: the return call offers SRTP when the policy requires
// it, or (policy optional) when the destination is reached over TLS
// (sips: or transport=tls), so encrypted signalling carries encrypted
// media. The bridge works on PCM, so the caller's leg and this one need
// not agree: either may be SRTP and the other plain RTP.
func (c *Call) returnOfferOptions(target sip.Uri) []media.OfferOption {
	tp, _ := target.UriParams.Get("transport")
	secure := strings.EqualFold(target.Scheme, "sips") || strings.EqualFold(tp, "tls")
	if c.s.cfg.SRTP == SRTPRequired || (c.s.cfg.SRTP == SRTPOptional && secure) {
		return []media.OfferOption{media.OfferSRTP()}
	}
	return nil
}

// returnRequest builds the return INVITE: the destination sees the
// original caller (From user and display name, P-Asserted-Identity) and
// the agent's outcome in X-Handoff- headers.
func (c *Call) returnRequest(target sip.Uri, out transfer.OutputContext, offer []byte) *sip.Request {
	req := sip.NewRequest(sip.INVITE, target)
	if tp, ok := target.UriParams.Get("transport"); ok && tp != "" {
		req.SetTransport(strings.ToUpper(tp))
	}
	req.SetBody(offer)
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	in := c.dlg.InviteRequest
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: "handoff", Host: c.s.host, Port: c.s.port}, Params: sip.NewParams()}
	if f := in.From(); f != nil {
		from.DisplayName = f.DisplayName
		if f.Address.User != "" {
			from.Address.User = f.Address.User
		}
	}
	from.Params.Add("tag", sip.GenerateTagN(16))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: target, Params: sip.NewParams()})
	if pai := in.GetHeader("P-Asserted-Identity"); pai != nil {
		req.AppendHeader(sip.NewHeader("P-Asserted-Identity", pai.Value()))
	} else if f := in.From(); f != nil {
		req.AppendHeader(sip.NewHeader("P-Asserted-Identity", "<"+f.Address.Addr()+">"))
	}
	req.AppendHeader(sip.NewHeader("X-Handoff-Transfer-Id", c.transfer.ID))
	for _, f := range contextFields(out) {
		req.AppendHeader(sip.NewHeader(f[0], sanitizeHeaderValue(f[1])))
	}
	req.AppendHeader(c.s.contactFor(req.Transport()))
	return req
}

// sanitizeHeaderValue keeps a value on one header line.
func sanitizeHeaderValue(v string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, v)
}

// staleChallenge reports whether a 401/407 only says our nonce went stale.
func staleChallenge(resp *sip.Response) bool {
	for _, name := range []string{"WWW-Authenticate", "Proxy-Authenticate"} {
		if h := resp.GetHeader(name); h != nil && strings.Contains(strings.ToLower(h.Value()), "stale=true") {
			return true
		}
	}
	return false
}

// earlyMedia plays the destination's early media (183 with SDP) to the
// caller, or a ringback tone for a plain 180.
func (c *Call) earlyMedia(r *returnLeg, resp *sip.Response) {
	if len(resp.Body()) == 0 {
		if c.bridge.Load() == nil {
			c.ringback.CompareAndSwap(nil, media.NewRingback())
		}
		return
	}
	if err := r.takeAnswer(resp.Body()); err != nil {
		c.log.Info("early media SDP unusable", "err", err)
		return
	}
	if err := c.startBridge(r); err != nil {
		c.log.Info("early media failed", "err", err)
		return
	}
	c.ringback.Store(nil)
}

// startBridge starts the destination's RTP session (once) and connects it
// to the caller.
func (c *Call) startBridge(r *returnLeg) error {
	if c.bridge.Load() != nil {
		return nil
	}
	b := &bridge{toDestination: media.NewFrameQueue(bridgeDepth), toCaller: media.NewFrameQueue(bridgeDepth), dest: r}
	err := r.startMedia(media.SessionConfig{
		OnAudio: func(pcm []int16) {
			b.toCaller.Push(pcm)
			c.agent.PushAudio(agent.TrackDestination, pcm)
		},
		OnDTMF: func(ev media.DTMFEvent) {
			if m := c.session(); m != nil {
				_ = m.SendDTMF(ev)
			}
		},
		Source:     b.toDestination.Pop,
		RTPTimeout: c.s.cfg.RTPTimeout,
		Metrics:    c.s.media,
		Logger:     c.log.With("leg", "return"),
	})
	if err != nil {
		return err
	}
	c.bridge.Store(b)
	return nil
}

// runBridge waits until either side ends the bridged call, then hangs up
// the other.
func (c *Call) runBridge(r *returnLeg) {
	select {
	case <-c.dlg.Context().Done():
	case <-r.dlg.Context().Done():
	case <-c.media.Done():
	case <-r.media.Done():
	case <-c.s.closing:
	}
	c.hangupBoth(r)
}

func (c *Call) hangupBoth(r *returnLeg) {
	c.bridge.Store(nil)
	c.bye(transfer.EndAgentFinished)
	r.bye()
}

func (r *returnLeg) bye() {
	if r.dlg.LoadState() == sip.DialogStateEnded {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), byeTimeout)
	defer cancel()
	if err := r.dlg.Bye(ctx); err != nil {
		r.call.log.Info("BYE to the return call not confirmed", "err", err)
	}
}

// close frees the leg's media and dialog.
func (r *returnLeg) close() {
	if r.id != "" {
		r.call.s.removeDialog(r.id)
	}
	if m := r.session(); m != nil {
		m.Close()
	}
	r.call.s.cfg.Ports.Release(r.ports)
	if r.dlg != nil {
		_ = r.dlg.Close()
	}
}

func (r *returnLeg) onAck(req *sip.Request, tx sip.ServerTransaction) { r.ackAnswer(req) }

func (r *returnLeg) onBye(req *sip.Request, tx sip.ServerTransaction) {
	if err := r.dlg.ReadBye(req, tx); err != nil {
		r.call.log.Debug("BYE from the return call", "err", err)
	}
}

func (r *returnLeg) onOffer(req *sip.Request, tx sip.ServerTransaction) {
	r.call.s.respondOffer(&r.dlg.Dialog, &r.leg, req, tx, nil)
}

func (r *returnLeg) onInfo(req *sip.Request, tx sip.ServerTransaction) {
	r.call.s.readInfo(&r.dlg.Dialog, req, tx, func(d agent.DTMF) {
		if m := r.call.session(); m != nil {
			_ = m.SendDTMF(media.DTMFEvent{Digit: d.Digit, Duration: d.Duration})
		}
	})
}

func (r *returnLeg) onOther(req *sip.Request, tx sip.ServerTransaction) {
	r.call.s.respond(req, tx, sip.StatusForbidden, "Not Allowed On The Return Call")
}

package sip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/handoff/handoff/media"
	"github.com/handoff/handoff/transfer"
)

// outLeg is a dialog Handoff places itself: the call of an INVITE return,
// or the SIP agent leg. It dials (answering digest challenges), confirms
// the answer, sends in-dialog requests and hangs up; what the dialog
// carries is up to the type that embeds it.
type outLeg struct {
	leg
	s   *Server
	log *slog.Logger
	dlg *sipgo.DialogClientSession
	id  string // the dialog's id once it is routed (confirm)
}

func newOutLeg(s *Server, ports *media.Ports, log *slog.Logger) outLeg {
	return outLeg{leg: newLeg(s, ports), s: s, log: log}
}

// Why a placed INVITE's answer could not be used (confirm).
var (
	errAckFailed      = errors.New("the ACK could not be sent")
	errAnswerUnusable = errors.New("the SDP answer is unusable")
)

// dial sends the INVITE req and waits for its answer, handing 180 and 183
// responses to onProgress meanwhile (nil: none). It answers 401 and 407
// itself: sipgo would compute the digest over the Request-URI without its
// parameters, which a strict server refuses (RFC 3261 §22.4 wants the
// Request-URI itself, livekit/sip#817), so uri= is exactly the Request-URI
// we send, on every attempt. Cancelling ctx CANCELs the INVITE.
func (o *outLeg) dial(ctx context.Context, req *sip.Request, creds *transfer.Credentials, onProgress func(*sip.Response)) error {
	for attempt := 0; ; attempt++ {
		o.s.fromListener(req)
		dlg, err := o.s.dialogUA.WriteInvite(ctx, req)
		if err != nil {
			return &notSentError{err}
		}
		o.dlg = dlg
		err = dlg.WaitAnswer(ctx, sipgo.AnswerOptions{OnResponse: func(resp *sip.Response) error {
			if onProgress != nil && (resp.StatusCode == sip.StatusRinging || resp.StatusCode == sip.StatusSessionInProgress) {
				onProgress(resp)
			}
			return nil
		}})
		chal := challengeOf(err)
		if chal == nil || creds == nil {
			return err
		}
		if attempt >= maxAuthAttempts || (attempt > 0 && !staleChallenge(chal)) {
			return &credentialsRejectedError{status: chal.StatusCode}
		}
		if req, err = authorized(dlg.InviteRequest, chal, creds); err != nil {
			return err
		}
		_ = dlg.Close()
	}
}

// confirm ACKs the answered INVITE, routes the dialog's in-dialog requests
// to h, and takes the SDP answer the 200 carries. Its errors wrap
// errAckFailed or errAnswerUnusable.
func (o *outLeg) confirm(h dialogHandler) error {
	if err := o.dlg.Ack(context.Background()); err != nil {
		return fmt.Errorf("%w: %w", errAckFailed, err)
	}
	o.id = o.dlg.ID
	o.s.addDialog(o.id, h)
	if body := o.dlg.InviteResponse.Body(); len(body) > 0 {
		if err := o.takeAnswer(body); err != nil {
			return fmt.Errorf("%w: %w", errAnswerUnusable, err)
		}
	}
	return nil
}

// request starts a request of ours inside the dialog: to the peer's
// Contact (its remote target), with our Contact for the transport.
func (o *outLeg) request(method sip.RequestMethod) *sip.Request {
	target := o.dlg.InviteRequest.Recipient
	if c := o.dlg.InviteResponse.Contact(); c != nil {
		target = c.Address
	}
	req := sip.NewRequest(method, target)
	req.SetTransport(o.dlg.InviteRequest.Transport())
	req.AppendHeader(o.s.contactFor(req.Transport()))
	o.s.fromListener(req)
	return req
}

// bye hangs the dialog up, with extra headers (a Reason) if any.
func (o *outLeg) bye(hdrs ...sip.Header) {
	if o.dlg == nil || o.dlg.LoadState() == sip.DialogStateEnded {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), byeTimeout)
	defer cancel()
	req := o.request(sip.BYE)
	for _, h := range hdrs {
		req.AppendHeader(h)
	}
	if err := o.dlg.WriteBye(ctx, req); err != nil {
		o.log.Info("BYE not confirmed", "err", err)
	}
}

// close frees the leg's media, ports and dialog.
func (o *outLeg) close() {
	if o.id != "" {
		o.s.removeDialog(o.id)
	}
	if m := o.rtpSession(); m != nil {
		m.Close()
	}
	o.s.cfg.Ports.Release(o.ports)
	if o.dlg != nil {
		_ = o.dlg.Close()
	}
}

// outboundInvite is an INVITE Handoff places on behalf of the caller of in
// (an INVITE return, the agent leg): to target, with our offer, showing the
// original caller (From user and display name, P-Asserted-Identity) and
// sent over the target's transport= if it has one.
func (s *Server) outboundInvite(in *sip.Request, target sip.Uri, offer []byte) *sip.Request {
	req := sip.NewRequest(sip.INVITE, target)
	if tp, ok := target.UriParams.Get("transport"); ok && tp != "" {
		req.SetTransport(strings.ToUpper(tp))
	}
	req.SetBody(offer)
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: "handoff", Host: s.host, Port: s.port}, Params: sip.NewParams()}
	if f := in.From(); f != nil {
		if len(f.DisplayName) <= maxInboundValue && !hasControl(f.DisplayName) {
			from.DisplayName = f.DisplayName
		}
		if f.Address.User != "" {
			from.Address.User = f.Address.User
		}
	}
	from.Params.Add("tag", sip.GenerateTagN(16))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: target, Params: sip.NewParams()})
	// The inbound P-Asserted-Identity when it is at most maxInboundValue
	// bytes without control characters, else the inbound From URI.
	if pai := in.GetHeader("P-Asserted-Identity"); pai != nil && len(pai.Value()) <= maxInboundValue && !hasControl(pai.Value()) {
		req.AppendHeader(sip.NewHeader("P-Asserted-Identity", pai.Value()))
	} else if f := in.From(); f != nil {
		req.AppendHeader(sip.NewHeader("P-Asserted-Identity", "<"+f.Address.Addr()+">"))
	}
	req.AppendHeader(s.contactFor(req.Transport()))
	return req
}

// srtpOfferOptions: an INVITE we place offers SRTP when policy requires
// it, or (policy optional) when the target is reached over TLS (sips: or
// transport=tls), so encrypted signalling carries encrypted media. The
// legs meet in PCM, so each may be SRTP or plain RTP on its own.
func srtpOfferOptions(policy SRTPPolicy, target sip.Uri) []media.OfferOption {
	tp, _ := target.UriParams.Get("transport")
	secure := strings.EqualFold(target.Scheme, "sips") || strings.EqualFold(tp, "tls")
	if policy == SRTPRequired || (policy == SRTPOptional && secure) {
		return []media.OfferOption{media.OfferSRTP()}
	}
	return nil
}

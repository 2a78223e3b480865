package sip

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/handoff/handoff/agent"
	"github.com/handoff/handoff/media"
	"github.com/handoff/handoff/transfer"
)

// offerDTMFPayloadType is the telephone-event payload type of our offers.
const offerDTMFPayloadType = 101

// storeTimeout bounds one store call made while a SIP transaction waits.
const storeTimeout = 5 * time.Second

// onInvite admits a new call (or routes a re-INVITE to its call), then
// runs it. The handler goroutine owns the call until it ends: sipgo ends
// the INVITE transaction when the handler returns.
func (s *Server) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	if req.To() != nil && req.To().Params.Has("tag") {
		s.inDialog(dialogHandler.onOffer)(req, tx)
		return
	}
	a, rej := s.admit(req, tx, time.Now())
	if rej == nil {
		var c *Call
		if c, rej = s.newCall(tx, a); rej == nil {
			c.run(a) // until the call ends
			return
		}
		s.unclaim(a.transfer.ID, callID(req), a.log)
	}
	s.refuse(req, tx, rej)
	s.metrics.invites.WithLabelValues(statusLabel(rej.status)).Inc()
}

// admission is what an admitted INVITE brings to its call.
type admission struct {
	req        *sip.Request
	received   time.Time
	log        *slog.Logger
	transfer   *transfer.Transfer // claimed for this call
	offer      *media.Description // nil: the INVITE carried no SDP
	negotiated media.Negotiated
	interval   time.Duration     // the session timer's; 0 for none
	inbound    *transfer.Inbound // what the INVITE said about its call
}

// admit runs the checks an INVITE must pass to become a call, and claims
// its transfer for it.
func (s *Server) admit(req *sip.Request, tx sip.ServerTransaction, received time.Time) (*admission, *rejection) {
	log := s.log.With("call_id", callID(req))
	if rej := s.screen(req, received, log); rej != nil {
		return nil, rej
	}
	// 100 Trying at once: correlation and the claim touch the store (an
	// fsync, or a Redis round trip), and under load that must not make the
	// caller retransmit. Only after authentication: nothing for scanners.
	if err := tx.Respond(sip.NewResponseFromRequest(req, sip.StatusTrying, "Trying", nil)); err != nil {
		log.Debug("100 Trying not sent", "err", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	in := s.readInbound(req, log)
	t, rej := s.findTransfer(ctx, req, in, log)
	if rej != nil {
		return nil, rej
	}
	a := &admission{req: req, received: received, log: log.With("transfer_id", t.ID), transfer: t, inbound: in}
	if rej := a.readOffer(s.cfg.SRTP, s.mediaPrefs()); rej != nil {
		return nil, rej
	}
	var minSE sip.Header
	if a.interval, minSE = negotiateSessionTimer(req, s.cfg.MinSE); minSE != nil {
		return nil, reject(statusIntervalTooSmall, "Session Interval Too Small", minSE)
	}
	if rej := s.claim(ctx, a); rej != nil {
		return nil, rej
	}
	return a, nil
}

// screen refuses what must not touch the store: INVITEs while draining,
// from sources not allowed, or without the headers a dialog needs.
func (s *Server) screen(req *sip.Request, received time.Time, log *slog.Logger) *rejection {
	if s.draining.Load() {
		return s.unavailable("Draining")
	}
	switch v, h := s.auth.check(req, received); v {
	case challenge:
		return reject(sip.StatusUnauthorized, "Unauthorized", h)
	case forbidden:
		log.Info("INVITE refused", "source", req.Source())
		return reject(sip.StatusForbidden, "Forbidden")
	}
	if req.Contact() == nil || req.CSeq() == nil || req.From() == nil || !req.From().Params.Has("tag") {
		return reject(sip.StatusBadRequest, "Missing Contact, CSeq or From tag")
	}
	return nil
}

// findTransfer correlates an INVITE with its ACTIVE transfer. One that
// names two transfers is refused with 485 Ambiguous (RFC 3261 §21.4.23)
// and a Warning saying where it named them.
func (s *Server) findTransfer(ctx context.Context, req *sip.Request, in *transfer.Inbound, log *slog.Logger) (*transfer.Transfer, *rejection) {
	t, err := s.correlate(ctx, req, in)
	var ambiguous *ambiguousError
	switch {
	case errors.As(err, &ambiguous):
		log.Info("INVITE refused: it names two transfers", "transfer_id", ambiguous.first.t.ID, "by", ambiguous.first.source,
			"other_transfer_id", ambiguous.second.t.ID, "other_by", ambiguous.second.source)
		return nil, reject(sip.StatusAmbiguous, "Ambiguous", warning(err))
	case errors.Is(err, transfer.ErrNotFound):
		log.Info("INVITE for no active transfer", "request_uri", req.Recipient.String())
		return nil, reject(sip.StatusNotFound, "Not Found")
	case err != nil:
		log.Error("correlation failed", "err", err)
		return nil, s.unavailable("Store Unavailable")
	}
	return t, nil
}

// readOffer negotiates the INVITE's SDP offer, if it has one.
func (a *admission) readOffer(srtp SRTPPolicy, prefs mediaPrefs) *rejection {
	if len(a.req.Body()) == 0 {
		return nil
	}
	offer, err := media.ParseSDP(a.req.Body())
	if err == nil {
		a.negotiated, err = negotiateOffer(offer, srtp, prefs)
	}
	if err != nil {
		a.log.Info("SDP offer refused", "err", err)
		return reject(sip.StatusNotAcceptableHere, "Not Acceptable Here", warning(err))
	}
	a.offer = offer
	return nil
}

// claim holds the transfer for this call while it is set up, so a second
// INVITE for it is busy, and records what the INVITE said about its call.
func (s *Server) claim(ctx context.Context, a *admission) *rejection {
	t, err := s.svc.ClaimWith(ctx, a.transfer.ID, callID(a.req), s.cfg.NodeID, a.inbound)
	if err == nil {
		a.transfer = t
	}
	switch {
	case errors.Is(err, transfer.ErrClaimed):
		a.log.Info("transfer already claimed by another call")
		return reject(sip.StatusBusyHere, "Busy Here")
	case errors.Is(err, transfer.ErrNotActive), errors.Is(err, transfer.ErrNotFound):
		return reject(sip.StatusNotFound, "Not Found")
	case err != nil:
		a.log.Error("claim failed", "err", err)
		return s.unavailable("Store Unavailable")
	}
	return nil
}

// requestUser is the Request-URI's user part (unescaped), or the number of
// a tel: URI.
func requestUser(req *sip.Request) string {
	u := req.Recipient
	if u.Scheme == "tel" {
		s := strings.TrimPrefix(u.String(), "tel:")
		s, _, _ = strings.Cut(s, ";")
		return s
	}
	user, err := url.PathUnescape(u.User)
	if err != nil {
		return u.User
	}
	user, _, _ = strings.Cut(user, ";") // user parameters such as ;npdi
	return user
}

// numberCandidates turns a dialled string into the E.164 forms it may mean:
// "+19995550100" as is; "19995550100" with a plus; a national 10-digit
// number as NANP (+1); "00" as the international prefix. Visual separators
// are ignored.
func numberCandidates(s string) []string {
	plus := strings.HasPrefix(s, "+")
	var digits strings.Builder
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			digits.WriteRune(r)
		case r == '+' || r == '-' || r == '.' || r == '(' || r == ')' || r == ' ':
		default:
			return nil
		}
	}
	d := digits.String()
	if d == "" {
		return nil
	}
	if plus {
		return []string{"+" + d}
	}
	out := []string{"+" + d}
	if strings.HasPrefix(d, "00") && len(d) > 4 {
		out = append(out, "+"+d[2:])
	}
	if len(d) == 10 {
		out = append(out, "+1"+d)
	}
	return out
}

// callInfo is what the agent learns of the call: the transfer, and what
// its INVITE said (recorded on the transfer with the claim).
func callInfo(req *sip.Request, t *transfer.Transfer) agent.CallInfo {
	info := agent.CallInfo{
		TransferID:             t.ID,
		ExternalConversationID: t.ExternalConversationID,
		CallID:                 callID(req),
		Headers:                map[string]string{},
	}
	if t.InputContext != nil {
		info.Input = *t.InputContext
	}
	in := t.Inbound
	if in == nil {
		in = &transfer.Inbound{}
	}
	info.From, info.To = in.From, in.To
	if in.Headers != nil {
		info.Headers = in.Headers
	}
	if u := in.PrimaryUUI(); u != nil {
		info.UUI, info.UUIText = u.Value, u.Text
	}
	info.Identity = identityParams(in)
	return info
}

func (s *Server) unclaim(id, callID string, log interface{ Warn(string, ...any) }) {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if err := s.svc.Unclaim(ctx, id, callID); err != nil {
		log.Warn("unclaim failed", "err", err)
	}
}

// warning is a Warning header (RFC 3261 §20.43) explaining a refusal.
func warning(err error) sip.Header {
	text := strings.NewReplacer(`"`, `'`, "\r", " ", "\n", " ").Replace(err.Error())
	return sip.NewHeader("Warning", `399 handoff "`+text+`"`)
}

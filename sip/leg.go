package sip

import (
	"errors"
	"sync"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/handoff/handoff/media"
)

// leg is the media side of one dialog: our SDP, the negotiated remote
// description and the RTP session. The inbound call and the outbound leg of
// an INVITE return are both legs, so offer/answer lives here once.
type leg struct {
	mu             sync.Mutex
	local          *media.LocalSDP
	ports          *media.Ports
	media          *media.Session   // nil until the dialog is confirmed
	negotiated     media.Negotiated // current remote description
	awaitingAnswer bool             // our offer waits for the answer in an ACK
	answerErr      error            // the ACK's answer was unusable
}

func newLeg(s *Server, ports *media.Ports) leg {
	return leg{local: media.NewLocalSDP(s.cfg.MediaAddr, ports.Port, "handoff"), ports: ports}
}

// offerOrAnswer is our SDP for a dialog-creating exchange: the answer to
// offer, or (no offer) an offer whose answer must come in the ACK.
func (l *leg) offerOrAnswer(offer *media.Description, n media.Negotiated) []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	if offer == nil {
		l.awaitingAnswer = true
		return l.local.Offer(supportedCodecs, offerDTMFPayloadType, media.SendRecv)
	}
	l.negotiated = n
	return l.local.Answer(n, n.RemoteDirection.Reverse())
}

// takeAnswer applies an SDP answer to our offer.
func (l *leg) takeAnswer(body []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	n, err := negotiate(body)
	if err != nil {
		return err
	}
	l.negotiated = n
	l.awaitingAnswer = false
	if l.media != nil {
		l.media.Update(n)
	}
	return nil
}

// ackAnswer takes an SDP answer carried by an ACK, when one is due.
func (l *leg) ackAnswer(req *sip.Request) {
	l.mu.Lock()
	due := l.awaitingAnswer && len(req.Body()) > 0
	l.mu.Unlock()
	if due {
		err := l.takeAnswer(req.Body())
		l.mu.Lock()
		l.answerErr = err
		l.mu.Unlock()
	}
}

// confirmedAnswer reports what went wrong with the answer expected in the
// ACK of a dialog-creating exchange, if anything.
func (l *leg) confirmedAnswer() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	err := l.answerErr
	if l.awaitingAnswer && err == nil {
		err = errors.New("ACK carried no SDP answer")
	}
	l.awaitingAnswer = false
	return err
}

func negotiate(body []byte) (media.Negotiated, error) {
	d, err := media.ParseSDP(body)
	if err != nil {
		return media.Negotiated{}, err
	}
	return media.Negotiate(d, supportedCodecs)
}

// startMedia starts the leg's RTP session on the negotiated description.
func (l *leg) startMedia(cfg media.SessionConfig) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.negotiated
	cfg.Ports, cfg.Remote, cfg.Codec, cfg.DTMFPayloadType, cfg.RemoteDirection = l.ports, n.Remote, n.Codec, n.DTMFPayloadType, n.RemoteDirection
	sess, err := media.NewSession(cfg)
	if err != nil {
		return err
	}
	l.media = sess
	sess.Start()
	return nil
}

// session is the RTP session, nil before startMedia.
func (l *leg) session() *media.Session {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.media
}

// answerOffer handles an in-dialog offer (re-INVITE or UPDATE): hold,
// resume, a new address or codec, or a refresh without SDP. It returns the
// body to answer with (nil for an UPDATE without SDP) or a refusal.
func (l *leg) answerOffer(req *sip.Request) (body []byte, code int, reason string, hdr sip.Header) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.awaitingAnswer {
		return nil, sip.StatusRequestPending, "Request Pending", nil
	}
	switch {
	case len(req.Body()) > 0:
		n, err := negotiate(req.Body())
		if err != nil {
			return nil, sip.StatusNotAcceptableHere, "Not Acceptable Here", warning(err)
		}
		l.negotiated = n
		if l.media != nil { // else startMedia picks it up
			l.media.Update(n)
		}
		return l.local.Answer(n, n.RemoteDirection.Reverse()), 0, "", nil
	case req.IsInvite():
		// A re-INVITE without SDP asks for our offer; the answer is in its ACK.
		l.awaitingAnswer = true
		return l.local.Offer(supportedCodecs, offerDTMFPayloadType, media.SendRecv), 0, "", nil
	}
	return nil, 0, "", nil
}

// respondOffer runs an in-dialog offer through dlg (CSeq order) and l, and
// answers it; extra headers (session timer) are added to a 2xx.
func (s *Server) respondOffer(dlg *sipgo.Dialog, l *leg, req *sip.Request, tx sip.ServerTransaction, extra func() []sip.Header) bool {
	if err := dlg.ReadRequest(req, tx); err != nil {
		s.respond(req, tx, sip.StatusInternalServerError, "CSeq Out Of Order", sip.NewHeader("Retry-After", "1"))
		return false
	}
	body, code, reason, hdr := l.answerOffer(req)
	if code != 0 {
		if hdr != nil {
			s.respond(req, tx, code, reason, hdr)
		} else {
			s.respond(req, tx, code, reason)
		}
		return false
	}
	var res *sip.Response
	if body != nil {
		res = sip.NewSDPResponseFromRequest(req, body)
	} else {
		res = sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil)
	}
	res.AppendHeader(s.contactFor(req.Transport()))
	if extra != nil {
		for _, h := range extra() {
			res.AppendHeader(h)
		}
	}
	if err := tx.Respond(res); err != nil {
		s.log.Debug("answer to in-dialog offer failed", "call_id", callID(req), "err", err)
	}
	return true
}

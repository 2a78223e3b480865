package sip

import (
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/handoff/handoff/media"
)

// leg is the media side of one dialog: our SDP, the negotiated remote
// description and the RTP session (rtp). The inbound call and the outbound leg of
// an INVITE return are both legs, so offer/answer lives here once.
type leg struct {
	mu             sync.Mutex
	local          *media.LocalSDP
	ports          *media.Ports
	srtp           SRTPPolicy       // for offers we receive
	prefs          mediaPrefs       // codecs and comfort noise, both ways
	rtp            *media.Session   // the RTP session, nil until the dialog is confirmed
	negotiated     media.Negotiated // current remote description
	awaitingAnswer bool             // our offer waits for the answer in an ACK
	answerErr      error            // the ACK's answer was unusable
}

func newLeg(s *Server, ports *media.Ports) leg {
	return leg{local: media.NewLocalSDP(s.cfg.MediaAddr, ports.Port, "handoff"), ports: ports, srtp: s.cfg.SRTP, prefs: s.mediaPrefs()}
}

// mediaPrefs is our side of every offer/answer exchange: the audio codecs
// in preference order and whether comfort noise is on. The codec an
// answer names and the one the session then sends and receives come from
// the same Negotiated, never from two decisions.
type mediaPrefs struct {
	codecs       []media.Codec
	comfortNoise bool
}

func (s *Server) mediaPrefs() mediaPrefs {
	return mediaPrefs{codecs: s.cfg.Codecs, comfortNoise: !s.cfg.DisableComfortNoise}
}

// negotiate takes an offer, or the answer to our offer.
func (p mediaPrefs) negotiate(d *media.Description) (media.Negotiated, error) {
	return media.Negotiate(d, p.codecs, media.ComfortNoise(p.comfortNoise))
}

// offer is our offer on local: every codec of the list, telephone-event,
// comfort noise if on, and opts (SRTP).
func (p mediaPrefs) offer(local *media.LocalSDP, opts []media.OfferOption) []byte {
	opts = append(slices.Clip(opts), media.ComfortNoise(p.comfortNoise))
	return local.Offer(p.codecs, offerDTMFPayloadType, media.SendRecv, opts...)
}

// SRTPPolicy is the media encryption policy of Config.SRTP.
//
// An offer with a secure profile (RTP/SAVP, RTP/SAVPF) or a=crypto lines
// gets SRTP when the policy is optional or required, and 488 when it is
// off; a plain RTP/AVP offer gets RTP when off or optional and 488 when
// required. A=crypto on RTP/AVP ("best-effort" SRTP) is answered plain when
// off, or when none of its lines is usable. Our own offers (INVITE without
// SDP, re-INVITE without SDP) are SRTP only when required; the INVITE
// return also offers SRTP to a sips: or transport=tls destination unless
// the policy is off. Once a dialog runs SRTP, an offer to drop it is
// refused (488): no silent downgrade mid-call.
type SRTPPolicy string

const (
	SRTPOff      SRTPPolicy = "off"
	SRTPOptional SRTPPolicy = "optional"
	SRTPRequired SRTPPolicy = "required"
)

// ParseSRTPPolicy reads a policy as configured: off, optional or required.
func ParseSRTPPolicy(s string) (SRTPPolicy, error) {
	switch p := SRTPPolicy(s); p {
	case SRTPOff, SRTPOptional, SRTPRequired:
		return p, nil
	}
	return "", fmt.Errorf("%q is not off, optional or required", s)
}

var (
	errSRTPOff       = errors.New("SRTP not enabled")
	errSRTPRequired  = errors.New("SRTP required")
	errSRTPDowngrade = errors.New("SRTP cannot be turned off mid-call")
	errAnswerSRTP    = errors.New("answer does not match the offered SRTP crypto")
	errAnswerPlain   = errors.New("SRTP answer to a plain RTP offer")
)

// negotiateOffer negotiates an offer under an SRTP policy.
func negotiateOffer(d *media.Description, policy SRTPPolicy, prefs mediaPrefs) (media.Negotiated, error) {
	plainOnly := func() *media.Description {
		p := *d
		p.Crypto, p.CryptoLines = nil, 0
		return &p
	}
	switch {
	case d.SecureProfile() && policy == SRTPOff:
		return media.Negotiated{}, errSRTPOff
	case !d.SRTP() && policy == SRTPRequired:
		return media.Negotiated{}, errSRTPRequired
	case d.SRTP() && !d.SecureProfile() && (policy == SRTPOff || (len(d.Crypto) == 0 && policy != SRTPRequired)):
		d = plainOnly()
	}
	return prefs.negotiate(d)
}

// offerOptions are the options of offers we make under the leg's policy.
func (l *leg) offerOptions() []media.OfferOption {
	if l.srtp == SRTPRequired {
		return []media.OfferOption{media.OfferSRTP()}
	}
	return nil
}

// offerOrAnswer is our SDP for a dialog-creating exchange: the answer to
// offer, or (no offer) an offer whose answer must come in the ACK.
func (l *leg) offerOrAnswer(offer *media.Description, n media.Negotiated) []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	if offer == nil {
		l.awaitingAnswer = true
		return l.prefs.offer(l.local, l.offerOptions())
	}
	body := l.local.Answer(n, n.RemoteDirection.Reverse())
	n.LocalKey = l.local.Key()
	l.negotiated = n
	return body
}

// takeAnswer applies an SDP answer to our offer. The answer must follow
// our offer's SRTP: the same tag and suite when we offered SRTP, no
// secure profile when we did not.
func (l *leg) takeAnswer(body []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	d, err := media.ParseSDP(body)
	if err != nil {
		return err
	}
	ours := l.local.Key() // the key of our offer, nil if it was plain
	switch {
	case ours == nil && d.SecureProfile():
		return errAnswerPlain
	case ours == nil:
		d.Crypto, d.CryptoLines = nil, 0
	case !d.SRTP():
		return errAnswerSRTP
	}
	n, err := l.prefs.negotiate(d)
	if err != nil {
		return err
	}
	if ours != nil {
		if n.RemoteKey.Tag != ours.Tag || n.RemoteKey.Suite != ours.Suite {
			return errAnswerSRTP
		}
		n.LocalKey = ours
	}
	l.negotiated = n
	l.awaitingAnswer = false
	if l.rtp != nil {
		l.rtp.Update(n)
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

// startMedia starts the leg's RTP session on the negotiated description.
func (l *leg) startMedia(cfg media.SessionConfig) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.negotiated
	cfg.Ports, cfg.Remote, cfg.Codec, cfg.DTMFPayloadType, cfg.RemoteDirection = l.ports, n.Remote, n.Codec, n.DTMFPayloadType, n.RemoteDirection
	cfg.LocalKey, cfg.RemoteKey = n.LocalKey, n.RemoteKey
	cfg.CNPayloadType = n.CNPayloadType
	sess, err := media.NewSession(cfg)
	if err != nil {
		return err
	}
	l.rtp = sess
	sess.Start()
	if cfg.Logger != nil {
		cfg.Logger.Info("media started", "codec", n.Codec.Name, "sample_rate", n.Codec.SampleRate(), "srtp", n.SRTP())
	}
	return nil
}

// rtpSession is the RTP session, nil before startMedia.
func (l *leg) rtpSession() *media.Session {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rtp
}

// answerOffer handles an in-dialog offer (re-INVITE or UPDATE): hold,
// resume, a new address or codec, or a refresh without SDP. It returns the
// body to answer with (nil for an UPDATE without SDP) or a refusal.
func (l *leg) answerOffer(req *sip.Request) ([]byte, *rejection) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.awaitingAnswer {
		return nil, reject(sip.StatusRequestPending, "Request Pending")
	}
	switch {
	case len(req.Body()) > 0:
		d, err := media.ParseSDP(req.Body())
		var n media.Negotiated
		if err == nil {
			n, err = negotiateOffer(d, l.srtp, l.prefs)
		}
		if err == nil && l.negotiated.SRTP() && !n.SRTP() {
			err = errSRTPDowngrade
		}
		if err != nil {
			return nil, reject(sip.StatusNotAcceptableHere, "Not Acceptable Here", warning(err))
		}
		// Our key stays unless the peer changed its own (RFC 4568 §7.1.4).
		body := l.local.Answer(n, n.RemoteDirection.Reverse())
		n.LocalKey = l.local.Key()
		l.negotiated = n
		if l.rtp != nil { // else startMedia picks it up
			l.rtp.Update(n)
		}
		return body, nil
	case req.IsInvite():
		// A re-INVITE without SDP asks for our offer; the answer is in its
		// ACK. A dialog running SRTP offers SRTP again (same key).
		l.awaitingAnswer = true
		opts := l.offerOptions()
		if l.negotiated.SRTP() {
			opts = []media.OfferOption{media.OfferSRTP()}
		}
		return l.prefs.offer(l.local, opts), nil
	}
	return nil, nil
}

// respondOffer runs an in-dialog offer through dlg (CSeq order) and l, and
// answers it; extra headers (session timer) are added to a 2xx.
func (s *Server) respondOffer(dlg *sipgo.Dialog, l *leg, req *sip.Request, tx sip.ServerTransaction, extra func() []sip.Header) bool {
	if !s.inOrder(dlg, req, tx) {
		return false
	}
	body, rej := l.answerOffer(req)
	if rej != nil {
		s.refuse(req, tx, rej)
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

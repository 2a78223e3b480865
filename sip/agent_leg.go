package sip

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/handoff/handoff/agent"
	"github.com/handoff/handoff/media"
	"github.com/handoff/handoff/transfer"
)

// AgentLegConfig is the SIP agent link (agent mode sip): each admitted
// call is handed to a voice agent that answers SIP (OpenAI Realtime SIP,
// LiveKit SIP, an Asterisk bot) by an INVITE Handoff places, bridged to the
// caller, and taken back when the agent finishes (docs/sip-agent.md).
type AgentLegConfig struct {
	// URI is the agent's SIP URI (sip: or sips:), with its transport= if
	// any: ParseAgentURI builds it from the configured URI and transport.
	URI string
	// Username and Password answer the agent's digest challenges (401 and
	// 407); an empty Username sends none. The password is never logged.
	Username, Password string
	// SRTP is the agent leg's media policy (SRTPPolicy); empty means
	// Config.SRTP. Optional offers SRTP over TLS (sips: or transport=tls).
	SRTP SRTPPolicy
	// RingTimeout bounds the wait for the agent to answer; the INVITE is
	// then cancelled and the caller refused (DefaultAgentRingTimeout).
	RingTimeout time.Duration
	// SessionExpires is the session interval (RFC 4028) the INVITE asks
	// for, Handoff refreshing (DefaultAgentSessionExpires).
	SessionExpires time.Duration
	// MaxDuration, if positive, ends a conversation still running after it
	// with the fallback outcome (reason max_duration).
	MaxDuration time.Duration
	// FallbackTransferType is the outputContext.transferType of an agent
	// that ends without an outcome (agent.TransferAgent when empty).
	FallbackTransferType string
	// FollowRefer returns the call of an agent that REFERs by REFER to the
	// agent's Refer-To URI, instead of the transfer's own return.
	FollowRefer bool
}

// Defaults of the AgentLegConfig fields left zero.
const (
	DefaultAgentRingTimeout    = 30 * time.Second
	DefaultAgentSessionExpires = 30 * time.Minute // RFC 4028 §4 recommends 1800 s
)

func (c *AgentLegConfig) defaults(srtp SRTPPolicy) {
	if c.SRTP == "" {
		c.SRTP = srtp
	}
	if c.RingTimeout <= 0 {
		c.RingTimeout = DefaultAgentRingTimeout
	}
	if c.SessionExpires <= 0 {
		c.SessionExpires = DefaultAgentSessionExpires
	}
	if c.FallbackTransferType == "" {
		c.FallbackTransferType = agent.TransferAgent
	}
}

// checkAgentLeg fills in the agent leg's defaults (on a copy) and checks
// its URI and policy.
func (c *Config) checkAgentLeg() error {
	if c.AgentLeg == nil {
		return nil
	}
	l := *c.AgentLeg
	l.defaults(c.SRTP)
	if _, err := ParseAgentURI(l.URI, ""); err != nil {
		return fmt.Errorf("sip: agent URI %w", err)
	}
	if _, err := ParseSRTPPolicy(string(l.SRTP)); err != nil {
		return fmt.Errorf("sip: agent SRTP policy %w", err)
	}
	c.AgentLeg = &l
	return nil
}

// credentials are the digest credentials of the agent leg, nil for none.
func (c *AgentLegConfig) credentials() *transfer.Credentials {
	if c.Username == "" {
		return nil
	}
	return &transfer.Credentials{Username: c.Username, Password: c.Password}
}

// ParseAgentURI checks an agent URI as configured and applies transport
// (udp, tcp, tls; empty keeps the URI's own): the result carries
// ;transport= when it is not UDP, so the digest's uri= and the Request-URI
// agree. A transport that contradicts the URI's is an error.
func ParseAgentURI(uri, transport string) (string, error) {
	var u sip.Uri
	if err := sip.ParseUri(strings.TrimSpace(uri), &u); err != nil {
		return "", fmt.Errorf("%q is not a SIP URI: %v", uri, err)
	}
	if (u.Scheme != "sip" && u.Scheme != "sips") || u.Host == "" {
		return "", fmt.Errorf("%q: want sip:user@host or sips:user@host", uri)
	}
	if u.Password != "" {
		return "", errors.New("the agent URI must not carry a password (set the digest username and password)")
	}
	tp := strings.ToLower(transport)
	switch tp {
	case "", "udp", "tcp", "tls":
	default:
		return "", fmt.Errorf("transport %q: want udp, tcp or tls", transport)
	}
	have, _ := u.UriParams.Get("transport")
	switch {
	case tp == "" || strings.EqualFold(have, tp):
	case have != "":
		return "", fmt.Errorf("transport %s contradicts the URI's transport=%s", tp, have)
	case tp != "udp":
		if u.UriParams == nil {
			u.UriParams = sip.NewParams()
		}
		u.UriParams.Add("transport", tp)
	}
	return u.String(), nil
}

// openAgent opens the call's agent session: the SIP agent leg when one is
// configured, else the pipeline's. ctx ends with the caller's INVITE.
func (s *Server) openAgent(ctx context.Context, a *admission) (agent.Session, error) {
	if s.cfg.AgentLeg == nil {
		info := callInfo(a.req, a.transfer)
		if codec := a.negotiated.Codec; codec.Name != "" {
			info.Codec, info.CodecRate = codec.Name, codec.SampleRate()
		}
		return s.cfg.Pipeline.Open(ctx, info)
	}
	l, err := s.dialAgent(ctx, a)
	if err != nil {
		return nil, err
	}
	return l, nil
}

// dialAgent places the agent leg of an admitted call and waits until the
// agent answers and its media runs. Meanwhile the caller hears ringing
// (Config.RingingAfter); the caller is answered only once this succeeds,
// so a failed agent leg is refused like an unreachable agent.
func (s *Server) dialAgent(ctx context.Context, a *admission) (*agentLeg, error) {
	cfg := s.cfg.AgentLeg
	ports, err := s.cfg.Ports.Allocate()
	if err != nil {
		s.metrics.agentLegs.WithLabelValues(agentNoPorts, "none").Inc()
		return nil, err
	}
	l := newAgentLeg(s, ports, a)
	var target sip.Uri
	_ = sip.ParseUri(cfg.URI, &target) // checked by New
	opts := srtpOfferOptions(cfg.SRTP, target)
	req := s.agentRequest(a, target, l.prefs.offer(l.local, opts))
	ringCtx, cancel := context.WithTimeout(ctx, cfg.RingTimeout)
	defer cancel()
	err = l.dial(ringCtx, req, cfg.credentials(), nil)
	if err == nil {
		l.log = l.log.With("agent_call_id", l.callID()) // before the leg's goroutines start
		err = l.connect(opts)
	}
	if err != nil {
		l.dialFailed(ringCtx, err)
		l.close()
		return nil, err
	}
	l.start()
	return l, nil
}

// agentRequest is the agent leg's INVITE: the caller's identity as on the
// INVITE return, the transfer's context in X-Handoff- headers, the
// caller's User-to-User, and a session timer Handoff refreshes.
func (s *Server) agentRequest(a *admission, target sip.Uri, offer []byte) *sip.Request {
	req := s.outboundInvite(a.req, target, offer)
	for _, f := range agentContext(a.transfer, s.cfg.Return.MaxContextBytes) {
		req.AppendHeader(sip.NewHeader(f.name, f.value))
	}
	// The caller's UUI as the inbound parsing kept it (the standard header
	// over x-User-to-User, one value per purpose), always sent under the
	// standard name.
	if a.inbound != nil {
		for _, u := range a.inbound.UUI {
			req.AppendHeader(sip.NewHeader("User-to-User", sanitizeHeaderValue(u.Value)))
		}
	}
	secs := strconv.Itoa(int(s.cfg.AgentLeg.SessionExpires / time.Second))
	req.AppendHeader(sip.NewHeader("Supported", "timer"))
	req.AppendHeader(sip.NewHeader("Session-Expires", secs+";refresher=uac"))
	req.AppendHeader(sip.NewHeader("Min-SE", strconv.Itoa(int(s.cfg.MinSE/time.Second))))
	return req
}

// agentContext is what the agent learns of the transfer, as headers: its
// id and conversation id, the task and one X-Handoff-Var- per input
// variable (by key), values kept on one line. Past maxBytes the last
// variables are left off and X-Handoff-Truncated says so, as on the return.
func agentContext(t *transfer.Transfer, maxBytes int) []field {
	fields := []field{{hdrTransferID, t.ID}}
	if t.ExternalConversationID != "" {
		fields = append(fields, field{hdrConversationID, t.ExternalConversationID})
	}
	var vars []field
	if in := t.InputContext; in != nil {
		if in.TaskName != "" {
			fields = append(fields, field{hdrTask, in.TaskName})
		}
		vars = variables(hdrVarPrefix, in.InputVariables)
	}
	for i := range fields {
		fields[i].value = sanitizeHeaderValue(fields[i].value)
	}
	for i := range vars {
		vars[i].value = sanitizeHeaderValue(vars[i].value)
	}
	kept, truncated := within(vars, maxBytes, headerLen)
	fields = append(fields, kept...)
	if truncated {
		fields = append(fields, field{hdrTruncated, "true"})
	}
	return fields
}

// connect confirms the agent's answer (ACK), checks it carries a usable
// SDP answer and starts the leg's media.
func (l *agentLeg) connect(offered []media.OfferOption) error {
	if err := l.confirm(l); err != nil {
		l.bye()
		return err
	}
	if len(l.dlg.InviteResponse.Body()) == 0 {
		l.bye()
		return fmt.Errorf("%w: the 200 OK carried no SDP", errAnswerUnusable)
	}
	l.offered = offered
	l.timer.fromAnswer(l.dlg.InviteResponse)
	if err := l.startMedia(media.SessionConfig{
		OnAudio:    l.agentAudio,
		OnDTMF:     l.agentDTMF,
		Source:     l.toAgentFrame,
		RTPTimeout: l.s.cfg.RTPTimeout,
		Metrics:    l.s.mediaMetrics,
		Logger:     l.log,
	}); err != nil {
		l.bye()
		return fmt.Errorf("agent leg media: %w", err)
	}
	return nil
}

// Results of placing an agent leg (handoff_sip_agent_legs_total).
const (
	agentAnswered    = "answered"
	agentRejected    = "rejected"     // a final non-2xx, code in the code label
	agentBadCreds    = "unauthorized" // our credentials were challenged again
	agentNoAnswer    = "timeout"      // the ring timeout passed: CANCEL
	agentCancelled   = "cancelled"    // the caller gave up first
	agentUnreachable = "unreachable"  // not sent, or no response at all
	agentUnusable    = "unusable"     // answered, but no ACK, SDP or media
	agentNoPorts     = "no_ports"
)

// dialFailed logs and counts why the agent leg did not come up.
func (l *agentLeg) dialFailed(ringCtx context.Context, err error) {
	result, code := agentUnreachable, 0
	var rejected *sipgo.ErrDialogResponse
	var badCreds *credentialsRejectedError
	switch {
	case errors.As(err, &rejected):
		result, code = agentRejected, rejected.Res.StatusCode
	case errors.As(err, &badCreds):
		result, code = agentBadCreds, badCreds.status
	case errors.Is(err, errAckFailed), errors.Is(err, errAnswerUnusable), l.dlg != nil && l.dlg.LoadState() >= sip.DialogStateEstablished:
		result, code = agentUnusable, sip.StatusOK
	case errors.Is(ringCtx.Err(), context.DeadlineExceeded):
		result = agentNoAnswer
	case ringCtx.Err() != nil:
		result = agentCancelled
	}
	label := "none"
	if code != 0 {
		label = statusLabel(code)
	}
	l.s.metrics.agentLegs.WithLabelValues(result, label).Inc()
	l.log.Warn("agent leg failed", "result", result, "sip_code", code, "agent_uri", l.s.cfg.AgentLeg.URI, "err", err)
}

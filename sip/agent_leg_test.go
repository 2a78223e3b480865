package sip

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/pion/rtp"

	"github.com/handoff/handoff/agent"
	"github.com/handoff/handoff/internal/siptest"
	"github.com/handoff/handoff/internal/testenv"
	"github.com/handoff/handoff/media"
	"github.com/handoff/handoff/transfer"
)

// The SIP agent leg in-process: a siptest Destination plays the agent
// (it answers Handoff's INVITE in A-law with telephone-events, and sends
// BYE, REFER, INFO and re-INVITEs of its own), a siptest Phone the caller.

// withAgentLeg hands every call to the SIP agent at uri.
func withAgentLeg(uri string, tune ...func(*AgentLegConfig)) gatewayOption {
	return func(c *Config) {
		l := &AgentLegConfig{URI: uri}
		for _, f := range tune {
			f(l)
		}
		c.Pipeline, c.AgentLeg = nil, l
	}
}

// createAgentTransfer creates a SIP transfer with an input context for the
// agent, returning as ret says.
func (g *gateway) createAgentTransfer(id string, ret transfer.SIPReturn) {
	g.t.Helper()
	if _, _, err := g.svc.Create(context.Background(), "ivr", transfer.CreateRequest{
		ID: id, ExternalConversationID: "conv-" + id, Type: transfer.TypeSIP, SIP: &ret,
		InputContext: &transfer.InputContext{TaskName: "Billing", InputVariables: map[string]string{"account": "A-17", "lang": "en US"}},
	}); err != nil {
		g.t.Fatal(err)
	}
}

// agentCall places the caller's call to transfer id (answered once the
// agent has answered) and waits until it is ONGOING.
func (g *gateway) agentCall(p *phone, id, offer string, hdrs ...sip.Header) *call {
	g.t.Helper()
	c := p.MustAnswer(g.srv.TransferURI(id), p.Offer(offer), hdrs...)
	g.WaitStatus(id, transfer.StatusOngoing)
	return c
}

var byeReturn = transfer.SIPReturn{ReturnTransferType: transfer.ReturnBye}

// callAgent creates transfer id, returning by ret, and places a new
// phone's call to it (μ-law and telephone-events), answered once the agent
// bot has answered.
func (g *gateway) callAgent(bot *siptest.Destination, id string, ret transfer.SIPReturn) (*phone, *call) {
	g.t.Helper()
	g.createAgentTransfer(id, ret)
	p := newPhone(g.t)
	c := g.agentCall(p, id, "0 101")
	siptest.Receive(g.t, bot.Answered, "the agent's answer")
	return p, c
}

// expectRelay checks audio crosses Handoff both ways: the caller's μ-law
// reaches the agent as A-law, the agent's A-law the caller as μ-law.
func expectRelay(t *testing.T, c *call, agentRTP *call) {
	t.Helper()
	pcm := make([]int16, media.FrameSamples)
	sent, toAgent, toCaller := pattern(5), make([]byte, media.FrameSamples), make([]byte, media.FrameSamples)
	media.DecodeULaw(pcm, sent)
	media.EncodeALaw(toAgent, pcm)
	media.DecodeALaw(pcm, toAgent)
	media.EncodeULaw(toCaller, pcm)
	sending := make(chan struct{})
	go func() {
		defer close(sending)
		for range 30 {
			c.SendAudio(sent)
			agentRTP.SendRTP(8, false, toAgent)
			agentRTP.TS += 160
			time.Sleep(20 * time.Millisecond)
		}
	}()
	agentRTP.ReadRTP(10*time.Second, func(pkt *rtp.Packet) bool {
		return pkt.PayloadType == 8 && bytes.Equal(pkt.Payload, toAgent)
	})
	c.ReadRTP(10*time.Second, func(pkt *rtp.Packet) bool {
		return pkt.PayloadType == 0 && bytes.Equal(pkt.Payload, toCaller)
	})
	<-sending
}

// expectDTMF waits for the RFC 4733 event of digit on the call's socket.
func expectDTMF(t *testing.T, c *call, digit byte) {
	t.Helper()
	c.ReadRTP(10*time.Second, func(pkt *rtp.Packet) bool {
		return pkt.PayloadType == 101 && len(pkt.Payload) == 4 && pkt.Payload[0] == digit
	})
}

func agentLegsEnded(g *gateway, ending string) float64 {
	return testenv.Value(g.srv.metrics.agentLegsEnded.WithLabelValues(ending))
}

// The agent hears the transfer's context and the caller, talks back, and
// hangs up with its outcome in headers: the caller is returned by BYE and
// the transfer records the outcome and the agent leg.
func TestAgentLegByeWithOutcome(t *testing.T) {
	bot := siptest.NewDestination(t)
	g := newGateway(t, withAgentLeg(bot.URI()))
	g.createAgentTransfer("bye-out", byeReturn)
	p := newPhone(t)
	c := g.agentCall(p, "bye-out", "0 101", sip.NewHeader("User-to-User", "00FA08;encoding=hex"))

	inv := bot.LastInvite()
	for name, want := range map[string]string{
		"X-Handoff-Transfer-Id": "bye-out", "X-Handoff-Conversation-Id": "conv-bye-out", "X-Handoff-Task": "Billing",
		"X-Handoff-Var-account": "A-17", "X-Handoff-Var-lang": "en US", "User-to-User": "00FA08;encoding=hex",
		"Session-Expires": "1800;refresher=uac",
	} {
		if h := inv.GetHeader(name); h == nil || h.Value() != want {
			t.Errorf("agent INVITE %s: %v, want %q", name, h, want)
		}
	}
	if inv.From().Address.User != c.Dlg.InviteRequest.From().Address.User || inv.GetHeader("P-Asserted-Identity") == nil {
		t.Errorf("agent INVITE does not present the caller: From %v", inv.From())
	}
	expectRelay(t, c, bot.RTPCall())

	bot.Hangup(sip.NewHeader("X-Handoff-Transfer-Type", "AGENT"), sip.NewHeader("X-Handoff-Task", "Payments"),
		sip.NewHeader("X-Handoff-Var-intent", "pay%20bill"), sip.NewHeader("X-Handoff-Ref-case", "C-9"))
	p.WaitBye()
	done := g.WaitReturn("bye-out")
	want := transfer.OutputContext{TransferType: "AGENT", CurrentTaskName: "Payments",
		TransferVariables: map[string]string{"intent": "pay bill"}, ReferenceVariables: map[string]string{"case": "C-9"}}
	if out := done.OutputContext; out == nil || out.TransferType != want.TransferType || out.CurrentTaskName != want.CurrentTaskName ||
		out.TransferVariables["intent"] != "pay bill" || out.ReferenceVariables["case"] != "C-9" {
		t.Fatalf("outputContext %+v, want %+v", done.OutputContext, want)
	}
	if done.EndReason != transfer.EndAgentFinished || done.Return.Method != transfer.ReturnBye {
		t.Fatalf("end %s, return %+v", done.EndReason, done.Return)
	}
	leg := done.Return.AgentLeg
	if leg == nil || leg.URI != bot.URI() || leg.CallID != inv.CallID().Value() || leg.Ending != endingByeOutcome {
		t.Fatalf("returnResult.agentLeg %+v", leg)
	}
	eventually(t, "agent leg counted", func() bool { return agentLegsEnded(g, endingByeOutcome) == 1 })
}

// A BYE without outcome headers: the agent hung up without an outcome,
// and the transfer records the fallback, as for a lost WebSocket agent.
func TestAgentLegByeWithoutOutcome(t *testing.T) {
	bot := siptest.NewDestination(t)
	g := newGateway(t, withAgentLeg(bot.URI()))
	p, _ := g.callAgent(bot, "bye-plain", byeReturn)

	bot.Hangup()
	p.WaitBye()
	done := g.WaitReturn("bye-plain")
	if out := done.OutputContext; out == nil || out.TransferType != agent.TransferAgent || out.CurrentTaskName != "Billing" ||
		out.ReferenceVariables["reason"] != reasonAgentHungUp {
		t.Fatalf("outputContext %+v, want the fallback", done.OutputContext)
	}
	if done.Return.AgentLeg == nil || done.Return.AgentLeg.Ending != endingBye {
		t.Fatalf("agentLeg %+v", done.Return.AgentLeg)
	}
}

// The agent transfers by REFER: Handoff accepts it (202, NOTIFY 100 then
// 200), hangs the agent up, takes the Refer-To URI's headers (and the
// REFER's own X-Handoff- headers) as the outcome, and performs the
// transfer's own return.
func TestAgentLegRefer(t *testing.T) {
	bot := siptest.NewDestination(t)
	g := newGateway(t, withAgentLeg(bot.URI()))
	p, _ := g.callAgent(bot, "refer", byeReturn)

	res := bot.Request(sip.REFER, "", nil,
		sip.NewHeader("Refer-To", "<sip:humans@pbx.example?X-Handoff-Transfer-Type=AGENT&X-Handoff-Var-intent=dispute>"),
		sip.NewHeader("X-Handoff-Ref-case", "C-12"))
	if res.StatusCode != sip.StatusAccepted {
		t.Fatalf("REFER answered %d, want 202", res.StatusCode)
	}
	for _, want := range []string{"SIP/2.0 100 Trying", "SIP/2.0 200 OK"} {
		n := siptest.Receive(t, bot.Notifies, "NOTIFY "+want)
		if !strings.HasPrefix(string(n.Body()), want) || n.GetHeader("Event").Value() != "refer" {
			t.Fatalf("NOTIFY %q (Event %v), want %q", n.Body(), n.GetHeader("Event"), want)
		}
	}
	siptest.Receive(t, bot.Byes, "Handoff's BYE to the agent")
	p.WaitBye()
	done := g.WaitReturn("refer")
	out := done.OutputContext
	if out == nil || out.TransferType != "AGENT" || out.TransferVariables["intent"] != "dispute" ||
		out.ReferenceVariables["case"] != "C-12" || out.ReferenceVariables["referTo"] != "sip:humans@pbx.example" {
		t.Fatalf("outputContext %+v", out)
	}
	if done.Return.Method != transfer.ReturnBye || done.Return.AgentLeg.Ending != endingRefer {
		t.Fatalf("return %+v, agentLeg %+v", done.Return, done.Return.AgentLeg)
	}
	// A REFER without a usable Refer-To is refused.
	if _, _, err := referOutcome(sip.NewRequest(sip.REFER, sip.Uri{Scheme: "sip", Host: "x"})); !errors.Is(err, errNoReferTo) {
		t.Fatalf("REFER without Refer-To: %v", err)
	}
}

// With FollowRefer the call goes where the agent referred it, by REFER.
func TestAgentLegFollowRefer(t *testing.T) {
	bot := siptest.NewDestination(t)
	g := newGateway(t, withAgentLeg(bot.URI(), func(l *AgentLegConfig) { l.FollowRefer = true }))
	g.createAgentTransfer("follow", byeReturn)
	p := newPhone(t)
	refers := make(chan *sip.Request, 1)
	p.OnRefer(func(req *sip.Request, tx sip.ServerTransaction) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusAccepted, "Accepted", nil))
		refers <- req
	})
	c := g.agentCall(p, "follow", "0 101")
	siptest.Receive(t, bot.Answered, "the agent's answer")

	target := "sip:humans@127.0.0.1:5999?X-Handoff-Transfer-Type=AGENT"
	if res := bot.Request(sip.REFER, "", nil, sip.NewHeader("Refer-To", "<"+target+">")); res.StatusCode != sip.StatusAccepted {
		t.Fatalf("REFER answered %d", res.StatusCode)
	}
	refer := siptest.Receive(t, refers, "Handoff's REFER to the caller")
	if got := refer.GetHeader("Refer-To").Value(); got != "<"+target+">" {
		t.Fatalf("Refer-To %s, want the agent's <%s>", got, target)
	}
	c.Notify("SIP/2.0 200 OK", "terminated;reason=noresource")
	p.WaitBye()
	done := g.WaitReturn("follow")
	if done.Return.Method != transfer.ReturnRefer || done.Return.Result != transfer.ReturnSucceeded {
		t.Fatalf("return %+v", done.Return)
	}
}

// An INFO with JSON carrying outputContext finishes the agent; Handoff
// answers 200 and hangs the agent up. A malformed one is refused.
func TestAgentLegInfoOutcome(t *testing.T) {
	bot := siptest.NewDestination(t)
	g := newGateway(t, withAgentLeg(bot.URI()))
	p, _ := g.callAgent(bot, "info", byeReturn)

	for _, bad := range []string{`{"outputContext":`, `{"other":{}}`, `[]`} {
		if res := bot.Request(sip.INFO, "application/json", []byte(bad)); res.StatusCode != sip.StatusBadRequest {
			t.Fatalf("INFO %s answered %d, want 400", bad, res.StatusCode)
		}
	}
	body := `{"outputContext":{"transferType":"SYSTEM","currentTaskName":"Done","transferVariables":{"paid":"yes"},"referenceVariables":{"receipt":"R-1"}}}`
	if res := bot.Request(sip.INFO, "application/json", []byte(body)); res.StatusCode != sip.StatusOK {
		t.Fatalf("outcome INFO answered %d", res.StatusCode)
	}
	siptest.Receive(t, bot.Byes, "Handoff's BYE to the agent")
	if r := bot.LastBye().GetHeader("Reason"); r == nil || !strings.Contains(r.Value(), endingInfo) {
		t.Errorf("BYE Reason %v", r)
	}
	p.WaitBye()
	done := g.WaitReturn("info")
	if out := done.OutputContext; out == nil || out.TransferType != "SYSTEM" || out.CurrentTaskName != "Done" ||
		out.TransferVariables["paid"] != "yes" || out.ReferenceVariables["receipt"] != "R-1" {
		t.Fatalf("outputContext %+v", done.OutputContext)
	}
	if done.Return.AgentLeg.Ending != endingInfo {
		t.Fatalf("agentLeg %+v", done.Return.AgentLeg)
	}
}

// Key presses cross both ways: the caller's (RFC 4733 and INFO) reach
// the agent as RFC 4733, the agent's (RFC 4733 and INFO) the caller.
func TestAgentLegDTMF(t *testing.T) {
	bot := siptest.NewDestination(t)
	g := newGateway(t, withAgentLeg(bot.URI()))
	_, c := g.callAgent(bot, "dtmf", byeReturn)
	botRTP := bot.RTPCall()

	c.SendDTMF('5')
	expectDTMF(t, botRTP, 5)
	if res := c.Request(sip.INFO, "application/dtmf-relay", []byte("Signal=7\r\nDuration=160\r\n")); res.StatusCode != 200 {
		t.Fatalf("caller INFO: %d", res.StatusCode)
	}
	expectDTMF(t, botRTP, 7)
	botRTP.SendDTMF('3')
	expectDTMF(t, c, 3)
	if res := bot.Request(sip.INFO, "application/dtmf-relay", []byte("Signal=9\r\nDuration=100\r\n")); res.StatusCode != 200 {
		t.Fatalf("agent INFO: %d", res.StatusCode)
	}
	expectDTMF(t, c, 9)
	c.Hangup()
}

// An agent without telephone-event gets the caller's keys by INFO.
func TestAgentLegDTMFByInfo(t *testing.T) {
	bot := siptest.NewDestination(t, siptest.AnswerSDP(func(_ *media.Description, port int) []byte { return sdpBody(port, "8") }))
	g := newGateway(t, withAgentLeg(bot.URI()))
	_, c := g.callAgent(bot, "dtmf-info", byeReturn)

	c.SendDTMF('4')
	info := siptest.Receive(t, bot.Infos, "the caller's key by INFO")
	if !strings.Contains(string(info.Body()), "Signal=4") || info.ContentType().Value() != "application/dtmf-relay" {
		t.Fatalf("INFO %s: %q", info.ContentType(), info.Body())
	}
	c.Hangup()
}

// Hold and resume on either side are answered on that side's leg, and
// audio flows both ways again after each.
func TestAgentLegHoldEitherSide(t *testing.T) {
	bot := siptest.NewDestination(t)
	g := newGateway(t, withAgentLeg(bot.URI()))
	p, c := g.callAgent(bot, "hold", byeReturn)
	botRTP := bot.RTPCall()
	expectRelay(t, c, botRTP)

	if res := c.Reinvite(p.Offer("0 101", "a=sendonly")); res.StatusCode != 200 || !bytes.Contains(res.Body(), []byte("a=recvonly")) {
		t.Fatalf("caller hold answered %d:\n%s", res.StatusCode, res.Body())
	}
	if res := c.Reinvite(p.Offer("0 101", "a=sendrecv")); res.StatusCode != 200 || !bytes.Contains(res.Body(), []byte("a=sendrecv")) {
		t.Fatalf("caller resume answered %d", res.StatusCode)
	}
	expectRelay(t, c, botRTP)

	res := bot.Request(sip.INVITE, "application/sdp", sdpBody(bot.RTPPort(), "8 101", "a=sendonly"))
	if res.StatusCode != 200 || !bytes.Contains(res.Body(), []byte("a=recvonly")) {
		t.Fatalf("agent hold answered %d:\n%s", res.StatusCode, res.Body())
	}
	if res := bot.Request(sip.INVITE, "application/sdp", sdpBody(bot.RTPPort(), "8 101")); res.StatusCode != 200 {
		t.Fatalf("agent resume answered %d", res.StatusCode)
	}
	expectRelay(t, c, botRTP)
	c.Hangup()
}

// Handoff refreshes the agent leg's session; when the agent takes the
// refresher role and then stops refreshing, Handoff ends the leg and the
// call is returned with the fallback.
func TestAgentLegSessionTimers(t *testing.T) {
	bot := siptest.NewDestination(t)
	g := newGateway(t, func(c *Config) { c.MinSE = time.Second },
		withAgentLeg(bot.URI(), func(l *AgentLegConfig) { l.SessionExpires = 2 * time.Second }))
	p, c := g.callAgent(bot, "timer", byeReturn)

	refresh := siptest.Receive(t, bot.Reinvites, "Handoff's session refresh")
	if h := refresh.GetHeader("Session-Expires"); h == nil || h.Value() != "2;refresher=uac" || len(refresh.Body()) == 0 {
		t.Fatalf("refresh Session-Expires %v, body %d bytes", h, len(refresh.Body()))
	}
	expectRelay(t, c, bot.RTPCall())

	// The agent re-INVITEs with a timer of its own: it refreshes now, and
	// never does.
	res := bot.Request(sip.INVITE, "application/sdp", sdpBody(bot.RTPPort(), "8 101"),
		sip.NewHeader("Supported", "timer"), sip.NewHeader("Session-Expires", "2"))
	if h := res.GetHeader("Session-Expires"); res.StatusCode != 200 || h == nil || h.Value() != "2;refresher=uac" {
		t.Fatalf("agent's re-INVITE answered %d, Session-Expires %v", res.StatusCode, h)
	}
	siptest.Receive(t, bot.Byes, "Handoff's BYE to the expired agent leg")
	p.WaitBye()
	done := g.WaitReturn("timer")
	if done.OutputContext.ReferenceVariables["reason"] != reasonAgentSessionEnded || done.Return.AgentLeg.Ending != endingSessionExpired {
		t.Fatalf("outputContext %+v agentLeg %+v", done.OutputContext, done.Return.AgentLeg)
	}
}

// The caller hangs up: the agent leg gets BYE with the reason, and the
// transfer ends caller_hangup.
func TestAgentLegCallerHangup(t *testing.T) {
	bot := siptest.NewDestination(t)
	g := newGateway(t, withAgentLeg(bot.URI()))
	_, c := g.callAgent(bot, "hangup", byeReturn)

	c.Hangup()
	siptest.Receive(t, bot.Byes, "Handoff's BYE to the agent")
	if r := bot.LastBye().GetHeader("Reason"); r == nil || !strings.Contains(r.Value(), string(transfer.EndCallerHangup)) {
		t.Fatalf("BYE Reason %v", r)
	}
	done := g.WaitStatus("hangup", transfer.StatusCompleted)
	if done.EndReason != transfer.EndCallerHangup || done.Return != nil {
		t.Fatalf("end %s return %+v", done.EndReason, done.Return)
	}
	eventually(t, "agent leg counted", func() bool { return agentLegsEnded(g, string(transfer.EndCallerHangup)) == 1 })
}

// An agent leg that fails is handled like an unreachable WebSocket agent:
// the caller gets 503 Agent Unavailable (Retry-After) and the transfer
// stays ACTIVE for a retry.
func TestAgentLegFailures(t *testing.T) {
	for name, tc := range map[string]struct {
		opt    siptest.DestinationOption
		result string
	}{
		"busy":        {siptest.Busy(), agentRejected},
		"no answer":   {siptest.RingsForever(), agentNoAnswer},
		"credentials": {siptest.RequireDigest("bot", "right", siptest.StrictDigestURI()), agentBadCreds},
	} {
		t.Run(name, func(t *testing.T) {
			bot := siptest.NewDestination(t, tc.opt)
			g := newGateway(t, withAgentLeg(bot.URI(), func(l *AgentLegConfig) {
				l.RingTimeout, l.Username, l.Password = 500*time.Millisecond, "bot", "wrong"
			}))
			g.createAgentTransfer("fail", byeReturn)
			p := newPhone(t)
			_, err := p.Invite(g.srv.TransferURI("fail"), p.Offer("0"), sipgo.AnswerOptions{})
			var rejected *sipgo.ErrDialogResponse
			if !errors.As(err, &rejected) || rejected.Res.StatusCode != 503 || rejected.Res.GetHeader("Retry-After") == nil {
				t.Fatalf("INVITE: %v, want 503 with Retry-After", err)
			}
			if tr := g.Get("fail"); tr.StatusAt(g.svc.Now()) != transfer.StatusActive || tr.Claim != nil {
				t.Fatalf("transfer %s claim %+v, want ACTIVE and free", tr.Status, tr.Claim)
			}
			var n float64
			for _, code := range []string{"none", "401", "486"} {
				n += testenv.Value(g.srv.metrics.agentLegs.WithLabelValues(tc.result, code))
			}
			if n != 1 {
				t.Fatalf("agent legs %s = %v, want 1", tc.result, n)
			}
		})
	}
}

// Digest credentials answer the agent's challenge.
func TestAgentLegDigest(t *testing.T) {
	bot := siptest.NewDestination(t, siptest.RequireDigest("bot", "s3cret", siptest.StrictDigestURI()))
	g := newGateway(t, withAgentLeg(bot.URI()+";transport=udp", func(l *AgentLegConfig) { l.Username, l.Password = "bot", "s3cret" }))
	_, c := g.callAgent(bot, "digest", byeReturn)
	if n := len(bot.Invites()); n != 2 {
		t.Fatalf("agent saw %d INVITEs, want 2", n)
	}
	c.Hangup()
}

// After the agent finishes, an INVITE return bridges the caller without
// the agent leg (it has ended), with the agent's outcome in its headers.
func TestAgentLegThenInviteReturn(t *testing.T) {
	bot := siptest.NewDestination(t)
	dest := siptest.NewDestination(t)
	g := newGateway(t, withAgentLeg(bot.URI()))
	g.createAgentTransfer("inv", transfer.SIPReturn{ReturnTransferType: transfer.ReturnInvite, ReturnURI: dest.URI()})
	p := newPhone(t)
	c := g.agentCall(p, "inv", "0 101")
	siptest.Receive(t, bot.Answered, "the agent's answer")

	bot.Hangup(sip.NewHeader("X-Handoff-Transfer-Type", "AGENT"))
	siptest.Receive(t, dest.Answered, "the return call")
	if h := dest.LastInvite().GetHeader("X-Handoff-Transfer-Type"); h == nil || h.Value() != "AGENT" {
		t.Fatalf("return INVITE outcome %v", h)
	}
	expectRelay(t, c, dest.RTPCall())
	c.Hangup()
	siptest.Receive(t, dest.Byes, "the return call's BYE")
	done := g.WaitReturn("inv")
	if done.Return.Method != transfer.ReturnInvite || done.Return.AgentLeg.Ending != endingByeOutcome {
		t.Fatalf("return %+v", done.Return)
	}
}

// The context headers stay within the configured size.
func TestAgentContextTruncated(t *testing.T) {
	vars := map[string]string{}
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		vars[k] = strings.Repeat(k, 20)
	}
	tr := &transfer.Transfer{ID: "t1", InputContext: &transfer.InputContext{TaskName: "T", InputVariables: vars}}
	fields := agentContext(tr, 80)
	last := fields[len(fields)-1]
	if last != (field{"X-Handoff-Truncated", "true"}) || len(fields) != 5 {
		t.Fatalf("fields %v", fields)
	}
	if fields[2].name != "X-Handoff-Var-a" || fields[3].name != "X-Handoff-Var-b" {
		t.Fatalf("variables not kept in key order: %v", fields)
	}
}

func TestParseAgentURI(t *testing.T) {
	for _, tc := range []struct{ uri, transport, want, err string }{
		{"sip:proj_1@sip.api.openai.com;transport=tls", "", "sip:proj_1@sip.api.openai.com;transport=tls", ""},
		{"sip:bot@agent.example", "tls", "sip:bot@agent.example;transport=tls", ""},
		{"sip:bot@agent.example", "udp", "sip:bot@agent.example", ""},
		{"sip:bot@agent.example;transport=TCP", "tcp", "sip:bot@agent.example;transport=TCP", ""},
		{"sip:bot@agent.example;transport=tcp", "tls", "", "contradicts"},
		{"http://agent.example", "", "", "want sip"},
		{"sip:bot:pw@agent.example", "", "", "password"},
		{"sip:bot@agent.example", "ws", "", "transport"},
	} {
		got, err := ParseAgentURI(tc.uri, tc.transport)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s %s: %v, want an error about %s", tc.uri, tc.transport, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s %s: %q %v, want %q", tc.uri, tc.transport, got, err, tc.want)
		}
	}
}

func TestReadOutcomeBounds(t *testing.T) {
	var fields []field
	for i := range maxHeaderVars + 5 {
		fields = append(fields, field{"x-handoff-var-k" + strings.Repeat("x", i), strings.Repeat("v", maxHeaderValueLen+10)})
	}
	out, found := readOutcome(fields)
	if !found || out.TransferType != agent.TransferSystem || len(out.TransferVariables) != maxHeaderVars {
		t.Fatalf("found %v type %q vars %d", found, out.TransferType, len(out.TransferVariables))
	}
	for _, v := range out.TransferVariables {
		if len(v) != maxHeaderValueLen {
			t.Fatalf("value of %d bytes", len(v))
		}
	}
	if _, found := readOutcome([]field{{"X-Other", "1"}, {"Reason", "x"}}); found {
		t.Fatal("an outcome found in unrelated headers")
	}
}

// The caller gives up while the agent rings: the agent's INVITE is
// cancelled, the caller gets 487 and the transfer stays ACTIVE.
func TestAgentLegCancelledWhileRinging(t *testing.T) {
	bot := siptest.NewDestination(t, siptest.RingsForever())
	g := newGateway(t, withAgentLeg(bot.URI()))
	g.createAgentTransfer("cancel", byeReturn)
	inviteThenCancel(t, newPhone(t), g.srv.TransferURI("cancel"), func() {
		eventually(t, "the agent rings", func() bool { return bot.LastInvite() != nil })
	})
	eventually(t, "agent leg cancelled and released", func() bool {
		return testenv.Value(g.srv.metrics.agentLegs.WithLabelValues(agentCancelled, "none")) == 1 && g.ports.InUse() == 0
	})
	if tr := g.Get("cancel"); tr.StatusAt(g.svc.Now()) != transfer.StatusActive {
		t.Fatalf("status %s", tr.Status)
	}
}

// An agent that answers with SDP Handoff cannot use is hung up, and the
// caller refused as for any failed agent leg.
func TestAgentLegUnusableAnswer(t *testing.T) {
	bot := siptest.NewDestination(t, siptest.AnswerSDP(func(_ *media.Description, port int) []byte { return sdpBody(port, "18") }))
	g := newGateway(t, withAgentLeg(bot.URI()))
	g.createAgentTransfer("g729", byeReturn)
	p := newPhone(t)
	if _, err := p.Invite(g.srv.TransferURI("g729"), p.Offer("0"), sipgo.AnswerOptions{}); statusOf(err) != 503 {
		t.Fatalf("INVITE: %v, want 503", err)
	}
	siptest.Receive(t, bot.Byes, "Handoff's BYE to the unusable agent leg")
	if n := testenv.Value(g.srv.metrics.agentLegs.WithLabelValues(agentUnusable, "200")); n != 1 {
		t.Fatalf("unusable agent legs = %v", n)
	}
}

// Handoff ends an agent leg that outlasts max_duration, or whose agent
// sends no RTP for the media timeout, with the fallback and a BYE.
func TestAgentLegEndedByHandoff(t *testing.T) {
	for name, tc := range map[string]struct {
		tune   func(*Config)
		ending string
	}{
		"max duration":  {func(c *Config) { c.AgentLeg.MaxDuration = 500 * time.Millisecond }, endingMaxDuration},
		"media timeout": {func(c *Config) { c.RTPTimeout = time.Second }, endingMediaTimeout},
	} {
		t.Run(name, func(t *testing.T) {
			bot := siptest.NewDestination(t)
			g := newGateway(t, withAgentLeg(bot.URI()), tc.tune)
			g.createAgentTransfer("ended", byeReturn)
			p := newPhone(t)
			c := g.agentCall(p, "ended", "0 101")
			stop := make(chan struct{})
			talking := make(chan struct{})
			go func() { // the caller talks on, so only the agent is silent
				defer close(talking)
				for {
					select {
					case <-stop:
						return
					case <-time.After(20 * time.Millisecond):
						c.SendAudio(pattern(1))
					}
				}
			}()
			siptest.Receive(t, bot.Byes, "Handoff's BYE to the agent")
			p.WaitBye()
			close(stop)
			<-talking
			if r := bot.LastBye().GetHeader("Reason"); r == nil || !strings.Contains(r.Value(), strings.TrimPrefix(tc.ending, "agent_")) {
				t.Errorf("BYE Reason %v", r)
			}
			done := g.WaitReturn("ended")
			if done.OutputContext.TransferType != agent.TransferAgent || done.Return.AgentLeg.Ending != tc.ending {
				t.Fatalf("outputContext %+v agentLeg %+v", done.OutputContext, done.Return.AgentLeg)
			}
		})
	}
}

// The agent leg's share of the RTP path (both pacers' sources and both
// receive callbacks) allocates nothing per frame.
func TestAgentLegAudioPathAllocatesNothing(t *testing.T) {
	l := &agentLeg{toAgent: media.NewFrameQueue(bridgeDepth), toCaller: media.NewFrameQueue(bridgeDepth)}
	frame := make([]int16, media.FrameSamples)
	allocs := testing.AllocsPerRun(1000, func() {
		l.PushAudio(agent.TrackCaller, frame)
		l.toAgentFrame()
		l.agentAudio(frame)
		l.NextFrame()
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per frame", allocs)
	}
	if l.framesIn.Load() == 0 || l.framesUp.Load() == 0 {
		t.Fatal("frames not counted")
	}
}

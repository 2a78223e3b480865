package sip

// Contact-center INVITEs over real SIP (issue 12), written from the
// platforms' public documents: what the agent is told, what the transfer
// records for GET (sip.inbound), and what the return carries.

import (
	"context"
	"encoding/hex"
	"net/url"
	"strings"
	"testing"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/handoff/handoff/agent"
	"github.com/handoff/handoff/internal/siptest"
	"github.com/handoff/handoff/internal/testenv"
	"github.com/handoff/handoff/transfer"
)

// infoPipeline is the loopback agent that also hands over the CallInfo of
// each call it opens.
type infoPipeline struct {
	agent.Loopback
	infos chan agent.CallInfo
}

func newInfoPipeline() *infoPipeline { return &infoPipeline{infos: make(chan agent.CallInfo, 4)} }

func (p *infoPipeline) Open(ctx context.Context, info agent.CallInfo) (agent.Session, error) {
	p.infos <- info
	return p.Loopback.Open(ctx, info)
}

func (p *infoPipeline) next(t *testing.T) agent.CallInfo {
	t.Helper()
	return siptest.Receive(t, p.infos, "the agent's CallInfo")
}

// acceptRefers answers the phone's REFERs with 202 and hands them over.
func acceptRefers(p *phone) chan *sip.Request {
	refers := make(chan *sip.Request, 1)
	p.OnRefer(func(req *sip.Request, tx sip.ServerTransaction) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 202, "Accepted", nil))
		select {
		case refers <- req:
		default:
		}
	})
	return refers
}

func hexOf(s string) string { return strings.ToUpper(hex.EncodeToString([]byte(s))) }

// Genesys Cloud over BYOC: User-To-User with the protocol discriminator
// octet first and the isdn-uui parameters ("UUI data formats",
// help.mypurecloud.com), X-Genesys-CallUUID on the first INVITE; the
// returnUri is Genesys's documented REFER form with its own UUI, which
// comes back exactly as given with the outcome after it.
func TestGenesysStyleCallReferredBack(t *testing.T) {
	rec := newInfoPipeline()
	g := newGateway(t, func(c *Config) { c.Pipeline = rec; c.Return.ContextEncoding = ContextUUI })
	returnURI := "sip:+15551234567@127.0.0.1:5999?User-to-User=00FA1B2C%3Bencoding%3Dhex"
	g.createReturn("gen-1", transfer.SIPReturn{ReturnTransferType: transfer.ReturnRefer, ReturnURI: returnURI})
	p := newPhone(t)
	refers := acceptRefers(p)
	uui := "04" + hexOf("acct=42") + ";encoding=hex;purpose=isdn-uui;content=isdn-uui"
	c := p.MustAnswer(g.srv.TransferURI("gen-1"), p.Offer("0 101"),
		sip.NewHeader("User-To-User", uui),
		sip.NewHeader("X-Genesys-CallUUID", "4BOKLLA3VH66JF112M1CC9VHKS14F0KP"),
		sip.NewHeader("P-Asserted-Identity", `"Alice" <sip:+15551230000@byoc.example>`))

	info := rec.next(t)
	if info.UUI != uui || info.UUIText != "acct=42" || info.Headers["X-Genesys-CallUUID"] != "4BOKLLA3VH66JF112M1CC9VHKS14F0KP" ||
		info.Identity[keyAssertedNumber] != "+15551230000" {
		t.Fatalf("the agent got %+v", info)
	}
	in := g.WaitStatus("gen-1", transfer.StatusOngoing).Inbound
	if u := in.PrimaryUUI(); u == nil || u.PD != "04" || u.Text != "acct=42" || u.Content != "isdn-uui" ||
		in.CallIDs["X-Genesys-CallUUID"] == "" || len(in.AssertedIdentity) != 1 {
		t.Fatalf("recorded inbound %+v", in)
	}
	c.SendDTMF('5')
	c.SendDTMF('#')
	refer := siptest.Receive(t, refers, "the gateway's REFER")
	want := "<" + returnURI + "&X-Handoff-Transfer-Type=SYSTEM&X-Handoff-Task=loopback&X-Handoff-Var-digits=5>"
	if got := refer.GetHeader("Refer-To").Value(); got != want {
		t.Fatalf("Refer-To\n got %s\nwant %s", got, want)
	}
	c.Notify("SIP/2.0 200 OK", "terminated")
	p.WaitBye()
}

// context_encoding uui with a plain returnUri: the outcome also rides as
// User-to-User inside the Refer-To URI, hex with the IA5 discriminator.
func TestReferReturnCarriesOutcomeAsUUI(t *testing.T) {
	g := newGateway(t, func(c *Config) { c.Return.ContextEncoding = ContextUUI })
	g.createReturn("uui-out", transfer.SIPReturn{ReturnTransferType: transfer.ReturnRefer, ReturnURI: "sip:queue@127.0.0.1:5999"})
	p := newPhone(t)
	refers := acceptRefers(p)
	c := g.finishCall(p, "uui-out", "5")
	refer := siptest.Receive(t, refers, "the gateway's REFER")
	var target sip.Uri
	if err := sip.ParseUri(strings.Trim(refer.GetHeader("Refer-To").Value(), "<>"), &target); err != nil {
		t.Fatal(err)
	}
	raw, _ := target.Headers.Get("User-to-User")
	value, err := url.PathUnescape(raw)
	if err != nil {
		t.Fatal(err)
	}
	u, reason := parseUUI(hdrUUI, value)
	if reason != "" || u.PD != "04" || u.Text != "transfer=SYSTEM&task=loopback&digits=5" {
		t.Fatalf("User-to-User %q reads as %+v %s", value, u, reason)
	}
	if v, _ := target.Headers.Get("X-Handoff-Var-digits"); v != "5" {
		t.Fatalf("Refer-To without the URI headers: %s", refer.GetHeader("Refer-To").Value())
	}
	c.Notify("SIP/2.0 200 OK", "terminated")
	p.WaitBye()
}

// Avaya Aura: the UCID in User-to-User (00FA08…, as AudioCodes' SBC manual
// shows it), P-Asserted-Identity, Diversion, History-Info and the
// session timer a Communication Manager trunk sends. The INVITE return
// passes the UUI through and turns the returnUri's URI header into a
// header, the Request-URI keeping none.
func TestAvayaStyleCallInviteReturn(t *testing.T) {
	rec := newInfoPipeline()
	g := newGateway(t, func(c *Config) { c.Pipeline = rec; c.Return.UUIPassthrough = true })
	dest := siptest.NewDestination(t)
	g.createReturn("avaya-1", transfer.SIPReturn{ReturnTransferType: transfer.ReturnInvite, ReturnURI: dest.URI() + "?X-Route=sales%20queue"})
	p := newPhone(t)
	const ucid = "00FA080019001038F725B3;encoding=hex"
	c := p.MustAnswer(g.srv.TransferURI("avaya-1"), p.Offer("0 101"),
		sip.NewHeader("User-to-User", ucid),
		sip.NewHeader("P-Asserted-Identity", "<sip:+15551230000@cm.example.com>"),
		sip.NewHeader("Diversion", "<sip:+15557654321@cm.example.com>;reason=unconditional;counter=1;privacy=off"),
		sip.NewHeader("History-Info", "<sip:+15557654321@cm.example.com>;index=1, <sip:+15550001111@cm.example.com?Reason=SIP%3Bcause%3D302>;index=1.1"),
		sip.NewHeader("Supported", "100rel, histinfo, join, replaces, sdp-anat, timer"),
		sip.NewHeader("Session-Expires", "1200;refresher=uac"))

	info := rec.next(t)
	id := info.Identity
	if info.UUI != ucid || info.UUIText != "" || id[keyAvayaUCID] != "00025000160955721139" ||
		id[keyDiversionNumber] != "+15557654321" || id[keyAssertedNumber] != "+15551230000" ||
		!strings.Contains(id[keyHistoryInfo], "index=1.1") {
		t.Fatalf("the agent got %+v", info)
	}
	if in := g.WaitStatus("avaya-1", transfer.StatusOngoing).Inbound; len(in.HistoryInfo) != 2 || in.UUI[0].UCID == "" {
		t.Fatalf("recorded inbound %+v", in)
	}
	c.SendDTMF('#')
	siptest.Receive(t, dest.Answered, "the return call")
	inv := dest.LastInvite()
	if h := inv.GetHeader("User-to-User"); h == nil || h.Value() != ucid {
		t.Errorf("return INVITE User-to-User %v, want the inbound %s", h, ucid)
	}
	if h := inv.GetHeader("X-Route"); h == nil || h.Value() != "sales queue" {
		t.Errorf("return INVITE X-Route %v, want the returnUri's URI header", h)
	}
	if inv.Recipient.Headers.Length() != 0 || strings.Contains(inv.Recipient.String(), "?") || strings.Contains(inv.To().Value(), "?") {
		t.Errorf("Request-URI %s, To %s: URI headers left in", inv.Recipient.String(), inv.To().Value())
	}
	if h := inv.GetHeader("X-Handoff-Transfer-Id"); h == nil || h.Value() != "avaya-1" {
		t.Errorf("return INVITE X-Handoff-Transfer-Id %v", h)
	}
	g.WaitReturn("avaya-1")
	c.Hangup()
	siptest.Receive(t, dest.Byes, "the destination's BYE")
}

// Cisco UCCE/CVP: Cisco-Guid and Cisco-GUCID identify the call; the IVR
// puts the transfer id in User-to-User (CVP passes header UUI on, decoded
// from hex) and calls a generic DNIS, so the UUI correlates the call.
func TestCiscoStyleCallCorrelatedByUUI(t *testing.T) {
	rec := newInfoPipeline()
	g := newGateway(t, func(c *Config) { c.Pipeline = rec })
	g.createSIP("cvp-tr-7")
	p := newPhone(t)
	c := p.MustAnswer("sip:8005551212@"+g.addr, p.Offer("0 101"),
		sip.NewHeader("Cisco-Guid", "2882343740-0000065536-0000000245-3725134016"),
		sip.NewHeader("Cisco-GUCID", "0A1B2C3D4E5F60718293A4B5C6D7E8F9"),
		sip.NewHeader("User-to-User", hexOf("cvp-tr-7")+";encoding=hex"))
	info := rec.next(t)
	if info.TransferID != "cvp-tr-7" || info.UUIText != "cvp-tr-7" ||
		info.Identity["Cisco-GUID"] != "2882343740-0000065536-0000000245-3725134016" || info.Identity["Cisco-GUCID"] == "" {
		t.Fatalf("the agent got %+v", info)
	}
	if in := g.WaitStatus("cvp-tr-7", transfer.StatusOngoing).Inbound; in.CallIDs["Cisco-GUID"] == "" || in.CallIDs["Cisco-GUCID"] == "" {
		t.Fatalf("recorded inbound %+v", in)
	}
	c.Hangup()
	g.WaitStatus("cvp-tr-7", transfer.StatusCompleted)
}

// A Call-Info with purpose=handoff-transfer claims its transfer, as Google
// CCAI's SIP trunk reads a conversation id from Call-Info; naming two
// different live transfers is refused with 485 and a Warning, and claims
// neither; naming one that has ended as well refuses nothing.
func TestCallInfoCorrelationAndAmbiguity(t *testing.T) {
	g := newGateway(t)
	for _, id := range []string{"ci-a", "ci-b", "ci-c"} {
		g.createSIP(id)
	}
	p := newPhone(t)
	c := p.MustAnswer("sip:ccai@"+g.addr, p.Offer("0"),
		sip.NewHeader("Call-Info", "<urn:handoff:transfer:ci-a>;purpose=handoff-transfer"))
	g.WaitStatus("ci-a", transfer.StatusOngoing)
	c.Hangup()
	g.WaitStatus("ci-a", transfer.StatusCompleted)

	_, err := p.Invite(g.srv.TransferURI("ci-b"), p.Offer("0"), answerNone,
		sip.NewHeader("Call-Info", "<http://example.com/logo.png>;purpose=icon, <sip:ci-c@handoff.example.com>;purpose=handoff-transfer"))
	var rejected *sipgo.ErrDialogResponse
	if !errorsAs(err, &rejected) || rejected.Res.StatusCode != sip.StatusAmbiguous {
		t.Fatalf("INVITE naming two transfers: %v, want 485", err)
	}
	if w := rejected.Res.GetHeader("Warning"); w == nil || w.Value() != `399 handoff "the INVITE names two transfers: by Call-Info and by the Request-URI"` {
		t.Fatalf("Warning %v", w)
	}
	for _, id := range []string{"ci-b", "ci-c"} {
		if tr := g.Get(id); tr.StatusAt(g.svc.Now()) != transfer.StatusActive || tr.Claim != nil || tr.Inbound != nil {
			t.Fatalf("%s after the refusal: %+v", id, tr)
		}
	}
	// The same transfer named twice, or an ended one named too, is no
	// ambiguity.
	c = p.MustAnswer(g.srv.TransferURI("ci-b"), p.Offer("0"),
		sip.NewHeader("Call-Info", "<urn:handoff:transfer:ci-b>;purpose=handoff-transfer, <urn:handoff:transfer:ci-a>;purpose=handoff-transfer"),
		sip.NewHeader("User-to-User", hexOf("ci-a")+";encoding=hex"))
	g.WaitStatus("ci-b", transfer.StatusOngoing)
	c.Hangup()
}

// Malformed and oversized UUI is ignored, logged and counted; the call
// goes on.
func TestBadUUIIgnoredCallGoesOn(t *testing.T) {
	rec := newInfoPipeline()
	g := newGateway(t, func(c *Config) { c.Pipeline = rec })
	g.createSIP("bad-uui")
	p := newPhone(t)
	c := p.MustAnswer("sip:bad-uui@"+g.tcp+";transport=tcp", p.Offer("0"),
		sip.NewHeader("User-to-User", "0FA0Z;encoding=hex"),
		sip.NewHeader("User-to-User", strings.Repeat("41", 600)+";encoding=hex"),
		sip.NewHeader("x-User-to-User", "fallback;encoding=ascii"))
	if info := rec.next(t); info.UUI != "fallback;encoding=ascii" || info.UUIText != "fallback" {
		t.Fatalf("the agent got uui %q text %q", info.UUI, info.UUIText)
	}
	for reason, want := range map[string]float64{uuiMalformed: 1, uuiOversized: 1, uuiDuplicate: 0} {
		if n := testenv.Value(g.srv.metrics.uuiIgnored.WithLabelValues(reason)); n != want {
			t.Errorf("handoff_sip_uui_ignored_total{reason=%q} = %v, want %v", reason, n, want)
		}
	}
	c.Hangup()
}

// An IVR set up for the GenerativeAgent "SIP Headers Transfer" (the
// INVITE of its public page, header for header) gets its transfer and its
// outcome back under the X-GA- names.
func TestHeadersModeGANames(t *testing.T) {
	rec := newInfoPipeline()
	g := newGateway(t, func(c *Config) {
		c.Pipeline = rec
		c.HeadersMode = HeadersMode{Enabled: true, User: "agent", Owner: "ivr", ReturnURI: "sip:your-sbc@127.0.0.1:5999"}
	})
	p := newPhone(t)
	refers := acceptRefers(p)
	c := p.MustAnswer("sip:agent@"+g.addr, p.Offer("0 101"),
		sip.NewHeader("X-GA-taskName", "call_routing"),
		sip.NewHeader("X-GA-extConversationId", "conv-12345"),
		sip.NewHeader("X-GA-customerId", "cust-67890"),
		sip.NewHeader("X-GA-iv-accountNumber", "3434"),
		sip.NewHeader("X-GA-iv-name", "John Doe"),
		sip.NewHeader("X-GA-iv-priority", "high"))
	info := rec.next(t)
	tr := g.WaitStatus(info.TransferID, transfer.StatusOngoing)
	in := tr.InputContext
	if tr.ExternalConversationID != "conv-12345" || info.Headers["X-GA-customerId"] != "cust-67890" {
		t.Fatalf("transfer %+v, agent headers %v", tr, info.Headers)
	}
	if in.TaskName != "call_routing" || in.InputVariables["accountNumber"] != "3434" || in.InputVariables["name"] != "John Doe" ||
		in.InputVariables["priority"] != "high" || in.InputVariables["customerId"] != "cust-67890" || tr.SIP.ContextNames != ContextNamesGA {
		t.Fatalf("transfer %+v %+v", in, tr.SIP)
	}
	c.SendDTMF('5')
	c.SendDTMF('#')
	refer := siptest.Receive(t, refers, "the gateway's REFER")
	want := "<sip:your-sbc@127.0.0.1:5999?X-GA-extConId=conv-12345&X-GA-transfer=SYSTEM&X-GA-tv-digits=5&X-GA-rv-reason=caller_pressed_hash>"
	if got := refer.GetHeader("Refer-To").Value(); got != want {
		t.Fatalf("Refer-To\n got %s\nwant %s", got, want)
	}
	c.Notify("SIP/2.0 200 OK", "terminated")
	p.WaitBye()
}

package sip

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
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

func (g *gateway) createReturn(id string, ret transfer.SIPReturn) {
	g.t.Helper()
	if _, _, err := g.svc.Create(context.Background(), "ivr", transfer.CreateRequest{
		ID: id, ExternalConversationID: "conv-" + id, Type: transfer.TypeSIP, SIP: &ret,
	}); err != nil {
		g.t.Fatal(err)
	}
}

// referCall sets up a caller for a REFER return, presses keys then #, and
// returns it with the channel its REFERs arrive on; answer decides the
// REFER's status (0: no answer at all).
func referCall(t *testing.T, g *gateway, id string, answer int, keys string) (*call, chan *sip.Request) {
	g.createReturn(id, transfer.SIPReturn{ReturnTransferType: transfer.ReturnRefer, ReturnURI: "sip:ivr-return@127.0.0.1:5999;transport=udp"})
	p := newPhone(t)
	refers := make(chan *sip.Request, 1)
	p.OnRefer(func(req *sip.Request, tx sip.ServerTransaction) {
		if answer != 0 {
			_ = tx.Respond(sip.NewResponseFromRequest(req, answer, "Answer", nil))
		}
		select {
		case refers <- req:
		default: // a retransmission of an unanswered REFER
		}
	})
	return g.finishCall(p, id, keys), refers
}

// finishCall places p's call to transfer id, waits until it is ONGOING and
// presses keys then #: the loopback agent finishes and the call goes back.
func (g *gateway) finishCall(p *phone, id, keys string) *call {
	g.t.Helper()
	c := p.MustAnswer(g.srv.TransferURI(id), p.Offer("0 101"))
	g.WaitStatus(id, transfer.StatusOngoing)
	for _, k := range keys + "#" {
		c.SendDTMF(k)
	}
	return c
}

func TestReferReturnSucceeds(t *testing.T) {
	g := newGateway(t)
	c, refers := referCall(t, g, "refer-ok", 202, "5")
	req := siptest.Receive(t, refers, "the gateway's REFER")
	referTo := req.GetHeader("Refer-To").Value()
	for _, want := range []string{"sip:ivr-return@127.0.0.1:5999", "X-Handoff-Transfer-Type=SYSTEM", "X-Handoff-Var-digits=5"} {
		if !strings.Contains(referTo, want) {
			t.Errorf("Refer-To %q lacks %q", referTo, want)
		}
	}
	if req.GetHeader("Referred-By") == nil {
		t.Error("REFER without Referred-By")
	}
	// The transfer is COMPLETED with the outcome as soon as the agent is done.
	done := g.WaitStatus("refer-ok", transfer.StatusCompleted)
	if done.OutputContext == nil || done.OutputContext.TransferVariables["digits"] != "5" {
		t.Fatalf("outputContext %+v", done.OutputContext)
	}
	c.Notify("SIP/2.0 100 Trying", "active;expires=60")
	c.Notify("SIP/2.0 200 OK", "terminated;reason=noresource")
	c.P.WaitBye()
	r := g.WaitReturn("refer-ok").Return
	if r.Method != transfer.ReturnRefer || r.Result != transfer.ReturnSucceeded || r.SIPCode != 200 || r.Fallback != "" {
		t.Fatalf("returnResult %+v", r)
	}
}

func TestReferReturnRejectedFallsBackToBye(t *testing.T) {
	g := newGateway(t)
	c, refers := referCall(t, g, "refer-603", 603, "5")
	siptest.Receive(t, refers, "the gateway's REFER")
	c.P.WaitBye()
	r := g.WaitReturn("refer-603").Return
	if r.Result != transfer.ReturnFailed || r.SIPCode != 603 || r.Fallback != transfer.ReturnBye {
		t.Fatalf("returnResult %+v", r)
	}
}

func TestReferReturnFailures(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer int // the REFER's, 0 for none
		frags  []string
		code   int
		reason string
	}{
		{"target busy", 202, []string{"SIP/2.0 100 Trying", "SIP/2.0 486 Busy Here"}, 486, "transfer failed at the target"},
		{"no final NOTIFY", 202, []string{"SIP/2.0 100 Trying"}, 202, "no final NOTIFY within 0.7 s"},
		// Ours, not Go's: not "no answer to REFER: context deadline exceeded".
		{"no answer to the REFER", 0, nil, 0, "no answer to REFER within 0.7 s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGateway(t, func(c *Config) { c.Return.ReferTimeout = 700 * time.Millisecond })
			c, refers := referCall(t, g, "refer-fail", tc.answer, "5")
			siptest.Receive(t, refers, "the gateway's REFER")
			for i, f := range tc.frags {
				state := "active"
				if i == len(tc.frags)-1 && tc.code != 202 {
					state = "terminated"
				}
				c.Notify(f, state)
			}
			c.P.WaitBye()
			r := g.WaitReturn("refer-fail").Return
			if r.Result != transfer.ReturnFailed || r.SIPCode != tc.code || r.Reason != tc.reason || r.Fallback != transfer.ReturnBye {
				t.Fatalf("returnResult %+v", r)
			}
		})
	}
}

func TestReferContextEncoding(t *testing.T) {
	out := transfer.OutputContext{TransferType: "AGENT", CurrentTaskName: "Billing", TransferVariables: map[string]string{"b": "x y&z", "a": "1"}}
	got, err := encodeOutcome("sip:ivr@10.0.0.1:5060", out, ReturnConfig{ContextEncoding: "headers", MaxContextBytes: 1024})
	if err != nil {
		t.Fatal(err)
	}
	want := "sip:ivr@10.0.0.1:5060?X-Handoff-Transfer-Type=AGENT&X-Handoff-Task=Billing&X-Handoff-Var-a=1&X-Handoff-Var-b=x%20y%26z"
	if got != want {
		t.Fatalf("headers encoding\n got %s\nwant %s", got, want)
	}
	got, _ = encodeOutcome("sip:ivr@10.0.0.1", out, ReturnConfig{ContextEncoding: "params", MaxContextBytes: 1024})
	if got != "sip:ivr@10.0.0.1;x-handoff-transfer-type=AGENT;x-handoff-task=Billing;x-handoff-var-a=1;x-handoff-var-b=x%20y%26z" {
		t.Fatalf("params encoding: %s", got)
	}
	// The result must still parse as a SIP URI.
	var u sip.Uri
	if err := sip.ParseUri(got, &u); err != nil {
		t.Fatalf("encoded URI does not parse: %v", err)
	}
	got, _ = encodeOutcome("sip:ivr@10.0.0.1", out, ReturnConfig{ContextEncoding: "headers", MaxContextBytes: 60})
	if !strings.HasSuffix(got, "&X-Handoff-Truncated=true") || strings.Contains(got, "Var-b") {
		t.Fatalf("truncation: %s", got)
	}
	// Empty values are left off, in both encodings.
	sparse := transfer.OutputContext{TransferType: "AGENT", TransferVariables: map[string]string{"digits": "", "a": "1"}}
	for _, enc := range []ContextEncoding{"headers", "params"} {
		got, _ = encodeOutcome("sip:ivr@10.0.0.1", sparse, ReturnConfig{ContextEncoding: enc, MaxContextBytes: 1024})
		if strings.Contains(strings.ToLower(got), "digits") || !strings.Contains(strings.ToLower(got), "x-handoff-var-a=1") {
			t.Errorf("%s encoding of an empty variable: %s", enc, got)
		}
	}
}

// frameCounts counts the audio frames the agent hears per track (a
// siptest.Tap's OnAudio).
type frameCounts struct {
	mu     sync.Mutex
	frames map[agent.Track]int
}

func (r *frameCounts) add(track agent.Track, _ []int16) {
	r.mu.Lock()
	r.frames[track]++
	r.mu.Unlock()
}

func (r *frameCounts) count(track agent.Track) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.frames[track]
}

func TestInviteReturnBridgesAndTranscodes(t *testing.T) {
	const password = "pw-9f8e7d"
	logs := &testenv.Buffer{}
	rec := &frameCounts{frames: map[agent.Track]int{}}
	g := newGateway(t, func(c *Config) {
		c.Pipeline = &siptest.Tap{Pipeline: agent.Loopback{}, OnAudio: rec.add}
		c.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	dest := siptest.NewDestination(t, siptest.RequireDigest("ret", password, siptest.DigestAlgorithm("SHA-256")))
	g.createReturn("inv", transfer.SIPReturn{
		ReturnTransferType: transfer.ReturnInvite, ReturnURI: dest.URI(),
		Auth: &transfer.Credentials{Username: "ret", Password: password},
	})
	p := newPhone(t)
	c := g.finishCall(p, "inv", "7")

	siptest.Receive(t, dest.Answered, "the return call never reached the destination")
	if n := len(dest.Invites()); n != 2 {
		t.Fatalf("destination saw %d INVITEs, want 2 (challenge, then credentials)", n)
	}
	inv := dest.LastInvite()
	if a := inv.GetHeader("Authorization"); a == nil || !strings.Contains(a.Value(), "SHA-256") {
		t.Fatalf("return INVITE not authenticated with SHA-256: %v", a)
	}
	if h := inv.GetHeader("X-Handoff-Var-digits"); h == nil || h.Value() != "7" {
		t.Fatalf("return INVITE lacks the outcome: %v", h)
	}
	if inv.GetHeader("P-Asserted-Identity") == nil || inv.From().Address.User != c.Dlg.InviteRequest.From().Address.User {
		t.Fatalf("return INVITE does not present the caller: From %v", inv.From())
	}
	// Carriers and SBCs expect requests from the signalling port that Via
	// and Contact advertise, not from an ephemeral one.
	if inv.Source() != g.addr {
		t.Errorf("return INVITE sent from %s, want the gateway's SIP address %s", inv.Source(), g.addr)
	}
	g.WaitReturn("inv")

	// Caller -> destination: μ-law in, A-law out, same audio.
	destCall := dest.RTPCall()
	pcm := make([]int16, media.FrameSamples)
	wantALaw := make([]byte, media.FrameSamples)
	sent := pattern(3)
	media.DecodeULaw(pcm, sent)
	media.EncodeALaw(wantALaw, pcm)
	sending := make(chan struct{})
	go func() {
		defer close(sending)
		for range 25 {
			c.SendAudio(sent)
			destCall.SendRTP(8, false, wantALaw) // and destination -> caller
			destCall.TS += 160
			time.Sleep(20 * time.Millisecond)
		}
	}()
	destCall.ReadRTP(10*time.Second, func(pkt *rtp.Packet) bool {
		return pkt.PayloadType == 8 && bytes.Equal(pkt.Payload, wantALaw)
	})
	wantULaw := make([]byte, media.FrameSamples)
	media.DecodeALaw(pcm, wantALaw)
	media.EncodeULaw(wantULaw, pcm)
	c.ReadRTP(10*time.Second, func(pkt *rtp.Packet) bool {
		return pkt.PayloadType == 0 && bytes.Equal(pkt.Payload, wantULaw)
	})
	<-sending
	eventually(t, "agent hears both tracks", func() bool { return rec.count(agent.TrackDestination) > 5 })

	// The destination puts the bridged call on hold: its leg answers.
	dlg := dest.Dialog()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	hold := sip.NewRequest(sip.INVITE, dlg.InviteRequest.Contact().Address)
	hold.SetBody(sdpBody(dest.RTPPort(), "8 101", "a=sendonly"))
	hold.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	holdRes, err := dlg.Do(ctx, hold)
	if err != nil || holdRes.StatusCode != 200 || !bytes.Contains(holdRes.Body(), []byte("a=recvonly")) {
		t.Fatalf("hold on the return leg: %v %v", err, holdRes)
	}
	if err := dlg.WriteRequest(sip.NewRequest(sip.ACK, dlg.InviteRequest.Contact().Address)); err != nil {
		t.Fatal(err)
	}

	// The destination hangs up: Handoff hangs up the caller.
	if err := dlg.Bye(ctx); err != nil {
		t.Fatalf("destination BYE: %v", err)
	}
	p.WaitBye()
	eventually(t, "bridge end recorded", func() bool { return !g.Get("inv").Return.BridgeEndedAt.IsZero() })
	r := g.Get("inv")
	if r.Status != transfer.StatusCompleted || r.Return.Result != transfer.ReturnSucceeded || r.Return.SIPCode != 200 || r.Return.Method != transfer.ReturnInvite {
		t.Fatalf("transfer %s return %+v", r.Status, r.Return)
	}
	if strings.Contains(logs.String(), password) {
		t.Fatal("the digest password appeared in the logs")
	}
}

func TestInviteReturnFailuresFallBackToBye(t *testing.T) {
	strict := siptest.StrictDigestURI()
	for _, tc := range []struct {
		name     string
		dest     siptest.DestinationOption
		password string
		code     int
		reason   string
	}{
		{"busy", siptest.Busy(), "", 486, "return call rejected"},
		{"wrong credentials", siptest.RequireDigest("ret", "right"), "wrong", 403, "return call rejected"},
		{"wrong credentials, challenged again", siptest.RequireDigest("ret", "right", strict), "wrong", 401, "credentials rejected"},
		{"wrong proxy credentials, challenged again", siptest.RequireDigest("ret", "right", strict, siptest.ProxyChallenge()), "wrong", 407, "credentials rejected"},
		{"no answer", siptest.RingsForever(), "", 487, "no answer within 0.5 s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGateway(t, func(c *Config) { c.Return.RingTimeout = 500 * time.Millisecond })
			dest := siptest.NewDestination(t, tc.dest)
			ret := transfer.SIPReturn{ReturnTransferType: transfer.ReturnInvite, ReturnURI: dest.URI()}
			if tc.password != "" {
				ret.Auth = &transfer.Credentials{Username: "ret", Password: tc.password}
			}
			g.createReturn("inv-fail", ret)
			p := newPhone(t)
			c := g.finishCall(p, "inv-fail", "")
			if tc.name == "no answer" {
				// While the return call rings (180), the caller hears ringback.
				first, _ := media.NewRingback().Next()
				want := make([]byte, media.FrameSamples)
				media.EncodeULaw(want, first)
				c.ReadRTP(10*time.Second, func(pkt *rtp.Packet) bool { return bytes.Equal(pkt.Payload, want) })
			}
			p.WaitBye()
			r := g.WaitReturn("inv-fail").Return
			if r.Result != transfer.ReturnFailed || r.SIPCode != tc.code || r.Reason != tc.reason || r.Fallback != transfer.ReturnBye {
				t.Fatalf("returnResult %+v", r)
			}
		})
	}
}

// A destination that never answers at all (no 100, nothing): the reason
// says so in our words, not as the transaction layer's error.
func TestInviteReturnToASilentDestination(t *testing.T) {
	silent, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	g := newGateway(t)
	g.createReturn("inv-silent", transfer.SIPReturn{ReturnTransferType: transfer.ReturnInvite, ReturnURI: "sip:ret@" + silent.LocalAddr().String()})
	p := newPhone(t)
	g.finishCall(p, "inv-silent", "")
	p.WaitBye()
	r := g.WaitReturn("inv-silent").Return
	if r.Result != transfer.ReturnFailed || r.Reason != "no response from the return destination" || r.Fallback != transfer.ReturnBye {
		t.Fatalf("returnResult %+v", r)
	}
}

// A variable the agent left empty is left off the Refer-To, not sent as
// X-Handoff-Var-digits=.
func TestReferReturnLeavesEmptyVariablesOff(t *testing.T) {
	g := newGateway(t)
	c, refers := referCall(t, g, "refer-empty", 202, "") // # alone: digits is ""
	req := siptest.Receive(t, refers, "the gateway's REFER")
	referTo := req.GetHeader("Refer-To").Value()
	if strings.Contains(referTo, "X-Handoff-Var-digits") || !strings.Contains(referTo, "X-Handoff-Transfer-Type=SYSTEM") {
		t.Fatalf("Refer-To %s: want the transfer type and no empty digits", referTo)
	}
	if done := g.WaitStatus("refer-empty", transfer.StatusCompleted); done.OutputContext.TransferVariables["digits"] != "" {
		t.Fatalf("outputContext %+v", done.OutputContext)
	}
	c.Notify("SIP/2.0 200 OK", "terminated")
	c.P.WaitBye()
}

func TestHeadersModeCreatesTransferAndRefersBack(t *testing.T) {
	g := newGateway(t, func(c *Config) {
		c.HeadersMode = HeadersMode{Enabled: true, User: "agent", Owner: "ivr"}
	})
	p := newPhone(t)
	refers := make(chan *sip.Request, 1)
	p.OnRefer(func(req *sip.Request, tx sip.ServerTransaction) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 202, "Accepted", nil))
		refers <- req
	})
	c := p.MustAnswer("sip:agent@"+g.addr, p.Offer("0 101"),
		sip.NewHeader("X-Handoff-Transfer-Id", "hdr-1"),
		sip.NewHeader("X-Handoff-Task", "Billing"),
		sip.NewHeader("X-Handoff-Var-account", "A%2042"),
		sip.NewHeader("X-Handoff-Return-Uri", "<sip:ivr-back@127.0.0.1:5999>"))
	tr := g.WaitStatus("hdr-1", transfer.StatusOngoing)
	if tr.InputContext == nil || tr.InputContext.TaskName != "Billing" || tr.InputContext.InputVariables["account"] != "A 42" {
		t.Fatalf("inputContext from headers %+v", tr.InputContext)
	}
	if tr.SIP == nil || tr.SIP.ReturnTransferType != transfer.ReturnRefer || tr.SIP.ReturnURI != "sip:ivr-back@127.0.0.1:5999" {
		t.Fatalf("return from headers %+v", tr.SIP)
	}
	c.SendDTMF('#')
	req := siptest.Receive(t, refers, "the gateway's REFER")
	if rt := req.GetHeader("Refer-To").Value(); !strings.Contains(rt, "sip:ivr-back@127.0.0.1:5999?") || !strings.Contains(rt, "X-Handoff-Task=Billing") {
		t.Fatalf("Refer-To %s", rt)
	}
	c.Notify("SIP/2.0 200 OK", "terminated")
	p.WaitBye()
	if r := g.WaitReturn("hdr-1").Return; r.Result != transfer.ReturnSucceeded {
		t.Fatalf("returnResult %+v", r)
	}
	// A static-URI INVITE with the mode off is simply unknown.
	g2 := newGateway(t)
	if _, err := p.Invite("sip:agent@"+g2.addr, p.Offer("0"), sipgo.AnswerOptions{}); statusOf(err) != 404 {
		t.Fatalf("headers-mode INVITE with the mode off: %v", err)
	}
}

func TestInviteReturnEarlyMedia(t *testing.T) {
	g := newGateway(t)
	dest := siptest.NewDestination(t, siptest.EarlyMediaUntilRelease())
	g.createReturn("early", transfer.SIPReturn{ReturnTransferType: transfer.ReturnInvite, ReturnURI: dest.URI()})
	p := newPhone(t)
	c := g.finishCall(p, "early", "")
	siptest.Receive(t, dest.EarlyMediaSent, "no 183 from the destination")
	// The destination's early media (an announcement, in A-law) reaches the
	// caller before the return call is answered.
	destCall := dest.RTPCall()
	announcement := pattern(9)
	pcm := make([]int16, media.FrameSamples)
	want := make([]byte, media.FrameSamples)
	media.DecodeALaw(pcm, announcement)
	media.EncodeULaw(want, pcm)
	sending := make(chan struct{})
	go func() {
		defer close(sending)
		for range 25 {
			destCall.SendRTP(8, false, announcement)
			destCall.TS += 160
			time.Sleep(20 * time.Millisecond)
		}
	}()
	c.ReadRTP(10*time.Second, func(pkt *rtp.Packet) bool { return bytes.Equal(pkt.Payload, want) })
	<-sending
	dest.Release() // now the destination answers
	siptest.Receive(t, dest.Answered, "the return call was not answered")
	g.WaitReturn("early")
	c.Hangup() // the caller hangs up: Handoff hangs up the destination
	siptest.Receive(t, dest.Byes, "the destination got no BYE")
	eventually(t, "bridge end recorded", func() bool { return !g.Get("early").Return.BridgeEndedAt.IsZero() })
}

// TestInviteReturnOverTLS: a returnUri with transport=tls gets its INVITE
// (and later its BYE) over TLS.
func TestInviteReturnOverTLS(t *testing.T) {
	conf, roots := selfSigned(t)
	conf.RootCAs = roots // both sides present and trust the same test certificate
	g := newGateway(t, func(c *Config) {
		c.Listen = []string{"udp://127.0.0.1:0", "tls://127.0.0.1:0"}
		c.TLS = conf
		c.SRTP = SRTPOff // the test destination answers plain RTP
	})
	dest := siptest.NewDestination(t, siptest.OverTLS(conf))
	g.createReturn("inv-tls", transfer.SIPReturn{ReturnTransferType: transfer.ReturnInvite, ReturnURI: "sip:ret@" + dest.TLSAddr + ";transport=tls"})
	p := newPhone(t)
	c := g.finishCall(p, "inv-tls", "")
	select {
	case <-dest.Answered:
	case <-time.After(15 * time.Second):
		t.Fatalf("the return call never reached the TLS destination: %+v", g.Get("inv-tls").Return)
	}
	inv := dest.LastInvite()
	if !strings.EqualFold(inv.Transport(), "TLS") {
		t.Fatalf("return INVITE came over %s, want TLS", inv.Transport())
	}
	if r := g.WaitReturn("inv-tls").Return; r.Result != transfer.ReturnSucceeded {
		t.Fatalf("returnResult %+v", r)
	}
	c.Hangup() // Handoff hangs up the destination, over TLS
	siptest.Receive(t, dest.Byes, "the TLS destination got no BYE")
}

// TestInviteReturnUnacknowledgeable: a destination that answers with a
// Contact no connection can reach is hung up, and the fallback applies.
func TestInviteReturnUnacknowledgeable(t *testing.T) {
	conf, roots := selfSigned(t)
	conf.RootCAs = roots
	g := newGateway(t, func(c *Config) {
		c.Listen = []string{"udp://127.0.0.1:0", "tls://127.0.0.1:0"}
		c.TLS = conf
		c.SRTP = SRTPOff
	})
	dest := siptest.NewDestination(t, siptest.OverTLS(conf), siptest.UnreachableContact())
	g.createReturn("inv-noack", transfer.SIPReturn{ReturnTransferType: transfer.ReturnInvite, ReturnURI: "sip:ret@" + dest.TLSAddr + ";transport=tls"})
	p := newPhone(t)
	g.finishCall(p, "inv-noack", "")
	p.WaitBye()
	r := g.WaitReturn("inv-noack").Return
	if r.Result != transfer.ReturnFailed || !strings.Contains(r.Reason, "ACK") || r.Fallback != transfer.ReturnBye {
		t.Fatalf("returnResult %+v", r)
	}
}

// A sipfrag status is three digits in 100-699; anything else reads as none
// (the fuzzer's find: "SIP/ -1" gave -1, which reached returnResult.sipCode).
func TestSipfragStatusIsAThreeDigitCode(t *testing.T) {
	for body, want := range map[string]int{
		"SIP/2.0 200 OK": 200, "SIP/2.0 180 Ringing\r\n": 180, "SIP/2.0 603 Declined": 603,
		"SIP/ -1": 0, "SIP/2.0 +20 x": 0, "SIP/2.0 099 x": 0, "SIP/2.0 700 x": 0, "SIP/2.0 2000 x": 0, "garbage": 0,
	} {
		req, ok := fuzzRequest("NOTIFY", "sip:handoff@192.0.2.2", []string{"Event: refer", "Content-Type: message/sipfrag"}, body)
		if !ok {
			t.Fatalf("sipgo refused the NOTIFY with %q", body)
		}
		if code, _ := sipfragStatus(req); code != want {
			t.Errorf("sipfrag %q: status %d, want %d", body, code, want)
		}
	}
}

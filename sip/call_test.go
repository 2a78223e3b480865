package sip

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/pion/rtp"

	"github.com/handoff/handoff/agent"
	"github.com/handoff/handoff/internal/testenv"
	"github.com/handoff/handoff/media"
	"github.com/handoff/handoff/transfer"
)

// expectEcho sends frames and checks the gateway sends each payload back.
func expectEcho(t *testing.T, c *call, frames int) {
	t.Helper()
	want := map[string]bool{}
	for i := range frames {
		want[string(pattern(i))] = true
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range frames {
			c.SendAudio(pattern(i))
			time.Sleep(20 * time.Millisecond)
		}
	}()
	got := 0
	c.ReadRTP(15*time.Second, func(p *rtp.Packet) bool {
		if p.PayloadType == 0 && want[string(p.Payload)] {
			delete(want, string(p.Payload))
			got++
		}
		// The jitter buffer may hold back the last frames; most must come back.
		return got >= frames-3
	})
	<-done
}

func TestPhoneNumberCallEchoesAndFinishesOnHash(t *testing.T) {
	g := newGateway(t)
	tr := g.createPhone("pn-1")
	p := newPhone(t)
	number := tr.PhoneNumber.TransferNumber
	c := p.MustAnswer("sip:"+number+"@"+g.addr, p.Offer("0 8 101"))

	on := g.WaitStatus("pn-1", transfer.StatusOngoing)
	if on.CallReceivedAt.IsZero() {
		t.Fatal("callReceivedAt not set")
	}
	// The lease ended on ACK: the number no longer reaches the transfer.
	if _, err := g.svc.FindByNumber(context.Background(), number); !errors.Is(err, transfer.ErrNotFound) {
		t.Fatalf("number still leased while ONGOING: %v", err)
	}
	if !bytes.Contains(c.Dlg.InviteResponse.Body(), []byte("PCMU/8000")) || !bytes.Contains(c.Dlg.InviteResponse.Body(), []byte("telephone-event/8000")) {
		t.Fatalf("answer lacks PCMU or telephone-event:\n%s", c.Dlg.InviteResponse.Body())
	}
	expectEcho(t, c, 30)

	c.SendDTMF('4')
	c.SendDTMF('2')
	c.SendDTMF('#')
	bye := p.WaitBye()
	if r := bye.GetHeader("Reason"); r == nil || !strings.Contains(r.Value(), string(transfer.EndAgentFinished)) {
		t.Fatalf("BYE Reason %v", r)
	}
	// Sent from the SIP port the gateway advertises, not an ephemeral one.
	if bye.Source() != g.addr {
		t.Errorf("BYE sent from %s, want the gateway's SIP address %s", bye.Source(), g.addr)
	}
	done := g.WaitStatus("pn-1", transfer.StatusCompleted)
	if done.EndReason != transfer.EndAgentFinished || done.CompletedAt.IsZero() {
		t.Fatalf("end %+v", done)
	}
	if out := done.OutputContext; out == nil || out.TransferType != agent.TransferSystem || out.TransferVariables["digits"] != "42" {
		t.Fatalf("outputContext %+v", done.OutputContext)
	}
}

// The gateway's in-dialog requests leave from its SIP port even when the
// caller's Contact is an address the gateway has never heard from (an SBC
// that signals from one socket and names another in Contact): sipgo would
// send from an ephemeral port.
func TestByeToUnheardContactLeavesFromSIPPort(t *testing.T) {
	g := newGateway(t)
	g.createSIP("contact-1")
	p := newPhone(t)
	other, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	p.DUA.ContactHDR = sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "caller", Host: "127.0.0.1", Port: other.LocalAddr().(*net.UDPAddr).Port}}
	c := p.MustAnswer(g.srv.TransferURI("contact-1"), p.Offer("0 101"))
	c.SendDTMF('#') // the loopback agent finishes: BYE to the Contact

	buf := make([]byte, 8192)
	_ = other.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, from, err := other.ReadFromUDP(buf)
	if err != nil {
		t.Fatalf("no BYE at the Contact: %v", err)
	}
	msg, err := sip.NewParser().ParseSIP(buf[:n])
	if err != nil {
		t.Fatal(err)
	}
	bye, ok := msg.(*sip.Request)
	if !ok || bye.Method != sip.BYE {
		t.Fatalf("got %s, want a BYE", msg.String())
	}
	if from.String() != g.addr {
		t.Errorf("BYE sent from %s, want the gateway's SIP address %s", from, g.addr)
	}
	res := sip.NewResponseFromRequest(bye, 200, "OK", nil).String()
	if _, err := other.WriteToUDP([]byte(res), from); err != nil {
		t.Fatal(err)
	}
	g.WaitStatus("contact-1", transfer.StatusCompleted)
}

func TestSIPTransferByURIAndCallerHangup(t *testing.T) {
	g := newGateway(t)
	g.createSIP("sip-1")
	p := newPhone(t)
	c := p.MustAnswer(g.srv.TransferURI("sip-1"), p.Offer("8 101"))
	if !bytes.Contains(c.Dlg.InviteResponse.Body(), []byte("PCMA/8000")) {
		t.Fatalf("answer did not pick PCMA:\n%s", c.Dlg.InviteResponse.Body())
	}
	g.WaitStatus("sip-1", transfer.StatusOngoing)
	c.Hangup()
	done := g.WaitStatus("sip-1", transfer.StatusCompleted)
	if done.EndReason != transfer.EndCallerHangup {
		t.Fatalf("end reason %q", done.EndReason)
	}
	eventually(t, "call released", func() bool { return g.srv.ActiveCalls() == 0 && g.ports.InUse() == 0 })
}

func TestSIPTransferByHeaderOverTCP(t *testing.T) {
	g := newGateway(t)
	g.createSIP("sip-hdr")
	p := newPhone(t)
	// Over TCP, to a static URI, with the id in the configured header.
	c, err := p.Invite("sip:agent@"+g.tcp+";transport=tcp", p.Offer("0"), sipgo.AnswerOptions{},
		sip.NewHeader("X-Call-Transfer-Id", "sip-hdr"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Dlg.Ack(context.Background()); err != nil {
		t.Fatal(err)
	}
	g.WaitStatus("sip-hdr", transfer.StatusOngoing)
	c.Hangup()
	g.WaitStatus("sip-hdr", transfer.StatusCompleted)
}

func TestDelayedOffer(t *testing.T) {
	g := newGateway(t)
	g.createSIP("late")
	p := newPhone(t)
	c, err := p.Invite(g.srv.TransferURI("late"), nil, sipgo.AnswerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	offer := c.Dlg.InviteResponse.Body()
	if !bytes.Contains(offer, []byte("PCMU/8000")) || !bytes.Contains(offer, []byte("PCMA/8000")) {
		t.Fatalf("200 OK carries no offer:\n%s", offer)
	}
	c.AckAnswer(p.Offer("8 101"))
	g.WaitStatus("late", transfer.StatusOngoing)
	// Our answer chose PCMA: echo checks bytes through A-law.
	for i := range 5 {
		c.SendRTP(8, i == 0, pattern(i))
		c.TS += 160
	}
	c.ReadRTP(10*time.Second, func(p *rtp.Packet) bool { return p.PayloadType == 8 })
	c.Hangup()
	g.WaitStatus("late", transfer.StatusCompleted)
}

func TestRefusals(t *testing.T) {
	g := newGateway(t)
	p := newPhone(t)
	g.createSIP("busy")
	first := p.MustAnswer(g.srv.TransferURI("busy"), p.Offer("0"))
	g.WaitStatus("busy", transfer.StatusOngoing)

	cases := []struct {
		name string
		uri  string
		body []byte
		want int
	}{
		{"unknown transfer", g.srv.TransferURI("nope"), p.Offer("0"), 404},
		{"unleased number", "sip:+19995550109@" + g.addr, p.Offer("0"), 404},
		{"already claimed", g.srv.TransferURI("busy"), p.Offer("0"), 486},
		{"no common codec", g.srv.TransferURI("fresh"), p.Offer("18"), 488},
		{"garbage SDP", g.srv.TransferURI("fresh"), []byte("this is not SDP"), 488},
	}
	g.createSIP("fresh")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := p.Invite(tc.uri, tc.body, sipgo.AnswerOptions{})
			if got := statusOf(err); got != tc.want {
				t.Fatalf("got %d (%v), want %d", got, err, tc.want)
			}
		})
	}
	// The refused attempts left "fresh" ACTIVE and unclaimed, and the
	// first call undisturbed.
	if st := g.Get("fresh").StatusAt(g.svc.Now()); st != transfer.StatusActive {
		t.Fatalf("refused INVITE changed fresh to %s", st)
	}
	expectEcho(t, first, 10)
	first.Hangup()
	g.WaitStatus("busy", transfer.StatusCompleted)
	// An expired transfer is 404 too.
	g.createSIP("old")
	if _, err := g.svc.Store().Update(context.Background(), "old", g.svc.Now(), func(tr *transfer.Transfer) error {
		tr.ExpiresAt = g.svc.Now().Add(-time.Second)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Invite(g.srv.TransferURI("old"), p.Offer("0"), sipgo.AnswerOptions{}); statusOf(err) != 404 {
		t.Fatalf("expired transfer: %v", err)
	}
}

func TestNumberForms(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"+19995550100", []string{"+19995550100"}},
		{"19995550100", []string{"+19995550100"}},
		{"9995550100", []string{"+9995550100", "+19995550100"}},
		{"0019995550100", []string{"+0019995550100", "+19995550100"}},
		{"+1-999-555-0100", []string{"+19995550100"}},
		{"abc", nil},
	} {
		if got := numberCandidates(tc.in); fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("numberCandidates(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
	g := newGateway(t)
	tr := g.createPhone("tel-form")
	p := newPhone(t)
	c := p.MustAnswer("sip:"+strings.TrimPrefix(tr.PhoneNumber.TransferNumber, "+")+"@"+g.addr, p.Offer("0"))
	g.WaitStatus("tel-form", transfer.StatusOngoing)
	c.Hangup()
}

// gatedPipeline holds Open until released (or the call is cancelled), so a
// test can CANCEL a ringing call or watch a slow agent connect.
type gatedPipeline struct {
	agent.Pipeline
	opened chan struct{}
	gate   chan struct{}
}

func (g *gatedPipeline) Open(ctx context.Context, info agent.CallInfo) (agent.Session, error) {
	select {
	case g.opened <- struct{}{}:
	default:
	}
	select {
	case <-g.gate: // closed: later calls pass straight through
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
	return g.Pipeline.Open(ctx, info)
}

func TestCancelBeforeAnswerLeavesTransferActive(t *testing.T) {
	gp := &gatedPipeline{Pipeline: agent.Loopback{}, opened: make(chan struct{}, 1), gate: make(chan struct{})}
	g := newGateway(t, func(c *Config) { c.Pipeline = gp })
	g.createSIP("cancel-me")
	p := newPhone(t)
	inviteThenCancel(t, p, g.srv.TransferURI("cancel-me"), func() { <-gp.opened })
	close(gp.gate)
	// Released, and counted as what the caller got (the transaction layer's
	// 487), not as an agent failure.
	invites := func(code string) float64 { return testenv.Value(g.srv.metrics.invites.WithLabelValues(code)) }
	eventually(t, "cancelled call released", func() bool {
		return g.srv.ActiveCalls() == 0 && g.ports.InUse() == 0 && g.Get("cancel-me").Claim == nil && invites("487") == 1
	})
	if n := invites("503"); n != 0 {
		t.Errorf("invites{code=503} = %v, want 0", n)
	}
	tr := g.Get("cancel-me")
	if tr.StatusAt(g.svc.Now()) != transfer.StatusActive || tr.Claim != nil {
		t.Fatalf("after CANCEL: status %s claim %+v", tr.Status, tr.Claim)
	}
	// The IVR may retry at once.
	c := p.MustAnswer(g.srv.TransferURI("cancel-me"), p.Offer("0"))
	g.WaitStatus("cancel-me", transfer.StatusOngoing)
	c.Hangup()
}

// inviteThenCancel sends p's INVITE to uri, cancels it once ready returns
// (the gateway is busy with it), and checks it ended cancelled.
func inviteThenCancel(t *testing.T, p *phone, uri string, ready func()) {
	t.Helper()
	var recipient sip.Uri
	_ = sip.ParseUri(uri, &recipient)
	ctx, cancel := context.WithCancel(context.Background())
	dlg, err := p.DUA.Invite(ctx, recipient, p.Offer("0"), sip.NewHeader("Content-Type", "application/sdp"))
	if err != nil {
		t.Fatal(err)
	}
	defer dlg.Close()
	answered := make(chan error, 1)
	go func() { answered <- dlg.WaitAnswer(ctx, sipgo.AnswerOptions{}) }()
	ready()
	cancel() // WaitAnswer sends CANCEL after the 100 Trying
	if err := <-answered; !errors.Is(err, context.Canceled) && statusOf(err) != 487 {
		t.Fatalf("cancelled INVITE ended with %v", err)
	}
}

func TestUntrustedSourceIsForbidden(t *testing.T) {
	g := newGateway(t, func(c *Config) { c.TrustedCIDRs = nil })
	g.createSIP("guarded")
	p := newPhone(t)
	_, err := p.Invite(g.srv.TransferURI("guarded"), p.Offer("0"), sipgo.AnswerOptions{})
	if statusOf(err) != 403 {
		t.Fatalf("untrusted INVITE: %v, want 403", err)
	}
	if g.ports.InUse() != 0 || g.Get("guarded").Claim != nil {
		t.Fatal("a refused INVITE took state")
	}
}

func TestDigestChallenge(t *testing.T) {
	g := newGateway(t, func(c *Config) {
		c.TrustedCIDRs = nil
		c.DigestUsers = map[string]string{"ivr": "s3cret"}
	})
	g.createSIP("digest")
	p := newPhone(t)
	_, err := p.Invite(g.srv.TransferURI("digest"), p.Offer("0"), sipgo.AnswerOptions{Username: "ivr", Password: "wrong"})
	if got := statusOf(err); got != 403 {
		t.Fatalf("wrong password: %v, want 403", err)
	}
	_, err = p.Invite(g.srv.TransferURI("digest"), p.Offer("0"), sipgo.AnswerOptions{})
	if got := statusOf(err); got != 401 {
		t.Fatalf("no credentials: %v, want 401", err)
	}
	c, err := p.Invite(g.srv.TransferURI("digest"), p.Offer("0"), sipgo.AnswerOptions{Username: "ivr", Password: "s3cret"})
	if err != nil {
		t.Fatalf("authenticated INVITE: %v", err)
	}
	if err := c.Dlg.Ack(context.Background()); err != nil {
		t.Fatal(err)
	}
	g.WaitStatus("digest", transfer.StatusOngoing)
	c.Hangup()
}

func TestNonce(t *testing.T) {
	a := newAuthenticator(nil, "handoff", map[string]string{"u": "p"})
	now := time.Now()
	n := a.nonce(now)
	if fresh, valid := a.checkNonce(n, now.Add(time.Minute)); !fresh || !valid {
		t.Fatal("own nonce refused")
	}
	if fresh, valid := a.checkNonce(n, now.Add(nonceLifetime+time.Second)); fresh || !valid {
		t.Fatal("old nonce should be valid but stale")
	}
	forged := []byte(n)
	forged[3] ^= 1
	if _, valid := a.checkNonce(string(forged), now); valid {
		t.Fatal("forged nonce accepted")
	}
}

func TestHoldResumeAndMediaTimeout(t *testing.T) {
	g := newGateway(t, func(c *Config) { c.RTPTimeout = 400 * time.Millisecond })
	g.createSIP("hold")
	p := newPhone(t)
	c := p.MustAnswer(g.srv.TransferURI("hold"), p.Offer("0 101"))
	g.WaitStatus("hold", transfer.StatusOngoing)
	expectEcho(t, c, 5)

	res := c.Reinvite(p.Offer("0 101", "a=sendonly"))
	if res.StatusCode != 200 || !bytes.Contains(res.Body(), []byte("a=recvonly")) {
		t.Fatalf("hold answer %d:\n%s", res.StatusCode, res.Body())
	}
	// On hold the caller sends nothing for several timeouts: the call stays.
	time.Sleep(1500 * time.Millisecond)
	if g.Get("hold").Status != transfer.StatusOngoing {
		t.Fatal("call ended while on hold")
	}
	res = c.Reinvite(p.Offer("0 101", "a=sendrecv"))
	if res.StatusCode != 200 || !bytes.Contains(res.Body(), []byte("a=sendrecv")) {
		t.Fatalf("resume answer %d:\n%s", res.StatusCode, res.Body())
	}
	expectEcho(t, c, 5)
	// Now silence ends the call.
	p.WaitBye()
	done := g.WaitStatus("hold", transfer.StatusCompleted)
	if done.EndReason != transfer.EndMediaTimeout {
		t.Fatalf("end reason %q", done.EndReason)
	}
}

func TestUpdateAndInfoDTMF(t *testing.T) {
	g := newGateway(t)
	g.createSIP("info")
	p := newPhone(t)
	c := p.MustAnswer(g.srv.TransferURI("info"), p.Offer("0"))
	g.WaitStatus("info", transfer.StatusOngoing)

	if res := c.Request(sip.UPDATE, "application/sdp", p.Offer("0", "a=inactive")); res.StatusCode != 200 || !bytes.Contains(res.Body(), []byte("a=inactive")) {
		t.Fatalf("UPDATE hold: %d\n%s", res.StatusCode, res.Body())
	}
	if res := c.Request(sip.INFO, "text/plain", []byte("hello")); res.StatusCode != 415 {
		t.Fatalf("INFO text/plain: %d, want 415", res.StatusCode)
	}
	for _, body := range []string{"Signal=7\r\nDuration=160\r\n", "Signal=10\r\nDuration=100\r\n"} {
		if res := c.Request(sip.INFO, "application/dtmf-relay", []byte(body)); res.StatusCode != 200 {
			t.Fatalf("INFO dtmf-relay: %d", res.StatusCode)
		}
	}
	if res := c.Request(sip.INFO, "application/dtmf", []byte("0")); res.StatusCode != 200 {
		t.Fatalf("INFO dtmf: %d", res.StatusCode)
	}
	p.WaitBye()
	done := g.WaitStatus("info", transfer.StatusCompleted)
	if out := done.OutputContext; out == nil || out.TransferType != agent.TransferAgent || out.TransferVariables["digits"] != "7*" {
		t.Fatalf("outputContext %+v", done.OutputContext)
	}
}

func TestSessionTimer(t *testing.T) {
	g := newGateway(t, func(c *Config) { c.MinSE = 3 * time.Second })
	g.createSIP("short")
	p := newPhone(t)
	if _, err := p.Invite(g.srv.TransferURI("short"), p.Offer("0"), sipgo.AnswerOptions{},
		sip.NewHeader("Supported", "timer"), sip.NewHeader("Session-Expires", "1")); statusOf(err) != 422 {
		t.Fatalf("tiny session interval: %v, want 422", err)
	}
	c := p.MustAnswer(g.srv.TransferURI("short"), p.Offer("0"),
		sip.NewHeader("Supported", "timer"), sip.NewHeader("Session-Expires", "3;refresher=uac"))
	if h := c.Dlg.InviteResponse.GetHeader("Session-Expires"); h == nil || h.Value() != "3;refresher=uac" {
		t.Fatalf("Session-Expires in 200: %v", h)
	}
	// A refresh keeps the call; then no more refreshes end it.
	if res := c.Reinvite(p.Offer("0"), sip.NewHeader("Supported", "timer"), sip.NewHeader("Session-Expires", "3;refresher=uac")); res.StatusCode != 200 {
		t.Fatalf("refresh: %d", res.StatusCode)
	}
	p.WaitBye()
	if done := g.WaitStatus("short", transfer.StatusCompleted); done.EndReason != transfer.EndSessionExpired {
		t.Fatalf("end reason %q", done.EndReason)
	}
}

func TestNoAckHangsUpAndKeepsTransferActive(t *testing.T) {
	g := newGateway(t, func(c *Config) { c.AckTimeout = 300 * time.Millisecond })
	g.createSIP("no-ack")
	p := newPhone(t)
	c, err := p.Invite(g.srv.TransferURI("no-ack"), p.Offer("0"), sipgo.AnswerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_ = c // never ACKed
	p.WaitBye()
	eventually(t, "unacknowledged call released", func() bool { return g.srv.ActiveCalls() == 0 })
	if tr := g.Get("no-ack"); tr.StatusAt(g.svc.Now()) != transfer.StatusActive || tr.Claim != nil {
		t.Fatalf("after a missing ACK: %s %+v", tr.Status, tr.Claim)
	}
}

func TestOptionsAndDrain(t *testing.T) {
	g := newGateway(t)
	p := newPhone(t)
	options := func() int {
		req := sip.NewRequest(sip.OPTIONS, sip.Uri{Scheme: "sip", Host: "127.0.0.1", Port: portOf(g.addr)})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		res, err := p.Client.Do(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		return res.StatusCode
	}
	if got := options(); got != 200 {
		t.Fatalf("OPTIONS %d", got)
	}
	g.createSIP("during-drain")
	c := p.MustAnswer(g.srv.TransferURI("during-drain"), p.Offer("0"))
	g.srv.SetDraining(true)
	if got := options(); got != 503 {
		t.Fatalf("OPTIONS while draining %d", got)
	}
	g.createSIP("refused")
	if _, err := p.Invite(g.srv.TransferURI("refused"), p.Offer("0"), sipgo.AnswerOptions{}); statusOf(err) != 503 {
		t.Fatalf("INVITE while draining: %v", err)
	}
	// The call in progress carries on through the drain and ends normally.
	expectEcho(t, c, 5)
	c.Hangup()
	if done := g.WaitStatus("during-drain", transfer.StatusCompleted); done.EndReason != transfer.EndCallerHangup {
		t.Fatalf("end reason %q", done.EndReason)
	}
}

func TestShutdownDeadlineHangsUpCalls(t *testing.T) {
	g := newGateway(t)
	g.createSIP("long")
	p := newPhone(t)
	p.MustAnswer(g.srv.TransferURI("long"), p.Offer("0"))
	g.WaitStatus("long", transfer.StatusOngoing)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { _ = g.srv.Shutdown(ctx) })
	p.WaitBye()
	wg.Wait()
	if done := g.Get("long"); done.Status != transfer.StatusCompleted || done.EndReason != transfer.EndShutdown {
		t.Fatalf("after shutdown: %s %q", done.Status, done.EndReason)
	}
}

func portOf(hostport string) int {
	var port int
	_, p, _ := strings.Cut(hostport, ":")
	fmt.Sscan(p, &port)
	return port
}

var _ = media.PCMU

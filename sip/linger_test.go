package sip

import (
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// A completed server transaction absorbs retransmissions for the
// configured linger and is gone after it: a BYE retransmitted within it
// gets the transaction's 200 again (the call is over, so a new
// transaction would get 481), one retransmitted after it starts a new
// transaction and gets 481. The RFCs' 64×T1 caps the linger.
func TestCompletedTransactionsLingerAsConfigured(t *testing.T) {
	rfc := 64 * sip.T1
	if got := SetTransactionLinger(time.Hour); got != rfc || sip.Timer_J != rfc || sip.Timer_L != rfc {
		t.Fatalf("linger of an hour applied as %s (J %s, L %s), want the cap 64×T1 = %s", got, sip.Timer_J, sip.Timer_L, rfc)
	}
	const linger = 300 * time.Millisecond
	SetTransactionLinger(linger)
	t.Cleanup(func() { SetTransactionLinger(rfc) }) // after the gateway's cleanup
	g := newGateway(t)
	g.createSIP("linger")
	raw := newRawUDP(t, "127.0.0.1", g.addr)
	x := raw.invite(g.srv.TransferURI("linger"))
	res := raw.final()
	if res.StatusCode != 200 {
		t.Fatalf("INVITE: %d", res.StatusCode)
	}
	bye := raw.ack(x, res)
	bye.method, bye.branch, bye.cseq = "BYE", x.branch+"-bye", 2
	raw.send(raw.request(bye))
	if res := raw.final(); res.StatusCode != 200 {
		t.Fatalf("BYE: %d", res.StatusCode)
	}
	g.waitCalls(0)
	raw.send(raw.request(bye))
	if res := raw.final(); res.StatusCode != 200 {
		t.Fatalf("BYE retransmitted within the linger: %d, want its transaction's 200", res.StatusCode)
	}
	time.Sleep(3 * linger) // well past the linger, well within 64×T1
	raw.send(raw.request(bye))
	if res := raw.final(); res.StatusCode != 481 {
		t.Fatalf("BYE retransmitted after the linger: %d, want 481 from a new transaction", res.StatusCode)
	}
}

// An INVITE retransmitted after its transaction is gone (the caller heard
// none of our answers for the whole linger) reaches the handler as a new
// request: it gets a final failure (the transfer is in use: 486) and
// leaves the call it duplicates alone, which still hangs up normally.
func TestInviteRetransmittedAfterTheLinger(t *testing.T) {
	rfc := 64 * sip.T1
	const linger = 300 * time.Millisecond
	SetTransactionLinger(linger)
	t.Cleanup(func() { SetTransactionLinger(rfc) })
	g := newGateway(t)
	g.createSIP("late")
	raw := newRawUDP(t, "127.0.0.1", g.addr)
	x := raw.invite(g.srv.TransferURI("late"))
	res := raw.final()
	if res.StatusCode != 200 {
		t.Fatalf("INVITE: %d", res.StatusCode)
	}
	bye := raw.ack(x, res)
	time.Sleep(3 * linger)
	raw.send(raw.request(x))
	late := raw.final()
	if late.StatusCode < 300 {
		t.Fatalf("late INVITE answered %d: a second call on a transfer in use", late.StatusCode)
	}
	raw.ack(x, late)
	bye.method, bye.branch, bye.cseq = "BYE", x.branch+"-bye", 2
	raw.send(raw.request(bye))
	if res := raw.final(); res.StatusCode != 200 {
		t.Fatalf("BYE of the call after its late INVITE: %d", res.StatusCode)
	}
	g.waitCalls(0)
	if p := g.pending(); p != 0 {
		t.Fatalf("pending %v after both INVITEs were answered", p)
	}
}

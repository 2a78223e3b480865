package sip

import (
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// lingeringCall sets the transaction linger for the test and places a
// call from a raw socket to a new transfer id: it returns the call's
// INVITE and its BYE, not yet sent.
func lingeringCall(t *testing.T, linger time.Duration, id string) (*gateway, *rawUDP, rawTx, rawTx) {
	t.Helper()
	rfc := 64 * sip.T1
	SetTransactionLinger(linger)
	t.Cleanup(func() { SetTransactionLinger(rfc) }) // after the gateway's cleanup
	g := newGateway(t)
	g.createSIP(id)
	raw := newRawUDP(t, "127.0.0.1", g.addr)
	x := raw.invite(g.srv.TransferURI(id))
	bye := byeOf(x, raw.ack(x, raw.wantFinal(200, "INVITE")))
	return g, raw, x, bye
}

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
	g, raw, _, bye := lingeringCall(t, linger, "linger")
	raw.send(raw.request(bye))
	raw.wantFinal(200, "BYE")
	g.waitCalls(0)
	raw.send(raw.request(bye))
	raw.wantFinal(200, "BYE retransmitted within the linger (its transaction's answer)")
	time.Sleep(3 * linger) // well past the linger, well within 64×T1
	raw.send(raw.request(bye))
	raw.wantFinal(481, "BYE retransmitted after the linger (a new transaction)")
}

// An INVITE retransmitted after its transaction is gone (the caller heard
// none of our answers for the whole linger) reaches the handler as a new
// request: it gets a final failure (the transfer is in use: 486) and
// leaves the call it duplicates alone, which still hangs up normally.
func TestInviteRetransmittedAfterTheLinger(t *testing.T) {
	const linger = 300 * time.Millisecond
	g, raw, x, bye := lingeringCall(t, linger, "late")
	time.Sleep(3 * linger)
	raw.send(raw.request(x))
	raw.ack(x, raw.wantFinal(486, "INVITE retransmitted after the linger (its transfer is in use)"))
	raw.send(raw.request(bye))
	raw.wantFinal(200, "BYE of the call after its late INVITE")
	g.waitCalls(0)
	if p := g.pending(); p != 0 {
		t.Fatalf("pending %v after both INVITEs were answered", p)
	}
}

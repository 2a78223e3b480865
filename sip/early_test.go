package sip

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	dto "github.com/prometheus/client_model/go"

	"github.com/handoff/handoff/agent"
)

// sipgoSaw records the datagrams that got past the read path to sipgo.
type sipgoSaw struct {
	mu   sync.Mutex
	msgs []string
}

func (s *sipgoSaw) filter(data []byte) bool {
	s.mu.Lock()
	s.msgs = append(s.msgs, string(data))
	s.mu.Unlock()
	return false
}

// count is how many of them start with method and carry callID.
func (s *sipgoSaw) count(method, callID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, m := range s.msgs {
		if strings.HasPrefix(m, method+" ") && strings.Contains(m, "Call-ID: "+callID+"\r\n") {
			n++
		}
	}
	return n
}

// shedAll sets the shedder's admitted share to nothing (the latency
// signal at its worst), or back to everything.
func (g *gateway) shedAll(on bool) {
	g.srv.gate.mu.Lock()
	defer g.srv.gate.mu.Unlock()
	g.srv.gate.shed.share = shareAll
	if on {
		g.srv.gate.shed.share = 0
	}
}

func (g *gateway) pending() float64 {
	var m dto.Metric
	if err := g.srv.gate.metrics.pending.Write(&m); err != nil {
		g.t.Fatal(err)
	}
	return m.GetGauge().GetValue()
}

// While the node sheds, a new INVITE is refused by the read path: its 503
// (Reason, Retry-After, the source in the top Via, our stateless To tag)
// comes without a 100 and without sipgo ever seeing the INVITE, and the
// ACK of that 503 is absorbed there too.
func TestReadPathShedsNewInvites(t *testing.T) {
	saw := &sipgoSaw{}
	g := newGateway(t, func(c *Config) { c.dropInbound = saw.filter })
	g.createSIP("shed")
	g.shedAll(true)
	raw := newRawUDP(t, "127.0.0.1", g.addr)
	x := raw.invite(g.srv.TransferURI("shed"))
	res := raw.read()
	rawRefused(t, res, reasonOverloadLatency)
	if tag := toTag(res); tag != g.srv.shedTag {
		t.Fatalf("To tag %q, want the stateless tag %q", tag, g.srv.shedTag)
	}
	if v := res.Via(); v == nil || v.Params.GetOr("received", "") != "127.0.0.1" {
		t.Fatalf("top Via %v without received=", v)
	}
	raw.ack(x, res)
	raw.send(raw.request(x)) // its retransmission is judged again: refused again
	rawRefused(t, raw.read(), reasonOverloadLatency)
	g.shedAll(false)
	// A new INVITE now reaches sipgo; the shed ones never did.
	if res, hangup := raw.rawCall(g.srv.TransferURI("shed")); res.StatusCode != 200 {
		t.Fatalf("after shedding: %d", res.StatusCode)
	} else {
		hangup()
	}
	if n, a := saw.count("INVITE", x.callID), saw.count("ACK", x.callID); n != 0 || a != 0 {
		t.Fatalf("sipgo saw %d shed INVITEs and %d of their ACKs", n, a)
	}
	if n := g.refusedCount(reasonOverloadLatency); n != 2 {
		t.Fatalf("overload_latency refusals counted %d, want 2", n)
	}
	g.waitCalls(0)
	if p := g.pending(); p != 0 {
		t.Fatalf("pending %v after every INVITE was answered", p)
	}
}

// Shedding never touches what belongs to calls already admitted: the
// retransmission of an INVITE passed before shedding began, and requests
// inside a dialog (here a re-INVITE).
func TestReadPathSpareAdmittedCalls(t *testing.T) {
	gp := &holdOne{Pipeline: agent.Loopback{}, id: "waiting", opened: make(chan struct{}, 1), gate: make(chan struct{})}
	g := newGateway(t, func(c *Config) {
		c.Pipeline = gp
		c.RingingAfter = -1
	})
	p := newPhone(t)
	g.createSIP("waiting")
	g.createSIP("talking")
	talking := p.MustAnswer(g.srv.TransferURI("talking"), p.Offer("0"))
	raw := newRawUDP(t, "127.0.0.1", g.addr)
	x := raw.invite(g.srv.TransferURI("waiting"))
	if res := raw.read(); res.StatusCode != sip.StatusTrying {
		t.Fatalf("first answer %d", res.StatusCode)
	}
	<-gp.opened
	g.shedAll(true)
	raw.send(raw.request(x))
	if res := raw.read(); res.StatusCode != sip.StatusTrying {
		t.Fatalf("the admitted INVITE's retransmission got %d, want its 100 again", res.StatusCode)
	}
	if res := talking.Reinvite(p.Offer("0")); res.StatusCode != 200 {
		t.Fatalf("re-INVITE while shedding: %d", res.StatusCode)
	}
	close(gp.gate)
	res := raw.wantFinal(200, "the admitted INVITE")
	raw.send(raw.request(byeOf(x, raw.ack(x, res))))
	raw.wantFinal(200, "BYE")
	talking.Hangup()
}

// holdOne holds the agent of transfer id until gate closes.
type holdOne struct {
	agent.Pipeline
	id           string
	opened, gate chan struct{}
}

func (h *holdOne) Open(ctx context.Context, info agent.CallInfo) (agent.Session, error) {
	if info.TransferID == h.id {
		h.opened <- struct{}{}
		select {
		case <-h.gate:
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
	}
	return h.Pipeline.Open(ctx, info)
}

// An INVITE the read path admitted but sipgo never handed to a handler
// (here dropped after the read path) leaves the backlog when the read path
// forgets it, 64*T1 later.
func TestReadPathForgetsInvitesThatNeverArrive(t *testing.T) {
	clock := newFakeClock()
	var drop sync.Once
	g := newGateway(t, func(c *Config) {
		c.clock = clock.now
		c.dropInbound = func(b []byte) bool {
			lost := false
			if bytes.HasPrefix(b, []byte("INVITE ")) {
				drop.Do(func() { lost = true })
			}
			return lost
		}
	})
	g.createSIP("lost")
	raw := newRawUDP(t, "127.0.0.1", g.addr)
	raw.invite(g.srv.TransferURI("lost"))
	eventually(t, "the INVITE counted pending", func() bool { return g.pending() == 1 })
	clock.advance(inviteMemory)
	g.createSIP("next")
	if res, hangup := raw.rawCall(g.srv.TransferURI("next")); res.StatusCode != 200 {
		t.Fatalf("next call: %d", res.StatusCode)
	} else {
		hangup()
	}
	g.waitCalls(0)
	if p := g.pending(); p != 0 {
		t.Fatalf("pending %v: the lost INVITE was never forgotten", p)
	}
}

// The node's max_cps is judged on the read path too: an INVITE beyond it
// gets its stateless 503 there, unseen by sipgo. One the read path passes
// has its token; if the handler then refuses it on another limit (here
// per_source_max_calls), the token goes back, so one source over its own
// limit does not spend the node's rate for the others.
func TestReadPathRefusesBeyondMaxCPS(t *testing.T) {
	clock := newFakeClock()
	saw := &sipgoSaw{}
	g := newGateway(t, func(c *Config) {
		c.Limits = Limits{MaxCPS: 1, PerSourceMaxCalls: 1}
		c.clock = clock.now
		c.dropInbound = saw.filter
	})
	a, b := newRawUDP(t, "127.0.0.1", g.addr), newRawUDP(t, "127.0.0.2", g.addr)
	for _, id := range []string{"cps-a1", "cps-a2", "cps-a3", "cps-b"} {
		g.createSIP(id)
	}
	res, hangupA := a.rawCall(g.srv.TransferURI("cps-a1")) // the second's token
	if res.StatusCode != 200 {
		t.Fatalf("first call: %d", res.StatusCode)
	}
	x := a.invite(g.srv.TransferURI("cps-a2"))
	res = a.read()
	rawRefused(t, res, reasonMaxCPS)
	if tag := toTag(res); tag != g.srv.shedTag {
		t.Fatalf("max_cps refusal with To tag %q, want the read path's stateless %q", tag, g.srv.shedTag)
	}
	a.ack(x, res)
	if n := saw.count("INVITE", x.callID); n != 0 {
		t.Fatalf("sipgo saw the INVITE refused for max_cps %d times", n)
	}
	clock.advance(time.Second) // a token again
	x = a.invite(g.srv.TransferURI("cps-a3"))
	res = a.final()
	rawRefused(t, res, reasonPerSourceMaxCalls)
	a.ack(x, res)
	res, hangupB := b.rawCall(g.srv.TransferURI("cps-b")) // the token cps-a3 gave back
	if res.StatusCode != 200 {
		t.Fatalf("another source after a per-source refusal: %d, want 200 on the token given back", res.StatusCode)
	}
	hangupA()
	hangupB()
	g.waitCalls(0)
	if n, m := g.refusedCount(reasonMaxCPS), g.refusedCount(reasonPerSourceMaxCalls); n != 1 || m != 1 {
		t.Fatalf("refusals counted: max_cps %d, per_source_max_calls %d; want 1 and 1", n, m)
	}
	if p := g.pending(); p != 0 {
		t.Fatalf("pending %v after every INVITE was answered", p)
	}
}

func TestPeekHead(t *testing.T) {
	msg := "INVITE sip:t1@h SIP/2.0\r\nv: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;rport\r\n" +
		"Via: SIP/2.0/UDP 10.0.0.2;branch=z9hG4bK2\r\nf: <sip:a@b>;tag=x\r\nt: \"T\" <sip:t1@h;p=1>\r\n" +
		"i: abc@h\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
	h, ok := peekHead([]byte(msg))
	if !ok || string(h.method) != "INVITE" || len(h.vias) != 2 || string(h.callID) != "abc@h" || h.toTag() != nil {
		t.Fatalf("peek: %v %+v", ok, h)
	}
	res := statelessAnswer(&h, netip.MustParseAddrPort("192.0.2.7:5070"), "503 Service Unavailable", "T9", "Retry-After: 1")
	parsed, err := sip.ParseMessage(res)
	if err != nil {
		t.Fatalf("our answer does not parse: %v\n%s", err, res)
	}
	r := parsed.(*sip.Response)
	top := r.Via()
	if r.StatusCode != 503 || toTag(r) != "T9" || top.Params.GetOr("rport", "") != "5070" || top.Params.GetOr("received", "") != "192.0.2.7" ||
		len(r.GetHeaders("Via")) != 2 || r.CallID().Value() != "abc@h" || r.CSeq().SeqNo != 1 {
		t.Fatalf("answer:\n%s", res)
	}
	inDialog := strings.Replace(msg, "t: \"T\" <sip:t1@h;p=1>", "t: <sip:t1@h>;tag=abc", 1)
	if h, ok := peekHead([]byte(inDialog)); !ok || string(h.toTag()) != "abc" {
		t.Fatalf("To tag of %q: %q", inDialog, h.toTag())
	}
	for _, bad := range []string{
		"SIP/2.0 200 OK\r\nVia: x\r\n\r\n",                                                        // a response
		strings.Replace(msg, "i: abc@h\r\n", "i: abc@h\r\n  folded\r\n", 1),                       // folding
		strings.Replace(msg, "i: abc@h\r\n", "", 1),                                               // no Call-ID
		"INVITE sip:x SIP/2.0",                                                                    // no header at all
		strings.Replace(msg, "i: abc@h\r\n", "i: abc@h\r\nCall-ID: other@h\r\n", 1),               // two Call-IDs
		strings.Replace(msg, ";rport\r\n", ";rport, SIP/2.0/UDP 10.0.0.9;branch=z9hG4bK9\r\n", 1), // two Vias in a line
	} {
		if _, ok := peekHead([]byte(bad)); ok {
			t.Errorf("peekHead took %q", bad)
		}
	}
}

// The kernel stamps what the read path reads: a datagram that waited in
// the socket shows at least that wait.
func TestQueueDelayFromKernelStamps(t *testing.T) {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	enableRecvTimestamps(conn)
	if _, err := conn.WriteToUDP([]byte("x"), conn.LocalAddr().(*net.UDPAddr)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(30 * time.Millisecond)
	oob := make([]byte, 128)
	_, oobn, _, _, err := conn.ReadMsgUDPAddrPort(make([]byte, 16), oob)
	if err != nil {
		t.Fatal(err)
	}
	if d := queueDelay(oob[:oobn]); d < 30*time.Millisecond && kernelStamps {
		t.Fatalf("queue delay %v of a datagram that waited 30 ms", d)
	}
}

// While the hand-off queue to sipgo is full, a new INVITE gets its 503
// (overload_pending) from the read path at once instead of waiting for
// room; the retransmission of an INVITE already passed still waits its
// turn, since its call was admitted.
func TestReadPathRefusesWhileSipgoIsBehind(t *testing.T) {
	g := newGateway(t)
	g.createSIP("behind")
	served, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer served.Close()
	c := &earlyConn{PacketConn: served, s: g.srv, passed: make(chan datagram, 1)}
	raw := newRawUDP(t, "127.0.0.1", served.LocalAddr().String())
	src := raw.conn.LocalAddr().(*net.UDPAddr).AddrPort()
	x := raw.invite(g.srv.TransferURI("behind")) // sent to served, which nobody reads
	msg := []byte(raw.request(x))

	if c.handled(msg, src, 0) {
		t.Fatal("a new INVITE with room in the queue was refused")
	}
	c.passed <- datagram{} // the queue is now full
	if c.handled(msg, src, 0) {
		t.Fatal("the retransmission of a passed INVITE was refused")
	}
	y := raw.invite(g.srv.TransferURI("behind"))
	if !c.handled([]byte(raw.request(y)), src, 0) {
		t.Fatal("a new INVITE while the queue is full was passed")
	}
	res := raw.read()
	rawRefused(t, res, reasonOverloadPending)
	if res.CallID().Value() != y.callID {
		t.Fatalf("503 for %q, want %q", res.CallID().Value(), y.callID)
	}
}

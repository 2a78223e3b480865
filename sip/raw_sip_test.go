package sip

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/handoff/handoff/internal/siptest"
)

// rawUDP is a hand-driven SIP socket: it sends every request from its own
// address (a second loopback address is a second source, which sipgo's
// client cannot be: it sends from an unbound socket) and can retransmit at
// will.
type rawUDP struct {
	t    *testing.T
	conn *net.UDPConn
	to   *net.UDPAddr
	seq  int // for unique branches and Call-IDs
}

func newRawUDP(t *testing.T, ip, to string) *rawUDP {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	dst, err := net.ResolveUDPAddr("udp", to)
	if err != nil {
		t.Fatal(err)
	}
	return &rawUDP{t: t, conn: conn, to: dst}
}

func (r *rawUDP) send(msg string) {
	r.t.Helper()
	if _, err := r.conn.WriteToUDP([]byte(msg), r.to); err != nil {
		r.t.Fatal(err)
	}
}

// read waits for the next response, skipping requests (the gateway's BYE
// of a call the test let go).
func (r *rawUDP) read() *sip.Response {
	r.t.Helper()
	buf := make([]byte, 8192)
	for {
		_ = r.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, _, err := r.conn.ReadFromUDP(buf)
		if err != nil {
			r.t.Fatal(err)
		}
		msg, err := sip.ParseMessage(buf[:n])
		if err != nil {
			r.t.Fatalf("unparsable answer %q: %v", buf[:n], err)
		}
		if res, ok := msg.(*sip.Response); ok {
			return res
		}
	}
}

// final reads until a final response.
func (r *rawUDP) final() *sip.Response {
	r.t.Helper()
	res := r.read()
	for res.StatusCode < 200 {
		res = r.read()
	}
	return res
}

// rawTx names one request's transaction and dialog.
type rawTx struct {
	method, uri, branch, callID, toTag string
	cseq                               int
}

// request is the text of a request from r; INVITEs carry an SDP offer.
func (r *rawUDP) request(x rawTx) string {
	local := r.conn.LocalAddr().String()
	to := "<" + x.uri + ">"
	if x.toTag != "" {
		to += ";tag=" + x.toTag
	}
	var body []byte
	if x.method == "INVITE" {
		body = siptest.SDP(4000, "0")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=%s\r\n", x.method, x.uri, local, x.branch)
	fmt.Fprintf(&b, "From: <sip:ivr@%s>;tag=raw1\r\nTo: %s\r\nCall-ID: %s\r\n", local, to, x.callID)
	fmt.Fprintf(&b, "CSeq: %d %s\r\nMax-Forwards: 70\r\nContact: <sip:ivr@%s>\r\n", x.cseq, x.method, local)
	if len(body) > 0 {
		b.WriteString("Content-Type: application/sdp\r\n")
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(body), body)
	return b.String()
}

// invite sends a new INVITE to uri, returns its transaction to retransmit
// or cancel it.
func (r *rawUDP) invite(uri string) rawTx {
	r.seq++
	x := rawTx{method: "INVITE", uri: uri, cseq: 1,
		branch: fmt.Sprintf("z9hG4bKraw%d", r.seq), callID: fmt.Sprintf("raw-%d@%s", r.seq, r.conn.LocalAddr())}
	r.send(r.request(x))
	return x
}

// ack acknowledges the final response res of INVITE x (RFC 3261 17.1.1.3
// for a failure, 13.2.2.4 for a 2xx, which goes to the Contact).
func (r *rawUDP) ack(x rawTx, res *sip.Response) rawTx {
	x.method, x.toTag = "ACK", toTag(res)
	if res.StatusCode < 300 {
		x.uri = res.Contact().Address.String()
		x.branch += "-ack"
	}
	r.send(r.request(x))
	return x
}

// rawCall places a call to uri from r and returns its final response, and
// for a 200 a function that hangs it up.
func (r *rawUDP) rawCall(uri string) (*sip.Response, func()) {
	r.t.Helper()
	x := r.invite(uri)
	res := r.final()
	a := r.ack(x, res)
	if res.StatusCode != 200 {
		return res, nil
	}
	return res, func() {
		r.send(r.request(byeOf(x, a)))
		r.wantFinal(200, "BYE")
	}
}

// byeOf is the BYE of the call INVITE x set up, after its ACK a.
func byeOf(x, a rawTx) rawTx {
	a.method, a.branch, a.cseq = "BYE", x.branch+"-bye", 2
	return a
}

// wantFinal reads the final response of what was sent (named what) and
// fails unless it is code.
func (r *rawUDP) wantFinal(code int, what string) *sip.Response {
	r.t.Helper()
	res := r.final()
	if res.StatusCode != code {
		r.t.Fatalf("%s: %d, want %d", what, res.StatusCode, code)
	}
	return res
}

func toTag(res *sip.Response) string {
	tag, _ := res.To().Params.Get("tag")
	return tag
}

// rawRefused checks res is a 503 whose Reason names reason.
func rawRefused(t *testing.T, res *sip.Response, reason string) {
	t.Helper()
	h := res.GetHeader("Reason")
	if res.StatusCode != 503 || h == nil || h.Value() != `SIP;cause=503;text="`+reason+`"` || res.GetHeader("Retry-After") == nil {
		t.Fatalf("answer %d, Reason %v, want 503 %s with Retry-After", res.StatusCode, h, reason)
	}
}

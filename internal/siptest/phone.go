// Package siptest serves Handoff's SIP tests. Its Phone is the caller side:
// an in-process sipgo phone with a real RTP socket on loopback that places
// calls, sends G.711 and RFC 4733, reads what comes back, and answers BYE
// and REFER. Its Destination is the far end of an INVITE return: it
// answers, rings, refuses or plays early media, and checks digest
// credentials leniently or the strict way. On the gateway side, Transfers
// reads what the calls recorded and StopOnCleanup shuts the server down and
// checks nothing leaked.
package siptest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/pion/rtp"

	"github.com/handoff/handoff/internal/lateguard"
	"github.com/handoff/handoff/media"
)

// Phone is an in-process sipgo user agent with an RTP socket: the caller.
type Phone struct {
	T      testing.TB
	UA     *sipgo.UserAgent
	Client *sipgo.Client
	DUA    *sipgo.DialogUA
	RTP    *net.UDPConn
	Byes   chan *sip.Request
	// onRefer answers REFERs (the IVR side of a blind return); 405 when nil.
	onRefer func(req *sip.Request, tx sip.ServerTransaction)

	mu      sync.Mutex
	dialogs map[string]*sipgo.DialogClientSession
}

// NewPhone starts a phone whose SIP and RTP sockets are on ip (a loopback
// address); t.Cleanup closes them.
func NewPhone(t testing.TB, ip string) *Phone {
	t.Helper()
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("test-phone"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.ListenPacket("udp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	port := conn.LocalAddr().(*net.UDPAddr).Port
	go func() { _ = srv.ServeUDP(conn) }()
	client, err := sipgo.NewClient(ua, sipgo.WithClientHostname(ip), sipgo.WithClientPort(port))
	if err != nil {
		t.Fatal(err)
	}
	rtpConn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		t.Fatal(err)
	}
	p := &Phone{
		T: t, UA: ua, Client: client, RTP: rtpConn,
		Byes:    make(chan *sip.Request, 4),
		dialogs: map[string]*sipgo.DialogClientSession{},
		DUA: &sipgo.DialogUA{Client: client, ContactHDR: sip.ContactHeader{
			Address: sip.Uri{Scheme: "sip", User: "caller", Host: ip, Port: port},
		}},
	}
	p.serve(srv, ua, conn)
	return p
}

// serve answers the gateway's BYEs and REFERs; t.Cleanup closes the phone.
func (p *Phone) serve(srv *sipgo.Server, ua *sipgo.UserAgent, conn net.PacketConn) {
	door := lateguard.New(ua)
	srv.OnBye(door.Wrap(func(req *sip.Request, tx sip.ServerTransaction) {
		p.mu.Lock()
		d := p.dialogs[req.CallID().Value()]
		p.mu.Unlock()
		if d == nil {
			_ = tx.Respond(sip.NewResponseFromRequest(req, 481, "No Dialog", nil))
			return
		}
		_ = d.ReadBye(req, tx)
		p.Byes <- req
	}))
	srv.OnRefer(door.Wrap(func(req *sip.Request, tx sip.ServerTransaction) {
		p.mu.Lock()
		h := p.onRefer
		p.mu.Unlock()
		if h == nil {
			_ = tx.Respond(sip.NewResponseFromRequest(req, 405, "Method Not Allowed", nil))
			return
		}
		h(req, tx)
	}))
	srv.OnNoRoute(door.Wrap(NotAllowed))
	p.T.Cleanup(func() {
		door.Close()
		p.RTP.Close()
		conn.Close()
		ua.Close()
	})
}

// NotAllowed answers a request no handler takes with 405 (an ACK with
// nothing), as sipgo's own fallback does.
func NotAllowed(req *sip.Request, tx sip.ServerTransaction) {
	if !req.IsAck() {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 405, "Method Not Allowed", nil))
	}
}

// RTPPort is the phone's RTP port.
func (p *Phone) RTPPort() int { return p.RTP.LocalAddr().(*net.UDPAddr).Port }

// Offer is an SDP offer from the phone's RTP socket.
func (p *Phone) Offer(codecs string, extra ...string) []byte {
	return SDP(p.RTPPort(), codecs, extra...)
}

// SDP is an audio offer on 127.0.0.1:port with the given static or
// telephone-event payload types, and extra attribute lines.
func SDP(port int, formats string, extra ...string) []byte {
	lines := []string{
		"v=0", "o=phone 1 1 IN IP4 127.0.0.1", "s=-", "c=IN IP4 127.0.0.1", "t=0 0",
		fmt.Sprintf("m=audio %d RTP/AVP %s", port, formats),
	}
	for _, f := range strings.Fields(formats) {
		switch f {
		case "0":
			lines = append(lines, "a=rtpmap:0 PCMU/8000")
		case "8":
			lines = append(lines, "a=rtpmap:8 PCMA/8000")
		case "9":
			lines = append(lines, "a=rtpmap:9 G722/8000")
		case "18":
			lines = append(lines, "a=rtpmap:18 G729/8000")
		case "101":
			lines = append(lines, "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-16")
		}
	}
	lines = append(lines, "a=ptime:20")
	lines = append(lines, extra...)
	return []byte(strings.Join(lines, "\r\n") + "\r\n")
}

// Call is one outgoing call of the phone.
type Call struct {
	P   *Phone
	Dlg *sipgo.DialogClientSession
	// Remote is where the gateway's SDP answer says to send RTP.
	Remote *net.UDPAddr
	Seq    uint16
	TS     uint32
}

// Invite sends an INVITE to uri (a string like "sip:id@host:port") and
// waits for the final answer.
func (p *Phone) Invite(uri string, body []byte, opts sipgo.AnswerOptions, hdrs ...sip.Header) (*Call, error) {
	p.T.Helper()
	var recipient sip.Uri
	if err := sip.ParseUri(uri, &recipient); err != nil {
		p.T.Fatal(err)
	}
	if body != nil {
		hdrs = append(hdrs, sip.NewHeader("Content-Type", "application/sdp"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dlg, err := p.DUA.Invite(ctx, recipient, body, hdrs...)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.dialogs[dlg.InviteRequest.CallID().Value()] = dlg
	p.mu.Unlock()
	if err := dlg.WaitAnswer(ctx, opts); err != nil {
		dlg.Close()
		return nil, err
	}
	c := &Call{P: p, Dlg: dlg, Seq: 1000, TS: 5000}
	if len(dlg.InviteResponse.Body()) > 0 {
		d, err := media.ParseSDP(dlg.InviteResponse.Body())
		if err != nil {
			p.T.Fatalf("gateway SDP: %v", err)
		}
		c.Remote = net.UDPAddrFromAddrPort(d.Addr)
	}
	return c, nil
}

// MustAnswer places a call and ACKs it.
func (p *Phone) MustAnswer(uri string, body []byte, hdrs ...sip.Header) *Call {
	p.T.Helper()
	c, err := p.Invite(uri, body, sipgo.AnswerOptions{}, hdrs...)
	if err != nil {
		p.T.Fatalf("INVITE %s: %v", uri, err)
	}
	if err := c.Dlg.Ack(context.Background()); err != nil {
		p.T.Fatal(err)
	}
	return c
}

// StatusOf is the SIP status of a failed INVITE, 0 when it got none.
func StatusOf(err error) int {
	var e *sipgo.ErrDialogResponse
	if errors.As(err, &e) {
		return e.Res.StatusCode
	}
	return 0
}

// SendAudio sends one 20 ms PCMU frame filled with payload.
func (c *Call) SendAudio(payload []byte) {
	c.SendRTP(0, false, payload)
	c.TS += 160
}

func (c *Call) SendRTP(pt uint8, marker bool, payload []byte) {
	c.Seq++
	pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt, Marker: marker, SequenceNumber: c.Seq, Timestamp: c.TS, SSRC: 0xCAFE}, Payload: payload}
	b, err := pkt.Marshal()
	if err != nil {
		c.P.T.Fatal(err)
	}
	if _, err := c.P.RTP.WriteToUDP(b, c.Remote); err != nil {
		c.P.T.Fatal(err)
	}
}

// SendDTMF sends one RFC 4733 event the way phones do: a few updates, then
// the end packet three times, all on one timestamp.
func (c *Call) SendDTMF(digit rune) {
	events := map[rune]byte{'0': 0, '1': 1, '2': 2, '3': 3, '4': 4, '5': 5, '6': 6, '7': 7, '8': 8, '9': 9, '*': 10, '#': 11}
	ev := events[digit]
	for i, dur := range []uint16{160, 320, 480} {
		c.SendRTP(101, i == 0, []byte{ev, 10, byte(dur >> 8), byte(dur)})
	}
	for range 3 {
		c.SendRTP(101, false, []byte{ev, 0x80 | 10, 0x02, 0x80})
	}
	c.TS += 640
}

// ReadRTP reads packets from the gateway until stop says enough.
func (c *Call) ReadRTP(timeout time.Duration, stop func(*rtp.Packet) bool) {
	c.P.T.Helper()
	if !c.TryReadRTP(timeout, stop) {
		c.P.T.Fatalf("reading RTP: stop condition not met within %s", timeout)
	}
}

// TryReadRTP is ReadRTP that reports a timeout instead of failing.
func (c *Call) TryReadRTP(timeout time.Duration, stop func(*rtp.Packet) bool) bool {
	buf := make([]byte, 1500)
	deadline := time.Now().Add(timeout)
	for {
		_ = c.P.RTP.SetReadDeadline(deadline)
		n, _, err := c.P.RTP.ReadFromUDP(buf)
		if err != nil {
			return false
		}
		var pkt rtp.Packet
		if err := pkt.Unmarshal(buf[:n]); err != nil {
			continue
		}
		if stop(&pkt) {
			return true
		}
	}
}

func (c *Call) Hangup() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Dlg.Bye(ctx); err != nil {
		c.P.T.Fatalf("BYE: %v", err)
	}
}

// WaitBye waits for the gateway's BYE.
func (p *Phone) WaitBye() *sip.Request {
	p.T.Helper()
	return Receive(p.T, p.Byes, "the gateway's BYE")
}

// Reinvite sends an in-dialog re-INVITE with body and ACKs a 2xx.
func (c *Call) Reinvite(body []byte, hdrs ...sip.Header) *sip.Response {
	c.P.T.Helper()
	req := sip.NewRequest(sip.INVITE, c.Dlg.InviteResponse.Contact().Address)
	if body != nil {
		req.SetBody(body)
		req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	}
	for _, h := range hdrs {
		req.AppendHeader(h)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := c.Dlg.Do(ctx, req)
	if err != nil {
		c.P.T.Fatalf("re-INVITE: %v", err)
	}
	if res.IsSuccess() {
		ack := sip.NewRequest(sip.ACK, c.Dlg.InviteResponse.Contact().Address)
		if err := c.Dlg.WriteRequest(ack); err != nil {
			c.P.T.Fatal(err)
		}
	}
	return res
}

// AckAnswer acknowledges a 2xx that carried an offer (the call was placed
// without SDP) with the answer sdp in the ACK.
func (c *Call) AckAnswer(sdp []byte) {
	c.P.T.Helper()
	ack := inDialog(sip.ACK, c.Dlg.InviteResponse.Contact().Address, "application/sdp", sdp, nil)
	if err := c.Dlg.WriteAck(context.Background(), ack); err != nil {
		c.P.T.Fatal(err)
	}
}

// Request sends an in-dialog request (INFO, UPDATE, ...) and returns the answer.
func (c *Call) Request(method sip.RequestMethod, contentType string, body []byte, hdrs ...sip.Header) *sip.Response {
	c.P.T.Helper()
	req := inDialog(method, c.Dlg.InviteResponse.Contact().Address, contentType, body, hdrs)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := c.Dlg.Do(ctx, req)
	if err != nil {
		c.P.T.Fatalf("%s: %v", method, err)
	}
	return res
}

// inDialog is an in-dialog request to target with an optional body and
// extra headers; the dialog fills in the rest.
func inDialog(method sip.RequestMethod, target sip.Uri, contentType string, body []byte, hdrs []sip.Header) *sip.Request {
	req := sip.NewRequest(method, target)
	if body != nil {
		req.SetBody(body)
		req.AppendHeader(sip.NewHeader("Content-Type", contentType))
	}
	for _, h := range hdrs {
		req.AppendHeader(h)
	}
	return req
}

// Pattern is a PCMU payload that survives decode+encode unchanged (no
// negative zero), distinct per frame so echoes can be matched.
func Pattern(i int) []byte {
	b := make([]byte, 160)
	for j := range b {
		v := byte((i*31 + j*7) % 256)
		if v == 0x7F {
			v = 0x7E
		}
		b[j] = v
	}
	return b
}

// Notify sends an in-dialog NOTIFY with a sipfrag, as a transferee does.
func (c *Call) Notify(frag, state string) {
	c.P.T.Helper()
	res := c.Request(sip.NOTIFY, "message/sipfrag", []byte(frag+"\r\n"),
		sip.NewHeader("Event", "refer"), sip.NewHeader("Subscription-State", state))
	if res.StatusCode != 200 {
		c.P.T.Errorf("NOTIFY %q answered %d", frag, res.StatusCode)
	}
}

// OnRefer sets how the phone answers REFERs (405 until set).
func (p *Phone) OnRefer(h func(req *sip.Request, tx sip.ServerTransaction)) {
	p.mu.Lock()
	p.onRefer = h
	p.mu.Unlock()
}

// Receive waits up to 15 s for a value on ch, failing t with what it waited
// for.
func Receive[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(15 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		var zero T
		return zero
	}
}

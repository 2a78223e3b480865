package sip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/pion/rtp"
	"go.uber.org/goleak"

	"github.com/handoff/handoff/agent"
	"github.com/handoff/handoff/media"
	"github.com/handoff/handoff/transfer"
)

func TestMain(m *testing.M) {
	// Short SIP timers keep retransmission and timeout paths quick.
	sip.SetTimers(50*time.Millisecond, 400*time.Millisecond, 500*time.Millisecond)
	sip.SetDefaultLogger(quiet)
	goleak.VerifyTestMain(m)
}

var quiet = slog.New(slog.DiscardHandler)

var answerNone = sipgo.AnswerOptions{}

// gateway is a Handoff SIP server on loopback with its own store.
type gateway struct {
	t     *testing.T
	svc   *transfer.Service
	srv   *Server
	ports *media.PortPool
	addr  string // udp host:port
	tcp   string // tcp host:port
}

type gatewayOption func(*Config)

func newGateway(t *testing.T, opts ...gatewayOption) *gateway {
	t.Helper()
	return newGatewayOn(t, nil, opts...)
}

// newGatewayOn builds a gateway whose store is wrapped by wrap (for faults).
func newGatewayOn(t *testing.T, wrap func(transfer.Store) transfer.Store, opts ...gatewayOption) *gateway {
	t.Helper()
	bolt, err := transfer.OpenBolt(filepath.Join(t.TempDir(), "handoff.db"), transfer.BoltOptions{Quarantine: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	var st transfer.Store = bolt
	if wrap != nil {
		st = wrap(bolt)
	}
	svc := transfer.NewService(st, transfer.ServiceConfig{TTL: time.Minute, Logger: quiet})
	if err := svc.SetNumbers(context.Background(), map[string][]string{"US": {"+19995550100-+19995550109"}}); err != nil {
		t.Fatal(err)
	}
	ports, err := media.NewPortPool(netip.MustParseAddr("127.0.0.1"), 41000, 41999, 0)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		Listen:       []string{"udp://127.0.0.1:0", "tcp://127.0.0.1:0"},
		TrustedCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		AckTimeout:   2 * time.Second,
		RTPTimeout:   10 * time.Second,
		Ports:        ports,
		Pipeline:     agent.Loopback{MaxDuration: time.Minute},
		Logger:       quiet,
	}
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := New(cfg, svc, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	g := &gateway{t: t, svc: svc, srv: srv, ports: ports}
	for _, a := range srv.Addrs() {
		network, hp, _ := strings.Cut(a, "://")
		if network == "udp" {
			g.addr = hp
		} else {
			g.tcp = hp
		}
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if n := ports.InUse(); n != 0 {
			t.Errorf("%d RTP port pairs still in use after shutdown", n)
		}
		st.Close()
	})
	return g
}

func (g *gateway) createPhone(id string) *transfer.Transfer {
	g.t.Helper()
	tr, _, err := g.svc.Create(context.Background(), "ivr", transfer.CreateRequest{
		ID: id, ExternalConversationID: "conv-" + id, Type: transfer.TypePhoneNumber, Country: "US",
	})
	if err != nil {
		g.t.Fatal(err)
	}
	return tr
}

func (g *gateway) createSIP(id string) *transfer.Transfer {
	g.t.Helper()
	tr, _, err := g.svc.Create(context.Background(), "ivr", transfer.CreateRequest{
		ID: id, ExternalConversationID: "conv-" + id, Type: transfer.TypeSIP,
		SIP:          &transfer.SIPReturn{ReturnTransferType: transfer.ReturnBye},
		InputContext: &transfer.InputContext{TaskName: "Welcome"},
	})
	if err != nil {
		g.t.Fatal(err)
	}
	return tr
}

func (g *gateway) get(id string) *transfer.Transfer {
	g.t.Helper()
	tr, err := g.svc.Get(context.Background(), "ivr", id)
	if err != nil {
		g.t.Fatal(err)
	}
	return tr
}

// waitStatus polls until the transfer reaches status (the call's goroutine
// records the end after the BYE exchange).
func (g *gateway) waitStatus(id string, want transfer.Status) *transfer.Transfer {
	g.t.Helper()
	var tr *transfer.Transfer
	eventually(g.t, fmt.Sprintf("transfer %s reaches %s", id, want), func() bool {
		tr = g.get(id)
		return tr.StatusAt(g.svc.Now()) == want
	})
	return tr
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// phone is an in-process sipgo user agent with an RTP socket: the caller.
type phone struct {
	t      *testing.T
	ua     *sipgo.UserAgent
	client *sipgo.Client
	dua    *sipgo.DialogUA
	rtp    *net.UDPConn
	byes   chan *sip.Request
	// onRefer answers REFERs (the IVR side of a blind return); 405 when nil.
	onRefer func(req *sip.Request, tx sip.ServerTransaction)

	mu      sync.Mutex
	dialogs map[string]*sipgo.DialogClientSession
}

func newPhone(t *testing.T) *phone {
	t.Helper()
	ip := "127.0.0.1"
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("test-phone"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(quiet))
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
	p := &phone{
		t: t, ua: ua, client: client, rtp: rtpConn,
		byes:    make(chan *sip.Request, 4),
		dialogs: map[string]*sipgo.DialogClientSession{},
		dua: &sipgo.DialogUA{Client: client, ContactHDR: sip.ContactHeader{
			Address: sip.Uri{Scheme: "sip", User: "caller", Host: ip, Port: port},
		}},
	}
	srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		p.mu.Lock()
		d := p.dialogs[req.CallID().Value()]
		p.mu.Unlock()
		if d == nil {
			_ = tx.Respond(sip.NewResponseFromRequest(req, 481, "No Dialog", nil))
			return
		}
		_ = d.ReadBye(req, tx)
		p.byes <- req
	})
	srv.OnRefer(func(req *sip.Request, tx sip.ServerTransaction) {
		p.mu.Lock()
		h := p.onRefer
		p.mu.Unlock()
		if h == nil {
			_ = tx.Respond(sip.NewResponseFromRequest(req, 405, "Method Not Allowed", nil))
			return
		}
		h(req, tx)
	})
	t.Cleanup(func() {
		rtpConn.Close()
		conn.Close()
		ua.Close()
	})
	return p
}

func (p *phone) rtpPort() int { return p.rtp.LocalAddr().(*net.UDPAddr).Port }

// offer is an SDP offer from the phone's RTP socket.
func (p *phone) offer(codecs string, extra ...string) []byte {
	return sdpBody(p.rtpPort(), codecs, extra...)
}

func sdpBody(port int, formats string, extra ...string) []byte {
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

// call is one outgoing call of the phone.
type call struct {
	p   *phone
	dlg *sipgo.DialogClientSession
	// remote is where the gateway's SDP answer says to send RTP.
	remote *net.UDPAddr
	seq    uint16
	ts     uint32
}

// invite sends an INVITE to uri (a string like "sip:id@host:port") and
// waits for the final answer.
func (p *phone) invite(uri string, body []byte, opts sipgo.AnswerOptions, hdrs ...sip.Header) (*call, error) {
	p.t.Helper()
	var recipient sip.Uri
	if err := sip.ParseUri(uri, &recipient); err != nil {
		p.t.Fatal(err)
	}
	if body != nil {
		hdrs = append(hdrs, sip.NewHeader("Content-Type", "application/sdp"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dlg, err := p.dua.Invite(ctx, recipient, body, hdrs...)
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
	c := &call{p: p, dlg: dlg, seq: 1000, ts: 5000}
	if len(dlg.InviteResponse.Body()) > 0 {
		d, err := media.ParseSDP(dlg.InviteResponse.Body())
		if err != nil {
			p.t.Fatalf("gateway SDP: %v", err)
		}
		c.remote = net.UDPAddrFromAddrPort(d.Addr)
	}
	return c, nil
}

// mustAnswer places a call and ACKs it.
func (p *phone) mustAnswer(uri string, body []byte, hdrs ...sip.Header) *call {
	p.t.Helper()
	c, err := p.invite(uri, body, sipgo.AnswerOptions{}, hdrs...)
	if err != nil {
		p.t.Fatalf("INVITE %s: %v", uri, err)
	}
	if err := c.dlg.Ack(context.Background()); err != nil {
		p.t.Fatal(err)
	}
	return c
}

func statusOf(err error) int {
	var e *sipgo.ErrDialogResponse
	if errors.As(err, &e) {
		return e.Res.StatusCode
	}
	return 0
}

// sendAudio sends one 20 ms PCMU frame filled with payload.
func (c *call) sendAudio(payload []byte) {
	c.sendRTP(0, false, payload)
	c.ts += 160
}

func (c *call) sendRTP(pt uint8, marker bool, payload []byte) {
	c.seq++
	pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt, Marker: marker, SequenceNumber: c.seq, Timestamp: c.ts, SSRC: 0xCAFE}, Payload: payload}
	b, err := pkt.Marshal()
	if err != nil {
		c.p.t.Fatal(err)
	}
	if _, err := c.p.rtp.WriteToUDP(b, c.remote); err != nil {
		c.p.t.Fatal(err)
	}
}

// sendDTMF sends one RFC 4733 event the way phones do: a few updates, then
// the end packet three times, all on one timestamp.
func (c *call) sendDTMF(digit rune) {
	events := map[rune]byte{'0': 0, '1': 1, '2': 2, '3': 3, '4': 4, '5': 5, '6': 6, '7': 7, '8': 8, '9': 9, '*': 10, '#': 11}
	ev := events[digit]
	for i, dur := range []uint16{160, 320, 480} {
		c.sendRTP(101, i == 0, []byte{ev, 10, byte(dur >> 8), byte(dur)})
	}
	for range 3 {
		c.sendRTP(101, false, []byte{ev, 0x80 | 10, 0x02, 0x80})
	}
	c.ts += 640
}

// readRTP reads packets from the gateway until stop says enough.
func (c *call) readRTP(timeout time.Duration, stop func(*rtp.Packet) bool) {
	c.p.t.Helper()
	if !c.tryReadRTP(timeout, stop) {
		c.p.t.Fatalf("reading RTP: stop condition not met within %s", timeout)
	}
}

// tryReadRTP is readRTP that reports a timeout instead of failing.
func (c *call) tryReadRTP(timeout time.Duration, stop func(*rtp.Packet) bool) bool {
	buf := make([]byte, 1500)
	deadline := time.Now().Add(timeout)
	for {
		_ = c.p.rtp.SetReadDeadline(deadline)
		n, _, err := c.p.rtp.ReadFromUDP(buf)
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

func (c *call) hangup() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.dlg.Bye(ctx); err != nil {
		c.p.t.Fatalf("BYE: %v", err)
	}
}

// waitBye waits for the gateway's BYE.
func (p *phone) waitBye() *sip.Request {
	p.t.Helper()
	select {
	case req := <-p.byes:
		return req
	case <-time.After(15 * time.Second):
		p.t.Fatal("no BYE from the gateway")
		return nil
	}
}

// reinvite sends an in-dialog re-INVITE with body and ACKs a 2xx.
func (c *call) reinvite(body []byte, hdrs ...sip.Header) *sip.Response {
	c.p.t.Helper()
	req := sip.NewRequest(sip.INVITE, c.dlg.InviteResponse.Contact().Address)
	if body != nil {
		req.SetBody(body)
		req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	}
	for _, h := range hdrs {
		req.AppendHeader(h)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := c.dlg.Do(ctx, req)
	if err != nil {
		c.p.t.Fatalf("re-INVITE: %v", err)
	}
	if res.IsSuccess() {
		ack := sip.NewRequest(sip.ACK, c.dlg.InviteResponse.Contact().Address)
		if err := c.dlg.WriteRequest(ack); err != nil {
			c.p.t.Fatal(err)
		}
	}
	return res
}

// request sends an in-dialog request (INFO, UPDATE, ...) and returns the answer.
func (c *call) request(method sip.RequestMethod, contentType string, body []byte, hdrs ...sip.Header) *sip.Response {
	c.p.t.Helper()
	req := sip.NewRequest(method, c.dlg.InviteResponse.Contact().Address)
	if body != nil {
		req.SetBody(body)
		req.AppendHeader(sip.NewHeader("Content-Type", contentType))
	}
	for _, h := range hdrs {
		req.AppendHeader(h)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := c.dlg.Do(ctx, req)
	if err != nil {
		c.p.t.Fatalf("%s: %v", method, err)
	}
	return res
}

func errorsAs(err error, target any) bool { return errors.As(err, target) }

// Package e2e runs Handoff's SIP server against the reference agent over a
// real WebSocket, with sipgo callers sending and receiving real RTP, all
// on loopback.
package e2e

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
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
	"github.com/handoff/handoff/agent/refagent"
	"github.com/handoff/handoff/media"
	hsip "github.com/handoff/handoff/sip"
	"github.com/handoff/handoff/transfer"
)

func TestMain(m *testing.M) {
	sip.SetTimers(50*time.Millisecond, 400*time.Millisecond, 500*time.Millisecond)
	sip.SetDefaultLogger(quiet)
	goleak.VerifyTestMain(m)
}

var quiet = slog.New(slog.DiscardHandler)

// agentServer serves h (the reference agent, or a misbehaving one) over
// WebSocket on loopback.
func agentServer(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/agent"
}

// refAgent starts the reference agent and returns its URL.
func refAgent(t *testing.T, opts refagent.Options) string {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	ra := refagent.New(opts)
	url := agentServer(t, ra)
	t.Cleanup(ra.Close) // runs before the HTTP server's Close
	return url
}

// gateway is a Handoff SIP server on loopback with its own store, linked
// to an agent over WebSocket.
type gateway struct {
	t       *testing.T
	svc     *transfer.Service
	srv     *hsip.Server
	metrics *agent.Metrics
}

func newGateway(t *testing.T, ws *agent.WebSocket) *gateway {
	t.Helper()
	st, err := transfer.OpenBolt(filepath.Join(t.TempDir(), "handoff.db"), transfer.BoltOptions{Quarantine: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	svc := transfer.NewService(st, transfer.ServiceConfig{TTL: time.Minute, Logger: quiet})
	ports, err := media.NewPortPool(netip.MustParseAddr("127.0.0.1"), 43000, 43999, 0)
	if err != nil {
		t.Fatal(err)
	}
	g := &gateway{t: t, svc: svc, metrics: agent.NewMetrics(nil)}
	ws.Logger = quiet
	ws.Metrics = g.metrics
	srv, err := hsip.New(hsip.Config{
		Listen:       []string{"udp://127.0.0.1:0"},
		TrustedCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		AckTimeout:   2 * time.Second,
		RTPTimeout:   10 * time.Second,
		Ports:        ports,
		Pipeline:     ws,
		Logger:       quiet,
		Return:       hsip.ReturnConfig{ReferTimeout: 5 * time.Second},
	}, svc, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	g.srv = srv
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

func (g *gateway) create(id string, ret transfer.ReturnType) {
	g.t.Helper()
	sr := &transfer.SIPReturn{ReturnTransferType: ret}
	if ret == transfer.ReturnRefer {
		sr.ReturnURI = "sip:ivr-return@127.0.0.1:5999;transport=udp"
	}
	if _, _, err := g.svc.Create(context.Background(), "ivr", transfer.CreateRequest{
		ID: id, ExternalConversationID: "conv-" + id, Type: transfer.TypeSIP, SIP: sr,
		InputContext: &transfer.InputContext{TaskName: "Billing", InputVariables: map[string]string{"account": "42"}},
	}); err != nil {
		g.t.Fatal(err)
	}
}

func (g *gateway) get(id string) *transfer.Transfer {
	g.t.Helper()
	tr, err := g.svc.Get(context.Background(), "ivr", id)
	if err != nil {
		g.t.Fatal(err)
	}
	return tr
}

func (g *gateway) waitStatus(id string, want transfer.Status) *transfer.Transfer {
	g.t.Helper()
	var tr *transfer.Transfer
	eventually(g.t, fmt.Sprintf("transfer %s reaches %s", id, want), func() bool {
		tr = g.get(id)
		return tr.StatusAt(g.svc.Now()) == want
	})
	return tr
}

func (g *gateway) waitReturn(id string) *transfer.Transfer {
	g.t.Helper()
	var tr *transfer.Transfer
	eventually(g.t, "return of "+id+" recorded", func() bool {
		tr = g.get(id)
		return tr.Return != nil && tr.Return.Result != ""
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

// phone is an in-process sipgo user agent with an RTP socket: the caller
// (copied in small from sip/harness_test.go).
type phone struct {
	t       *testing.T
	ua      *sipgo.UserAgent
	dua     *sipgo.DialogUA
	rtp     *net.UDPConn
	byes    chan *sip.Request
	refers  chan *sip.Request
	mu      sync.Mutex
	dialogs map[string]*sipgo.DialogClientSession
}

func newPhone(t *testing.T) *phone {
	t.Helper()
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("e2e-phone"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := conn.LocalAddr().(*net.UDPAddr).Port
	go func() { _ = srv.ServeUDP(conn) }()
	client, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"), sipgo.WithClientPort(port))
	if err != nil {
		t.Fatal(err)
	}
	rtpConn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	p := &phone{
		t: t, ua: ua, rtp: rtpConn,
		byes:    make(chan *sip.Request, 4),
		refers:  make(chan *sip.Request, 4),
		dialogs: map[string]*sipgo.DialogClientSession{},
		dua: &sipgo.DialogUA{Client: client, ContactHDR: sip.ContactHeader{
			Address: sip.Uri{Scheme: "sip", User: "caller", Host: "127.0.0.1", Port: port},
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
	// The IVR side of a blind return: accept the REFER.
	srv.OnRefer(func(req *sip.Request, tx sip.ServerTransaction) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 202, "Accepted", nil))
		p.refers <- req
	})
	t.Cleanup(func() {
		rtpConn.Close()
		conn.Close()
		ua.Close()
	})
	return p
}

func (p *phone) offer() []byte {
	lines := []string{
		"v=0", "o=phone 1 1 IN IP4 127.0.0.1", "s=-", "c=IN IP4 127.0.0.1", "t=0 0",
		fmt.Sprintf("m=audio %d RTP/AVP 0 101", p.rtp.LocalAddr().(*net.UDPAddr).Port),
		"a=rtpmap:0 PCMU/8000", "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-16", "a=ptime:20",
	}
	return []byte(strings.Join(lines, "\r\n") + "\r\n")
}

// call is one outgoing call of the phone.
type call struct {
	p      *phone
	dlg    *sipgo.DialogClientSession
	remote *net.UDPAddr
	seq    uint16
	ts     uint32
}

func (p *phone) invite(uri string) (*call, error) {
	p.t.Helper()
	var recipient sip.Uri
	if err := sip.ParseUri(uri, &recipient); err != nil {
		p.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dlg, err := p.dua.Invite(ctx, recipient, p.offer(), sip.NewHeader("Content-Type", "application/sdp"),
		sip.NewHeader("X-Customer-Tier", "gold"))
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.dialogs[dlg.InviteRequest.CallID().Value()] = dlg
	p.mu.Unlock()
	if err := dlg.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
		dlg.Close()
		return nil, err
	}
	c := &call{p: p, dlg: dlg, seq: 1000, ts: 5000}
	d, err := media.ParseSDP(dlg.InviteResponse.Body())
	if err != nil {
		p.t.Fatalf("gateway SDP: %v", err)
	}
	c.remote = net.UDPAddrFromAddrPort(d.Addr)
	if err := dlg.Ack(context.Background()); err != nil {
		p.t.Fatal(err)
	}
	return c, nil
}

func dialogResponse(err error) *sip.Response {
	var e *sipgo.ErrDialogResponse
	if errors.As(err, &e) {
		return e.Res
	}
	return nil
}

func (c *call) sendAudio(payload []byte) {
	c.sendRTP(0, false, payload)
	c.ts += 160
}

func (c *call) sendRTP(pt uint8, marker bool, payload []byte) {
	c.seq++
	pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt, Marker: marker, SequenceNumber: c.seq, Timestamp: c.ts, SSRC: 0xCAFE}, Payload: payload}
	b, err := pkt.Marshal()
	if err != nil {
		c.p.t.Error(err)
		return
	}
	_, _ = c.p.rtp.WriteToUDP(b, c.remote)
}

// sendDTMF sends one RFC 4733 event: a few updates, then the end packet
// three times, all on one timestamp.
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

// talk sends a 20 ms PCMU frame from next() every 20 ms until stop is
// closed; the returned channel closes when it has stopped. Only this
// goroutine writes RTP while it runs.
func (c *call) talk(stop <-chan struct{}, next func() []byte) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				c.sendAudio(next())
			}
		}
	}()
	return done
}

// readRTP reads packets from the gateway until stop says enough.
func (c *call) readRTP(timeout time.Duration, stop func(*rtp.Packet) bool) {
	c.p.t.Helper()
	buf := make([]byte, 1500)
	deadline := time.Now().Add(timeout)
	for {
		_ = c.p.rtp.SetReadDeadline(deadline)
		n, _, err := c.p.rtp.ReadFromUDP(buf)
		if err != nil {
			c.p.t.Fatalf("reading RTP: %v", err)
		}
		var pkt rtp.Packet
		if err := pkt.Unmarshal(buf[:n]); err != nil {
			continue
		}
		if stop(&pkt) {
			return
		}
	}
}

func (c *call) notify(frag, state string) {
	c.p.t.Helper()
	req := sip.NewRequest(sip.NOTIFY, c.dlg.InviteResponse.Contact().Address)
	req.SetBody([]byte(frag + "\r\n"))
	req.AppendHeader(sip.NewHeader("Content-Type", "message/sipfrag"))
	req.AppendHeader(sip.NewHeader("Event", "refer"))
	req.AppendHeader(sip.NewHeader("Subscription-State", state))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := c.dlg.Do(ctx, req)
	if err != nil || res.StatusCode != 200 {
		c.p.t.Fatalf("NOTIFY %q: %v %v", frag, res, err)
	}
}

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

func (p *phone) waitRefer() *sip.Request {
	p.t.Helper()
	select {
	case req := <-p.refers:
		return req
	case <-time.After(15 * time.Second):
		p.t.Fatal("no REFER from the gateway")
		return nil
	}
}

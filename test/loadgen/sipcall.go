package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// caller places SIP calls from one UDP socket on ip (sipgo, in-process).
type caller struct {
	ua      *sipgo.UserAgent
	conn    net.PacketConn
	dua     *sipgo.DialogUA
	mu      sync.Mutex
	dialogs map[string]*sipgo.DialogClientSession // by Call-ID, for a BYE from the far end
}

func newCaller(ip string) (*caller, error) {
	sip.SetDefaultLogger(slog.New(slog.DiscardHandler))
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("handoff-loadgen"))
	if err != nil {
		return nil, err
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		return nil, err
	}
	conn, err := net.ListenPacket("udp", ip+":0")
	if err != nil {
		return nil, err
	}
	port := conn.LocalAddr().(*net.UDPAddr).Port
	client, err := sipgo.NewClient(ua, sipgo.WithClientHostname(ip), sipgo.WithClientPort(port))
	if err != nil {
		return nil, err
	}
	c := &caller{ua: ua, conn: conn, dialogs: map[string]*sipgo.DialogClientSession{},
		dua: &sipgo.DialogUA{Client: client, ContactHDR: sip.ContactHeader{
			Address: sip.Uri{Scheme: "sip", User: "loadgen", Host: ip, Port: port}}}}
	srv.OnBye(c.onBye)
	go func() { _ = srv.ServeUDP(conn) }()
	return c, nil
}

func (c *caller) onBye(req *sip.Request, tx sip.ServerTransaction) {
	c.mu.Lock()
	d := c.dialogs[req.CallID().Value()]
	c.mu.Unlock()
	if d == nil {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
		return
	}
	_ = d.ReadBye(req, tx)
}

// call places an answered, ACKed call to uri offering PCMU on rtpPort, and
// returns its dialog and where the answer says to send RTP.
func (c *caller) call(ctx context.Context, uri string, ip string, rtpPort int) (*sipgo.DialogClientSession, *net.UDPAddr, error) {
	var recipient sip.Uri
	if err := sip.ParseUri(uri, &recipient); err != nil {
		return nil, nil, err
	}
	dlg, err := c.dua.Invite(ctx, recipient, pcmuSDP(ip, rtpPort), sip.NewHeader("Content-Type", "application/sdp"))
	if err != nil {
		return nil, nil, err
	}
	c.mu.Lock()
	c.dialogs[dlg.InviteRequest.CallID().Value()] = dlg
	c.mu.Unlock()
	if err := dlg.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
		return nil, nil, err
	}
	if err := dlg.Ack(ctx); err != nil {
		return nil, nil, err
	}
	dst, err := sdpAudio(string(dlg.InviteResponse.Body()))
	return dlg, dst, err
}

func (c *caller) close() {
	c.ua.Close()
	c.conn.Close()
}

// pcmuSDP is an audio offer (or answer) of PCMU on ip:port.
func pcmuSDP(ip string, port int) []byte {
	return fmt.Appendf(nil, "v=0\r\no=loadgen 1 1 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\n"+
		"m=audio %d RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\na=sendrecv\r\n", ip, ip, port)
}

// sdpAudio reads the connection address and audio port of an SDP body.
func sdpAudio(body string) (*net.UDPAddr, error) {
	var host string
	port := 0
	for _, line := range strings.Split(body, "\n") {
		line = strings.TrimSpace(line)
		if h, ok := strings.CutPrefix(line, "c=IN IP4 "); ok {
			host = h
		}
		if m, ok := strings.CutPrefix(line, "m=audio "); ok {
			_, _ = fmt.Sscanf(m, "%d", &port)
		}
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || port == 0 {
		return nil, fmt.Errorf("no audio address in the SDP %q", body)
	}
	return net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(port))), nil
}

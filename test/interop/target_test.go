package interop

// The target of a REFER return: an in-process sipgo user agent on
// loopback that answers one INVITE with PCMU, records it and its RTP, and
// answers the BYE.

import (
	"net"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/handoff/handoff/internal/lateguard"
	"github.com/handoff/handoff/internal/siptest"
)

type target struct {
	t       *testing.T
	addr    *net.UDPAddr
	rtp     *net.UDPConn
	invites chan *sip.Request
	byes    chan struct{}

	mu  sync.Mutex
	dlg *sipgo.DialogServerSession
}

func newTarget(t *testing.T) *target {
	t.Helper()
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("interop-target"))
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
	addr := conn.LocalAddr().(*net.UDPAddr)
	client, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"), sipgo.WithClientPort(addr.Port))
	if err != nil {
		t.Fatal(err)
	}
	rtpConn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	d := &target{t: t, addr: addr, rtp: rtpConn, invites: make(chan *sip.Request, 4), byes: make(chan struct{}, 4)}
	dua := &sipgo.DialogUA{Client: client, ContactHDR: sip.ContactHeader{
		Address: sip.Uri{Scheme: "sip", User: "queue", Host: "127.0.0.1", Port: addr.Port},
	}}
	door := lateguard.New(ua)
	srv.OnInvite(door.Wrap(func(req *sip.Request, tx sip.ServerTransaction) { d.answer(dua, req, tx) }))
	srv.OnAck(door.Wrap(func(req *sip.Request, tx sip.ServerTransaction) {
		if dlg := d.dialog(); dlg != nil {
			_ = dlg.ReadAck(req, tx)
		}
	}))
	srv.OnBye(door.Wrap(func(req *sip.Request, tx sip.ServerTransaction) {
		if dlg := d.dialog(); dlg != nil {
			_ = dlg.ReadBye(req, tx)
		}
		d.byes <- struct{}{}
	}))
	srv.OnNoRoute(door.Wrap(siptest.NotAllowed))
	go func() { _ = srv.ServeUDP(conn) }()
	t.Cleanup(func() {
		door.Close()
		if dlg := d.dialog(); dlg != nil {
			_ = dlg.Close()
		}
		rtpConn.Close()
		conn.Close()
		ua.Close()
	})
	return d
}

// answer records the INVITE and answers it 200 with PCMU and
// telephone-event from the target's RTP socket.
func (d *target) answer(dua *sipgo.DialogUA, req *sip.Request, tx sip.ServerTransaction) {
	d.invites <- req
	dlg, err := dua.ReadInvite(req, tx)
	if err != nil {
		return
	}
	d.mu.Lock()
	d.dlg = dlg
	d.mu.Unlock()
	if err := dlg.RespondSDP(siptest.SDP(d.rtp.LocalAddr().(*net.UDPAddr).Port, "0 101")); err != nil {
		return
	}
	<-dlg.Context().Done()
}

func (d *target) dialog() *sipgo.DialogServerSession {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.dlg
}

// rtpPackets counts the RTP packets reaching the target within d.
func (d *target) rtpPackets(within time.Duration) int {
	buf := make([]byte, 1500)
	n := 0
	deadline := time.Now().Add(within)
	for {
		_ = d.rtp.SetReadDeadline(deadline)
		if _, err := d.rtp.Read(buf); err != nil {
			return n
		}
		n++
	}
}

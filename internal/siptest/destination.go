package siptest

import (
	"crypto/tls"
	"log/slog"
	"net"
	"sync"
	"testing"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/handoff/handoff/internal/lateguard"
	"github.com/handoff/handoff/internal/testenv"
	"github.com/handoff/handoff/media"
)

// Destination is the far end of an INVITE return (an IVR or an agent
// desk): a sipgo UAS on loopback with its own RTP socket. By default it
// rings (180), then answers 200 OK in A-law with telephone-events;
// DestinationOptions change that.
type Destination struct {
	T       testing.TB
	Addr    string       // its UDP host:port
	TLSAddr string       // host:port of its TLS listener (OverTLS), else ""
	RTP     *net.UDPConn // its RTP socket
	// Answered is closed once it has sent its 200 OK, EarlyMediaSent once it
	// has sent its 183 with SDP (EarlyMediaUntilRelease); Byes receives a
	// value per BYE.
	Answered       chan struct{}
	EarlyMediaSent chan struct{}
	Byes           chan struct{}
	// Notifies and Infos receive the in-dialog NOTIFYs and INFOs it
	// answered 200 (destination_dialog.go), Reinvites the re-INVITEs.
	Notifies  chan *sip.Request
	Infos     chan *sip.Request
	Reinvites chan *sip.Request

	cfg     destinationConfig
	dua     *sipgo.DialogUA
	release chan struct{}
	closed  chan struct{}

	mu      sync.Mutex
	invites []*sip.Request
	byes    []*sip.Request
	dlg     *sipgo.DialogServerSession
	offer   *media.Description
}

// NewDestination starts a destination; t.Cleanup closes it.
func NewDestination(t testing.TB, opts ...DestinationOption) *Destination {
	t.Helper()
	d := &Destination{
		T: t, Answered: make(chan struct{}), EarlyMediaSent: make(chan struct{}), Byes: make(chan struct{}, 1),
		Notifies: make(chan *sip.Request, 8), Infos: make(chan *sip.Request, 8), Reinvites: make(chan *sip.Request, 8),
		release: make(chan struct{}), closed: make(chan struct{}),
	}
	for _, o := range opts {
		o(&d.cfg)
	}
	uaOpts := []sipgo.UserAgentOption{sipgo.WithUserAgent("test-destination")}
	if d.cfg.tls != nil {
		uaOpts = append(uaOpts, sipgo.WithUserAgenTLSConfig(d.cfg.tls))
	}
	ua, err := sipgo.NewUA(uaOpts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ua.Close() }) // runs last
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	conn := listenUDP(t)
	d.Addr = conn.LocalAddr().String()
	d.RTP = listenUDP(t)
	port := conn.LocalAddr().(*net.UDPAddr).Port
	client, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"), sipgo.WithClientPort(port))
	if err != nil {
		t.Fatal(err)
	}
	d.dua = &sipgo.DialogUA{Client: client, ContactHDR: sip.ContactHeader{Address: d.contact(srv, port)}}
	d.serve(srv, ua, conn)
	return d
}

func listenUDP(t testing.TB) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// contact is where in-dialog requests (the ACK, the BYE) must reach it:
// over TLS when it listens for TLS, nowhere with UnreachableContact.
func (d *Destination) contact(srv *sipgo.Server, udpPort int) sip.Uri {
	contact := sip.Uri{Scheme: "sip", User: "dest", Host: "127.0.0.1", Port: udpPort}
	if d.cfg.tls != nil {
		l, err := tls.Listen("tcp", "127.0.0.1:0", d.cfg.tls)
		if err != nil {
			d.T.Fatal(err)
		}
		d.T.Cleanup(func() { l.Close() })
		d.TLSAddr = l.Addr().String()
		go func() { _ = srv.ServeTLS(l) }()
		contact.Port = l.Addr().(*net.TCPAddr).Port
		contact.UriParams = sip.HeaderParams{{K: "transport", V: "tls"}}
	}
	if d.cfg.unreachableContact {
		// Over TLS (or TCP) the ACK to a port nobody listens on cannot be
		// sent at all.
		contact.Port = testenv.FreePort(d.T, false)
	}
	return contact
}

func (d *Destination) serve(srv *sipgo.Server, ua *sipgo.UserAgent, conn *net.UDPConn) {
	door := lateguard.New(ua)
	srv.OnInvite(door.Wrap(d.onInvite))
	srv.OnAck(door.Wrap(func(req *sip.Request, tx sip.ServerTransaction) {
		if dlg := d.Dialog(); dlg != nil {
			_ = dlg.ReadAck(req, tx)
		}
	}))
	srv.OnBye(door.Wrap(func(req *sip.Request, tx sip.ServerTransaction) {
		d.mu.Lock()
		d.byes = append(d.byes, req)
		d.mu.Unlock()
		if dlg := d.Dialog(); dlg != nil {
			_ = dlg.ReadBye(req, tx)
		}
		d.Byes <- struct{}{}
	}))
	srv.OnNotify(door.Wrap(d.answerInDialog(d.Notifies)))
	srv.OnInfo(door.Wrap(d.answerInDialog(d.Infos)))
	srv.OnNoRoute(door.Wrap(NotAllowed))
	go func() { _ = srv.ServeUDP(conn) }()
	d.T.Cleanup(func() {
		door.Close()
		close(d.closed)
		if dlg := d.Dialog(); dlg != nil {
			_ = dlg.Close()
		}
	})
}

func (d *Destination) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	if req.To().Params.Has("tag") {
		d.onReinvite(req, tx)
		return
	}
	d.mu.Lock()
	d.invites = append(d.invites, req)
	d.mu.Unlock()
	if d.cfg.digest != nil {
		if res := d.cfg.digest.check(req); res != nil {
			_ = tx.Respond(res)
			return
		}
	}
	switch d.cfg.behaviour {
	case busy:
		_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusBusyHere, "Busy Here", nil))
		return
	case ringsForever:
		_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusRinging, "Ringing", nil))
		<-tx.Done() // until CANCEL
		return
	}
	offer, err := media.ParseSDP(req.Body())
	if err != nil {
		_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusNotAcceptableHere, "Bad SDP", nil))
		return
	}
	dlg, err := d.dua.ReadInvite(req, tx)
	if err != nil {
		return
	}
	d.mu.Lock()
	d.dlg, d.offer = dlg, offer
	d.mu.Unlock()
	if !d.progress(dlg, tx) {
		return
	}
	if err := dlg.Respond(sip.StatusOK, "OK", d.answerSDP(offer), answerHeaders(req)...); err != nil {
		return
	}
	close(d.Answered)
	select {
	case <-dlg.Context().Done():
	case <-d.closed:
	}
}

// progress sends what comes before the 200 OK: 180, or 183 with early
// media and a wait for Release. It reports whether to answer.
func (d *Destination) progress(dlg *sipgo.DialogServerSession, tx sip.ServerTransaction) bool {
	if d.cfg.behaviour != earlyMedia {
		return dlg.Respond(sip.StatusRinging, "Ringing", nil) == nil
	}
	if dlg.Respond(183, "Session Progress", SDP(d.RTPPort(), "8 101"), sip.NewHeader("Content-Type", "application/sdp")) != nil {
		return false
	}
	close(d.EarlyMediaSent)
	select {
	case <-d.release:
		return true
	case <-tx.Done():
	case <-d.closed:
	}
	return false
}

func (d *Destination) answerSDP(offer *media.Description) []byte {
	if d.cfg.answer != nil {
		return d.cfg.answer(offer, d.RTPPort())
	}
	return SDP(d.RTPPort(), "8 101")
}

// URI is a return URI that reaches the destination.
func (d *Destination) URI() string { return "sip:ret@" + d.Addr }

// RTPPort is the port of its RTP socket.
func (d *Destination) RTPPort() int { return d.RTP.LocalAddr().(*net.UDPAddr).Port }

// Release lets an EarlyMediaUntilRelease destination answer.
func (d *Destination) Release() { close(d.release) }

// Invites lists the INVITEs it received, in order (challenged ones too).
func (d *Destination) Invites() []*sip.Request {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]*sip.Request(nil), d.invites...)
}

// LastInvite is the latest INVITE it received, nil before the first.
func (d *Destination) LastInvite() *sip.Request {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.invites) == 0 {
		return nil
	}
	return d.invites[len(d.invites)-1]
}

// Offer is the SDP offer of the INVITE it answered (or is answering).
func (d *Destination) Offer() *media.Description {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.offer
}

// Dialog is the dialog of the INVITE it answered (or is answering).
func (d *Destination) Dialog() *sipgo.DialogServerSession {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.dlg
}

// RTPCall is its end of the return call's media, as a Call whose RTP goes
// from its socket to where the gateway's offer says.
func (d *Destination) RTPCall() *Call {
	return &Call{P: &Phone{T: d.T, RTP: d.RTP}, Remote: net.UDPAddrFromAddrPort(d.Offer().Addr), Seq: 1, TS: 1}
}

package sip

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/google/uuid"

	"github.com/handoff/handoff/agent"
	"github.com/handoff/handoff/media"
	"github.com/handoff/handoff/transfer"
)

// fuzzServer is one Handoff SIP server on loopback UDP shared by every
// exec of FuzzServerUDP, with the caller's socket and an RTP sink.
type fuzzServer struct {
	svc    *transfer.Service
	srv    *Server
	ports  *media.PortPool
	addr   *net.UDPAddr
	client *net.UDPConn
	sink   *net.UDPConn
	buf    []byte
	probes int
}

func newFuzzServer(f *testing.F) *fuzzServer {
	st, err := transfer.OpenBolt(filepath.Join(f.TempDir(), "handoff.db"), transfer.BoltOptions{Quarantine: time.Minute})
	if err != nil {
		f.Fatal(err)
	}
	svc := transfer.NewService(st, transfer.ServiceConfig{TTL: time.Minute, Logger: quiet})
	ports, err := media.NewPortPool(netip.MustParseAddr("127.0.0.1"), 46000, 46999, 0)
	if err != nil {
		f.Fatal(err)
	}
	srv, err := New(Config{
		Listen:       []string{"udp://127.0.0.1:0"},
		TrustedCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		AckTimeout:   300 * time.Millisecond,
		RTPTimeout:   time.Second,
		Ports:        ports,
		Pipeline:     agent.Loopback{MaxDuration: 2 * time.Second},
		Logger:       quiet,
	}, svc, nil)
	if err != nil {
		f.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		f.Fatal(err)
	}
	fs := &fuzzServer{svc: svc, srv: srv, ports: ports, buf: make([]byte, 65536)}
	_, hp, _ := strings.Cut(srv.Addrs()[0], "://")
	fs.addr = net.UDPAddrFromAddrPort(netip.MustParseAddrPort(hp))
	loop := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}
	if fs.client, err = net.ListenUDP("udp", loop); err != nil {
		f.Fatal(err)
	}
	if fs.sink, err = net.ListenUDP("udp", loop); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			f.Errorf("shutdown: %v", err)
		}
		if n := ports.InUse(); n != 0 {
			f.Errorf("%d RTP port pairs still in use after shutdown", n)
		}
		fs.client.Close()
		fs.sink.Close()
		st.Close()
	})
	return fs
}

func (fs *fuzzServer) clientAddr() string { return fs.client.LocalAddr().String() }

// routesToUs reports whether every address a call set up by msg would
// send to (Contact, Record-Route, SDP) is the fuzzer's own socket, so the
// server only ever talks to us, whatever the input.
func (fs *fuzzServer) routesToUs(data []byte) bool {
	msg, err := sip.ParseMessage(data)
	if err != nil {
		return true // sipgo drops it too
	}
	req, ok := msg.(*sip.Request)
	if !ok || !req.IsInvite() {
		return true
	}
	if len(req.GetHeaders("Record-Route")) > 0 {
		return false
	}
	for _, h := range req.GetHeaders("Contact") {
		c, ok := h.(*sip.ContactHeader)
		if !ok || c.Address.Host != "127.0.0.1" || fmt.Sprint(c.Address.Port) != portStr(fs.clientAddr()) ||
			c.Address.UriParams.Has("transport") || c.Address.Scheme != "sip" {
			return false
		}
	}
	if len(req.Body()) > 0 {
		if d, err := media.ParseSDP(req.Body()); err == nil && d.Addr.String() != fs.sink.LocalAddr().String() {
			return false
		}
	}
	return true
}

var contentLength = regexp.MustCompile(`(?im)^((?:Content-Length|l)[ \t]*:[ \t]*)[0-9]+`)

func portStr(hostport string) string {
	_, p, _ := net.SplitHostPort(hostport)
	return p
}

// probe sends an OPTIONS and waits for its answer: the server still serves.
func (fs *fuzzServer) probe(t *testing.T) {
	fs.probes++
	callID := fmt.Sprintf("probe-%d-%s", fs.probes, uuid.NewString())
	c := fs.clientAddr()
	msg := "OPTIONS sip:" + fs.addr.String() + " SIP/2.0\r\nVia: SIP/2.0/UDP " + c + ";branch=z9hG4bK" + callID + ";rport\r\n" +
		"From: <sip:probe@" + c + ">;tag=p\r\nTo: <sip:" + fs.addr.String() + ">\r\nCall-ID: " + callID + "\r\n" +
		"CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
	if _, err := fs.client.WriteToUDP([]byte(msg), fs.addr); err != nil {
		t.Fatal(err)
	}
	answered := false
	if !fs.pump(5*time.Second, func(b []byte) bool {
		answered = answered || bytes.HasPrefix(b, []byte("SIP/2.0 ")) && bytes.Contains(b, []byte(callID))
		return answered
	}) {
		t.Fatal("the server no longer answers OPTIONS")
	}
}

// pump reads what the server sends us for up to limit, answering its
// requests (the BYE of a call that timed out) with 200 OK, until done
// says so; done is also asked, with nil, between reads.
func (fs *fuzzServer) pump(limit time.Duration, done func([]byte) bool) bool {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if done(nil) {
			return true
		}
		fs.client.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		n, src, err := fs.client.ReadFromUDP(fs.buf)
		if err != nil {
			if done(nil) {
				return true
			}
			continue
		}
		b := fs.buf[:n]
		if msg, err := sip.ParseMessage(b); err == nil {
			if req, ok := msg.(*sip.Request); ok && !req.IsAck() {
				res := sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil)
				_, _ = fs.client.WriteToUDP([]byte(res.String()), src)
			}
		}
		if done(b) {
			return true
		}
	}
	return false
}

// FuzzServerUDP sends arbitrary datagrams to a running server: it keeps
// answering, and no call or RTP port outlives its call. In a datagram,
// TRANSFERID becomes the id of a fresh ACTIVE SIP transfer, CLIENT the
// fuzzer's address and SINKPORT the port of its RTP sink, so calls can be
// set up (and left unacknowledged, to time out).
func FuzzServerUDP(f *testing.F) {
	for _, s := range messageSeeds("HANDOFF", "TRANSFERID", 0) {
		f.Add([]byte(strings.ReplaceAll(s, "m=audio 0 ", "m=audio SINKPORT ")))
	}
	f.Add([]byte("INVITE sip:x@HANDOFF SIP/2.0\r\nContent-Length: 99999\r\n\r\n"))
	f.Add([]byte("\x00\x00\x00"))
	fs := newFuzzServer(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 60000 {
			return
		}
		if bytes.Contains(data, []byte("TRANSFERID")) {
			id := "fz-" + uuid.NewString()
			_, _, err := fs.svc.Create(context.Background(), "ivr", transfer.CreateRequest{
				ID: id, ExternalConversationID: "fuzz", Type: transfer.TypeSIP,
				SIP: &transfer.SIPReturn{ReturnTransferType: transfer.ReturnBye},
			})
			if err != nil {
				t.Fatal(err)
			}
			data = bytes.ReplaceAll(data, []byte("TRANSFERID"), []byte(id))
		}
		data = bytes.ReplaceAll(data, []byte("HANDOFF"), []byte(fs.addr.String()))
		data = bytes.ReplaceAll(data, []byte("CLIENT"), []byte(fs.clientAddr()))
		if head, body, ok := bytes.Cut(data, []byte("\r\n\r\n")); ok && bytes.Contains(body, []byte("SINKPORT")) {
			// The seed's Content-Length counted the placeholder.
			body = bytes.ReplaceAll(body, []byte("SINKPORT"), []byte(portStr(fs.sink.LocalAddr().String())))
			head = contentLength.ReplaceAll(head, fmt.Appendf(nil, "${1}%d", len(body)))
			data = slices.Concat(head, []byte("\r\n\r\n"), body)
		}
		if !fs.routesToUs(data) {
			return
		}
		if _, err := fs.client.WriteToUDP(data, fs.addr); err != nil {
			return // e.g. too large for a datagram
		}
		fs.probe(t)
		if !fs.pump(10*time.Second, func([]byte) bool { return fs.srv.ActiveCalls() == 0 && fs.ports.InUse() == 0 }) {
			t.Fatalf("%d calls and %d RTP port pairs still held 10 s after %q", fs.srv.ActiveCalls(), fs.ports.InUse(), data)
		}
	})
}

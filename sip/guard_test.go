package sip

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"math/big"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
	"github.com/pion/rtp"

	"github.com/handoff/handoff/internal/testenv"
	"github.com/handoff/handoff/transfer"
)

// optionsFrom sends an OPTIONS and returns its status, 0 when none came.
func optionsFrom(t *testing.T, p *phone, addr string, hdrs ...sip.Header) int {
	t.Helper()
	req := sip.NewRequest(sip.OPTIONS, sip.Uri{Scheme: "sip", Host: "127.0.0.1", Port: portOf(addr)})
	for _, h := range hdrs {
		req.AppendHeader(h)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	res, err := p.Client.Do(ctx, req)
	if err != nil {
		return 0
	}
	return res.StatusCode
}

func TestFloodLimitPerSource(t *testing.T) {
	g := newGateway(t, func(c *Config) { c.Flood = FloodConfig{Rate: 0.5, Burst: 2, LimitTrusted: true} })
	p := newPhone(t)
	got := []int{}
	for range 4 {
		got = append(got, optionsFrom(t, p, g.addr))
	}
	if got[0] != 200 || got[1] != 200 || got[2] != 0 || got[3] != 0 {
		t.Fatalf("OPTIONS answers %v, want two 200s then silence", got)
	}
	g.createSIP("flooded")
	_, err := p.Invite(g.srv.TransferURI("flooded"), p.Offer("0"), sipgo.AnswerOptions{})
	var rejected *sipgo.ErrDialogResponse
	if statusOf(err) != 503 || !errorsAs(err, &rejected) || rejected.Res.GetHeader("Retry-After") == nil {
		t.Fatalf("INVITE over the limit: %v, want 503 with Retry-After", err)
	}
	if g.ports.InUse() != 0 || g.Get("flooded").Claim != nil {
		t.Fatal("a rate-limited INVITE took state")
	}
	// Another source is not affected.
	if code := rawOptions(t, "127.0.0.2", g.addr); code != 200 {
		t.Fatalf("second source got %d", code)
	}
}

func TestTrustedSourcesAreNotLimitedByDefault(t *testing.T) {
	g := newGateway(t, func(c *Config) { c.Flood = FloodConfig{Rate: 0.5, Burst: 1} })
	p := newPhone(t)
	for i := range 5 {
		if code := optionsFrom(t, p, g.addr); code != 200 {
			t.Fatalf("OPTIONS %d from a trusted source: %d", i, code)
		}
	}
}

func TestScannersAreIgnored(t *testing.T) {
	g := newGateway(t)
	p := newPhone(t)
	if code := optionsFrom(t, p, g.addr, sip.NewHeader("User-Agent", "friendly-scanner")); code != 0 {
		t.Fatalf("scanner OPTIONS answered %d", code)
	}
	if code := optionsFrom(t, p, g.addr, sip.NewHeader("User-Agent", "Polycom VVX")); code != 200 {
		t.Fatalf("phone OPTIONS answered %d", code)
	}
}

func TestChallengedInviteTakesNoResources(t *testing.T) {
	g := newGateway(t, func(c *Config) {
		c.TrustedCIDRs = nil
		c.DigestUsers = map[string]string{"ivr": "pw"}
	})
	g.createSIP("challenged")
	p := newPhone(t)
	for range 20 {
		if _, err := p.Invite(g.srv.TransferURI("challenged"), p.Offer("0"), sipgo.AnswerOptions{}); statusOf(err) != 401 {
			t.Fatalf("unauthenticated INVITE: %v", err)
		}
	}
	if g.ports.InUse() != 0 || g.srv.ActiveCalls() != 0 || g.Get("challenged").Claim != nil {
		t.Fatal("unauthenticated INVITEs took ports, calls or the transfer")
	}
}

// TestNoRTPBleed: once latched, packets from another source never reach
// the agent (the loopback agent would echo them back).
func TestNoRTPBleed(t *testing.T) {
	g := newGateway(t)
	g.createSIP("bleed")
	p := newPhone(t)
	c := p.MustAnswer(g.srv.TransferURI("bleed"), p.Offer("0"))
	g.WaitStatus("bleed", transfer.StatusOngoing)
	expectEcho(t, c, 5) // latched on the phone's socket

	intruder, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer intruder.Close()
	poison := make([]byte, 160)
	for i := range poison {
		poison[i] = 0x55
	}
	for i := range 25 {
		// Same SSRC and a plausible sequence, from the wrong address.
		pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: c.Seq + uint16(i) + 1, Timestamp: c.TS + uint32(160*i), SSRC: 0xCAFE}, Payload: poison}
		b, _ := pkt.Marshal()
		_, _ = intruder.WriteToUDP(b, c.Remote)
		c.SendAudio(pattern(100 + i))
		time.Sleep(20 * time.Millisecond)
	}
	echoed := 0
	c.ReadRTP(5*time.Second, func(pkt *rtp.Packet) bool {
		if pkt.Payload[0] == 0x55 && pkt.Payload[159] == 0x55 {
			t.Fatal("RTP from a foreign source reached the agent")
		}
		if pkt.Payload[0] == pattern(124)[0] && pkt.Payload[1] == pattern(124)[1] {
			return true // the last genuine frame came back: no poison before it
		}
		echoed++
		return echoed > 200
	})
	c.Hangup()
}

func selfSigned(t *testing.T) (*tls.Config, *x509.CertPool) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12}, pool
}

func TestCallOverTLS(t *testing.T) {
	serverTLS, roots := selfSigned(t)
	g := newGateway(t, func(c *Config) {
		c.Listen = []string{"udp://127.0.0.1:0", "tls://127.0.0.1:0"}
		c.TLS = serverTLS
	})
	var tlsAddr string
	for _, a := range g.srv.Addrs() {
		if len(a) > 6 && a[:6] == "tls://" {
			tlsAddr = a[6:]
		}
	}
	g.createSIP("secure")
	p := newTLSPhone(t, &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12})
	c := p.MustAnswer("sip:secure@"+tlsAddr+";transport=tls", p.Offer("0"))
	g.WaitStatus("secure", transfer.StatusOngoing)
	if ct := c.Dlg.InviteResponse.Contact(); ct == nil || ct.Address.UriParams == nil {
		t.Fatalf("200 OK Contact lacks transport=tls: %v", ct)
	} else if tp, _ := ct.Address.UriParams.Get("transport"); tp != "tls" {
		t.Fatalf("200 OK Contact transport %q", tp)
	}
	c.Hangup()
	g.WaitStatus("secure", transfer.StatusCompleted)
}

// newTLSPhone is a phone whose UA can dial TLS.
func newTLSPhone(t *testing.T, conf *tls.Config) *phone {
	t.Helper()
	p := newPhone(t)
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("tls-phone"), sipgo.WithUserAgenTLSConfig(conf))
	if err != nil {
		t.Fatal(err)
	}
	client, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ua.Close() })
	p.Client = client
	p.DUA = &sipgo.DialogUA{Client: client, ContactHDR: sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "caller", Host: "127.0.0.1", Port: 5999}}}
	return p
}

// rawOptions sends a hand-written OPTIONS from a socket on ip and returns
// the answer's status (0 for none).
func rawOptions(t *testing.T, ip, to string) int {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	local := conn.LocalAddr().String()
	msg := "OPTIONS sip:" + to + " SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP " + local + ";branch=z9hG4bK" + sip.GenerateTagN(10) + "\r\n" +
		"From: <sip:probe@" + ip + ">;tag=" + sip.GenerateTagN(8) + "\r\n" +
		"To: <sip:" + to + ">\r\n" +
		"Call-ID: " + sip.GenerateTagN(12) + "\r\n" +
		"CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
	dst, _ := net.ResolveUDPAddr("udp", to)
	if _, err := conn.WriteToUDP([]byte(msg), dst); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(time.Second))
	buf := make([]byte, 4096)
	n, _, err := conn.ReadFromUDP(buf)
	if err != nil {
		return 0
	}
	res, err := sip.ParseMessage(buf[:n])
	if r, ok := res.(*sip.Response); err == nil && ok {
		return r.StatusCode
	}
	return 0
}

var _ = netip.Addr{}

// authorizedInvite builds an INVITE to target carrying a digest answer,
// computed for digestURI, to a challenge a issued.
func authorizedInvite(t *testing.T, a *authenticator, target, digestURI string) *sip.Request {
	t.Helper()
	var recipient sip.Uri
	if err := sip.ParseUri(target, &recipient); err != nil {
		t.Fatal(err)
	}
	req := sip.NewRequest(sip.INVITE, recipient)
	req.SetSource("192.0.2.10:5060")
	chal := &digest.Challenge{Realm: a.realm, Nonce: a.nonce(time.Now()), Algorithm: "MD5", QOP: []string{"auth"}}
	creds, err := digest.Digest(chal, digest.Options{Method: "INVITE", URI: digestURI, Username: "ivr", Password: "pw", Count: 1})
	if err != nil {
		t.Fatal(err)
	}
	req.AppendHeader(sip.NewHeader("Authorization", creds.String()))
	return req
}

func TestDigestReplayAndWrongTargetRefused(t *testing.T) {
	a := newAuthenticator(nil, "handoff", map[string]string{"ivr": "pw"})
	now := time.Now()
	req := authorizedInvite(t, a, "sip:t1@198.51.100.1:5060", "sip:t1@198.51.100.1:5060")
	if v, _ := a.check(req, now); v != allowed {
		t.Fatalf("a fresh, correct answer: %v", v)
	}
	// The same Authorization again (a captured header replayed) is challenged anew.
	replay := authorizedInvite(t, a, "sip:t1@198.51.100.1:5060", "sip:t1@198.51.100.1:5060")
	replay.ReplaceHeader(req.GetHeader("Authorization"))
	if v, _ := a.check(replay, now); v != challenge {
		t.Fatalf("a replayed answer: %v, want a new challenge", v)
	}
	// An answer computed for another Request-URI does not admit this one.
	other := authorizedInvite(t, a, "sip:t2@198.51.100.1:5060", "sip:t1@198.51.100.1:5060")
	if v, _ := a.check(other, now); v != forbidden {
		t.Fatalf("an answer for another target: %v, want forbidden", v)
	}
}

func TestUnparsableMessagesStayOutOfLogs(t *testing.T) {
	logs := &testenv.Buffer{}
	g := newGateway(t, func(c *Config) {
		c.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	conn, err := net.Dial("udp", g.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	garbage := "INVITE sip:x@y SIP/2.0\r\nVia: SIP/2.0/UDP nowhere\r\nCSeq: nonsense\r\nX-Card: 4111111111111111\r\nContent-Length: 999\r\n\r\n"
	if _, err := conn.Write([]byte(garbage)); err != nil {
		t.Fatal(err)
	}
	// The server still answers, and the bytes it could not parse are not logged.
	if code := optionsFrom(t, newPhone(t), g.addr); code != 200 {
		t.Fatalf("OPTIONS after garbage: %d", code)
	}
	if strings.Contains(logs.String(), "4111111111111111") {
		t.Fatal("raw bytes of an unparsable message reached the log")
	}
	if !strings.Contains(logs.String(), `"data_bytes"`) {
		t.Fatalf("the parse failure was not logged at all (the test proves nothing):\n%s", logs.String())
	}
}

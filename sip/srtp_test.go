package sip

import (
	"bytes"
	"encoding/base64"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"

	"github.com/handoff/handoff/agent"
	"github.com/handoff/handoff/internal/siptest"
	"github.com/handoff/handoff/internal/testenv"
	"github.com/handoff/handoff/media"
	"github.com/handoff/handoff/transfer"
)

// srtpOffer is the phone's offer as RTP/SAVP with its a=crypto line.
func srtpOffer(p *phone, key media.SRTPKey, codecs string) []byte {
	return bytes.Replace(p.Offer(codecs, "a=crypto:"+key.Attribute()), []byte("RTP/AVP"), []byte("RTP/SAVP"), 1)
}

// srtpAnswerBody is an RTP/SAVP answer from port with our key.
func srtpAnswerBody(port int, codecs string, key media.SRTPKey) []byte {
	return bytes.Replace(sdpBody(port, codecs, "a=crypto:"+key.Attribute()), []byte("RTP/AVP"), []byte("RTP/SAVP"), 1)
}

// gatewayKey returns the single SRTP key of an SDP body from the gateway.
func gatewayKey(t *testing.T, body []byte, wantTag uint32) media.SRTPKey {
	t.Helper()
	d, err := media.ParseSDP(body)
	if err != nil {
		t.Fatal(err)
	}
	if !d.SecureProfile() || len(d.Crypto) != 1 || d.CryptoLines != 1 || d.Crypto[0].Tag != wantTag {
		t.Fatalf("gateway SDP is not SRTP with one crypto line tagged %d:\n%s", wantTag, body)
	}
	return d.Crypto[0]
}

// srtpLeg is a test phone's RTP socket speaking SRTP with pion directly:
// it protects with its own key and checks the gateway's packets with the
// key from the gateway's SDP.
type srtpLeg struct {
	t      *testing.T
	conn   *net.UDPConn
	remote *net.UDPAddr
	tx, rx *srtp.Context
	seq    uint16
	ts     uint32
	ssrc   uint32
}

func srtpContext(t *testing.T, k media.SRTPKey, receive bool) *srtp.Context {
	t.Helper()
	profile := map[media.CryptoSuite]srtp.ProtectionProfile{
		media.AESCM128HMACSHA180: srtp.ProtectionProfileAes128CmHmacSha1_80,
		media.AESCM128HMACSHA132: srtp.ProtectionProfileAes128CmHmacSha1_32,
	}[k.Suite]
	var opts []srtp.ContextOption
	if receive {
		opts = append(opts, srtp.SRTPReplayProtection(64))
	}
	ctx, err := srtp.CreateContext(k.Key[:16], k.Key[16:], profile, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return ctx
}

func newSRTPLeg(t *testing.T, conn *net.UDPConn, remote *net.UDPAddr, ours, theirs media.SRTPKey) *srtpLeg {
	return &srtpLeg{t: t, conn: conn, remote: remote, tx: srtpContext(t, ours, false), rx: srtpContext(t, theirs, true), seq: 100, ts: 1000, ssrc: 0x5EC0}
}

// rekey continues the same stream with new keys (after a re-INVITE).
func (l *srtpLeg) rekey(ours, theirs media.SRTPKey) {
	l.tx, l.rx = srtpContext(l.t, ours, false), srtpContext(l.t, theirs, true)
}

func (l *srtpLeg) send(pt uint8, marker bool, payload []byte) {
	l.seq++
	pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt, Marker: marker, SequenceNumber: l.seq, Timestamp: l.ts, SSRC: l.ssrc}, Payload: payload}
	b, err := pkt.Marshal()
	if err != nil {
		l.t.Fatal(err)
	}
	if b, err = l.tx.EncryptRTP(nil, b, nil); err != nil {
		l.t.Fatal(err)
	}
	if _, err := l.conn.WriteToUDP(b, l.remote); err != nil {
		l.t.Fatal(err)
	}
}

func (l *srtpLeg) sendAudio(pt uint8, payload []byte) {
	l.send(pt, false, payload)
	l.ts += 160
}

// sendDTMF sends one RFC 4733 event (updates, then the end three times).
func (l *srtpLeg) sendDTMF(ev byte) {
	for i, dur := range []uint16{160, 320, 480} {
		l.send(101, i == 0, []byte{ev, 10, byte(dur >> 8), byte(dur)})
	}
	for range 3 {
		l.send(101, false, []byte{ev, 0x80 | 10, 0x02, 0x80})
	}
	l.ts += 640
}

// read decrypts the gateway's packets until stop says enough; it returns
// how many packets did not authenticate (e.g. old-key packets in flight).
func (l *srtpLeg) read(timeout time.Duration, stop func(*rtp.Packet) bool) (unauthenticated int) {
	l.t.Helper()
	buf := make([]byte, 1500)
	deadline := time.Now().Add(timeout)
	for {
		_ = l.conn.SetReadDeadline(deadline)
		n, _, err := l.conn.ReadFromUDP(buf)
		if err != nil {
			l.t.Fatalf("reading SRTP: stop condition not met within %s (%d packets failed authentication)", timeout, unauthenticated)
		}
		plain, err := l.rx.DecryptRTP(nil, buf[:n], nil)
		if err != nil {
			unauthenticated++
			continue
		}
		var pkt rtp.Packet
		if err := pkt.Unmarshal(plain); err != nil {
			l.t.Fatal(err)
		}
		if stop(&pkt) {
			return unauthenticated
		}
	}
}

// srtpEcho sends frames from pattern(from) on and expects the loopback
// agent to echo them back over SRTP.
func srtpEcho(t *testing.T, l *srtpLeg, from, frames int) {
	t.Helper()
	want := map[string]bool{}
	for i := range frames {
		want[string(pattern(from+i))] = true
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range frames {
			l.sendAudio(0, pattern(from+i))
			time.Sleep(20 * time.Millisecond)
		}
	}()
	got := 0
	l.read(15*time.Second, func(p *rtp.Packet) bool {
		if p.PayloadType == 0 && want[string(p.Payload)] {
			delete(want, string(p.Payload))
			got++
		}
		return got >= frames-3
	})
	<-done
}

func warningOf(err error) string {
	var e *sipgo.ErrDialogResponse
	if errorsAs(err, &e) {
		if h := e.Res.GetHeader("Warning"); h != nil {
			return h.Value()
		}
	}
	return ""
}

// An SRTP call: answered RTP/SAVP with our own key under the offer's tag,
// audio both ways encrypted, plain RTP refused, a refresh keeps the keys,
// a new key from the caller rekeys, dropping SRTP mid-call is refused, and
// no key reaches the logs.
func TestSRTPCall(t *testing.T) {
	logs := &testenv.Buffer{}
	g := newGateway(t, func(c *Config) {
		c.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	g.createSIP("srtp-1")
	p := newPhone(t)
	ours := media.NewSRTPKey(7, media.AESCM128HMACSHA180)
	c := p.MustAnswer(g.srv.TransferURI("srtp-1"), srtpOffer(p, ours, "0 101"))
	theirs := gatewayKey(t, c.Dlg.InviteResponse.Body(), 7)
	if theirs.Suite != ours.Suite || theirs.Key == ours.Key {
		t.Fatalf("gateway key %v", theirs)
	}
	g.WaitStatus("srtp-1", transfer.StatusOngoing)
	l := newSRTPLeg(t, p.RTP, c.Remote, ours, theirs)
	srtpEcho(t, l, 0, 10)

	// Plain RTP from the latched socket does not authenticate: never echoed.
	for range 5 {
		c.SendAudio(pattern(200))
	}
	for i := range 5 {
		l.sendAudio(0, pattern(201+i))
		time.Sleep(20 * time.Millisecond)
	}
	l.read(10*time.Second, func(pkt *rtp.Packet) bool {
		if bytes.Equal(pkt.Payload, pattern(200)) {
			t.Fatal("plain RTP reached the agent of an SRTP call")
		}
		return bytes.Equal(pkt.Payload, pattern(205))
	})

	// A session refresh with the same offer: the same answer key.
	res := c.Reinvite(srtpOffer(p, ours, "0 101"))
	if res.StatusCode != 200 || gatewayKey(t, res.Body(), 7) != theirs {
		t.Fatalf("refresh: %d, key changed", res.StatusCode)
	}
	srtpEcho(t, l, 20, 10)

	// The caller rekeys: so does the gateway.
	ours2 := media.NewSRTPKey(8, media.AESCM128HMACSHA132)
	res = c.Reinvite(srtpOffer(p, ours2, "0 101"))
	theirs2 := gatewayKey(t, res.Body(), 8)
	if res.StatusCode != 200 || theirs2.Key == theirs.Key || theirs2.Suite != media.AESCM128HMACSHA132 {
		t.Fatalf("rekey: %d %v", res.StatusCode, theirs2)
	}
	l.rekey(ours2, theirs2)
	srtpEcho(t, l, 40, 10)

	// No downgrade to plain RTP mid-call.
	res = c.Reinvite(p.Offer("0 101"))
	if res.StatusCode != 488 || !strings.Contains(res.GetHeader("Warning").Value(), "SRTP cannot be turned off") {
		t.Fatalf("plain re-offer on an SRTP call: %d %v", res.StatusCode, res.GetHeader("Warning"))
	}
	srtpEcho(t, l, 60, 10)

	c.Hangup()
	g.WaitStatus("srtp-1", transfer.StatusCompleted)
	for _, k := range []media.SRTPKey{ours, theirs, ours2, theirs2} {
		if b64 := base64.StdEncoding.EncodeToString(k.Key[:]); strings.Contains(logs.String(), b64[:20]) {
			t.Fatal("an SRTP key appeared in the logs")
		}
	}
	if !strings.Contains(logs.String(), `"srtp":true`) {
		t.Fatal("the logs do not say the media is SRTP")
	}
}

func TestSRTPPolicy(t *testing.T) {
	short := media.SRTPKey{Tag: 1, Suite: media.AESCM128HMACSHA180}
	savp := func(p *phone) []byte { return srtpOffer(p, media.NewSRTPKey(1, media.AESCM128HMACSHA180), "0") }
	avp := func(p *phone) []byte { return p.Offer("0") }
	bestEffort := func(p *phone) []byte {
		return p.Offer("0", "a=crypto:"+media.NewSRTPKey(2, media.AESCM128HMACSHA180).Attribute())
	}
	shortKey := func(p *phone) []byte {
		return bytes.Replace(srtpOffer(p, short, "0"), []byte(base64.StdEncoding.EncodeToString(short.Key[:])), []byte("AAAAAAAA"), 1)
	}
	for _, tc := range []struct {
		name    string
		policy  SRTPPolicy
		offer   func(*phone) []byte
		want    int
		warning string
		srtp    bool
	}{
		{"off refuses SAVP", SRTPOff, savp, 488, "SRTP not enabled", false},
		{"off answers best-effort crypto plain", SRTPOff, bestEffort, 200, "", false},
		{"optional answers AVP plain", SRTPOptional, avp, 200, "", false},
		{"optional answers SAVP", SRTPOptional, savp, 200, "", true},
		{"optional answers best-effort crypto SRTP", SRTPOptional, bestEffort, 200, "", true},
		{"SAVP without a usable key", SRTPOptional, shortKey, 488, "no usable SRTP crypto suite", false},
		{"required refuses AVP", SRTPRequired, avp, 488, "SRTP required", false},
		{"required answers SAVP", SRTPRequired, savp, 200, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGateway(t, func(c *Config) { c.SRTP = tc.policy })
			g.createSIP("pol")
			p := newPhone(t)
			c, err := p.Invite(g.srv.TransferURI("pol"), tc.offer(p), sipgo.AnswerOptions{})
			if got := statusOf(err); tc.want != 200 && got != tc.want {
				t.Fatalf("got %d (%v), want %d", got, err, tc.want)
			}
			if tc.want != 200 {
				if w := warningOf(err); !strings.Contains(w, tc.warning) {
					t.Fatalf("Warning %q, want %q", w, tc.warning)
				}
				if st := g.Get("pol").StatusAt(g.svc.Now()); st != transfer.StatusActive {
					t.Fatalf("refused INVITE left the transfer %s", st)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			_ = c.Dlg.Ack(t.Context())
			d, err := media.ParseSDP(c.Dlg.InviteResponse.Body())
			if err != nil {
				t.Fatal(err)
			}
			if d.SRTP() != tc.srtp || (len(d.Crypto) == 1) != tc.srtp {
				t.Fatalf("answer SRTP = %v, want %v:\n%s", d.SRTP(), tc.srtp, c.Dlg.InviteResponse.Body())
			}
			g.WaitStatus("pol", transfer.StatusOngoing)
			c.Hangup()
			g.WaitStatus("pol", transfer.StatusCompleted)
		})
	}
	if _, err := New(Config{Listen: []string{"udp://127.0.0.1:0"}, SRTP: "mandatory", Ports: &media.PortPool{}, Pipeline: agent.Loopback{}}, nil, nil); err == nil {
		t.Fatal("an unknown policy was accepted")
	}
}

// A delayed offer (INVITE without SDP) gets an SRTP offer when SRTP is
// required; the caller's SRTP answer in the ACK completes the call.
func TestSRTPRequiredDelayedOffer(t *testing.T) {
	g := newGateway(t, func(c *Config) { c.SRTP = SRTPRequired })
	g.createSIP("late-srtp")
	p := newPhone(t)
	c, err := p.Invite(g.srv.TransferURI("late-srtp"), nil, sipgo.AnswerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	theirs := gatewayKey(t, c.Dlg.InviteResponse.Body(), 1)
	d, _ := media.ParseSDP(c.Dlg.InviteResponse.Body())
	c.Remote = net.UDPAddrFromAddrPort(d.Addr)
	ours := media.NewSRTPKey(1, media.AESCM128HMACSHA180)
	c.AckAnswer(srtpOffer(p, ours, "0 101"))
	g.WaitStatus("late-srtp", transfer.StatusOngoing)
	srtpEcho(t, newSRTPLeg(t, p.RTP, c.Remote, ours, theirs), 0, 10)
	c.Hangup()
	g.WaitStatus("late-srtp", transfer.StatusCompleted)
}

func TestReturnOfferSRTP(t *testing.T) {
	for _, tc := range []struct {
		policy SRTPPolicy
		uri    string
		srtp   bool
	}{
		{SRTPOptional, "sip:ret@127.0.0.1:5060", false},
		{SRTPOptional, "sips:ret@127.0.0.1:5061", true},
		{SRTPOptional, "sip:ret@127.0.0.1:5061;transport=TLS", true},
		{SRTPOff, "sips:ret@127.0.0.1:5061", false},
		{SRTPRequired, "sip:ret@127.0.0.1:5060;transport=udp", true},
	} {
		var u sip.Uri
		if err := sip.ParseUri(tc.uri, &u); err != nil {
			t.Fatal(err)
		}
		if got := len(srtpOfferOptions(tc.policy, u)) > 0; got != tc.srtp {
			t.Errorf("%s %s: SRTP offer %v", tc.policy, tc.uri, got)
		}
	}
}

// An INVITE return bridging an SRTP caller to a plain RTP destination:
// audio both ways, each leg in its own protection (and codec).
func TestInviteReturnBridgesSRTPCallerToRTPDestination(t *testing.T) {
	g := newGateway(t)
	dest := siptest.NewDestination(t)
	g.createReturn("mix", transfer.SIPReturn{ReturnTransferType: transfer.ReturnInvite, ReturnURI: dest.URI()})
	p := newPhone(t)
	ours := media.NewSRTPKey(3, media.AESCM128HMACSHA180)
	c := p.MustAnswer(g.srv.TransferURI("mix"), srtpOffer(p, ours, "0 101"))
	caller := newSRTPLeg(t, p.RTP, c.Remote, ours, gatewayKey(t, c.Dlg.InviteResponse.Body(), 3))
	g.WaitStatus("mix", transfer.StatusOngoing)
	caller.sendDTMF(11) // '#': the loopback agent finishes and returns the call

	siptest.Receive(t, dest.Answered, "the return call never reached the destination")
	if dest.Offer().SRTP() {
		t.Fatal("plain sip: destination was offered SRTP under the optional policy")
	}
	g.WaitReturn("mix")
	bridgeAudio(t, caller.sendAudio, caller.read, dest.RTPCall(), nil)
	c.Hangup()
	siptest.Receive(t, dest.Byes, "the destination was not hung up")
}

// With SRTP required, the return call offers SRTP too and both legs run it.
func TestInviteReturnSRTPRequired(t *testing.T) {
	g := newGateway(t, func(c *Config) { c.SRTP = SRTPRequired })
	destKey := media.NewSRTPKey(0, media.AESCM128HMACSHA180)
	dest := siptest.NewDestination(t, siptest.AnswerSDP(func(offer *media.Description, rtpPort int) []byte {
		k := destKey
		if len(offer.Crypto) > 0 {
			k.Tag = offer.Crypto[0].Tag
		}
		return srtpAnswerBody(rtpPort, "8 101", k)
	}))
	g.createReturn("both", transfer.SIPReturn{ReturnTransferType: transfer.ReturnInvite, ReturnURI: dest.URI()})
	p := newPhone(t)
	ours := media.NewSRTPKey(1, media.AESCM128HMACSHA180)
	c := p.MustAnswer(g.srv.TransferURI("both"), srtpOffer(p, ours, "0 101"))
	caller := newSRTPLeg(t, p.RTP, c.Remote, ours, gatewayKey(t, c.Dlg.InviteResponse.Body(), 1))
	g.WaitStatus("both", transfer.StatusOngoing)
	caller.sendDTMF(11)
	siptest.Receive(t, dest.Answered, "the return call never reached the destination")
	offer, inv := dest.Offer(), dest.LastInvite()
	gwKey := gatewayKey(t, inv.Body(), 1)
	if gwKey.Suite != media.AESCM128HMACSHA180 {
		t.Fatalf("return offer suite %s", gwKey.Suite)
	}
	g.WaitReturn("both")
	destKey.Tag = 1
	destLeg := newSRTPLeg(t, dest.RTP, net.UDPAddrFromAddrPort(offer.Addr), destKey, gwKey)
	bridgeAudio(t, caller.sendAudio, caller.read, nil, destLeg)
	c.Hangup()
	siptest.Receive(t, dest.Byes, "the destination was not hung up")
}

// bridgeAudio checks audio both ways across a bridged return: the caller
// sends μ-law, the destination (plain destCall or SRTP destLeg) A-law, and
// each hears the other's audio transcoded.
func bridgeAudio(t *testing.T, callerSend func(uint8, []byte), callerRead func(time.Duration, func(*rtp.Packet) bool) int, destCall *call, destLeg *srtpLeg) {
	t.Helper()
	pcm := make([]int16, media.FrameSamples)
	sent := pattern(3)
	wantALaw := make([]byte, media.FrameSamples)
	media.DecodeULaw(pcm, sent)
	media.EncodeALaw(wantALaw, pcm)
	wantULaw := make([]byte, media.FrameSamples)
	media.DecodeALaw(pcm, wantALaw)
	media.EncodeULaw(wantULaw, pcm)
	sending := make(chan struct{})
	go func() {
		defer close(sending)
		for range 25 {
			callerSend(0, sent)
			if destLeg != nil {
				destLeg.sendAudio(8, wantALaw)
			} else {
				destCall.SendRTP(8, false, wantALaw)
				destCall.TS += 160
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	toDest := func(pkt *rtp.Packet) bool { return pkt.PayloadType == 8 && bytes.Equal(pkt.Payload, wantALaw) }
	if destLeg != nil {
		destLeg.read(10*time.Second, toDest)
	} else {
		destCall.ReadRTP(10*time.Second, toDest)
	}
	callerRead(10*time.Second, func(pkt *rtp.Packet) bool {
		return pkt.PayloadType == 0 && bytes.Equal(pkt.Payload, wantULaw)
	})
	<-sending
}

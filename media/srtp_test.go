package media

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/handoff/handoff/internal/testenv"
)

// testKey is 30 recognisable bytes: key 0x01..0x10, salt 0x11..0x1e.
func testKey() (raw [SRTPKeyLen]byte, b64 string) {
	for i := range raw {
		raw[i] = byte(i + 1)
	}
	return raw, base64.StdEncoding.EncodeToString(raw[:])
}

func TestParseCrypto(t *testing.T) {
	raw, b64 := testKey()
	tests := []struct {
		in      string
		want    SRTPKey
		wantErr bool
	}{
		{in: "1 AES_CM_128_HMAC_SHA1_80 inline:" + b64, want: SRTPKey{Tag: 1, Suite: AESCM128HMACSHA180, Key: raw}},
		{in: "7 AES_CM_128_HMAC_SHA1_32 inline:" + b64 + "|2^31", want: SRTPKey{Tag: 7, Suite: AESCM128HMACSHA132, Key: raw}},
		{in: "2 AES_CM_128_HMAC_SHA1_80 inline:" + b64 + "|2^20|1:4", want: SRTPKey{Tag: 2, Suite: AESCM128HMACSHA180, Key: raw, MKI: 1, MKILen: 4}},
		{in: "3 AES_CM_128_HMAC_SHA1_80 inline:" + b64 + "|5:1 WSH=64", want: SRTPKey{Tag: 3, Suite: AESCM128HMACSHA180, Key: raw, MKI: 5, MKILen: 1}},
		{in: "1 AES_CM_128_HMAC_SHA1_80 inline:" + strings.TrimRight(b64, "="), want: SRTPKey{Tag: 1, Suite: AESCM128HMACSHA180, Key: raw}},
		{in: "1 AES_CM_128_HMAC_SHA1_80 inline:" + b64 + ";inline:" + b64, want: SRTPKey{Tag: 1, Suite: AESCM128HMACSHA180, Key: raw}},
		{in: "1 AES_256_CM_HMAC_SHA1_80 inline:" + b64, wantErr: true},          // unknown suite
		{in: "1 AES_CM_128_HMAC_SHA1_80 inline:!!notbase64!!", wantErr: true},   // bad base64
		{in: "1 AES_CM_128_HMAC_SHA1_80 inline:" + b64[:20], wantErr: true},     // short key
		{in: "1 AES_CM_128_HMAC_SHA1_80 inline:" + b64 + "AAAA", wantErr: true}, // long key
		{in: "1 AES_CM_128_HMAC_SHA1_80 uri:https://kms/" + b64, wantErr: true}, // not inline
		{in: "1 AES_CM_128_HMAC_SHA1_80 inline:" + b64 + " UNENCRYPTED_SRTP", wantErr: true},
		{in: "1 AES_CM_128_HMAC_SHA1_80 inline:" + b64 + "|300:1", wantErr: true}, // MKI too big for its length
		{in: "x AES_CM_128_HMAC_SHA1_80 inline:" + b64, wantErr: true},
		{in: "1 AES_CM_128_HMAC_SHA1_80", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseCrypto(tt.in)
		if tt.wantErr {
			if !errors.Is(err, ErrInvalidCrypto) {
				t.Errorf("%q: err = %v, want ErrInvalidCrypto", tt.in, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%q: got %+v, %v", tt.in, got, err)
		}
	}
}

func TestCryptoAttributeRoundTrip(t *testing.T) {
	for _, k := range []SRTPKey{
		NewSRTPKey(1, AESCM128HMACSHA180),
		NewSRTPKey(42, AESCM128HMACSHA132),
		{Tag: 9, Suite: AESCM128HMACSHA180, Key: NewSRTPKey(0, "").Key, MKI: 0x0102, MKILen: 2},
	} {
		got, err := ParseCrypto(k.Attribute())
		if err != nil || got != k {
			t.Fatalf("%s: got %v, %v", k.Attribute(), got, err)
		}
	}
	if a, b := NewSRTPKey(1, AESCM128HMACSHA180), NewSRTPKey(1, AESCM128HMACSHA180); a.Key == b.Key {
		t.Fatal("two fresh keys are equal")
	}
}

// The key material must not show in any formatting a log line might use.
func TestSRTPKeyRedacted(t *testing.T) {
	k := NewSRTPKey(1, AESCM128HMACSHA180)
	secret := base64.StdEncoding.EncodeToString(k.Key[:])
	n := Negotiated{Codec: PCMU, RemoteKey: &k, LocalKey: &k}
	var logged strings.Builder
	log := slog.New(slog.NewTextHandler(&logged, nil))
	log.Info("x", "key", k, "negotiated", n, "ptr", &k)
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("x", "key", k)
	outs := []string{
		fmt.Sprint(k), fmt.Sprintf("%v %+v %#v %s", k, k, k, k), fmt.Sprintf("%v %+v", n, n),
		fmt.Sprintf("%v %+v", &k, &n), logged.String(),
	}
	for _, out := range outs {
		if strings.Contains(out, secret) || strings.Contains(out, secret[:16]) || strings.Contains(out, fmt.Sprint(k.Key[:4])) ||
			strings.Contains(out, fmt.Sprintf("%x", k.Key[:4])) {
			t.Fatalf("key material in %q", out)
		}
		if !strings.Contains(out, "AES_CM_128_HMAC_SHA1_80") {
			t.Fatalf("suite missing from %q", out)
		}
	}
}

func srtpOffer(proto string, crypto ...string) []byte {
	attrs := []string{"a=rtpmap:0 PCMU/8000"}
	for _, c := range crypto {
		attrs = append(attrs, "a=crypto:"+c)
	}
	return offerSDP("c=IN IP4 192.0.2.10", "m=audio 4000 "+proto+" 0", attrs...)
}

func TestNegotiateCrypto(t *testing.T) {
	raw, b64 := testKey()
	tests := []struct {
		name    string
		offer   []byte
		srtp    bool
		want    *SRTPKey
		wantErr error
	}{
		{name: "plain", offer: srtpOffer("RTP/AVP")},
		{name: "SAVP first supported suite", offer: srtpOffer("RTP/SAVP",
			"1 AES_256_CM_HMAC_SHA1_80 inline:"+b64+b64, // unknown suite: skipped
			"2 AES_CM_128_HMAC_SHA1_32 inline:"+b64,
			"3 AES_CM_128_HMAC_SHA1_80 inline:"+b64),
			srtp: true, want: &SRTPKey{Tag: 2, Suite: AESCM128HMACSHA132, Key: raw}},
		{name: "SAVPF", offer: srtpOffer("RTP/SAVPF", "5 AES_CM_128_HMAC_SHA1_80 inline:"+b64),
			srtp: true, want: &SRTPKey{Tag: 5, Suite: AESCM128HMACSHA180, Key: raw}},
		{name: "best-effort SRTP on AVP", offer: srtpOffer("RTP/AVP", "1 AES_CM_128_HMAC_SHA1_80 inline:"+b64),
			srtp: true, want: &SRTPKey{Tag: 1, Suite: AESCM128HMACSHA180, Key: raw}},
		{name: "SAVP without crypto", offer: srtpOffer("RTP/SAVP"), srtp: true, wantErr: ErrNoCommonCrypto},
		{name: "only a short key", offer: srtpOffer("RTP/SAVP", "1 AES_CM_128_HMAC_SHA1_80 inline:AAAA"), srtp: true, wantErr: ErrNoCommonCrypto},
		{name: "only bad base64", offer: srtpOffer("RTP/AVP", "1 AES_CM_128_HMAC_SHA1_80 inline:%%%"), srtp: true, wantErr: ErrNoCommonCrypto},
		{name: "DTLS-SRTP", offer: srtpOffer("UDP/TLS/RTP/SAVP"), srtp: true, wantErr: ErrNoCommonCrypto},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := ParseSDP(tt.offer)
			if err != nil {
				t.Fatal(err)
			}
			if d.SRTP() != tt.srtp {
				t.Fatalf("SRTP() = %v", d.SRTP())
			}
			n, err := Negotiate(d, []Codec{PCMU})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if (n.RemoteKey == nil) != (tt.want == nil) || (tt.want != nil && *n.RemoteKey != *tt.want) || n.SRTP() != (tt.want != nil) {
				t.Fatalf("remote key %v, want %v", n.RemoteKey, tt.want)
			}
		})
	}
}

func TestLocalSDPSRTPAnswer(t *testing.T) {
	_, b64 := testKey()
	for _, proto := range []string{"RTP/SAVP", "RTP/SAVPF", "RTP/AVP"} {
		t.Run(proto, func(t *testing.T) {
			d, err := ParseSDP(srtpOffer(proto, "4 AES_CM_128_HMAC_SHA1_32 inline:"+b64))
			if err != nil {
				t.Fatal(err)
			}
			n, err := Negotiate(d, []Codec{PCMU})
			if err != nil {
				t.Fatal(err)
			}
			l := NewLocalSDP(netip.MustParseAddr("127.0.0.1"), 20000, "handoff")
			body := l.Answer(n, SendRecv)
			a, err := ParseSDP(body)
			if err != nil {
				t.Fatal(err)
			}
			if a.Profile != proto || len(a.Crypto) != 1 || a.CryptoLines != 1 {
				t.Fatalf("answer %s", body)
			}
			ours := a.Crypto[0]
			if ours.Tag != 4 || ours.Suite != AESCM128HMACSHA132 || ours.Key == n.RemoteKey.Key {
				t.Fatalf("our crypto %v", ours)
			}
			if k := l.Key(); k == nil || *k != ours {
				t.Fatalf("Key() = %v, body has %v", k, ours)
			}
			// The same offer again (session refresh): same body, same version.
			v := l.Version()
			if again := l.Answer(n, SendRecv); string(again) != string(body) || l.Version() != v {
				t.Fatalf("refresh changed the answer:\n%s\n%s", body, again)
			}
			// The peer rekeys: so do we.
			k2 := NewSRTPKey(4, AESCM128HMACSHA132)
			n.RemoteKey = &k2
			a2, _ := ParseSDP(l.Answer(n, SendRecv))
			if a2.Crypto[0].Key == ours.Key || l.Version() == v {
				t.Fatal("no new key after the peer's rekey")
			}
			// Falling back to plain RTP drops the crypto line.
			n.RemoteKey = nil
			a3, _ := ParseSDP(l.Answer(n, SendRecv))
			if a3.SRTP() || l.Key() != nil {
				t.Fatalf("plain answer %+v", a3)
			}
		})
	}
}

func TestLocalSDPSRTPOffer(t *testing.T) {
	l := NewLocalSDP(netip.MustParseAddr("127.0.0.1"), 20000, "handoff")
	plain, _ := ParseSDP(l.Offer([]Codec{PCMU, PCMA}, 101, SendRecv))
	if plain.SRTP() || l.Key() != nil {
		t.Fatalf("plain offer %+v", plain)
	}
	body := l.Offer([]Codec{PCMU, PCMA}, 101, SendRecv, OfferSRTP())
	d, err := ParseSDP(body)
	if err != nil {
		t.Fatal(err)
	}
	if d.Profile != "RTP/SAVP" || len(d.Crypto) != 1 || d.Crypto[0].Tag != 1 || d.Crypto[0].Suite != AESCM128HMACSHA180 {
		t.Fatalf("offer %s", body)
	}
	if k := l.Key(); k == nil || *k != d.Crypto[0] {
		t.Fatalf("Key() = %v", k)
	}
	if again, _ := ParseSDP(l.Offer([]Codec{PCMU, PCMA}, 101, SendRecv, OfferSRTP())); again.Crypto[0] != d.Crypto[0] {
		t.Fatal("a repeated offer changed the key")
	}
}

// srtpPeer is a raw UDP phone speaking SRTP with pion directly, so the
// session's SRTP is checked against an independent implementation.
type srtpPeer struct {
	*peer
	key      SRTPKey // what the peer sends with
	tx, rx   *srtp.Context
	rtcpConn *net.UDPConn
}

func newSRTPPeer(t testing.TB, rtp, rtcpConn *net.UDPConn, to netip.AddrPort, own, sessionKey SRTPKey) *srtpPeer {
	tx, err := own.context(false)
	if err != nil {
		t.Fatal(err)
	}
	rx, err := sessionKey.context(true)
	if err != nil {
		t.Fatal(err)
	}
	return &srtpPeer{peer: &peer{t: t, conn: rtp, to: to, ssrc: 0x5EC0}, key: own, tx: tx, rx: rx, rtcpConn: rtcpConn}
}

// protect returns the SRTP packet for one PCMU frame filled with code.
func (p *srtpPeer) protect(seq uint16, code byte) []byte {
	pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: seq, Timestamp: uint32(seq) * FrameSamples, SSRC: p.ssrc},
		Payload: bytes.Repeat([]byte{code}, FrameSamples)}
	b, err := pkt.Marshal()
	if err != nil {
		p.t.Fatal(err)
	}
	out, err := p.tx.EncryptRTP(nil, b, nil)
	if err != nil {
		p.t.Fatal(err)
	}
	return out
}

func (p *srtpPeer) write(b []byte) {
	if _, err := p.conn.WriteToUDPAddrPort(b, p.to); err != nil {
		p.t.Fatal(err)
	}
}

// readSRTP returns the next packet the session sent, as received and decrypted.
func (p *srtpPeer) readSRTP() (wire []byte, pkt rtp.Packet) {
	buf := make([]byte, 1500)
	p.conn.SetReadDeadline(time.Now().Add(waitLong))
	n, err := p.conn.Read(buf)
	if err != nil {
		p.t.Fatal(err)
	}
	plain, err := p.rx.DecryptRTP(nil, buf[:n], nil)
	if err != nil {
		p.t.Fatalf("session packet does not authenticate: %v", err)
	}
	if err := pkt.Unmarshal(plain); err != nil {
		p.t.Fatal(err)
	}
	return buf[:n], pkt
}

func TestSRTPSessionsExchangeAudio(t *testing.T) {
	pool := testPool(t)
	pa, pb := allocate(t, pool), allocate(t, pool)
	ka, kb := NewSRTPKey(1, AESCM128HMACSHA180), NewSRTPKey(1, AESCM128HMACSHA180)
	pattern := func() func() ([]int16, bool) {
		next := 0
		return func() ([]int16, bool) {
			pcm := make([]int16, FrameSamples)
			v := ulawValue(byte(0x80 + next%100))
			for i := range pcm {
				pcm[i] = v
			}
			next++
			return pcm, true
		}
	}
	var atA, atB frames
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	a := startSession(t, SessionConfig{Ports: pa, Remote: addrOf(pb.RTP), Codec: PCMU, Source: pattern(), OnAudio: atA.add,
		LocalKey: &ka, RemoteKey: &kb, RTCPInterval: 100 * time.Millisecond, Metrics: m})
	b := startSession(t, SessionConfig{Ports: pb, Remote: addrOf(pa.RTP), Codec: PCMU, Source: pattern(), OnAudio: atB.add,
		LocalKey: &kb, RemoteKey: &ka, RTCPInterval: 100 * time.Millisecond, Metrics: m})

	eventually(t, "25 frames each way", func() bool { return atA.len() >= 25 && atB.len() >= 25 })
	for name, got := range map[string]*frames{"A": &atA, "B": &atB} {
		prev := -1
		for i, f := range got.snapshot() {
			code := int(frameCode(t, f)) - 0x80
			if prev >= 0 && code != (prev+1)%100 {
				t.Fatalf("%s frame %d: pattern %d after %d", name, i, code, prev)
			}
			prev = code
		}
	}
	// SRTCP works both ways too: each side decrypts the other's reports.
	eventually(t, "SRTCP reports both ways", func() bool { return a.Stats().RemoteReport && b.Stats().RemoteReport })
	sa := a.Stats()
	if sa.PacketsDropped != 0 || b.Stats().PacketsDropped != 0 || testenv.MetricValue(t, reg, "handoff_rtp_dropped_packets_total", "reason=srtp_auth") != 0 {
		t.Fatalf("drops: %+v", sa)
	}
	if sa.BytesIn != sa.PacketsIn*(rtpHeaderLen+FrameSamples+10) {
		t.Fatalf("BytesIn %d for %d packets: want wire size with the 10-byte tag", sa.BytesIn, sa.PacketsIn)
	}
}

// A raw SRTP phone: our packets are encrypted and authenticated with our
// key, its packets are accepted with its key, tampered or plain packets are
// dropped (and never latched to), RTCP is SRTCP both ways.
func TestSRTPSessionRawPeer(t *testing.T) {
	pool := testPool(t)
	ports, peerPorts := allocate(t, pool), newPeerPorts(t)
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	ours, theirs := NewSRTPKey(3, AESCM128HMACSHA132), NewSRTPKey(3, AESCM128HMACSHA132)
	var got frames
	pcm := make([]int16, FrameSamples)
	for i := range pcm {
		pcm[i] = ulawValue(0x99)
	}
	s := startSession(t, SessionConfig{Ports: ports, Remote: addrOf(peerPorts.RTP), Codec: PCMU, OnAudio: got.add, Metrics: m,
		Source: func() ([]int16, bool) { return pcm, true }, LocalKey: &ours, RemoteKey: &theirs, RTCPInterval: 100 * time.Millisecond})
	p := newSRTPPeer(t, peerPorts.RTP, peerPorts.RTCP, addrOf(ports.RTP), theirs, ours)

	// Outbound: encrypted on the wire (4-byte tag for _32), plaintext after decryption.
	wire, pkt := p.readSRTP()
	if len(wire) != rtpHeaderLen+FrameSamples+4 || bytes.Contains(wire, bytes.Repeat([]byte{0x99}, 8)) {
		t.Fatalf("wire packet of %d bytes looks unencrypted", len(wire))
	}
	if pkt.SSRC != s.Stats().SSRC || len(pkt.Payload) != FrameSamples || pkt.Payload[0] != 0x99 {
		t.Fatalf("decrypted %+v", pkt.Header)
	}

	// Inbound: a tampered packet and a plain RTP packet first; neither latches.
	bad := p.protect(1, 0x81)
	bad[rtpHeaderLen+5] ^= 0x01
	p.write(bad)
	p.send(0, 2, 2*FrameSamples, false, bytes.Repeat([]byte{0x82}, FrameSamples))
	eventually(t, "srtp_auth drops", func() bool {
		return testenv.MetricValue(t, reg, "handoff_rtp_dropped_packets_total", "reason=srtp_auth") == 2
	})
	if st := s.Stats(); st.Latched || st.PacketsIn != 0 || st.PacketsDropped != 2 {
		t.Fatalf("after forged packets: %+v", st)
	}
	for seq := uint16(3); seq <= 5; seq++ {
		p.write(p.protect(seq, 0x80+byte(seq)))
	}
	eventually(t, "three frames", func() bool { return got.len() == 3 })
	for i, f := range got.snapshot() {
		if c := frameCode(t, f); c != 0x83+byte(i) {
			t.Fatalf("frame %d code %#x", i, c)
		}
	}
	// A replay of an accepted packet goes nowhere.
	replay := p.protect(6, 0x86)
	p.write(replay)
	p.write(replay)
	eventually(t, "replay dropped", func() bool { return s.Stats().PacketsLate == 1 })
	if st := s.Stats(); !st.Latched || st.PacketsIn != 4 || st.RemoteSSRC != p.ssrc {
		t.Fatalf("stats %+v", st)
	}

	// SRTCP from us: the reports decrypt with our key.
	buf := make([]byte, 1500)
	p.rtcpConn.SetReadDeadline(time.Now().Add(waitLong))
	n, err := p.rtcpConn.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rtcp.Unmarshal(buf[:n]); err == nil && buf[n-14]&0x80 == 0 {
		t.Fatal("RTCP sent in the clear")
	}
	plain, err := p.rx.DecryptRTCP(nil, buf[:n], nil)
	if err != nil {
		t.Fatalf("our RTCP does not authenticate: %v", err)
	}
	pkts, err := rtcp.Unmarshal(plain)
	if err != nil {
		t.Fatal(err)
	}
	if sr, ok := pkts[0].(*rtcp.SenderReport); !ok || sr.SSRC != s.Stats().SSRC {
		t.Fatalf("SRTCP carries %v", pkts[0])
	}
	// SRTCP to us: a plain report is refused, an encrypted one is taken.
	rr, _ := rtcp.Marshal([]rtcp.Packet{&rtcp.ReceiverReport{SSRC: p.ssrc, Reports: []rtcp.ReceptionReport{{SSRC: s.Stats().SSRC, FractionLost: 128}}}})
	if _, err := p.rtcpConn.WriteToUDPAddrPort(rr, addrOf(ports.RTCP)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "plain RTCP refused", func() bool {
		return testenv.MetricValue(t, reg, "handoff_rtp_dropped_packets_total", "reason=srtp_auth") == 3
	})
	if s.Stats().RemoteReport {
		t.Fatal("a plain RTCP report was taken")
	}
	enc, err := p.tx.EncryptRTCP(nil, rr, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.rtcpConn.WriteToUDPAddrPort(enc, addrOf(ports.RTCP)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "SRTCP report taken", func() bool { return s.Stats().RemoteReport })
	if st := s.Stats(); st.RemoteFractionLost != 0.5 {
		t.Fatalf("remote report %+v", st)
	}
}

// A re-INVITE with new keys rekeys both directions; the same keys again
// (a session refresh) change nothing.
func TestSRTPSessionRekey(t *testing.T) {
	pool := testPool(t)
	ports, peerPorts := allocate(t, pool), newPeerPorts(t)
	ours, theirs := NewSRTPKey(1, AESCM128HMACSHA180), NewSRTPKey(1, AESCM128HMACSHA180)
	var got frames
	s := startSession(t, SessionConfig{Ports: ports, Remote: addrOf(peerPorts.RTP), Codec: PCMU, OnAudio: got.add, LocalKey: &ours, RemoteKey: &theirs})
	p := newSRTPPeer(t, peerPorts.RTP, peerPorts.RTCP, addrOf(ports.RTP), theirs, ours)
	p.readSRTP()
	p.write(p.protect(1, 0x81))
	eventually(t, "first frame", func() bool { return got.len() == 1 })

	n := Negotiated{Codec: PCMU, Remote: addrOf(peerPorts.RTP), RemoteDirection: SendRecv, LocalKey: &ours, RemoteKey: &theirs}
	s.Update(n) // refresh
	p.write(p.protect(2, 0x82))
	eventually(t, "frame after refresh", func() bool { return got.len() == 2 })

	ours2, theirs2 := NewSRTPKey(2, AESCM128HMACSHA180), NewSRTPKey(2, AESCM128HMACSHA180)
	n.LocalKey, n.RemoteKey = &ours2, &theirs2
	s.Update(n)
	p.write(p.protect(3, 0x83)) // the old key no longer authenticates
	eventually(t, "old key refused", func() bool { return s.Stats().PacketsDropped == 1 })
	p2 := newSRTPPeer(t, peerPorts.RTP, peerPorts.RTCP, addrOf(ports.RTP), theirs2, ours2)
	p2.write(p2.protect(4, 0x84))
	eventually(t, "frame with the new key", func() bool { return got.len() == 3 })
	// Our packets switch to the new key: drain any old-key packets in flight.
	deadline := time.Now().Add(waitLong)
	for {
		buf := make([]byte, 1500)
		peerPorts.RTP.SetReadDeadline(deadline)
		n, err := peerPorts.RTP.Read(buf)
		if err != nil {
			t.Fatal("no packet with the new key")
		}
		if _, err := p2.rx.DecryptRTP(nil, buf[:n], nil); err == nil {
			break
		}
	}
	// And back to plain RTP (a policy the signalling allows or refuses).
	n.LocalKey, n.RemoteKey = nil, nil
	s.Update(n)
	p.send(0, 5, 5*FrameSamples, false, bytes.Repeat([]byte{0x85}, FrameSamples))
	eventually(t, "plain frame", func() bool { return got.len() == 4 })
}

func TestSRTPSessionConfigNeedsBothKeys(t *testing.T) {
	pool := testPool(t)
	k := NewSRTPKey(1, AESCM128HMACSHA180)
	if _, err := NewSession(SessionConfig{Ports: allocate(t, pool), Codec: PCMU, LocalKey: &k}); err == nil {
		t.Fatal("a session with only our key was accepted")
	}
	bad := SRTPKey{Tag: 1, Suite: "NULL"}
	if _, err := NewSession(SessionConfig{Ports: allocate(t, pool), Codec: PCMU, LocalKey: &k, RemoteKey: &bad}); err == nil {
		t.Fatal("an unknown suite was accepted")
	}
}

func TestSRTPPathsDoNotAllocate(t *testing.T) {
	ours, theirs := NewSRTPKey(1, AESCM128HMACSHA180), NewSRTPKey(1, AESCM128HMACSHA180)
	frames := 0
	s := unstartedSession(t, SessionConfig{Metrics: NewMetrics(nil), OnAudio: func([]int16) { frames++ }, LocalKey: &ours, RemoteKey: &theirs})
	src := newPeer(t, addrOf(s.conn)).addr()
	p := &srtpPeer{peer: &peer{t: t, ssrc: 1}}
	p.tx, _ = theirs.context(false)
	pkts := make([][]byte, 1300)
	for i := range pkts {
		pkts[i] = p.protect(uint16(i), 0x81)
	}
	i := 0
	recv := func() { s.handleRTP(pkts[i], src, time.Duration(i)*frameDuration); i++ }
	for range 100 {
		recv()
	}
	if n := testing.AllocsPerRun(1000, recv); n != 0 {
		t.Fatalf("SRTP receive path allocs/packet = %v", n)
	}
	if frames == 0 || s.Stats().PacketsDropped != 0 {
		t.Fatalf("frames %d stats %+v", frames, s.Stats())
	}

	peer := newPeer(t, netip0())
	s2 := unstartedSession(t, SessionConfig{Remote: peer.addr(), Metrics: NewMetrics(nil), LocalKey: &ours, RemoteKey: &theirs,
		Source: func() ([]int16, bool) { return make([]int16, 0), false }})
	f := uint64(0)
	s2.sendFrame(f) // builds the context
	if n := testing.AllocsPerRun(200, func() { f++; s2.sendFrame(f) }); n != 0 {
		t.Fatalf("SRTP send path allocs/packet = %v", n)
	}
}

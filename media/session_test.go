package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/handoff/handoff/internal/testenv"
)

const waitLong = 5 * time.Second

func testPool(t testing.TB) *PortPool {
	t.Helper()
	base := freeRange(t, 20)
	pool, err := NewPortPool(loopback, base, base+19, 0)
	if err != nil {
		t.Fatal(err)
	}
	return pool
}

func allocate(t testing.TB, pool *PortPool) *Ports {
	t.Helper()
	p, err := pool.Allocate()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Release(p) })
	return p
}

func addrOf(c interface{ LocalAddr() net.Addr }) netip.AddrPort {
	return c.LocalAddr().(*net.UDPAddr).AddrPort()
}

// peerPorts is a raw peer's RTP and RTCP sockets on adjacent ports, like
// a real phone's.
type peerPorts struct{ RTP, RTCP *net.UDPConn }

func newPeerPorts(t testing.TB) peerPorts {
	t.Helper()
	base := freeRange(t, 2)
	var pp peerPorts
	for i, c := range []**net.UDPConn{&pp.RTP, &pp.RTCP} {
		conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(loopback, uint16(base+i))))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		*c = conn
	}
	return pp
}

func startSession(t testing.TB, cfg SessionConfig) *Session {
	t.Helper()
	s, err := NewSession(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

// peerSession starts a session on ports of its own with a raw peer as its
// remote (cfg's Ports and Remote are set).
func peerSession(t testing.TB, cfg SessionConfig) (*Session, *peer) {
	t.Helper()
	cfg.Ports = allocate(t, testPool(t))
	p := newPeer(t, addrOf(cfg.Ports.RTP))
	cfg.Remote = p.addr()
	return startSession(t, cfg), p
}

// eventually polls cond generously; machines running -race are slow.
var eventually = testenv.Eventually

// frames collects OnAudio output.
type frames struct {
	mu  sync.Mutex
	got [][]int16
}

func (f *frames) add(pcm []int16) {
	f.mu.Lock()
	f.got = append(f.got, slices.Clone(pcm))
	f.mu.Unlock()
}

func (f *frames) snapshot() [][]int16 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.got)
}

func (f *frames) len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.got)
}

// peer is a raw UDP "caller".
type peer struct {
	t    testing.TB
	conn *net.UDPConn
	to   netip.AddrPort
	ssrc uint32
}

func newPeer(t testing.TB, to netip.AddrPort) *peer {
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(loopback, 0)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &peer{t: t, conn: c, to: to, ssrc: 0x1234}
}

func (p *peer) addr() netip.AddrPort { return addrOf(p.conn) }

func (p *peer) send(pt uint8, seq uint16, ts uint32, marker bool, payload []byte) {
	p.sendSSRC(p.ssrc, pt, seq, ts, marker, payload)
}

func (p *peer) sendSSRC(ssrc uint32, pt uint8, seq uint16, ts uint32, marker bool, payload []byte) {
	pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt, SequenceNumber: seq, Timestamp: ts, SSRC: ssrc, Marker: marker}, Payload: payload}
	b, err := pkt.Marshal()
	if err != nil {
		p.t.Fatal(err)
	}
	if _, err := p.conn.WriteToUDPAddrPort(b, p.to); err != nil {
		p.t.Fatal(err)
	}
}

// audio sends one 20 ms PCMU frame filled with code.
func (p *peer) audio(seq uint16, code byte) {
	p.send(0, seq, uint32(seq)*FrameSamples, false, bytes.Repeat([]byte{code}, FrameSamples))
}

// read returns the next RTP packet the session sent us.
func (p *peer) read() (rtp.Packet, bool) {
	buf := make([]byte, 1500)
	p.conn.SetReadDeadline(time.Now().Add(waitLong))
	n, err := p.conn.Read(buf)
	if err != nil {
		return rtp.Packet{}, false
	}
	var pkt rtp.Packet
	if err := pkt.Unmarshal(buf[:n]); err != nil {
		p.t.Fatal(err)
	}
	return pkt, true
}

func ulawValue(code byte) int16 {
	out := make([]int16, 1)
	DecodeULaw(out, []byte{code})
	return out[0]
}

// frameCode returns the µ-law code a received frame was filled with.
func frameCode(t testing.TB, pcm []int16) byte {
	t.Helper()
	b := make([]byte, len(pcm))
	EncodeULaw(b, pcm)
	for _, c := range b {
		if c != b[0] {
			t.Fatalf("frame not uniform: %x", b)
		}
	}
	return b[0]
}

func TestSessionsExchangeAudio(t *testing.T) {
	pool := testPool(t)
	pa, pb := allocate(t, pool), allocate(t, pool)

	// A plays a counting pattern; every value is an exact µ-law level.
	var next int
	source := func() ([]int16, bool) {
		pcm := make([]int16, FrameSamples)
		v := ulawValue(byte(0x80 + next%100))
		for i := range pcm {
			pcm[i] = v
		}
		next++
		return pcm, true
	}
	var atB, atA frames
	a := startSession(t, SessionConfig{Ports: pa, Remote: addrOf(pb.RTP), Codec: PCMU, Source: source, OnAudio: atA.add})
	b := startSession(t, SessionConfig{Ports: pb, Remote: addrOf(pa.RTP), Codec: PCMU, OnAudio: atB.add})

	eventually(t, "B to receive 25 frames", func() bool { return atB.len() >= 25 })
	eventually(t, "A to receive silence", func() bool { return atA.len() >= 5 })

	got := atB.snapshot()
	prev := -1
	for i, f := range got {
		code := int(frameCode(t, f)) - 0x80
		if prev >= 0 && code != (prev+1)%100 {
			// Loopback does not lose packets; order and content must hold.
			t.Fatalf("frame %d: pattern %d after %d", i, code, prev)
		}
		prev = code
	}
	for _, f := range atA.snapshot() {
		for _, v := range f {
			if v != 0 {
				t.Fatalf("A heard %d, want silence", v)
			}
		}
	}
	sa, sb := a.Stats(), b.Stats()
	if !sa.Latched || !sb.Latched || sb.RemoteSSRC != sa.SSRC || sa.RemoteSSRC != sb.SSRC {
		t.Fatalf("latching: %+v / %+v", sa, sb)
	}
	if sb.PacketsIn == 0 || sb.BytesIn != sb.PacketsIn*(rtpHeaderLen+FrameSamples) || sa.PacketsOut == 0 {
		t.Fatalf("counters: A %+v B %+v", sa, sb)
	}
	if sb.Remote != addrOf(pa.RTP) {
		t.Fatalf("B sends to %v", sb.Remote)
	}
}

func TestSessionReorderLossLate(t *testing.T) {
	var got frames
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	s, p := peerSession(t, SessionConfig{Codec: PCMU, OnAudio: got.add, Metrics: m})

	// 105 is missing; 102/103 swapped.
	for _, seq := range []uint16{100, 101, 103, 102, 104, 106, 107, 108, 109, 110} {
		p.audio(seq, byte(seq))
	}
	want := []uint16{100, 101, 102, 103, 104, 106, 107, 108, 109, 110}
	eventually(t, "frames", func() bool { return got.len() >= len(want) })
	for i, f := range got.snapshot() {
		if c := frameCode(t, f); c != byte(want[i]) {
			t.Fatalf("frame %d is seq %d, want %d", i, c, want[i])
		}
	}
	st := s.Stats()
	if st.PacketsLost != 1 || st.PacketsSkipped != 1 || st.PacketsLate != 0 {
		t.Fatalf("lost %d skipped %d late %d, want 1 1 0", st.PacketsLost, st.PacketsSkipped, st.PacketsLate)
	}

	// 105 turns up after the buffer moved on: dropped as late, and (RFC 3550)
	// no longer counted as lost. A duplicate is dropped the same way.
	p.audio(105, 105)
	eventually(t, "late drop", func() bool { return s.Stats().PacketsLate == 1 })
	if st := s.Stats(); st.PacketsLost != 0 {
		t.Fatalf("after late packet: lost %d", st.PacketsLost)
	}
	p.audio(110, 110)
	eventually(t, "duplicate drop", func() bool { return s.Stats().PacketsLate == 2 })
	if got.len() != len(want) {
		t.Fatalf("late/duplicate packets were played: %d frames", got.len())
	}
	if v := testenv.MetricValue(t, reg, "handoff_rtp_dropped_packets_total", "reason=late"); v != 2 {
		t.Fatalf("late metric = %v", v)
	}
}

func TestSessionSequenceWrap(t *testing.T) {
	var got frames
	s, p := peerSession(t, SessionConfig{Codec: PCMU, OnAudio: got.add})
	seqs := []uint16{65533, 65534, 0, 65535, 1, 2}
	for i, seq := range seqs {
		p.send(0, seq, uint32(i*FrameSamples), false, bytes.Repeat([]byte{byte(0x80 + seq%64)}, FrameSamples))
	}
	want := []uint16{65533, 65534, 65535, 0, 1, 2}
	eventually(t, "frames", func() bool { return got.len() == len(want) })
	for i, f := range got.snapshot() {
		if c := frameCode(t, f); c != byte(0x80+want[i]%64) {
			t.Fatalf("frame %d: code %#x, want seq %d", i, c, want[i])
		}
	}
	if st := s.Stats(); st.PacketsLost != 0 || st.PacketsSkipped != 0 {
		t.Fatalf("wrap counted as loss: %+v", st)
	}
}

func TestSessionLatching(t *testing.T) {
	pool := testPool(t)
	ports := allocate(t, pool)
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	var got frames

	sdpAddr := newPeer(t, addrOf(ports.RTP)) // what the SDP said; never sends (NAT)
	caller := newPeer(t, addrOf(ports.RTP))
	intruder := newPeer(t, addrOf(ports.RTP))
	s := startSession(t, SessionConfig{Ports: ports, Remote: sdpAddr.addr(), Codec: PCMU, OnAudio: got.add, Metrics: m})

	// Before latching we send to the SDP address.
	if _, ok := sdpAddr.read(); !ok {
		t.Fatal("nothing sent to the SDP address")
	}
	// Wrong payload type and garbage do not latch.
	intruder.send(18, 1, 0, false, make([]byte, 20))
	intruder.conn.WriteToUDPAddrPort([]byte{0x12, 0x34}, intruder.to)
	eventually(t, "drops", func() bool { return s.Stats().PacketsDropped == 2 })
	if s.Stats().Latched {
		t.Fatal("latched on an invalid packet")
	}

	caller.audio(1, 0x81)
	eventually(t, "latch", func() bool { return s.Stats().Latched })
	if st := s.Stats(); st.Remote != caller.addr() || st.RemoteSSRC != caller.ssrc {
		t.Fatalf("latched to %v/%x", st.Remote, st.RemoteSSRC)
	}
	// Our media now goes to the latched source.
	if _, ok := caller.read(); !ok {
		t.Fatal("nothing sent to the latched source")
	}

	// Another source and another SSRC from the caller while its stream is live.
	intruder.audio(2, 0x82)
	caller.sendSSRC(0x9999, 0, 500, 0, false, bytes.Repeat([]byte{0x83}, FrameSamples))
	caller.audio(2, 0x84)
	caller.audio(3, 0x85)
	eventually(t, "caller frames", func() bool { return got.len() == 3 })
	for i, f := range got.snapshot() {
		if c := frameCode(t, f); c != []byte{0x81, 0x84, 0x85}[i] {
			t.Fatalf("frame %d from code %#x: RTP bleed", i, c)
		}
	}
	if v := testenv.MetricValue(t, reg, "handoff_rtp_dropped_packets_total", "reason=wrong_source"); v != 1 {
		t.Fatalf("wrong_source = %v", v)
	}
	if v := testenv.MetricValue(t, reg, "handoff_rtp_dropped_packets_total", "reason=wrong_ssrc"); v != 1 {
		t.Fatalf("wrong_ssrc = %v", v)
	}
	if v := testenv.MetricValue(t, reg, "handoff_rtp_dropped_packets_total", "reason=malformed") + testenv.MetricValue(t, reg, "handoff_rtp_dropped_packets_total", "reason=payload_type"); v != 2 {
		t.Fatalf("malformed+payload_type = %v", v)
	}

	// A re-INVITE moving the media lets the session latch again.
	s.Update(Negotiated{Codec: PCMU, Remote: intruder.addr(), RemoteDirection: SendRecv})
	if s.Stats().Latched {
		t.Fatal("still latched after address change")
	}
	intruder.ssrc = 0x4242
	intruder.audio(10, 0x86)
	eventually(t, "re-latch", func() bool { return s.Stats().Latched && s.Stats().RemoteSSRC == 0x4242 })
	if s.Stats().Remote != intruder.addr() {
		t.Fatalf("re-latched to %v", s.Stats().Remote)
	}
	eventually(t, "new stream audio", func() bool { return got.len() == 4 })
}

// A new SSRC from the latched address is accepted once the old stream has
// gone quiet (prompt players and SBCs switch SSRC without re-INVITE).
func TestSessionSSRCChangeAfterQuiet(t *testing.T) {
	var got frames
	s, p := peerSession(t, SessionConfig{Codec: PCMU, OnAudio: got.add})
	p.audio(1, 0x81)
	eventually(t, "first frame", func() bool { return got.len() == 1 })
	time.Sleep(ssrcSwitchQuiet + 50*time.Millisecond)
	p.sendSSRC(0x7777, 0, 9000, 0, false, bytes.Repeat([]byte{0x82}, FrameSamples))
	eventually(t, "new SSRC frame", func() bool { return got.len() == 2 })
	if st := s.Stats(); st.RemoteSSRC != 0x7777 || st.PacketsLost != 0 {
		t.Fatalf("after switch: %+v", st)
	}
}

func dtmfPayload(event byte, end bool, duration uint16) []byte {
	b := []byte{event, 10, 0, 0}
	if end {
		b[1] |= 0x80
	}
	binary.BigEndian.PutUint16(b[2:], duration)
	return b
}

func TestSessionReceiveDTMF(t *testing.T) {
	pool := testPool(t)
	ports := allocate(t, pool)
	var mu sync.Mutex
	var events []DTMFEvent
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	p := newPeer(t, addrOf(ports.RTP))
	var audio frames
	s := startSession(t, SessionConfig{
		Ports: ports, Remote: p.addr(), Codec: PCMU, DTMFPayloadType: 101, Metrics: m, OnAudio: audio.add,
		OnDTMF: func(ev DTMFEvent) { mu.Lock(); events = append(events, ev); mu.Unlock() },
	})
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(events) }

	seq := uint16(1)
	next := func() uint16 { seq++; return seq - 1 }
	p.audio(next(), 0x81)
	// '5': marker start, updates, then three end packets.
	p.send(101, next(), 1000, true, dtmfPayload(5, false, 160))
	p.send(101, next(), 1000, false, dtmfPayload(5, false, 320))
	p.send(101, next(), 1000, false, dtmfPayload(5, false, 480))
	for range 3 {
		p.send(101, next(), 1000, false, dtmfPayload(5, true, 800))
	}
	// '#': the start packet (with marker) is lost, only ends arrive.
	for range 3 {
		p.send(101, next(), 2000, false, dtmfPayload(11, true, 640))
	}
	// A straggling '5' end after '#' is not a new event.
	p.send(101, next(), 1000, false, dtmfPayload(5, true, 800))
	// '1' loses all its end packets; '2' arrives and '1' is still reported.
	p.send(101, next(), 3000, true, dtmfPayload(1, false, 160))
	p.send(101, next(), 4000, true, dtmfPayload(2, true, 400))
	p.send(101, next(), 4000, false, dtmfPayload(2, true, 400))
	p.audio(next(), 0x82)

	want := []DTMFEvent{{'5', 100 * time.Millisecond}, {'#', 80 * time.Millisecond}, {'1', 20 * time.Millisecond}, {'2', 50 * time.Millisecond}}
	eventually(t, "4 events", func() bool { return count() >= len(want) })
	eventually(t, "audio after DTMF", func() bool { return audio.len() == 2 })
	time.Sleep(100 * time.Millisecond) // nothing more may trickle in
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(events, want) {
		t.Fatalf("events %v, want %v", events, want)
	}
	st := s.Stats()
	if st.DTMFEvents != 4 || st.PacketsSkipped != 0 || st.PacketsLost != 0 {
		t.Fatalf("stats %+v", st)
	}
	if v := testenv.MetricValue(t, reg, "handoff_dtmf_events_total", "source=rfc4733"); v != 4 {
		t.Fatalf("dtmf metric = %v", v)
	}
}

func TestSessionDTMFEndTimeout(t *testing.T) {
	got := make(chan DTMFEvent, 4)
	_, p := peerSession(t, SessionConfig{Codec: PCMU, DTMFPayloadType: 96,
		OnDTMF: func(ev DTMFEvent) { got <- ev }})
	p.send(96, 1, 1000, true, dtmfPayload(9, false, 160))
	p.send(96, 2, 1000, false, dtmfPayload(9, false, 320))
	select {
	case ev := <-got:
		if ev.Digit != '9' || ev.Duration != 40*time.Millisecond {
			t.Fatalf("got %+v", ev)
		}
	case <-time.After(waitLong):
		t.Fatal("event without end never reported")
	}
}

func TestSessionSendDTMF(t *testing.T) {
	pool := testPool(t)
	pa, pb := allocate(t, pool), allocate(t, pool)
	got := make(chan DTMFEvent, 8)
	a := startSession(t, SessionConfig{Ports: pa, Remote: addrOf(pb.RTP), Codec: PCMA, DTMFPayloadType: 101})
	startSession(t, SessionConfig{Ports: pb, Remote: addrOf(pa.RTP), Codec: PCMA, DTMFPayloadType: 101,
		OnDTMF: func(ev DTMFEvent) { got <- ev }})

	if err := a.SendDTMF(DTMFEvent{Digit: 'x'}); !errors.Is(err, ErrInvalidDigit) {
		t.Fatalf("invalid digit: %v", err)
	}
	for _, d := range "7#" {
		if err := a.SendDTMF(DTMFEvent{Digit: d, Duration: 120 * time.Millisecond}); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range "7#" {
		select {
		case ev := <-got:
			if ev.Digit != want || ev.Duration != 120*time.Millisecond {
				t.Fatalf("got %+v, want %c/120ms", ev, want)
			}
		case <-time.After(waitLong):
			t.Fatalf("digit %c not received", want)
		}
	}
	time.Sleep(100 * time.Millisecond)
	if len(got) != 0 {
		t.Fatalf("extra events: %v", <-got)
	}

	c := startSession(t, SessionConfig{Ports: allocate(t, pool), Codec: PCMU})
	if err := c.SendDTMF(DTMFEvent{Digit: '1'}); !errors.Is(err, ErrDTMFNotNegotiated) {
		t.Fatalf("without telephone-event: %v", err)
	}
}

func TestSessionMarkerOnTalkspurts(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	talk := func(i int) bool { return (i >= 5 && i < 10) || (i >= 15 && i < 20) }
	source := func() ([]int16, bool) {
		mu.Lock()
		i := calls
		calls++
		mu.Unlock()
		if !talk(i) {
			return nil, false
		}
		pcm := make([]int16, FrameSamples)
		for j := range pcm {
			pcm[j] = 1000
		}
		return pcm, true
	}
	_, p := peerSession(t, SessionConfig{Codec: PCMU, Source: source})

	var prev rtp.Packet
	for i := range 25 {
		pkt, ok := p.read()
		if !ok {
			t.Fatal("pacer stopped")
		}
		isTalk := pkt.Payload[0] != 0xFF
		if isTalk != talk(i) {
			t.Fatalf("packet %d talk=%v", i, isTalk)
		}
		if len(pkt.Payload) != FrameSamples || pkt.PayloadType != 0 {
			t.Fatalf("packet %d: pt %d len %d", i, pkt.PayloadType, len(pkt.Payload))
		}
		wantMarker := i == 0 || i == 5 || i == 15
		if i > 0 {
			if pkt.SSRC != prev.SSRC || pkt.SequenceNumber != prev.SequenceNumber+1 {
				t.Fatalf("packet %d: ssrc %x seq %d after %x/%d", i, pkt.SSRC, pkt.SequenceNumber, prev.SSRC, prev.SequenceNumber)
			}
			step := pkt.Timestamp - prev.Timestamp
			if step == 0 || step%FrameSamples != 0 {
				t.Fatalf("packet %d: timestamp step %d", i, step)
			}
			if step != FrameSamples {
				wantMarker = true // the pacer skipped frames it was too late for
			}
		}
		if pkt.Marker != wantMarker {
			t.Fatalf("packet %d: marker %v, want %v", i, pkt.Marker, wantMarker)
		}
		prev = pkt
	}
}

func TestSessionRTPTimeout(t *testing.T) {
	pool := testPool(t)
	p := newPeer(t, netip.AddrPort{})
	s := startSession(t, SessionConfig{Ports: allocate(t, pool), Remote: p.addr(), Codec: PCMU, RTPTimeout: 200 * time.Millisecond})
	select {
	case <-s.Done():
	case <-time.After(waitLong):
		t.Fatal("no timeout")
	}
	if !errors.Is(s.Err(), ErrRTPTimeout) {
		t.Fatalf("err = %v", s.Err())
	}
	s.Close()
	if !errors.Is(s.Err(), ErrRTPTimeout) {
		t.Fatal("Close cleared the error")
	}
}

func TestSessionRTPTimeoutAfterMediaStops(t *testing.T) {
	s, p := peerSession(t, SessionConfig{Codec: PCMU, RTPTimeout: 300 * time.Millisecond})
	for i := range 10 {
		p.audio(uint16(i), 0x90)
		time.Sleep(20 * time.Millisecond)
	}
	if s.Stats().PacketsIn == 0 {
		t.Fatal("no packets")
	}
	select {
	case <-s.Done():
	case <-time.After(waitLong):
		t.Fatal("no timeout after media stopped")
	}
	if !errors.Is(s.Err(), ErrRTPTimeout) {
		t.Fatalf("err = %v", s.Err())
	}
}

func TestSessionHold(t *testing.T) {
	for _, tc := range []struct {
		name string
		hold func(remote netip.AddrPort) Negotiated
	}{
		{"inactive", func(r netip.AddrPort) Negotiated {
			return Negotiated{Codec: PCMU, Remote: r, RemoteDirection: Inactive}
		}},
		{"sendonly", func(r netip.AddrPort) Negotiated {
			return Negotiated{Codec: PCMU, Remote: r, RemoteDirection: SendOnly}
		}},
		{"c=0.0.0.0", func(r netip.AddrPort) Negotiated {
			return Negotiated{Codec: PCMU, Remote: netip.AddrPortFrom(netip.IPv4Unspecified(), r.Port()), RemoteDirection: SendOnly}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pool := testPool(t)
			p := newPeer(t, netip.AddrPort{})
			s := startSession(t, SessionConfig{Ports: allocate(t, pool), Remote: p.addr(), Codec: PCMU, RTPTimeout: 150 * time.Millisecond})
			s.Update(tc.hold(p.addr()))
			// Let frames sent before the hold drain, then expect no sending.
			time.Sleep(60 * time.Millisecond)
			out := s.Stats().PacketsOut
			time.Sleep(600 * time.Millisecond)
			select {
			case <-s.Done():
				t.Fatal("timed out while on hold")
			default:
			}
			if got := s.Stats().PacketsOut; got != out {
				t.Fatalf("sent %d packets while the remote does not receive", got-out)
			}
			// Resume: sending restarts with a marker and the timeout runs again.
			for {
				p.conn.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
				if _, err := p.conn.Read(make([]byte, 1500)); err != nil {
					break
				}
			}
			s.Update(Negotiated{Codec: PCMU, Remote: p.addr(), RemoteDirection: SendRecv})
			pkt, ok := p.read()
			if !ok || !pkt.Marker {
				t.Fatalf("first packet after hold: ok=%v marker=%v", ok, pkt.Marker)
			}
			select {
			case <-s.Done():
			case <-time.After(waitLong):
				t.Fatal("no timeout after resume")
			}
			if !errors.Is(s.Err(), ErrRTPTimeout) {
				t.Fatalf("err = %v", s.Err())
			}
		})
	}
}

func TestSessionRTCPReports(t *testing.T) {
	pool := testPool(t)
	pa, pb := allocate(t, pool), allocate(t, pool)
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	a := startSession(t, SessionConfig{Ports: pa, Remote: addrOf(pb.RTP), Codec: PCMU, RTCPInterval: 100 * time.Millisecond, Metrics: m})
	b := startSession(t, SessionConfig{Ports: pb, Remote: addrOf(pa.RTP), Codec: PCMU, RTCPInterval: 100 * time.Millisecond, Metrics: m})
	eventually(t, "reports both ways", func() bool {
		return a.Stats().RemoteReport && b.Stats().RemoteReport
	})
	for _, st := range []Stats{a.Stats(), b.Stats()} {
		if st.RTCPIn == 0 || st.RTCPOut == 0 || st.RemotePacketsLost != 0 || st.RemoteFractionLost != 0 {
			t.Fatalf("stats %+v", st)
		}
	}
	eventually(t, "jitter observed", func() bool { return testenv.MetricValue(t, reg, "handoff_rtp_jitter_seconds") > 0 })
	if v := testenv.MetricValue(t, reg, "handoff_rtp_packets_total", "direction=in"); v == 0 {
		t.Fatal("no packets_total{direction=in}")
	}
}

// A raw peer checks the report blocks we send and that we record its reports.
func TestSessionRTCPRawPeer(t *testing.T) {
	pool := testPool(t)
	ports := allocate(t, pool)
	peerPorts := newPeerPorts(t)
	s := startSession(t, SessionConfig{Ports: ports, Remote: addrOf(peerPorts.RTP), Codec: PCMU, RTCPInterval: 100 * time.Millisecond})

	p := &peer{t: t, conn: peerPorts.RTP, to: addrOf(ports.RTP), ssrc: 0xCAFE}
	for seq := uint16(1); seq <= 11; seq++ {
		if seq != 6 {
			p.audio(seq, 0x90)
		}
	}
	buf := make([]byte, 1500)
	var report rtcp.ReceptionReport
	deadline := time.Now().Add(waitLong)
	for report.LastSequenceNumber != 11 {
		peerPorts.RTCP.SetReadDeadline(deadline)
		n, err := peerPorts.RTCP.Read(buf)
		if err != nil {
			t.Fatalf("no report covering all packets: %v", err)
		}
		pkts, err := rtcp.Unmarshal(buf[:n])
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := pkts[1].(*rtcp.SourceDescription); !ok {
			t.Fatalf("compound without SDES: %v", pkts)
		}
		sr, ok := pkts[0].(*rtcp.SenderReport)
		if !ok {
			t.Fatalf("first packet %T, want SR (we have sent RTP)", pkts[0])
		}
		if sr.SSRC != s.Stats().SSRC || sr.PacketCount == 0 || sr.OctetCount != sr.PacketCount*FrameSamples {
			t.Fatalf("SR %+v", sr)
		}
		if len(sr.Reports) == 1 {
			report = sr.Reports[0]
		}
	}
	if report.SSRC != 0xCAFE || report.TotalLost != 1 {
		t.Fatalf("report %+v", report)
	}

	// Our stream as seen by the peer: a quarter lost, 10 ms jitter.
	rr := &rtcp.ReceiverReport{SSRC: 0xCAFE, Reports: []rtcp.ReceptionReport{{
		SSRC: s.Stats().SSRC, FractionLost: 64, TotalLost: 5, LastSequenceNumber: 100, Jitter: 80,
	}}}
	b, _ := rtcp.Marshal([]rtcp.Packet{rr})
	if _, err := peerPorts.RTCP.WriteToUDPAddrPort(b, addrOf(ports.RTCP)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "remote report", func() bool { return s.Stats().RemoteReport })
	st := s.Stats()
	if st.RemoteFractionLost != 0.25 || st.RemotePacketsLost != 5 || st.RemoteJitter != 10*time.Millisecond {
		t.Fatalf("remote report %+v", st)
	}
}

func TestSessionUpdateCodec(t *testing.T) {
	var got frames
	s, p := peerSession(t, SessionConfig{Codec: PCMU, OnAudio: got.add})
	s.Update(Negotiated{Codec: PCMA, Remote: p.addr(), RemoteDirection: SendRecv})
	for {
		pkt, ok := p.read()
		if !ok {
			t.Fatal("no packets")
		}
		if pkt.PayloadType == 8 {
			if pkt.Payload[0] != 0xD5 {
				t.Fatalf("A-law silence = %#x", pkt.Payload[0])
			}
			break
		}
	}
	p.send(8, 1, 0, false, bytes.Repeat([]byte{0xD5}, FrameSamples))
	p.send(0, 2, 160, false, bytes.Repeat([]byte{0xFF}, FrameSamples)) // stale codec: dropped
	eventually(t, "A-law frame", func() bool { return got.len() == 1 && s.Stats().PacketsDropped == 1 })
	if v := got.snapshot()[0][0]; v != 8 {
		t.Fatalf("decoded %d, want 8", v)
	}
}

// Odd packetisation (30 ms) still reaches OnAudio as 20 ms frames.
func TestSessionRepacketises(t *testing.T) {
	var got frames
	_, p := peerSession(t, SessionConfig{Codec: PCMU, OnAudio: got.add})
	for seq := range uint16(4) {
		p.send(0, seq, uint32(seq)*240, false, bytes.Repeat([]byte{0x80 + byte(seq)}, 240))
	}
	eventually(t, "6 frames from 4x30ms", func() bool { return got.len() == 6 })
	for _, f := range got.snapshot() {
		if len(f) != FrameSamples {
			t.Fatalf("frame of %d samples", len(f))
		}
	}
}

func TestSessionLifecycle(t *testing.T) {
	pool := testPool(t)
	ports := allocate(t, pool)

	// Close before Start, Start after Close, Close twice.
	s, err := NewSession(SessionConfig{Ports: ports, Codec: PCMU})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s.Start()
	s.Close()
	<-s.Done()
	if s.Err() != nil {
		t.Fatal(s.Err())
	}

	// The same ports serve a new session after Close (deadlines were reset).
	p := newPeer(t, addrOf(ports.RTP))
	var got frames
	s2 := startSession(t, SessionConfig{Ports: ports, Remote: p.addr(), Codec: PCMU, OnAudio: got.add})
	p.audio(1, 0x81)
	eventually(t, "frame on reused ports", func() bool { return got.len() == 1 })
	if s2.LocalPort() != ports.Port {
		t.Fatal("LocalPort")
	}
	s2.Close()
	s2.Close()

	if _, err := NewSession(SessionConfig{Ports: ports, Codec: Codec{Name: "G729", PayloadType: 18, ClockRate: 8000}}); err == nil {
		t.Fatal("G729 accepted")
	}
	if _, err := NewSession(SessionConfig{Codec: PCMU}); err == nil {
		t.Fatal("missing ports accepted")
	}
}

// Releasing ports under a running session ends it instead of spinning.
func TestSessionPortsReleasedUnderneath(t *testing.T) {
	pool := testPool(t)
	ports, _ := pool.Allocate()
	s := startSession(t, SessionConfig{Ports: ports, Codec: PCMU})
	pool.Release(ports)
	select {
	case <-s.Done():
	case <-time.After(waitLong):
		t.Fatal("session kept running on closed sockets")
	}
}

package media

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/handoff/handoff/internal/testenv"
)

func rtpFrame(tb testing.TB, pt uint8, ssrc uint32) []byte {
	return rtpPacket(tb, pt, ssrc, bytes.Repeat([]byte{0x81}, FrameSamples))
}

// speechLike is a 20 ms payload of the codec carrying real signal (1 kHz
// and 6 kHz at 16 kHz for G.722, 1 kHz for G.711), so the codecs work on
// audio rather than on a constant.
func speechLike(c Codec) []byte {
	if c.isG722() {
		var e G722Encoder
		return e.Encode(nil, testenv.Tone(16000, 0, WideFrameSamples, 6000, 1000, 6000))
	}
	b := make([]byte, FrameSamples)
	encodeG711(c.format(), b, testenv.Tone(8000, 0, FrameSamples, 6000, 1000))
	return b
}

func rtpPacket(tb testing.TB, pt uint8, ssrc uint32, payload []byte) []byte {
	pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt, SSRC: ssrc}, Payload: payload}
	b, err := pkt.Marshal()
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func setSeq(b []byte, seq uint16) {
	binary.BigEndian.PutUint16(b[2:], seq)
	binary.BigEndian.PutUint32(b[4:], uint32(seq)*FrameSamples)
}

// unstartedSession gives direct access to the receive and send paths.
func unstartedSession(tb testing.TB, cfg SessionConfig) *Session {
	tb.Helper()
	pool := testPool(tb)
	cfg.Ports = allocate(tb, pool)
	if cfg.Codec.Name == "" {
		cfg.Codec = PCMU
	}
	s, err := NewSession(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Close)
	return s
}

// rtpFrame's payload is 160 octets: 20 ms of G.711 or of G.722.
func TestReceivePathDoesNotAllocate(t *testing.T) {
	for _, c := range []Codec{PCMU, G722} {
		t.Run(c.Name, func(t *testing.T) { testReceiveAllocs(t, c) })
	}
}

func testReceiveAllocs(t *testing.T, codec Codec) {
	frames := 0
	s := unstartedSession(t, SessionConfig{Codec: codec, DTMFPayloadType: 101, Metrics: NewMetrics(nil), OnAudio: func([]int16) { frames++ }})
	src := newPeer(t, addrOf(s.conn)).addr()
	b := rtpFrame(t, codec.PayloadType, 1)
	seq := uint16(0)
	now := time.Duration(0)
	step := func() {
		setSeq(b, seq)
		// Some reordering so the jitter buffer works for its living.
		if seq%8 == 3 {
			setSeq(b, seq+1)
			s.handleRTP(b, src, now)
			setSeq(b, seq)
			s.handleRTP(b, src, now)
			seq++
		} else {
			s.handleRTP(b, src, now)
		}
		seq++
		now += frameDuration
	}
	for range 100 {
		step()
	}
	if n := testing.AllocsPerRun(1000, step); n != 0 {
		t.Fatalf("receive path allocs/packet = %v", n)
	}
	if st := s.Stats(); st.PacketsLost != 0 || st.PacketsSkipped != 0 || frames == 0 {
		t.Fatalf("stats %+v frames %d", st, frames)
	}
}

// The send path, with a Source at the codec's rate and at the other one
// (resampled).
func TestSendPathDoesNotAllocate(t *testing.T) {
	for _, c := range []Codec{PCMU, G722} {
		for _, rate := range []int{8000, 16000} {
			t.Run(fmt.Sprintf("%s/source-%d", c.Name, rate), func(t *testing.T) {
				p := newPeer(t, netip0())
				pcm := make([]int16, FrameLen(rate))
				s := unstartedSession(t, SessionConfig{Codec: c, Remote: p.addr(), Metrics: NewMetrics(nil), Source: func() ([]int16, bool) { return pcm, true }})
				i := uint64(0)
				if n := testing.AllocsPerRun(200, func() { s.sendFrame(i); i++ }); n != 0 {
					t.Fatalf("send path allocs/packet = %v", n)
				}
			})
		}
	}
}

func BenchmarkJitterBuffer(b *testing.B) {
	jb := newJitterBuffer(3)
	payload := make([]byte, FrameSamples)
	var seq uint16
	var now time.Duration
	b.ReportAllocs()
	for b.Loop() {
		// Every fourth pair arrives swapped.
		if seq%4 == 0 {
			jb.push(seq+1, slotAudio, formatULaw, payload, now)
			jb.push(seq, slotAudio, formatULaw, payload, now)
		} else {
			jb.push(seq, slotAudio, formatULaw, payload, now)
			jb.push(seq+1, slotAudio, formatULaw, payload, now)
		}
		for jb.pop(now) != nil {
		}
		seq += 2
		now += 2 * frameDuration
	}
	b.ReportMetric(float64(b.N*2)/b.Elapsed().Seconds(), "pkts/s")
}

// BenchmarkSessionReceive measures the per-packet receive path (parse,
// latch/SSRC checks, RFC 3550 stats, jitter buffer, decode, OnAudio) without
// the socket, for a G.711 and a G.722 call (160 octets a packet either way).
func BenchmarkSessionReceive(b *testing.B) {
	for _, c := range []Codec{PCMU, G722} {
		b.Run(c.Name, func(b *testing.B) {
			s := unstartedSession(b, SessionConfig{Codec: c, Metrics: NewMetrics(nil), OnAudio: func([]int16) {}})
			src := newPeer(b, addrOf(s.conn)).addr()
			pkt := rtpPacket(b, c.PayloadType, 1, speechLike(c))
			var seq uint16
			var now time.Duration
			b.ReportAllocs()
			b.SetBytes(int64(len(pkt)))
			for b.Loop() {
				setSeq(pkt, seq)
				s.handleRTP(pkt, src, now)
				seq++
				now += frameDuration
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pkts/s")
		})
	}
}

// BenchmarkSessionSend measures the per-packet send path (Source, encode,
// RTP header, the socket write to a loopback peer) for a G.711 and a G.722
// call, with the Source at the codec's rate, and for G.722 also at 8 kHz
// (an 8 kHz agent: resampled on the way).
func BenchmarkSessionSend(b *testing.B) {
	for _, tc := range []struct {
		codec Codec
		rate  int
	}{{PCMU, 8000}, {G722, 16000}, {G722, 8000}} {
		b.Run(fmt.Sprintf("%s/source-%d", tc.codec.Name, tc.rate), func(b *testing.B) {
			p := newPeer(b, netip0())
			pcm := testenv.Tone(tc.rate, 0, FrameLen(tc.rate), 6000, 1000)
			s := unstartedSession(b, SessionConfig{Codec: tc.codec, Remote: p.addr(), Metrics: NewMetrics(nil),
				Source: func() ([]int16, bool) { return pcm, true }})
			var frame uint64
			b.ReportAllocs()
			for b.Loop() {
				s.sendFrame(frame)
				frame++
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pkts/s")
		})
	}
}

// BenchmarkSessionReceiveUDP is the same path through a real loopback
// socket and the reader goroutine, in windows of 64 packets so the socket
// buffer never overflows.
func BenchmarkSessionReceiveUDP(b *testing.B) {
	pool := testPool(b)
	ports := allocate(b, pool)
	p := newPeer(b, addrOf(ports.RTP))
	s := startSession(b, SessionConfig{Ports: ports, Remote: p.addr(), Codec: PCMU, OnAudio: func([]int16) {}})
	pkt := rtpFrame(b, 0, 1)
	b.ReportAllocs()
	var sent uint64
	for b.Loop() {
		setSeq(pkt, uint16(sent))
		p.conn.WriteToUDPAddrPort(pkt, p.to)
		sent++
		if sent%64 == 0 {
			waitIn(b, s, sent)
		}
	}
	waitIn(b, s, sent)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pkts/s")
}

func waitIn(b *testing.B, s *Session, n uint64) {
	deadline := time.Now().Add(waitLong)
	for s.packetsIn.Load() < n {
		if time.Now().After(deadline) {
			b.Fatalf("received %d of %d packets", s.packetsIn.Load(), n)
		}
		runtime.Gosched()
	}
}

func netip0() netip.AddrPort { return netip.AddrPort{} }

// BenchmarkSessionReceiveSRTP is BenchmarkSessionReceive with SRTP
// (AES_CM_128_HMAC_SHA1_80, replay window on): the difference is the cost
// of authenticating and decrypting one 20 ms G.711 packet on this path.
func BenchmarkSessionReceiveSRTP(b *testing.B) {
	ours, theirs := NewSRTPKey(1, AESCM128HMACSHA180), NewSRTPKey(1, AESCM128HMACSHA180)
	s := unstartedSession(b, SessionConfig{Metrics: NewMetrics(nil), OnAudio: func([]int16) {}, LocalKey: &ours, RemoteKey: &theirs})
	src := newPeer(b, addrOf(s.conn)).addr()
	tx, err := theirs.context(false)
	if err != nil {
		b.Fatal(err)
	}
	plain := rtpFrame(b, 0, 1)
	batch := make([][]byte, 4096)
	for i := range batch {
		batch[i] = make([]byte, 0, len(plain)+srtpOverhead)
	}
	var seq uint16
	var now time.Duration
	fill := func() {
		for i := range batch {
			setSeq(plain, seq+uint16(i))
			batch[i], _ = tx.EncryptRTP(batch[i][:0], plain, nil)
		}
	}
	fill()
	b.ReportAllocs()
	b.SetBytes(int64(len(batch[0])))
	i := 0
	for b.Loop() {
		if i == len(batch) {
			b.StopTimer()
			fill()
			i = 0
			b.StartTimer()
		}
		s.handleRTP(batch[i], src, now)
		i++
		seq++
		now += frameDuration
	}
	if st := s.Stats(); st.PacketsDropped != 0 {
		b.Fatalf("dropped %d", st.PacketsDropped)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pkts/s")
}

// BenchmarkSRTPProtect and BenchmarkSRTPUnprotect are the bare per-packet
// crypto on a 172-byte RTP packet (12-byte header, 160 bytes of G.711).
func BenchmarkSRTPProtect(b *testing.B) {
	for _, suite := range []CryptoSuite{AESCM128HMACSHA180, AESCM128HMACSHA132} {
		b.Run(string(suite), func(b *testing.B) {
			k := NewSRTPKey(1, suite)
			tx, err := k.context(false)
			if err != nil {
				b.Fatal(err)
			}
			plain := rtpFrame(b, 0, 1)
			dst := make([]byte, 0, len(plain)+srtpOverhead)
			var h rtp.Header
			var seq uint16
			b.ReportAllocs()
			b.SetBytes(int64(len(plain)))
			for b.Loop() {
				setSeq(plain, seq)
				seq++
				if _, err := tx.EncryptRTP(dst, plain, &h); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkSRTPUnprotect(b *testing.B) {
	for _, suite := range []CryptoSuite{AESCM128HMACSHA180, AESCM128HMACSHA132} {
		b.Run(string(suite), func(b *testing.B) {
			k := NewSRTPKey(1, suite)
			tx, _ := k.context(false)
			rx, err := k.context(true)
			if err != nil {
				b.Fatal(err)
			}
			plain := rtpFrame(b, 0, 1)
			batch := make([][]byte, 4096)
			var seq uint16
			fill := func() {
				for i := range batch {
					setSeq(plain, seq+uint16(i))
					batch[i], _ = tx.EncryptRTP(batch[i][:0], plain, nil)
				}
				seq += uint16(len(batch))
			}
			fill()
			dst := make([]byte, 1500)
			var h rtp.Header
			b.ReportAllocs()
			b.SetBytes(int64(len(plain)))
			i := 0
			for b.Loop() {
				if i == len(batch) {
					b.StopTimer()
					fill()
					i = 0
					b.StartTimer()
				}
				if _, err := rx.DecryptRTP(dst, batch[i], &h); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// A whole engine frame of a session (its socket read with recvmmsg, the
// receive path, playout, the send path and the RTCP poll) allocates
// nothing in steady state, on the platforms with the recvmmsg path.
func TestEngineFrameDoesNotAllocate(t *testing.T) {
	if !kernelTimestamps {
		t.Skip("the portable receive path allocates a source address per packet")
	}
	p := newPeer(t, netip0())
	s := unstartedSession(t, SessionConfig{Codec: PCMU, Metrics: NewMetrics(nil), OnAudio: func([]int16) {},
		Source: func() ([]int16, bool) { return nil, false }})
	p.to = addrOf(s.conn)
	s.cfg.Remote = p.addr()
	s.Update(Negotiated{Codec: PCMU, Remote: p.addr(), RemoteDirection: SendRecv})
	b := rtpFrame(t, PCMU.PayloadType, 1)
	var rx rxBatch
	wall := time.Now()
	seq := uint16(0)
	frame := func() {
		setSeq(b, seq)
		seq++
		if _, err := p.conn.WriteToUDPAddrPort(b, p.to); err != nil {
			t.Fatal(err)
		}
		wall = wall.Add(frameDuration)
		if !s.service(wall, &rx) {
			t.Fatal("the session stopped")
		}
	}
	for range 50 {
		frame()
	}
	if n := testing.AllocsPerRun(500, frame); n != 0 {
		t.Fatalf("engine frame allocs = %v", n)
	}
	if st := s.Stats(); st.PacketsIn < 500 || st.PacketsOut < 500 {
		t.Fatalf("stats %+v", st)
	}
}

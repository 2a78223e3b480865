package media

import (
	"encoding/binary"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

// fuzzPorts is one RTP/RTCP pair shared by the fuzz targets of this
// package: the sessions are never started, so nothing is read or sent.
var fuzzPorts = sync.OnceValues(func() (*Ports, error) {
	pool, err := NewPortPool(netip.MustParseAddr("127.0.0.1"), 47000, 47999, 0)
	if err != nil {
		return nil, err
	}
	return pool.Allocate()
})

func fuzzSession(t testing.TB, codec Codec, dtmfPT uint8, onAudio func([]int16), onDTMF func(DTMFEvent)) *Session {
	ports, err := fuzzPorts()
	if err != nil {
		t.Skip("no loopback RTP ports:", err)
	}
	s, err := NewSession(SessionConfig{
		Ports: ports, Remote: netip.MustParseAddrPort("127.0.0.1:4000"),
		Codec: codec, DTMFPayloadType: dtmfPT, OnAudio: onAudio, OnDTMF: onDTMF,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func rtpBytes(pt uint8, seq uint16, ts, ssrc uint32, marker bool, payload []byte) []byte {
	b, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt, SequenceNumber: seq,
		Timestamp: ts, SSRC: ssrc, Marker: marker}, Payload: payload}).Marshal()
	return b
}

// packetStream frames packets for FuzzHandleRTP: per packet a byte whose
// low bit picks the source and whose high bits advance the clock, a 2-byte
// length and the packet.
func packetStream(pkts ...[]byte) []byte {
	var out []byte
	for i, p := range pkts {
		out = append(out, byte(i%3)<<1)
		out = binary.BigEndian.AppendUint16(out, uint16(len(p)))
		out = append(out, p...)
	}
	return out
}

// FuzzHandleRTP drives the RTP receive path (validation, latching, SSRC
// changes, RFC 4733 events, jitter buffer, G.711 and G.722 decoding) with
// arbitrary packets from two sources; frames are always whole frames of
// the codec's rate.
func FuzzHandleRTP(f *testing.F) {
	voice := make([]byte, 160)
	for i := range voice {
		voice[i] = byte(i)
	}
	dtmf := func(ev byte, end bool, dur uint16) []byte {
		b := []byte{ev, 10, 0, 0}
		if end {
			b[1] |= 0x80
		}
		binary.BigEndian.PutUint16(b[2:], dur)
		return b
	}
	f.Add(uint8(0), packetStream(
		rtpBytes(0, 1, 160, 7, true, voice), rtpBytes(0, 2, 320, 7, false, voice), rtpBytes(0, 4, 640, 7, false, voice),
		rtpBytes(0, 3, 480, 7, false, voice)))
	f.Add(uint8(1), packetStream(
		rtpBytes(8, 100, 8000, 9, true, voice[:80]), rtpBytes(101, 101, 8160, 9, true, dtmf(5, false, 400)),
		rtpBytes(101, 102, 8160, 9, false, dtmf(5, true, 800)), rtpBytes(101, 103, 8160, 9, false, dtmf(5, true, 800)),
		rtpBytes(8, 104, 8960, 9, false, voice)))
	f.Add(uint8(0), packetStream(
		rtpBytes(0, 65535, 0, 1, false, voice), rtpBytes(0, 0, 160, 2, false, voice), rtpBytes(0, 30000, 160, 1, false, voice[:1]),
		rtpBytes(101, 1, 1, 1, false, []byte{1, 2}), []byte{0x80}, rtpBytes(0, 5, 0, 1, false, make([]byte, 1400))))
	// Padding, CSRCs and an extension.
	f.Add(uint8(0), packetStream([]byte{0xb1, 0x00, 0, 1, 0, 0, 0, 160, 0, 0, 0, 7, 0, 0, 0, 1, 0xaa, 0xbb, 2}))
	f.Add(uint8(0), packetStream([]byte{0x90, 0x00, 0, 1, 0, 0, 0, 160, 0, 0, 0, 7, 0xbe, 0xde, 0, 1, 0x10, 0xff, 0, 0, 0xff}))
	// Voice, comfort noise, voice again; telephone-events on an SSRC of their own.
	f.Add(uint8(4), packetStream(
		rtpBytes(0, 1, 160, 7, true, voice), rtpBytes(13, 2, 320, 7, true, []byte{60}), rtpBytes(13, 3, 8320, 7, false, []byte{58, 1, 2}),
		rtpBytes(101, 900, 5000, 8, true, dtmf(1, false, 160)), rtpBytes(101, 901, 5000, 8, false, dtmf(1, true, 320)),
		rtpBytes(0, 4, 16320, 7, true, voice)))
	// G.722: 160 octets, timestamps 160 apart, one octet short, a 1280-octet
	// packet (the jitter buffer's bound, 2560 samples), comfort noise.
	f.Add(uint8(8|4), packetStream(
		rtpBytes(9, 1, 160, 7, true, voice), rtpBytes(9, 2, 320, 7, false, voice[:159]), rtpBytes(9, 3, 480, 7, false, make([]byte, 1280)),
		rtpBytes(13, 4, 640, 7, true, []byte{60}), rtpBytes(9, 5, 8640, 7, true, voice)))

	f.Fuzz(func(t *testing.T, mode uint8, stream []byte) {
		codec, dtmfPT := PCMU, uint8(101)
		if mode&1 != 0 {
			codec = PCMA
			codec.PayloadType = 8
		}
		if mode&8 != 0 {
			codec = G722
		}
		if mode&2 != 0 {
			dtmfPT = 0
		}
		frames := 0
		s := fuzzSession(t, codec, dtmfPT, func(pcm []int16) {
			if len(pcm) != FrameLen(codec.SampleRate()) {
				t.Fatalf("OnAudio got %d samples of %s", len(pcm), codec.Name)
			}
			frames++
		}, func(ev DTMFEvent) {
			if !strings.ContainsRune(dtmfEvents, ev.Digit) || ev.Duration < 0 {
				t.Fatalf("DTMF event %+v", ev)
			}
		})
		if mode&4 != 0 { // comfort noise negotiated
			s.mu.Lock()
			s.negotiatedLocked(codec, dtmfPT, 13, SendRecv)
			s.mu.Unlock()
		}
		srcs := [2]netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:4000"), netip.MustParseAddrPort("127.0.0.2:4000")}
		now := time.Duration(0)
		var count int
		for len(stream) >= 3 && count < 64 {
			ctl, n := stream[0], int(binary.BigEndian.Uint16(stream[1:3]))
			stream = stream[3:]
			n = min(n, len(stream))
			pkt := stream[:n]
			stream = stream[n:]
			now += time.Duration(ctl>>1) * time.Millisecond
			s.handleRTP(pkt, srcs[ctl&1], now)
			count++
			if ctl&0x80 != 0 {
				s.tick(now)
			}
		}
		s.tick(now + time.Second)
		s.flushJitter()
		st := s.Stats()
		if st.PacketsIn > uint64(count) || st.PacketsDropped > uint64(2*count) {
			t.Fatalf("stats %+v after %d packets", st, count)
		}
	})
}

// FuzzDTMFReceiver feeds RFC 4733 payloads with arbitrary timestamps: at
// most one event per distinct timestamp, every digit valid.
func FuzzDTMFReceiver(f *testing.F) {
	f.Add([]byte{5, 10, 0, 160, 0, 0, 0, 1, 5, 0x8a, 3, 32, 0, 0, 0, 1, 5, 0x8a, 3, 32, 0, 0, 0, 1})
	f.Add([]byte{11, 10, 0, 160, 0, 0, 1, 0, 16, 0x8a, 0, 0, 0, 0, 2, 0, 255, 0xff, 255, 255, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		var d dtmfReceiver
		stamps := map[uint32]bool{}
		events := 0
		emit := func(ev DTMFEvent) {
			if !strings.ContainsRune(dtmfEvents, ev.Digit) {
				t.Fatalf("digit %q", ev.Digit)
			}
			if ev.Duration < 0 || ev.Duration > samplesToDuration(0xFFFF) {
				t.Fatalf("duration %v", ev.Duration)
			}
			events++
		}
		now := time.Duration(0)
		for len(data) >= 8 {
			payload, ts := data[:4], binary.BigEndian.Uint32(data[4:8])
			data = data[8:]
			stamps[ts] = true
			now += 20 * time.Millisecond
			_ = d.packet(payload, ts, now, emit)
		}
		if err := d.packet(data[:min(len(data), 3)], 0, now, emit); err == nil {
			t.Fatal("a payload shorter than 4 bytes was accepted")
		}
		d.flush(now+time.Hour, emit)
		if events > len(stamps) {
			t.Fatalf("%d events from %d distinct timestamps", events, len(stamps))
		}
	})
}

// FuzzHandleRTCP parses arbitrary compound RTCP from the latched peer and
// from a stranger.
func FuzzHandleRTCP(f *testing.F) {
	sr, _ := rtcp.Marshal([]rtcp.Packet{
		&rtcp.SenderReport{SSRC: 7, NTPTime: 0xe000000012345678, RTPTime: 160, PacketCount: 10, OctetCount: 1600,
			Reports: []rtcp.ReceptionReport{{SSRC: 1, FractionLost: 12, TotalLost: 0xFFFFFF, Jitter: 80}}},
		&rtcp.SourceDescription{Chunks: []rtcp.SourceDescriptionChunk{{Source: 7,
			Items: []rtcp.SourceDescriptionItem{{Type: rtcp.SDESCNAME, Text: "caller@example"}}}}},
	})
	rr, _ := rtcp.Marshal([]rtcp.Packet{&rtcp.ReceiverReport{SSRC: 7, Reports: []rtcp.ReceptionReport{{SSRC: 1, TotalLost: 3}}},
		&rtcp.Goodbye{Sources: []uint32{7}, Reason: "bye"}})
	f.Add(false, sr)
	f.Add(true, rr)
	f.Add(false, []byte{0x80, 0xc9, 0, 0})
	f.Fuzz(func(t *testing.T, stranger bool, b []byte) {
		s := fuzzSession(t, PCMU, 101, nil, nil)
		s.ssrc = 1
		s.handleRTP(rtpBytes(0, 1, 160, 7, false, make([]byte, 160)), netip.MustParseAddrPort("127.0.0.1:4000"), 0)
		src := netip.MustParseAddrPort("127.0.0.1:4001")
		if stranger {
			src = netip.MustParseAddrPort("127.0.0.9:4001")
		}
		s.handleRTCP(b, src)
		st := s.Stats()
		if stranger && st.RTCPIn != 0 {
			t.Fatal("RTCP from a stranger was accepted after latching")
		}
		if st.RemoteFractionLost < 0 || st.RemoteFractionLost > 1 {
			t.Fatalf("fraction lost %v", st.RemoteFractionLost)
		}
		s.mu.Lock()
		s.accountIntervalLocked()
		_ = s.rx.report(s.latchSSRC)
		s.mu.Unlock()
	})
}

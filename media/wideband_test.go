package media

import (
	"errors"
	"math"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtcp"

	"github.com/handoff/handoff/internal/testenv"
)

var tone = testenv.Tone

// toneSource returns a Source playing that tone in 20 ms frames at rate.
func toneSource(rate int, freqs ...float64) func() ([]int16, bool) {
	k := 0
	return func() ([]int16, bool) {
		n := FrameLen(rate)
		f := tone(rate, k, n, 6000, freqs...)
		k += n
		return f, true
	}
}

func joined(frames [][]int16) []int16 { return slices.Concat(frames...) }

func TestNegotiatePrefersWideband(t *testing.T) {
	g722 := "a=rtpmap:9 G722/8000"
	tests := []struct {
		name      string
		supported []Codec
		lines     []string
		want      Codec
		wantErr   error
	}{
		{"G.711 first, G.722 offered", DefaultCodecs, []string{"m=audio 4000 RTP/AVP 0 8 9 101", g722}, G722, nil},
		{"baresip: Opus, G.722, G.711", DefaultCodecs, []string{"m=audio 4000 RTP/AVP 96 9 0 8", "a=rtpmap:96 opus/48000/2", g722}, G722, nil},
		{"static 9 without rtpmap", DefaultCodecs, []string{"m=audio 4000 RTP/AVP 9"}, G722, nil},
		{"G.711 only keeps the offer's order", DefaultCodecs, []string{"m=audio 4000 RTP/AVP 8 0"}, PCMA, nil},
		{"narrowband listed first", []Codec{PCMU, G722}, []string{"m=audio 4000 RTP/AVP 9 0", g722}, PCMU, nil},
		{"G.722 not listed", []Codec{PCMU, PCMA}, []string{"m=audio 4000 RTP/AVP 9 0", g722}, PCMU, nil},
		{"G.722 only, not listed", []Codec{PCMU, PCMA}, []string{"m=audio 4000 RTP/AVP 9", g722}, Codec{}, ErrNoCommonCodec},
		{"G722/16000 is not RFC 3551's G.722", DefaultCodecs, []string{"m=audio 4000 RTP/AVP 9 0", "a=rtpmap:9 G722/16000"}, PCMU, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := ParseSDP(offerSDP("c=IN IP4 192.0.2.10", tt.lines[0], tt.lines[1:]...))
			if err != nil {
				t.Fatal(err)
			}
			n, err := Negotiate(d, tt.supported)
			if !errors.Is(err, tt.wantErr) || n.Codec != tt.want {
				t.Fatalf("got %+v, %v; want %+v, %v", n.Codec, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestParseCodecs(t *testing.T) {
	got, err := ParseCodecs([]string{"g722", "PCMU", "Pcma"})
	if err != nil || !slices.Equal(got, DefaultCodecs) {
		t.Fatalf("ParseCodecs = %v, %v", got, err)
	}
	for _, bad := range [][]string{nil, {"opus"}, {"PCMU", "pcmu"}, {""}} {
		if _, err := ParseCodecs(bad); err == nil {
			t.Errorf("ParseCodecs(%q) accepted", bad)
		}
	}
	if G722.SampleRate() != 16000 || G722.ClockRate != 8000 || PCMA.SampleRate() != 8000 {
		t.Fatal("sample and clock rates")
	}
}

// Our offer lists the preference list; an answer names the one codec that
// was negotiated, with the RFC 3551 clock rate.
func TestLocalSDPG722(t *testing.T) {
	l := NewLocalSDP(netip.MustParseAddr("127.0.0.1"), 20000, "handoff")
	offer := string(l.Offer(DefaultCodecs, 101, SendRecv))
	for _, line := range []string{"m=audio 20000 RTP/AVP 9 0 8 101 13", "a=rtpmap:9 G722/8000", "a=rtpmap:0 PCMU/8000"} {
		if !strings.Contains(offer, line+"\r\n") {
			t.Errorf("offer lacks %q:\n%s", line, offer)
		}
	}
	d, err := ParseSDP([]byte(offer))
	if err != nil || !slices.Equal(d.Codecs, DefaultCodecs) {
		t.Fatalf("offer parses back to %+v, %v", d, err)
	}
	n, err := Negotiate(d, DefaultCodecs)
	if err != nil || n.Codec != G722 {
		t.Fatalf("negotiated %+v, %v", n, err)
	}
	answer := string(l.Answer(n, SendRecv))
	if !strings.Contains(answer, "m=audio 20000 RTP/AVP 9 101 13\r\n") || !strings.Contains(answer, "a=rtpmap:9 G722/8000\r\n") ||
		strings.Contains(answer, "PCMU") {
		t.Fatalf("answer:\n%s", answer)
	}
}

// A raw peer speaking G.722: what it sends reaches OnAudio as 16 kHz frames
// with the 6 kHz tone intact, and what the session sends is payload type
// 9, 160 octets a packet, timestamps 160 apart, decoding to the Source's
// wideband tone.
func TestG722SessionRawPeer(t *testing.T) {
	var got frames
	s, p := peerSession(t, SessionConfig{Codec: G722, OnAudio: got.add, Source: toneSource(16000, 6000, 1000)})
	if s.SampleRate() != 16000 {
		t.Fatalf("sample rate %d", s.SampleRate())
	}
	var enc G722Encoder
	for f := range 50 {
		payload := enc.Encode(nil, tone(16000, f*WideFrameSamples, WideFrameSamples, 6000, 6000, 1000))
		p.send(9, uint16(f), uint32(f)*160, f == 0, payload)
	}
	eventually(t, "50 frames", func() bool { return got.len() >= 50 })
	in := joined(got.snapshot())
	if len(in) != 50*WideFrameSamples {
		t.Fatalf("%d samples, want %d (320 a frame)", len(in), 50*WideFrameSamples)
	}
	checkWideband(t, "received", in[WideFrameSamples:])

	var dec G722Decoder
	var out []int16
	var first uint32
	for i := range 50 {
		pkt, ok := p.read()
		if !ok {
			t.Fatal("no packet")
		}
		if pkt.PayloadType != 9 || len(pkt.Payload) != 160 {
			t.Fatalf("packet %d: PT %d, %d octets", i, pkt.PayloadType, len(pkt.Payload))
		}
		if i == 0 {
			first = pkt.Timestamp
		} else if d := pkt.Timestamp - first; d%160 != 0 || d == 0 {
			t.Fatalf("timestamp %d after %d: not a whole number of 160-unit frames", pkt.Timestamp, first)
		}
		out = dec.Decode(out, pkt.Payload)
	}
	checkWideband(t, "sent", out[WideFrameSamples:])
}

// checkWideband: the 6 kHz tone is there, as strong as its 1 kHz control.
func checkWideband(t *testing.T, what string, pcm []int16) {
	t.Helper()
	hi, lo := testenv.Goertzel(pcm, 16000, 6000), testenv.Goertzel(pcm, 16000, 1000)
	if lo < 3000 || math.Abs(testenv.DB(hi, lo)) > 3 {
		t.Fatalf("%s: 6 kHz at %.0f, 1 kHz at %.0f: want both near 6000", what, hi, lo)
	}
}

// A frame at the other rate is resampled once by the pacer: 8 kHz audio
// into a G.722 stream, and 16 kHz audio into G.711 with the 6 kHz tone
// filtered out, not folded to 2 kHz.
func TestSessionResamplesSource(t *testing.T) {
	for _, tc := range []struct {
		codec  Codec
		source func() ([]int16, bool)
	}{
		{G722, toneSource(8000, 1000)},
		{PCMU, toneSource(16000, 6000, 1000)},
	} {
		t.Run(tc.codec.Name, func(t *testing.T) {
			_, p := peerSession(t, SessionConfig{Codec: tc.codec, Source: tc.source})
			var dec G722Decoder
			var out []int16
			for range 50 {
				pkt, ok := p.read()
				if !ok {
					t.Fatal("no packet")
				}
				if tc.codec == G722 {
					out = dec.Decode(out, pkt.Payload)
					continue
				}
				pcm := make([]int16, len(pkt.Payload))
				DecodeULaw(pcm, pkt.Payload)
				out = append(out, pcm...)
			}
			rate := float64(tc.codec.SampleRate())
			out = out[len(out)/5:]
			control, alias := testenv.Goertzel(out, rate, 1000), testenv.Goertzel(out, rate, 2000)
			if control < 3000 {
				t.Fatalf("1 kHz at %.0f, want near 6000", control)
			}
			if tc.codec == PCMU && testenv.DB(alias, control) > -40 {
				t.Fatalf("2 kHz at %.1f dB of the 1 kHz control: the 6 kHz tone aliased", testenv.DB(alias, control))
			}
		})
	}
}

// A re-INVITE from G.711 to G.722 changes the rate of the frames: the
// partial frame of the old rate is flushed, and both sessions' audio keeps
// its format.
func TestSessionUpdateToG722(t *testing.T) {
	var got frames
	s := unstartedSession(t, SessionConfig{Codec: PCMU, OnAudio: got.add})
	src := newPeer(t, addrOf(s.conn)).addr()
	s.handleRTP(rtpFrame(t, 0, 1), src, 0)
	s.Update(Negotiated{Codec: G722, Remote: src, RemoteDirection: SendRecv})
	b := rtpFrame(t, 9, 1)
	setSeq(b, 1)
	s.handleRTP(b, src, frameDuration)
	if n := got.len(); n != 2 || len(got.snapshot()[0]) != FrameSamples || len(got.snapshot()[1]) != WideFrameSamples {
		t.Fatalf("%d frames: want one of 160 samples, then one of 320", n)
	}
}

// The RTP clock of G.722 is 8000: jitter of packets 20 ms and 160 units
// apart is zero, and a sender report's RTP time advances 8000 a second.
func TestG722RTPClock(t *testing.T) {
	s := unstartedSession(t, SessionConfig{Codec: G722, OnAudio: func([]int16) {}})
	src := newPeer(t, addrOf(s.conn)).addr()
	b := rtpFrame(t, 9, 1)
	for seq := range uint16(20) {
		setSeq(b, seq)
		s.handleRTP(b, src, time.Duration(seq)*frameDuration)
	}
	if j := s.Stats().Jitter; j != 0 {
		t.Fatalf("jitter %v of a steady 20 ms stream", j)
	}

	rtcpPeer := newPeer(t, netip0())
	s.mu.Lock()
	s.rtcpRemote = rtcpPeer.addr()
	s.mu.Unlock()
	s.sendFrame(0) // SR once we have sent
	lo := s.since()
	s.sendRTCP(time.Now(), false)
	hi := s.since()
	buf := make([]byte, 1500)
	rtcpPeer.conn.SetReadDeadline(time.Now().Add(waitLong))
	n, err := rtcpPeer.conn.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	pkts, err := rtcp.Unmarshal(buf[:n])
	if err != nil {
		t.Fatal(err)
	}
	sr := pkts[0].(*rtcp.SenderReport)
	units := int64(sr.RTPTime - s.tsBase)
	if units < lo.Nanoseconds()*8000/1e9 || units > hi.Nanoseconds()*8000/1e9+1 {
		t.Fatalf("SR RTP time %d units after the base, %v..%v after the start: not an 8000 Hz clock", units, lo, hi)
	}
	if sr.OctetCount != 160 {
		t.Fatalf("SR octets %d, want 160 for one G.722 packet", sr.OctetCount)
	}
}

// Comfort noise in a G.722 call is 16 kHz silence.
func TestG722ComfortNoiseFrames(t *testing.T) {
	var got frames
	s := unstartedSession(t, SessionConfig{Codec: G722, CNPayloadType: 13, OnAudio: got.add})
	src := newPeer(t, addrOf(s.conn)).addr()
	s.handleRTP(rtpFrame(t, 13, 1), src, 0)
	s.playout(3 * frameDuration)
	f := got.snapshot()
	if len(f) == 0 {
		t.Fatal("no silence frames")
	}
	if len(f[0]) != WideFrameSamples || slices.ContainsFunc(f[0], func(v int16) bool { return v != 0 }) {
		t.Fatalf("first silence frame of %d samples: want 320 zeros", len(f[0]))
	}
}

func TestFrameQueueKeepsRates(t *testing.T) {
	q := NewFrameQueue(4)
	q.Push(make([]int16, FrameSamples))
	q.Push(tone(16000, 0, WideFrameSamples, 100, 1000))
	q.Push(make([]int16, 200)) // a short 16 kHz frame
	for _, want := range []int{FrameSamples, WideFrameSamples, WideFrameSamples} {
		if f, ok := q.Pop(); !ok || len(f) != want {
			t.Fatalf("frame of %d samples, want %d", len(f), want)
		}
	}
}

// Two G.722 sessions over SRTP: the wideband tone goes through protected.
func TestG722SRTPSessions(t *testing.T) {
	pool := testPool(t)
	pa, pb := allocate(t, pool), allocate(t, pool)
	ka, kb := NewSRTPKey(1, AESCM128HMACSHA180), NewSRTPKey(1, AESCM128HMACSHA132)
	var atB frames
	startSession(t, SessionConfig{Ports: pa, Remote: addrOf(pb.RTP), Codec: G722, LocalKey: &ka, RemoteKey: &kb, Source: toneSource(16000, 6000, 1000)})
	b := startSession(t, SessionConfig{Ports: pb, Remote: addrOf(pa.RTP), Codec: G722, LocalKey: &kb, RemoteKey: &ka, OnAudio: atB.add})
	eventually(t, "B to receive 25 frames", func() bool { return atB.len() >= 25 })
	checkWideband(t, "over SRTP", joined(atB.snapshot())[WideFrameSamples:])
	if st := b.Stats(); st.PacketsDropped != 0 || st.Codec != G722 {
		t.Fatalf("stats %+v", st)
	}
}

package media

import (
	"bytes"
	"net/netip"
	"testing"
	"time"
)

// virtualPeer drives an unstarted session's receive path on a clock of its
// own, so the rules that depend on time (ssrcSwitchQuiet, the RTP timeout)
// are tested without sleeping.
type virtualPeer struct {
	t     testing.TB
	s     *Session
	src   netip.AddrPort
	now   time.Duration
	voice []byte
}

func newVirtualPeer(t testing.TB, s *Session) *virtualPeer {
	return &virtualPeer{t: t, s: s, src: newPeer(t, addrOf(s.conn)).addr(), voice: bytes.Repeat([]byte{0x81}, FrameSamples)}
}

func (v *virtualPeer) packet(pt uint8, seq uint16, ts, ssrc uint32, marker bool, payload []byte) {
	v.s.handleRTP(rtpBytes(pt, seq, ts, ssrc, marker, payload), v.src, v.now)
}

// audio sends one PCMU frame of the stream ssrc, then lets 20 ms pass.
func (v *virtualPeer) audio(ssrc uint32, seq uint16) {
	v.packet(0, seq, uint32(seq)*FrameSamples, ssrc, false, v.voice)
	v.wait(frameDuration)
}

// wait lets d pass, with the reader's ticks every 20 ms.
func (v *virtualPeer) wait(d time.Duration) {
	for end := v.now + d; v.now < end; {
		v.now = min(v.now+frameDuration, end)
		v.s.tick(v.now)
	}
}

// The SSRC rules of issue 11, pinned: telephone-events on a second SSRC are
// accepted while the audio plays; audio on a second live SSRC is refused;
// the audio SSRC changes after a quiet gap.
func TestSessionSSRCRules(t *testing.T) {
	frames := 0
	var got digits
	s := unstartedSession(t, SessionConfig{DTMFPayloadType: 101, OnAudio: func([]int16) { frames++ }, OnDTMF: got.add})
	v := newVirtualPeer(t, s)
	const audioSSRC, eventSSRC, otherSSRC = 0xA0D10, 0xE7E47, 0x07E4
	seq := uint16(0)
	for range 10 {
		v.audio(audioSSRC, seq)
		seq++
	}

	// Events on their own SSRC, sequence and timestamp, interleaved with
	// the audio, starting without a marker; the end is sent three times.
	v.packet(101, 7000, 123456, eventSSRC, false, dtmfPayload(5, false, 160))
	v.audio(audioSSRC, seq)
	seq++
	v.packet(101, 7001, 123456, eventSSRC, false, dtmfPayload(5, false, 320))
	for range 3 {
		v.packet(101, 7002, 123456, eventSSRC, false, dtmfPayload(5, true, 480))
	}
	v.audio(audioSSRC, seq)
	seq++
	if g := got.String(); g != "5" {
		t.Fatalf("events on a second SSRC: digits %q, want \"5\"", g)
	}
	if st := s.Stats(); st.PacketsDropped != 0 || st.RemoteSSRC != audioSSRC || st.PacketsLost != 0 {
		t.Fatalf("after events on a second SSRC: %+v", st)
	}

	// Events on the audio's SSRC whose timestamp lags the audio's.
	v.packet(101, seq, 0, audioSSRC, false, dtmfPayload(11, true, 400))
	seq++
	v.audio(audioSSRC, seq)
	seq++
	if g := got.String(); g != "5#" {
		t.Fatalf("event behind the audio's timestamp: digits %q", g)
	}

	// A second audio stream while the first one plays is refused.
	before := frames
	v.packet(0, 500, 0, otherSSRC, false, v.voice)
	v.audio(audioSSRC, seq)
	if st := s.Stats(); st.PacketsDropped != 1 || s.drops[dropWrongSSRC].Load() != 1 || st.RemoteSSRC != audioSSRC || frames != before+1 {
		t.Fatalf("second live audio SSRC: %+v, %d frames", st, frames-before)
	}

	// Once the first has been quiet for ssrcSwitchQuiet, the new one takes over.
	v.wait(ssrcSwitchQuiet)
	v.audio(otherSSRC, 501)
	v.audio(otherSSRC, 502)
	if st := s.Stats(); st.PacketsDropped != 1 || st.RemoteSSRC != otherSSRC || st.PacketsLost != 0 || frames != before+3 {
		t.Fatalf("audio SSRC change after a quiet gap: %+v, %d frames", st, frames-before)
	}
}

// A caller behind voice-activity detection sends comfort noise (RFC 3389)
// for longer than the RTP timeout: the call stays up, and the agent hears
// silence frames at the frame rate until the voice comes back. When the
// caller falls silent for good (no CN either), the timeout ends the call.
func TestSessionComfortNoise(t *testing.T) {
	var voiceFrames, silentFrames int
	s := unstartedSession(t, SessionConfig{CNPayloadType: 13, RTPTimeout: time.Second, OnAudio: func(pcm []int16) {
		if len(pcm) != FrameSamples {
			t.Fatalf("frame of %d samples", len(pcm))
		}
		if slicesAllZero(pcm) {
			silentFrames++
		} else {
			voiceFrames++
		}
	}})
	v := newVirtualPeer(t, s)
	const ssrc = 0xC0FFEE
	seq := uint16(0)
	for range 10 {
		v.audio(ssrc, seq)
		seq++
	}
	// Five seconds of silence, CN every 800 ms (first with the marker).
	start := v.now
	for i := range 7 {
		v.packet(13, seq, uint32(seq)*FrameSamples, ssrc, i == 0, []byte{60})
		seq++
		v.wait(800 * time.Millisecond)
	}
	cnTicks := int((v.now - start) / frameDuration)
	if s.stopping() {
		t.Fatalf("the RTP timeout ended a call sending comfort noise: %v", s.Err())
	}
	if voiceFrames != 10 || silentFrames < cnTicks-1 || silentFrames > cnTicks+1 {
		t.Fatalf("%d voice and %d silence frames over %d frame times of CN", voiceFrames, silentFrames, cnTicks)
	}
	if st := s.Stats(); st.PacketsIn != 17 || st.PacketsDropped != 0 || st.PacketsLost != 0 {
		t.Fatalf("stats %+v", st)
	}

	// The voice comes back: no more silence frames, then nothing at all.
	v.audio(ssrc, seq)
	silent := silentFrames
	v.wait(time.Second + 2*frameDuration)
	if voiceFrames != 11 || silentFrames != silent {
		t.Fatalf("after the voice resumed: %d voice, %d more silence frames", voiceFrames, silentFrames-silent)
	}
	if !s.stopping() || s.Err() != ErrRTPTimeout {
		t.Fatalf("no RTP timeout once the caller stopped sending: %v", s.Err())
	}
}

func slicesAllZero(pcm []int16) bool {
	for _, v := range pcm {
		if v != 0 {
			return false
		}
	}
	return true
}

// The receive path stays allocation-free for telephone-events on their own
// SSRC (plain and SRTP) and for comfort noise with its silence frames.
func TestEventAndComfortNoisePathsDoNotAllocate(t *testing.T) {
	for _, srtp := range []bool{false, true} {
		ours, theirs := NewSRTPKey(1, AESCM128HMACSHA180), NewSRTPKey(1, AESCM128HMACSHA180)
		frames, events := 0, 0
		cfg := SessionConfig{DTMFPayloadType: 101, CNPayloadType: 13, Metrics: NewMetrics(nil),
			OnAudio: func([]int16) { frames++ }, OnDTMF: func(DTMFEvent) { events++ }}
		if srtp {
			cfg.LocalKey, cfg.RemoteKey = &ours, &theirs
		}
		s := unstartedSession(t, cfg)
		v := newVirtualPeer(t, s)
		p := &srtpPeer{peer: &peer{t: t}}
		p.tx, _ = theirs.context(false)
		// One round: five frames of voice, a key press on another SSRC, a
		// CN packet and three frame times of silence.
		const rounds = 300
		var pkts [][]byte
		seq, evSeq := uint16(0), uint16(40000)
		for r := range rounds + 20 {
			for range 5 {
				pkts = append(pkts, rtpBytes(0, seq, uint32(seq)*FrameSamples, 1, false, v.voice))
				seq++
			}
			ts := uint32(r) * 4000
			pkts = append(pkts, rtpBytes(101, evSeq, ts, 2, true, dtmfPayload(byte(r%16), false, 160)),
				rtpBytes(101, evSeq+1, ts, 2, false, dtmfPayload(byte(r%16), true, 320)),
				rtpBytes(13, seq, uint32(seq)*FrameSamples, 1, false, []byte{50}))
			seq++
			evSeq += 2
		}
		if srtp {
			for i, b := range pkts {
				pkts[i], _ = p.tx.EncryptRTP(nil, b, nil)
			}
		}
		i := 0
		step := func() { // one packet, and the silence after a round's CN
			v.s.handleRTP(pkts[i], v.src, v.now)
			v.now += frameDuration / 4
			v.s.tick(v.now)
			if i++; i%8 == 0 {
				v.wait(3 * frameDuration)
			}
		}
		round := func() {
			for range 8 {
				step()
			}
		}
		for range 20 {
			round()
		}
		// Counted per round, so an allocation per key press shows; under
		// SRTP per packet, as in TestSRTPPathsDoNotAllocate, because pion's
		// sync.Pool allocates now and then under the race detector.
		if srtp {
			if n := testing.AllocsPerRun(rounds*8-1, step); n != 0 {
				t.Fatalf("SRTP event/CN receive path allocs/packet = %v", n)
			}
		} else if n := testing.AllocsPerRun(rounds-1, round); n != 0 {
			t.Fatalf("event/CN receive path allocs per round of 8 packets = %v", n)
		}
		if st := s.Stats(); st.PacketsDropped != 0 || st.PacketsLate != 0 || events < rounds || frames == 0 {
			t.Fatalf("srtp=%v: stats %+v, %d events, %d frames", srtp, st, events, frames)
		}
	}
}

// Under SRTP the events' SSRC has a cryptographic context of its own (pion
// keeps the rollover counter and the replay window per SSRC): it
// authenticates and decrypts with the peer's key, sequence numbers the
// audio already used are no replay, and a replay within it is refused.
func TestSRTPEventsHaveTheirOwnContext(t *testing.T) {
	ours, theirs := NewSRTPKey(1, AESCM128HMACSHA180), NewSRTPKey(1, AESCM128HMACSHA180)
	var got digits
	s := unstartedSession(t, SessionConfig{DTMFPayloadType: 101, LocalKey: &ours, RemoteKey: &theirs, OnDTMF: got.add})
	v := newVirtualPeer(t, s)
	tx, err := theirs.context(false)
	if err != nil {
		t.Fatal(err)
	}
	send := func(pt uint8, seq uint16, ts, ssrc uint32, payload []byte) []byte {
		b, err := tx.EncryptRTP(nil, rtpBytes(pt, seq, ts, ssrc, false, payload), nil)
		if err != nil {
			t.Fatal(err)
		}
		v.s.handleRTP(b, v.src, v.now)
		v.wait(frameDuration)
		return b
	}
	for seq := range uint16(10) {
		send(0, seq, uint32(seq)*FrameSamples, 1, v.voice)
	}
	send(101, 5, 800, 2, dtmfPayload(7, false, 160))
	end := send(101, 6, 800, 2, dtmfPayload(7, true, 320))
	v.s.handleRTP(end, v.src, v.now) // a replay
	v.wait(frameDuration)
	if g := got.String(); g != "7" {
		t.Fatalf("digits %q, want \"7\"", g)
	}
	if st := s.Stats(); st.PacketsIn != 12 || st.PacketsLate != 1 || st.PacketsDropped != 0 || st.RemoteSSRC != 1 {
		t.Fatalf("stats %+v", st)
	}
}

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
	seq++
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

package sipp_test

// HD voice against the real binary: a SIPp caller offering only G.722
// plays a G.722 stream that ffmpeg encoded (pcap/g722_4s.pcap: 6 kHz and
// a 1 kHz control) to a WebSocket agent (wsagent_test.go) that records
// what it hears and echoes it back.

import (
	"fmt"
	"testing"
	"time"

	"github.com/handoff/handoff/internal/testenv"
)

// TestSIPpG722Wideband: the G.722-only caller is answered with payload
// type 9 (the scenario checks the SDP), Handoff sends RTP back in the
// session's one codec, G.722 (counted under codec G722; the in-process
// tests in sip and test/e2e decode what comes back), and:
//   - an agent on l16-16000 hears the 6 kHz tone as strongly as the 1 kHz
//     control: real wideband, not upsampled narrowband;
//   - an agent on mulaw hears the 1 kHz control and, at 2 kHz, where an
//     unfiltered 6 kHz tone would fold to at 8 kHz, only the noise floor.
func TestSIPpG722Wideband(t *testing.T) {
	sipp := needSIPp(t)
	for _, format := range []string{"l16-16000", "mulaw"} {
		t.Run(format, func(t *testing.T) {
			a := newWSAgent(t, true)
			h := startHandoffWith(t, handoffOptions{extra: fmt.Sprintf("agent:\n  mode: websocket\n  url: %s\n  format: %s\n", a.url, format)})
			tr := h.create(t, "sipp-hd-"+format, "PHONE_NUMBER")
			h.runSIPp(t, sipp, 1, "uac_g722.xml", 60*time.Second, "-s", tr.PhoneNumber.TransferNumber, "-m", "1")

			m := h.waitIdle(t) // the call's end is recorded once it is gone
			if got := h.get(t, tr.ID); got.Status != "COMPLETED" || got.EndReason != "caller_hangup" {
				t.Errorf("status %q endReason %q, want COMPLETED caller_hangup", got.Status, got.EndReason)
			}
			if n := m.get(`handoff_media_sessions_total{codec="G722"}`); n != 1 {
				t.Errorf("G.722 sessions = %v, want 1", n)
			}
			// What went out is G.722: the session's one codec. How much is
			// up to the scheduler (a starved pacer skips frames), so only
			// that it did.
			if out := m.get(`handoff_rtp_packets_total{direction="out"}`); out == 0 {
				t.Error("no RTP went back to the caller")
			}
			h.stop(t)

			encoding, rate, codec, pcm, echoed := a.heard()
			t.Logf("agent: %s at %d Hz, codec %s, %d samples, %d payloads echoed", encoding, rate, codec, len(pcm), echoed)
			if codec != "G722/16000" {
				t.Errorf("start.handoff.codec %q, want G722/16000", codec)
			}
			// 4 s were sent; a loaded machine may drop some on the way
			// (the agent link drops the oldest frames rather than fall
			// behind), which the tone checks tolerate.
			if len(pcm) < rate || echoed == 0 {
				t.Fatalf("the agent heard %d samples (%d payloads echoed) of 4 s at %d Hz", len(pcm), echoed, rate)
			}
			checkAgentAudio(t, format, rate, pcm[rate/4:min(len(pcm), 3*rate)])
		})
	}
}

// checkAgentAudio applies the wideband or the no-aliasing check to what
// the agent heard.
func checkAgentAudio(t *testing.T, format string, rate int, pcm []int16) {
	t.Helper()
	r := float64(rate)
	control := testenv.Goertzel(pcm, r, 1000)
	if control < 1000 {
		t.Fatalf("1 kHz control at %.0f: the caller's audio did not arrive", control)
	}
	if format == "l16-16000" {
		tone := testenv.Goertzel(pcm, r, 6000)
		t.Logf("6 kHz at %.0f, 1 kHz at %.0f (%.1f dB)", tone, control, testenv.DB(tone, control))
		if d := testenv.DB(tone, control); d < -3 || d > 3 {
			t.Fatalf("6 kHz tone at %.1f dB of the 1 kHz control, want within 3 dB: not wideband", d)
		}
		return
	}
	alias := testenv.Goertzel(pcm, r, 2000)
	floor := max(testenv.Goertzel(pcm, r, 1700), testenv.Goertzel(pcm, r, 2500), testenv.Goertzel(pcm, r, 3000))
	t.Logf("1 kHz at %.0f, 2 kHz at %.1f dB of it, noise floor (1.7, 2.5, 3 kHz) at %.1f dB", control, testenv.DB(alias, control), testenv.DB(floor, control))
	// Unfiltered, the alias would be about as strong as the control (0 dB);
	// -20 dB leaves room for the splatter of frames a loaded machine drops.
	if testenv.DB(alias, control) > -20 || alias > 2*floor {
		t.Fatalf("2 kHz at %.1f dB of the control, noise floor at %.1f dB: the 6 kHz tone aliased", testenv.DB(alias, control), testenv.DB(floor, control))
	}
}

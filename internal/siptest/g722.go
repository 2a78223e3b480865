package siptest

import (
	"time"

	"github.com/pion/rtp"

	"github.com/handoff/handoff/internal/testenv"
	"github.com/handoff/handoff/media"
)

// TalkG722 sends the call's G.722 stream (payload type 9, 20 ms packets of
// tones at freqs, each of amplitude 5000, at 16 kHz) every 20 ms until
// stop closes; it is the only writer of the call's RTP while it runs. The
// timestamp advances 160 a packet: G.722's RTP clock is 8000 (RFC 3551).
// The returned channel closes when it has stopped.
func (c *Call) TalkG722(stop <-chan struct{}, freqs ...float64) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		var enc media.G722Encoder
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for f := 0; ; f++ {
			pcm := testenv.Tone(16000, f*media.WideFrameSamples, media.WideFrameSamples, 5000, freqs...)
			c.SendRTP(9, f == 0, enc.Encode(nil, pcm))
			c.TS += 160
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	return done
}

// ReadG722 decodes the next n packets the gateway sends, failing the test
// on any that is not G.722 (payload type 9, 160 octets).
func (c *Call) ReadG722(n int) []int16 {
	c.P.T.Helper()
	var dec media.G722Decoder
	var pcm []int16
	c.ReadRTP(10*time.Second, func(pkt *rtp.Packet) bool {
		if pkt.PayloadType != 9 || len(pkt.Payload) != 160 {
			c.P.T.Fatalf("packet of payload type %d, %d octets: want G.722 (9), 160", pkt.PayloadType, len(pkt.Payload))
		}
		pcm = dec.Decode(pcm, pkt.Payload)
		n--
		return n == 0
	})
	return pcm
}

package siptest

import (
	"time"

	"github.com/pion/rtp"

	"github.com/handoff/handoff/internal/testenv"
	"github.com/handoff/handoff/media"
)

// TalkRTP sends payload(f), f = 0, 1, ..., as payload type pt every 20 ms
// until stop closes, the timestamp 160 further each time (20 ms on the
// 8000 Hz clock of G.711 and of G.722 alike), the first packet marked; it
// is the only writer of the call's RTP while it runs. The returned channel
// closes when it has stopped.
func (c *Call) TalkRTP(stop <-chan struct{}, pt uint8, payload func(f int) []byte) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for f := 0; ; f++ {
			c.SendRTP(pt, f == 0, payload(f))
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

// TalkG722 talks (TalkRTP) G.722, payload type 9: tones at freqs, each of
// amplitude 5000, at 16 kHz.
func (c *Call) TalkG722(stop <-chan struct{}, freqs ...float64) <-chan struct{} {
	var enc media.G722Encoder
	return c.TalkRTP(stop, 9, func(f int) []byte {
		return enc.Encode(nil, testenv.Tone(16000, f*media.WideFrameSamples, media.WideFrameSamples, 5000, freqs...))
	})
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

package sip

import (
	"math"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/pion/rtp"

	"github.com/handoff/handoff/internal/siptest"
	"github.com/handoff/handoff/internal/testenv"
	"github.com/handoff/handoff/media"
	"github.com/handoff/handoff/transfer"
)

// A caller offering G.711 first and G.722 gets G.722 in the answer, and the
// packets it receives are G.722 too (one decision, not two): the loopback
// agent's echo of its wideband tone comes back with the 6 kHz tone intact.
func TestG722CallIsWidebandEndToEnd(t *testing.T) {
	g := newGateway(t)
	g.createSIP("hd")
	p := newPhone(t)
	c := p.MustAnswer(g.srv.TransferURI("hd"), p.Offer("0 8 9 101"))
	answer := string(c.Dlg.InviteResponse.Body())
	if !strings.Contains(answer, " RTP/AVP 9 101") || !strings.Contains(answer, "a=rtpmap:9 G722/8000") {
		t.Fatalf("answer does not name G.722 alone:\n%s", answer)
	}
	g.WaitStatus("hd", transfer.StatusOngoing)
	stop := make(chan struct{})
	talking := c.TalkG722(stop, 6000, 1000)
	echo := c.ReadG722(75) // the 400 ms greeting, then the echo
	close(stop)
	<-talking
	checkTones(t, echo[len(echo)/2:], 16000, 6000, 1000)

	c.SendDTMF('#') // the loopback agent finishes; the return is BYE
	p.WaitBye()
	g.WaitStatus("hd", transfer.StatusCompleted)
}

// checkTones: the tone at want is there, within 6 dB of the control.
func checkTones(t *testing.T, pcm []int16, rate, want, control float64) {
	t.Helper()
	w, c := testenv.Goertzel(pcm, rate, want), testenv.Goertzel(pcm, rate, control)
	t.Logf("%v Hz at %.0f, %v Hz at %.0f (%.1f dB)", want, w, control, c, testenv.DB(w, c))
	if c < 500 || math.Abs(testenv.DB(w, c)) > 6 {
		t.Fatalf("%v Hz at %.0f, %v Hz control at %.0f: want both, within 6 dB", want, w, control, c)
	}
}

// Codecs narrows what is answered: without G.722 a G.722-only caller gets
// 488; without comfort noise the answer leaves CN out.
func TestCodecPreferencesConfigured(t *testing.T) {
	g := newGateway(t, func(c *Config) {
		c.Codecs = []media.Codec{media.PCMU, media.PCMA}
		c.DisableComfortNoise = true
	})
	g.createSIP("nb")
	p := newPhone(t)
	_, err := p.Invite(g.srv.TransferURI("nb"), p.Offer("9 101"), answerNone)
	if statusOf(err) != sip.StatusNotAcceptableHere {
		t.Fatalf("G.722-only offer: %v, want 488", err)
	}
	c := p.MustAnswer(g.srv.TransferURI("nb"), p.Offer("9 0 101 13"))
	answer := string(c.Dlg.InviteResponse.Body())
	if !strings.Contains(answer, " RTP/AVP 0 101\r\n") || strings.Contains(answer, "CN/8000") {
		t.Fatalf("answer:\n%s", answer)
	}
	c.Hangup()
}

// An INVITE without SDP gets our offer, G.722 first; an answer choosing
// G.722 in the ACK makes a G.722 session.
func TestDelayedOfferG722(t *testing.T) {
	g := newGateway(t)
	g.createSIP("late")
	p := newPhone(t)
	c, err := p.Invite(g.srv.TransferURI("late"), nil, answerNone)
	if err != nil {
		t.Fatal(err)
	}
	offer := string(c.Dlg.InviteResponse.Body())
	if !strings.Contains(offer, " RTP/AVP 9 0 8 101 13\r\n") || !strings.Contains(offer, "a=rtpmap:9 G722/8000") {
		t.Fatalf("our offer:\n%s", offer)
	}
	d, err := media.ParseSDP([]byte(offer))
	if err != nil {
		t.Fatal(err)
	}
	c.Remote = net.UDPAddrFromAddrPort(d.Addr)
	c.AckAnswer(p.Offer("9 101"))
	g.WaitStatus("late", transfer.StatusOngoing)
	c.ReadG722(5)
	c.Hangup()
}

// An INVITE return from a G.722 caller to a destination that answers PCMA
// only: the bridge transcodes both ways. The caller's 1 kHz reaches the
// destination in A-law with its 6 kHz tone filtered out rather than folded
// to 2 kHz; the destination's 660 Hz reaches the caller in G.722.
func TestInviteReturnG722ToPCMA(t *testing.T) {
	g := newGateway(t)
	dest := siptest.NewDestination(t) // answers "8 101" to anything
	g.createReturn("hd-inv", transfer.SIPReturn{ReturnTransferType: transfer.ReturnInvite, ReturnURI: dest.URI()})
	p := newPhone(t)
	c := p.MustAnswer(g.srv.TransferURI("hd-inv"), p.Offer("9 101"))
	g.WaitStatus("hd-inv", transfer.StatusOngoing)
	c.SendDTMF('#')
	siptest.Receive(t, dest.Answered, "the return call never reached the destination")
	g.WaitReturn("hd-inv")
	offer := dest.Offer()
	if len(offer.Codecs) == 0 || offer.Codecs[0] != media.G722 {
		t.Fatalf("the return INVITE offers %v, want G.722 first", offer.Codecs)
	}

	destCall := dest.RTPCall()
	stop := make(chan struct{})
	talking := c.TalkG722(stop, 6000, 1000)
	destTalking := destCall.TalkRTP(stop, 8, func(f int) []byte { // A-law, 660 Hz
		b := make([]byte, media.FrameSamples)
		media.EncodeALaw(b, testenv.Tone(8000, f*media.FrameSamples, media.FrameSamples, 5000, 660))
		return b
	})
	var alaw []int16
	destCall.ReadRTP(10*time.Second, func(pkt *rtp.Packet) bool {
		if pkt.PayloadType != 8 {
			t.Fatalf("destination got payload type %d, want PCMA (8)", pkt.PayloadType)
		}
		pcm := make([]int16, len(pkt.Payload))
		media.DecodeALaw(pcm, pkt.Payload)
		alaw = append(alaw, pcm...)
		return len(alaw) >= 50*media.FrameSamples
	})
	atCaller := c.ReadG722(50)
	close(stop)
	<-talking
	<-destTalking

	alaw = alaw[len(alaw)/2:]
	control, alias := testenv.Goertzel(alaw, 8000, 1000), testenv.Goertzel(alaw, 8000, 2000)
	t.Logf("at the destination: 1 kHz at %.0f, 2 kHz at %.1f dB of it", control, testenv.DB(alias, control))
	if control < 500 || testenv.DB(alias, control) > -20 { // unfiltered, the alias would be about 0 dB
		t.Fatalf("at the destination: 1 kHz at %.0f, 2 kHz at %.1f dB of it: want the tone, no alias", control, testenv.DB(alias, control))
	}
	a := testenv.Goertzel(atCaller[len(atCaller)/2:], 16000, 660)
	t.Logf("at the caller: 660 Hz at %.0f", a)
	if a < 500 {
		t.Fatalf("the destination's 660 Hz reached the caller at %.0f", a)
	}

	c.Hangup()
	siptest.Receive(t, dest.Byes, "the destination got no BYE")
}

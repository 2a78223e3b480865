package e2e

import (
	"testing"

	"github.com/handoff/handoff/agent"
	"github.com/handoff/handoff/agent/refagent"
	"github.com/handoff/handoff/internal/testenv"
	"github.com/handoff/handoff/transfer"
)

// A G.722 caller and the reference agent, which echoes what it hears in
// the announced format. On l16-16000 the echo keeps the 6 kHz tone: the
// caller's 16 kHz audio reached the agent as it was and the agent's went
// back to G.722 with no detour through 8 kHz. On mulaw the echo keeps the
// 1 kHz control and loses the 6 kHz tone, which also does not come back
// folded to 2 kHz.
func TestG722EchoThroughTheAgent(t *testing.T) {
	for _, tc := range []struct {
		format   agent.Format
		wideband bool
	}{{agent.FormatL16Wide, true}, {agent.FormatMulaw, false}} {
		t.Run(tc.format.String(), func(t *testing.T) {
			g := newGateway(t, &agent.WebSocket{URL: refAgent(t, refagent.Options{}), Format: tc.format})
			id := "e2e-hd-" + tc.format.String()
			g.create(id, transfer.ReturnBye)
			p := newPhone(t)
			c := p.MustAnswer(g.Srv.TransferURI(id), p.Offer("9 101"))
			g.WaitStatus(id, transfer.StatusOngoing)

			stop := make(chan struct{})
			talking := c.TalkG722(stop, 6000, 1000)
			echo := c.ReadG722(75)
			close(stop)
			<-talking
			echo = echo[len(echo)/2:]
			tone, control, alias := testenv.Goertzel(echo, 16000, 6000), testenv.Goertzel(echo, 16000, 1000), testenv.Goertzel(echo, 16000, 2000)
			t.Logf("echo: 1 kHz at %.0f, 6 kHz at %.1f dB, 2 kHz at %.1f dB of it", control, testenv.DB(tone, control), testenv.DB(alias, control))
			switch {
			case control < 500:
				t.Fatalf("1 kHz control at %.0f: no echo", control)
			case tc.wideband && testenv.DB(tone, control) < -6:
				t.Fatalf("6 kHz at %.1f dB of the control: the echo went through 8 kHz", testenv.DB(tone, control))
			case !tc.wideband && (testenv.DB(tone, control) > -20 || testenv.DB(alias, control) > -20): // unfiltered: about 0 dB
				t.Fatalf("6 kHz at %.1f dB, 2 kHz at %.1f dB of the control: want both gone", testenv.DB(tone, control), testenv.DB(alias, control))
			}
			c.SendDTMF('#')
			p.WaitBye()
			g.WaitStatus(id, transfer.StatusCompleted)
		})
	}
}

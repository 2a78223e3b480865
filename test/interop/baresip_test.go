package interop

// baresip (Debian's package, v1.0.0 on the CI image) against Handoff.
// What baresip does on its own, the tests take as it comes and log; what
// Handoff must do, they assert.

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/handoff/handoff/agent"
	"github.com/handoff/handoff/internal/siptest"
	"github.com/handoff/handoff/internal/testenv"
	"github.com/handoff/handoff/transfer"
)

// greetingHz is the loopback agent's greeting tone (agent/loopback.go).
const greetingHz = 440

// TestBaresipCallsTransfer: baresip calls a SIP transfer (BYE return)
// with its default offer (Opus, G.722, PCMU, PCMA, telephone-event);
// Handoff answers a codec of that offer; baresip talks (a 1 kHz tone from
// aufile) and hears the agent (the loopback's 440 Hz greeting, then the
// echo of its own tone, which its sndfile filter dumps); it presses # as
// RFC 4733; the agent finishes and Handoff hangs up with a BYE.
func TestBaresipCallsTransfer(t *testing.T) {
	bin := needBaresip(t)
	g := newGateway(t)
	b := startBaresip(t, bin)
	uri := g.create("baresip-bye", transfer.ReturnBye, "")

	b.command("dial", uri)
	b.waitEvent("CALL_ESTABLISHED", uri, 10*time.Second)
	checkDefaultOffer(t, b)
	codec := negotiated(t, b)
	t.Logf("codec from baresip's offer: %s", codec)
	if codec != "PCMU" && codec != "PCMA" && codec != "G722" {
		t.Errorf("negotiated %s, want a codec Handoff speaks (PCMU, PCMA or G722)", codec)
	}

	// 1.5 s of baresip's voice at the agent, then #.
	heardTone(t, g, 75)
	b.command("sndcode", "#")
	b.waitEvent("CALL_CLOSED", uri, 10*time.Second)
	if bye, ok := b.find("BYE "); !ok || bye.to != fmt.Sprintf("127.0.0.1:%d", b.sipPort) {
		t.Errorf("baresip's trace has no BYE from Handoff (%+v)", bye)
	}

	tr := g.WaitStatus("baresip-bye", transfer.StatusCompleted)
	if tr.EndReason != "agent_finished" || tr.OutputContext == nil || tr.OutputContext.TransferType != agent.TransferSystem {
		t.Errorf("endReason %q outputContext %+v, want agent_finished, SYSTEM", tr.EndReason, tr.OutputContext)
	}
	checkDigits(t, g, "#")
	if n := testenv.MetricValue(t, g.reg, "handoff_rtp_packets_total", "direction=in"); n < 75 {
		t.Errorf("RTP packets in = %v, want >= 75", n)
	}

	// What baresip heard, once it has closed its dump.
	b.quit()
	w, err := readWAV(b.decodedDump())
	if err != nil {
		t.Fatal(err)
	}
	greeting, loud := w.frames(greetingHz)
	echo, _ := w.frames(callerToneHz)
	t.Logf("baresip heard %d loud 20 ms frames at %d Hz: %d of the greeting, %d of its echoed voice", loud, w.rate, greeting, echo)
	if greeting < 10 || echo < 25 {
		t.Errorf("baresip heard %d frames of the greeting and %d of its echo, want >= 10 and >= 25", greeting, echo)
	}
}

// TestBaresipFollowsRefer: baresip is the IVR of a REFER return. It calls
// the transfer, presses 1, 2, #; Handoff refers it to the returnUri (an
// in-process target); baresip accepts (202, NOTIFY 100 Trying), calls the
// target, and on its 200 reports NOTIFY 200 OK; Handoff records the
// return succeeded and hangs up on baresip's first call.
//
// baresip 1.0.0 keeps the Refer-To's URI headers (the outcome, as
// Handoff's default context_encoding "headers" sends it) in the new
// INVITE's Request-URI and To instead of turning them into headers (RFC
// 3261 §19.1.5), and adds no Referred-By; the target reads the outcome
// wherever it arrives, and the test logs which.
func TestBaresipFollowsRefer(t *testing.T) {
	bin := needBaresip(t)
	g := newGateway(t)
	tg := newTarget(t)
	b := startBaresip(t, bin)
	uri := g.create("baresip-refer", transfer.ReturnRefer, "sip:ivr-queue@"+tg.addr.String())

	b.command("dial", uri)
	b.waitEvent("CALL_ESTABLISHED", uri, 10*time.Second)
	heardTone(t, g, 25)
	b.command("sndcode", "12#")

	inv := siptest.Receive(t, tg.invites, "baresip's INVITE to the Refer-To target")
	for name, want := range map[string]string{"X-Handoff-Transfer-Type": "SYSTEM", "X-Handoff-Var-digits": "12"} {
		if got, where := outcome(inv, name); got != want {
			t.Errorf("the target's INVITE carries %s=%q (%s), want %q:\n%s", name, got, where, want, inv)
		} else {
			t.Logf("%s=%s reached the target %s", name, got, where)
		}
	}
	b.waitEvent("CALL_CLOSED", uri, 10*time.Second)

	tr := g.WaitReturn("baresip-refer")
	if rr := tr.Return; rr.Method != transfer.ReturnRefer || rr.Result != transfer.ReturnSucceeded || rr.SIPCode != 200 || rr.Fallback != "" {
		t.Errorf("returnResult %+v, want REFER succeeded 200 without fallback", *rr)
	}
	tr = g.WaitStatus("baresip-refer", transfer.StatusCompleted)
	if tr.EndReason != "agent_finished" || tr.OutputContext == nil || tr.OutputContext.TransferVariables["digits"] != "12" {
		t.Errorf("endReason %q outputContext %+v, want agent_finished, digits 12", tr.EndReason, tr.OutputContext)
	}
	checkDigits(t, g, "12#")

	// The transferred call is a real one: baresip's RTP reaches the target,
	// and its hang-up on quit does too.
	if n := tg.rtpPackets(500 * time.Millisecond); n == 0 {
		t.Errorf("no RTP from baresip at the Refer-To target")
	}
	b.quit()
	siptest.Receive(t, tg.byes, "baresip's BYE to the Refer-To target")
}

// checkDefaultOffer: baresip offered what its default configuration
// does, so the answer was a real choice among codecs.
func checkDefaultOffer(t *testing.T, b *baresip) {
	t.Helper()
	inv, ok := b.find("INVITE ")
	if !ok {
		t.Fatal("no INVITE in baresip's SIP trace")
	}
	for _, want := range []string{"opus/48000/2", "G722/8000", "PCMU/8000", "PCMA/8000", "telephone-event/8000"} {
		if !strings.Contains(inv.text, " "+want) {
			t.Errorf("baresip's offer lacks %s:\n%s", want, inv.text)
		}
	}
}

var encoder = regexp.MustCompile(`encode: (\S+) `)

// negotiated is the codec baresip sends with (its audio_debug report).
func negotiated(t *testing.T, b *baresip) string {
	t.Helper()
	report := b.command("audio_debug", "")
	m := encoder.FindStringSubmatch(report)
	if m == nil {
		t.Fatalf("no encoder in baresip's audio_debug:\n%s", report)
	}
	return m[1]
}

// heardTone waits until the agent has heard n frames of baresip's tone.
func heardTone(t *testing.T, g *gateway, n int) {
	t.Helper()
	testenv.Eventually(t, fmt.Sprintf("the agent hears %d frames of baresip's tone", n), func() bool {
		_, tone, _ := g.agent.heard()
		return tone >= n
	})
}

// checkDigits: the agent got exactly these digits, each as RFC 4733, and
// none of baresip's packets was taken for a rival stream.
func checkDigits(t *testing.T, g *gateway, want string) {
	t.Helper()
	_, _, digits := g.agent.heard()
	var got strings.Builder
	for _, d := range digits {
		got.WriteRune(d.Digit)
		if d.Source != "rfc4733" {
			t.Errorf("digit %c arrived by %s, want rfc4733", d.Digit, d.Source)
		}
	}
	if got.String() != want {
		t.Errorf("the agent got digits %q, want %q", got.String(), want)
	}
	if n := testenv.MetricValue(t, g.reg, "handoff_rtp_dropped_packets_total", "reason=wrong_ssrc"); n != 0 {
		t.Errorf("RTP packets dropped for their SSRC = %v, want 0", n)
	}
}

// outcome finds a Refer-To URI header in the transferee's INVITE: as a
// header (RFC 3261 §19.1.5) or left in the Request-URI.
func outcome(inv *sip.Request, name string) (value, where string) {
	if h := inv.GetHeader(name); h != nil {
		return h.Value(), "as a header"
	}
	if v, ok := inv.Recipient.Headers.Get(name); ok {
		return v, "in the Request-URI"
	}
	return "", "nowhere"
}

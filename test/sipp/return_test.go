package sipp_test

// The returns of issue 4 on the wire, with SIPp as the carrier: the IVR
// receiving Handoff's REFER (accepted with NOTIFYs, or declined), and a
// return destination that challenges Handoff's INVITE.

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/handoff/handoff/internal/testenv"
)

// TestSIPpReferReturn: the IVR (uac_refer_ok.xml) calls a REFER transfer,
// presses 1, 2, #; Handoff refers it to the returnUri with the outcome on
// the Refer-To; the IVR answers 202, NOTIFY 100 Trying, NOTIFY 200 OK
// (terminated) and Handoff hangs up.
func TestSIPpReferReturn(t *testing.T) {
	sipp := needSIPp(t)
	h := startHandoff(t)
	base := h.goroutines(t)
	port := testenv.FreePort(t, true) // the IVR's SIP port, also the returnUri's
	returnURI := fmt.Sprintf("sip:ivr-queue@127.0.0.1:%d", port)
	tr := h.createSIP(t, "sipp-refer-ok", fmt.Sprintf(`{"returnTransferType":"REFER","returnUri":%q}`, returnURI))
	if tr.SIP == nil || tr.SIP.TransferURI == "" {
		t.Fatalf("no sip.transferUri in %+v", tr)
	}

	run := h.startSIPp(t, sipp, "uac_refer_ok.xml", port, 60*time.Second, "-s", tr.ID, "-m", "1")
	run.wait(t, 1)

	// SIPp checked the Refer-To's shape; here its exact target.
	referTo := header(t, run.messages(t), "REFER", "Refer-To")
	want := "<" + returnURI + "?X-Handoff-Transfer-Type=SYSTEM&X-Handoff-Task=sipp&X-Handoff-Var-digits=12>"
	if referTo != want {
		t.Errorf("Refer-To: %s, want %s", referTo, want)
	}

	// Handoff answers the final NOTIFY before it sends its BYE.
	notified, bye := -1, -1
	for i, m := range sippMessages(run.messages(t)) {
		switch {
		case m.received && m.first == "SIP/2.0 200 OK" && strings.Contains(m.text, "CSeq: 3 NOTIFY"):
			notified = i
		case m.received && strings.HasPrefix(m.first, "BYE ") && bye < 0:
			bye = i
		}
	}
	if notified < 0 || bye < 0 {
		t.Errorf("SIPp's log lacks the 200 to the final NOTIFY (%d) or Handoff's BYE (%d)", notified, bye)
	} else if bye < notified {
		t.Errorf("Handoff's BYE overtook its 200 to the final NOTIFY")
	}

	got := h.get(t, tr.ID)
	checkCompleted(t, got)
	rr := got.ReturnResult
	if rr == nil {
		t.Fatalf("no returnResult: %+v", got)
	}
	if rr.Method != "REFER" || rr.Result != "succeeded" || rr.SIPCode != 200 || rr.Fallback != "" {
		t.Errorf("returnResult %+v, want REFER succeeded 200 without fallback", *rr)
	}
	if rr.StartedAt == "" || rr.EndedAt == "" {
		t.Errorf("returnResult startedAt %q endedAt %q, want both set", rr.StartedAt, rr.EndedAt)
	}

	m := h.waitIdle(t)
	if n := m.get(`handoff_sip_returns_total{result="succeeded",type="REFER"}`); n != 1 {
		t.Errorf("REFER returns succeeded = %v, want 1", n)
	}
	h.client.CloseIdleConnections()
	h.waitGoroutines(t, base+4)
	h.stop(t)
}

// TestSIPpReferRejected: the IVR (uac_refer_603.xml) declines the REFER
// with 603; Handoff falls back to BYE and records the failure.
func TestSIPpReferRejected(t *testing.T) {
	sipp := needSIPp(t)
	h := startHandoff(t)
	base := h.goroutines(t)
	port := testenv.FreePort(t, true)
	returnURI := fmt.Sprintf("sip:ivr-queue@127.0.0.1:%d", port)
	tr := h.createSIP(t, "sipp-refer-603", fmt.Sprintf(`{"returnTransferType":"REFER","returnUri":%q}`, returnURI))

	h.startSIPp(t, sipp, "uac_refer_603.xml", port, 60*time.Second, "-s", tr.ID, "-m", "1").wait(t, 1)

	got := h.get(t, tr.ID)
	checkCompleted(t, got)
	rr := got.ReturnResult
	if rr == nil {
		t.Fatalf("no returnResult: %+v", got)
	}
	if rr.Method != "REFER" || rr.Result != "failed" || rr.SIPCode != 603 || rr.Fallback != "BYE" {
		t.Errorf("returnResult %+v, want REFER failed 603 with fallback BYE", *rr)
	}
	if rr.Reason == "" {
		t.Errorf("returnResult.reason empty, want why it failed")
	}

	m := h.waitIdle(t)
	if n := m.get(`handoff_sip_returns_total{result="failed",type="REFER"}`); n != 1 {
		t.Errorf("REFER returns failed = %v, want 1", n)
	}
	h.client.CloseIdleConnections()
	h.waitGoroutines(t, base+4)
	h.stop(t)
}

// The return destination's credentials; uas_return_401.xml verifies the
// digest with the same password.
const (
	retUser     = "ret"
	retPassword = "sipp-ret-Pa55"
)

// TestSIPpInviteReturnWithDigest: a caller (uac_return_call.xml) dials an
// INVITE transfer, presses 1, 2, #; Handoff calls the returnUri, a SIPp
// destination (uas_return_401.xml) that challenges with 401, accepts the
// authenticated retry, answers PCMA, plays 4 s of RTP and hangs up;
// Handoff then hangs up on the caller. The password never shows.
func TestSIPpInviteReturnWithDigest(t *testing.T) {
	sipp := needSIPp(t)
	h := startHandoffWith(t, handoffOptions{logLevel: "debug"}) // the most the log could leak
	base := h.goroutines(t)
	uasPort := testenv.FreePort(t, true)
	returnURI := fmt.Sprintf("sip:%s@127.0.0.1:%d", retUser, uasPort)
	tr := h.createSIP(t, "sipp-invite-401", fmt.Sprintf(
		`{"returnTransferType":"INVITE","returnUri":%q,"returnInviteAuthentication":{"username":%q,"password":%q}}`,
		returnURI, retUser, retPassword))

	dest := h.startSIPp(t, sipp, "uas_return_401.xml", uasPort, 60*time.Second, "-m", "1")
	caller := h.startSIPp(t, sipp, "uac_return_call.xml", 0, 60*time.Second, "-s", tr.ID, "-m", "1")
	caller.wait(t, 1)
	dest.wait(t, 1)

	got := h.get(t, tr.ID)
	checkCompleted(t, got)
	rr := got.ReturnResult
	if rr == nil {
		t.Fatalf("no returnResult: %+v", got)
	}
	if rr.Method != "INVITE" || rr.Result != "succeeded" || rr.SIPCode != 200 || rr.Fallback != "" {
		t.Errorf("returnResult %+v, want INVITE succeeded 200 without fallback", *rr)
	}
	if rr.BridgeEndedAt == "" {
		t.Errorf("returnResult.bridgeEndedAt empty, want when the bridged call ended")
	}

	// The digest on the wire: the retry answers the challenge (SIPp's
	// verifyauth checked the response) and nothing carries the password.
	msgs := dest.messages(t)
	auth := header(t, msgs[strings.Index(msgs, "WWW-Authenticate"):], "INVITE", "Authorization")
	for _, want := range []string{`username="ret"`, `realm="sipp"`, "qop=auth", "response="} {
		if !strings.Contains(strings.ReplaceAll(auth, `qop="auth"`, "qop=auth"), want) {
			t.Errorf("Authorization %q lacks %s", auth, want)
		}
	}
	logb, err := os.ReadFile(h.log)
	if err != nil {
		t.Fatal(err)
	}
	for name, text := range map[string]string{"handoff log": string(logb), "destination SIP messages": msgs, "caller SIP messages": caller.messages(t)} {
		if strings.Contains(text, retPassword) {
			t.Errorf("the digest password appears in the %s", name)
		}
	}
	// The destination's RTP reached handoff on the return leg.
	if !strings.Contains(string(logb), `"msg":"rtp latched"`) || !regexpLatchedReturn.Match(logb) {
		t.Errorf("no \"rtp latched\" line of the return leg in handoff's log: the destination's RTP never arrived")
	}

	m := h.waitIdle(t)
	if n := m.get(`handoff_sip_returns_total{result="succeeded",type="INVITE"}`); n != 1 {
		t.Errorf("INVITE returns succeeded = %v, want 1", n)
	}
	// In: the caller's 4 s + digits + 6 s (or until the BYE) and the
	// destination's 4 s; out: greeting, echo and bridged audio to the
	// caller, and the caller's audio to the destination. Bounds leave room
	// for the edges of a busy machine.
	in, out := m.get(`handoff_rtp_packets_total{direction="in"}`), m.get(`handoff_rtp_packets_total{direction="out"}`)
	t.Logf("RTP packets: %v in, %v out", in, out)
	if in < 200+150+180 {
		t.Errorf("RTP packets in = %v, want >= %v (caller 200 + 150 bridged, destination 180)", in, 200+150+180)
	}
	if out < 200+150+150 {
		t.Errorf("RTP packets out = %v, want >= %v", out, 200+150+150)
	}
	h.client.CloseIdleConnections()
	h.waitGoroutines(t, base+4)
	h.stop(t)
}

var regexpLatchedReturn = regexp.MustCompile(`"msg":"rtp latched"[^\n]*"leg":"return"|"leg":"return"[^\n]*"msg":"rtp latched"`)

// checkCompleted: the agent finished the call with SYSTEM and digits 12
// (the loopback agent on 1, 2, #).
func checkCompleted(t *testing.T, got transferView) {
	t.Helper()
	if got.Status != "COMPLETED" || got.EndReason != "agent_finished" {
		t.Errorf("status %q endReason %q, want COMPLETED agent_finished", got.Status, got.EndReason)
	}
	if got.CallReceivedAt == "" || got.CompletedAt == "" {
		t.Errorf("callReceivedAt %q completedAt %q, want both set", got.CallReceivedAt, got.CompletedAt)
	}
	if oc := got.OutputContext; oc == nil || oc.TransferType != "SYSTEM" || oc.TransferVariables["digits"] != "12" {
		t.Errorf("outputContext %+v, want transferType SYSTEM, digits 12", oc)
	}
}

// sippMessage is one message of a SIPp -trace_msg log.
type sippMessage struct {
	received bool
	first    string // start line
	text     string // the whole message, LF line ends
}

// sippMessages splits a SIPp -trace_msg log into its messages, in order.
func sippMessages(log string) []sippMessage {
	var out []sippMessage
	for _, block := range strings.Split(strings.ReplaceAll(log, "\r", ""), "\n-----------------------------------------------") {
		lines := strings.Split(block, "\n")
		if len(lines) < 2 {
			continue
		}
		m := sippMessage{received: strings.Contains(lines[1], "received")}
		for _, l := range lines[2:] {
			if l = strings.TrimSpace(l); l != "" {
				m.first = l
				break
			}
		}
		m.text = block
		out = append(out, m)
	}
	return out
}

// header returns the value of header name in the first method request of
// a SIPp -trace_msg log.
func header(t *testing.T, log, method, name string) string {
	t.Helper()
	for _, msg := range strings.Split(log, "\n\n") {
		lines := strings.Split(strings.ReplaceAll(msg, "\r", ""), "\n")
		start := -1
		for i, l := range lines {
			if strings.HasPrefix(l, method+" ") && strings.HasSuffix(l, " SIP/2.0") {
				start = i
				break
			}
		}
		if start < 0 {
			continue
		}
		for _, l := range lines[start+1:] {
			if l == "" {
				break
			}
			if k, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(strings.TrimSpace(k), name) {
				return strings.TrimSpace(v)
			}
		}
	}
	t.Fatalf("no %s with a %s header in the SIPp message log", method, name)
	return ""
}

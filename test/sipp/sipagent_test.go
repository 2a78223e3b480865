package sipp_test

// The SIP agent link of issue 16 on the wire: SIPp plays the voice agent
// (uas_agent_*.xml) that handoff, in agent.mode sip, calls for each call,
// and the caller (uac_agent_call.xml); the agent talks with the caller
// through handoff, then finishes each of its three ways.

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/handoff/handoff/internal/testenv"
)

// agentRun is one agent scenario's outcome: the transfer, the log line of
// the agent leg's end, and the agent's SIP messages.
type agentRun struct {
	got      transferView
	legEnded map[string]any
	agentMsg string
	agentURI string
}

// runAgentScenario starts handoff calling the SIPp agent of scenario,
// the caller dialling a BYE transfer, and checks what every ending shares:
// both SIPp runs succeed, the transfer is COMPLETED agent_finished,
// returned by BYE with returnResult.agentLeg ending as ending, audio
// crossed the agent leg both ways, and nothing outlives the call.
func runAgentScenario(t *testing.T, scenario, id, ending string) agentRun {
	sipp := needSIPp(t)
	agentPort := testenv.FreePort(t, true)
	uri := fmt.Sprintf("sip:bot@127.0.0.1:%d", agentPort)
	h := startHandoffWith(t, handoffOptions{extra: "agent:\n  mode: sip\n  sip:\n    uri: " + uri + "\n"})
	base := h.goroutines(t)
	tr := h.createSIP(t, id, `{"returnTransferType":"BYE"}`)

	bot := h.startSIPp(t, sipp, scenario, agentPort, 60*time.Second, "-m", "1")
	caller := h.startSIPp(t, sipp, "uac_agent_call.xml", 0, 60*time.Second, "-s", tr.ID, "-m", "1")
	caller.wait(t, 1)
	bot.wait(t, 1)

	run := agentRun{got: h.get(t, tr.ID), agentMsg: bot.messages(t), agentURI: uri}
	if run.got.Status != "COMPLETED" || run.got.EndReason != "agent_finished" {
		t.Errorf("status %q endReason %q, want COMPLETED agent_finished", run.got.Status, run.got.EndReason)
	}
	rr := run.got.ReturnResult
	if rr == nil || rr.Method != "BYE" || rr.Result != "succeeded" {
		t.Fatalf("returnResult %+v, want BYE succeeded", rr)
	}
	if l := rr.AgentLeg; l == nil || l.URI != uri || l.CallID == "" || l.Ending != ending {
		t.Errorf("returnResult.agentLeg %+v, want uri %s and ending %s", l, uri, ending)
	}
	run.legEnded = logLine(t, h, "agent leg ended")
	// Each side talks 4 s (200 frames). The frames each pacer took from
	// the other side prove the audio crossed; the bound leaves room for a
	// loaded machine, whose pacers skip frames they are too late for.
	for _, k := range []string{"frames_to_agent", "frames_to_caller"} {
		if n, _ := run.legEnded[k].(float64); n < 25 {
			t.Errorf("agent leg %s = %v, want >= 25: audio did not cross handoff", k, run.legEnded[k])
		}
	}
	if n, _ := run.legEnded["rtp_in"].(float64); n < 150 {
		t.Errorf("agent leg rtp_in = %v, want >= 150 of the agent's 200 packets", run.legEnded["rtp_in"])
	}
	m := h.waitIdle(t)
	if n := m.get(`handoff_sip_agent_legs_total{code="200",result="answered"}`); n != 1 {
		t.Errorf("agent legs answered = %v, want 1", n)
	}
	if n := m.get(fmt.Sprintf(`handoff_sip_agent_legs_ended_total{ending=%q}`, ending)); n != 1 {
		t.Errorf("agent legs ended %s = %v, want 1", ending, n)
	}
	if n := m.get("handoff_sip_agent_legs_active"); n != 0 {
		t.Errorf("agent legs active = %v after the call", n)
	}
	h.client.CloseIdleConnections()
	h.waitGoroutines(t, base+4)
	h.stop(t)
	return run
}

// logLine is handoff's last JSON log record with this msg.
func logLine(t *testing.T, h *handoff, msg string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(h.log)
	if err != nil {
		t.Fatal(err)
	}
	var found map[string]any
	for _, line := range strings.Split(string(b), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == msg {
			found = rec
		}
	}
	if found == nil {
		t.Fatalf("handoff never logged %q", msg)
	}
	return found
}

// TestSIPpAgentByeWithOutcome: the agent hangs up with the outcome in
// X-Handoff-Transfer-Type, -Task, -Var-intent and -Ref-case headers.
func TestSIPpAgentByeWithOutcome(t *testing.T) {
	run := runAgentScenario(t, "uas_agent_bye.xml", "sipp-agent-bye", "bye_outcome")
	oc := run.got.OutputContext
	if oc == nil || oc.TransferType != "AGENT" || oc.CurrentTaskName != "Payments" ||
		oc.TransferVariables["intent"] != "pay_bill" || oc.ReferenceVariables["case"] != "C-42" {
		t.Errorf("outputContext %+v", oc)
	}
}

// TestSIPpAgentRefer: the agent REFERs with the outcome on the Refer-To
// URI; handoff answers 202 and NOTIFYs, hangs the agent up and returns
// the caller by the transfer's own return (BYE), not to the agent's URI.
func TestSIPpAgentRefer(t *testing.T) {
	run := runAgentScenario(t, "uas_agent_refer.xml", "sipp-agent-refer", "refer")
	oc := run.got.OutputContext
	if oc == nil || oc.TransferType != "AGENT" || oc.TransferVariables["intent"] != "dispute" ||
		oc.ReferenceVariables["case"] != "C-43" || oc.ReferenceVariables["referTo"] != "sip:humans@127.0.0.1:5999" {
		t.Errorf("outputContext %+v", oc)
	}
	// The order on the wire: our REFER, handoff's 202, both NOTIFYs, BYE.
	var order []string
	for _, m := range sippMessages(run.agentMsg) {
		switch f := strings.Fields(m.first); {
		case len(f) > 1 && f[1] == "202":
			order = append(order, "202")
		case len(f) > 0 && (f[0] == "REFER" || f[0] == "NOTIFY" || f[0] == "BYE"):
			order = append(order, f[0])
		}
	}
	if got := strings.Join(order, " "); got != "REFER 202 NOTIFY NOTIFY BYE" {
		t.Errorf("agent's messages in order: %s, want REFER 202 NOTIFY NOTIFY BYE", got)
	}
}

// TestSIPpAgentInfoOutcome: the agent sends INFO with an
// application/json outputContext; handoff answers 200 and hangs it up.
func TestSIPpAgentInfoOutcome(t *testing.T) {
	run := runAgentScenario(t, "uas_agent_info.xml", "sipp-agent-info", "info")
	oc := run.got.OutputContext
	if oc == nil || oc.TransferType != "SYSTEM" || oc.CurrentTaskName != "Paid" ||
		oc.TransferVariables["paid"] != "yes" || oc.ReferenceVariables["receipt"] != "R-44" {
		t.Errorf("outputContext %+v", oc)
	}
}

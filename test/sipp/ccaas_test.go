package sipp_test

// Contact-center INVITEs as the platforms document them (issue 12), from
// SIPp against the real handoff binary and a WebSocket agent of the
// test's: what the agent receives, what GET shows (sip.inbound), what the
// REFER or the return INVITE carries.

import (
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/handoff/handoff/internal/testenv"
)

// inboundView is GET's sip.inbound, as the tests read it.
type inboundView struct {
	SIP struct {
		Inbound struct {
			UUI []struct {
				Header, Value, Encoding, Purpose, Content, PD, Text, UCID string
			} `json:"uui"`
			PAssertedIdentity []string          `json:"pAssertedIdentity"`
			Diversion         []string          `json:"diversion"`
			HistoryInfo       []string          `json:"historyInfo"`
			CallIDs           map[string]string `json:"callIds"`
			Headers           map[string]string `json:"headers"`
		} `json:"inbound"`
	} `json:"sip"`
}

func (h *handoff) inbound(t *testing.T, id string) inboundView {
	t.Helper()
	var v inboundView
	h.api(t, "GET", "/generativeagent/v1/call-transfers/"+id, "", &v)
	return v
}

func hexText(s string) string { return strings.ToUpper(hex.EncodeToString([]byte(s))) }

// startWithAgent starts handoff linked to a WebSocket agent (no echo), with sipExtra
// in its sip: section.
func startWithAgent(t *testing.T, sipExtra string) (sipp string, agent *wsAgent, h *handoff) {
	t.Helper()
	sipp = needSIPp(t)
	agent = newWSAgent(t, false)
	return sipp, agent, startHandoffWith(t, handoffOptions{agentURL: agent.url, sipExtra: sipExtra})
}

// TestSIPpGenesysRefer: a Genesys-style INVITE (uac_genesys_refer.xml):
// the agent gets the UUI, its text and the Genesys call id; GET shows the
// discriminator and the text; the REFER's Refer-To is Genesys's returnUri,
// its UUI untouched, with the outcome after it. context_encoding is uui,
// and the returnUri's own UUI wins over Handoff's.
func TestSIPpGenesysRefer(t *testing.T) {
	sipp, agent, h := startWithAgent(t, "  return:\n    context_encoding: uui\n")
	port := testenv.FreePort(t, true)
	returnURI := fmt.Sprintf("sip:+15551234567@127.0.0.1:%d?User-to-User=00FA1B2C%%3Bencoding%%3Dhex", port)
	tr := h.createSIP(t, "sipp-genesys", fmt.Sprintf(`{"returnTransferType":"REFER","returnUri":%q}`, returnURI))
	uui := "04" + hexText("acct=42")

	run := h.startSIPp(t, sipp, "uac_genesys_refer.xml", port, 60*time.Second, "-s", tr.ID, "-key", "uui", uui, "-m", "1")
	start := agent.start(t)
	run.wait(t, 1)

	cp := start.CustomParameters
	wantUUI := uui + ";encoding=hex;purpose=isdn-uui;content=isdn-uui"
	if cp["uui"] != wantUUI || cp["uui_text"] != "acct=42" || cp["X-Genesys-CallUUID"] != "4BOKLLA3VH66JF112M1CC9VHKS14F0KP" ||
		cp["asserted_number"] != "+15551230000" || start.Handoff.UUIText != "acct=42" {
		t.Errorf("the agent's customParameters %v", cp)
	}
	in := h.inbound(t, tr.ID).SIP.Inbound
	if len(in.UUI) != 1 || in.UUI[0].Value != wantUUI || in.UUI[0].PD != "04" || in.UUI[0].Text != "acct=42" ||
		in.UUI[0].Header != "User-to-User" || in.CallIDs["X-Genesys-CallUUID"] == "" || len(in.PAssertedIdentity) != 1 {
		t.Errorf("GET sip.inbound %+v", in)
	}
	referTo := header(t, run.messages(t), "REFER", "Refer-To")
	want := "<" + returnURI + "&X-Handoff-Transfer-Type=SYSTEM&X-Handoff-Task=sipp&X-Handoff-Var-digits=12>"
	if referTo != want {
		t.Errorf("Refer-To: %s, want %s", referTo, want)
	}
	checkCompleted(t, h.get(t, tr.ID))
	h.waitIdle(t)
	h.stop(t)
}

// TestSIPpAvayaInviteReturn: an Avaya-style INVITE (uac_avaya_return.xml)
// with the UCID, identity and history headers; the agent gets the UCID
// and the numbers; GET shows the history; the return INVITE to a SIPp
// destination (uas_avaya_dest.xml) carries the UCID back unchanged and the
// returnUri's URI header as a header.
func TestSIPpAvayaInviteReturn(t *testing.T) {
	sipp, agent, h := startWithAgent(t, "")
	uasPort := testenv.FreePort(t, true)
	returnURI := fmt.Sprintf("sip:ret@127.0.0.1:%d?X-Route=sales%%20queue", uasPort)
	tr := h.createSIP(t, "sipp-avaya", fmt.Sprintf(`{"returnTransferType":"INVITE","returnUri":%q}`, returnURI))

	dest := h.startSIPp(t, sipp, "uas_avaya_dest.xml", uasPort, 60*time.Second, "-m", "1")
	caller := h.startSIPp(t, sipp, "uac_avaya_return.xml", 0, 60*time.Second, "-s", tr.ID, "-m", "1")
	start := agent.start(t)
	caller.wait(t, 1)
	dest.wait(t, 1)

	cp := start.CustomParameters
	if cp["uui"] != "00FA080019001038F725B3;encoding=hex" || cp["uui_text"] != "" || cp["avaya_ucid"] != "00025000160955721139" ||
		cp["asserted_number"] != "+15551230000" || cp["diversion_number"] != "+15557654321" || cp["from_number"] != "+15551230000" ||
		!strings.Contains(cp["history_info"], "index=1.1") || start.Handoff.Identity["avaya_ucid"] == "" {
		t.Errorf("the agent's customParameters %v", cp)
	}
	in := h.inbound(t, tr.ID).SIP.Inbound
	if len(in.UUI) != 1 || in.UUI[0].UCID != "00025000160955721139" || in.UUI[0].PD != "00" ||
		len(in.HistoryInfo) != 2 || len(in.Diversion) != 1 || len(in.PAssertedIdentity) != 1 {
		t.Errorf("GET sip.inbound %+v", in)
	}
	msgs := dest.messages(t)
	if got := header(t, msgs, "INVITE", "User-to-User"); got != "00FA080019001038F725B3;encoding=hex" {
		t.Errorf("return INVITE User-to-User %q", got)
	}
	if got := header(t, msgs, "INVITE", "X-Route"); got != "sales queue" {
		t.Errorf("return INVITE X-Route %q", got)
	}
	got := h.get(t, tr.ID)
	checkCompleted(t, got)
	if rr := got.ReturnResult; rr == nil || rr.Method != "INVITE" || rr.Result != "succeeded" {
		t.Errorf("returnResult %+v", rr)
	}
	h.waitIdle(t)
	h.stop(t)
}

// TestSIPpCiscoUUICorrelation: a Cisco-style INVITE (uac_cisco_uui.xml)
// dials a DNIS no transfer has and names the transfer in User-to-User;
// Handoff takes the call for it; the agent and GET see the Cisco call ids.
// Then an INVITE naming two transfers (uac_ambiguous_485.xml) is refused
// with 485 and leaves both transfers alone.
func TestSIPpCiscoUUICorrelation(t *testing.T) {
	sipp, agent, h := startWithAgent(t, "")
	tr := h.createSIP(t, "sipp-cvp-7", `{"returnTransferType":"BYE"}`)

	run := h.startSIPp(t, sipp, "uac_cisco_uui.xml", 0, 60*time.Second, "-s", "8005551212", "-key", "uui", hexText(tr.ID), "-m", "1")
	start := agent.start(t)
	run.wait(t, 1)
	cp := start.CustomParameters
	if start.Handoff.TransferID != tr.ID || cp["uui_text"] != tr.ID || cp["Cisco-GUID"] != "2882343740-0000065536-0000000245-3725134016" ||
		cp["Cisco-GUCID"] != "0A1B2C3D4E5F60718293A4B5C6D7E8F9" || cp["to_number"] != "8005551212" {
		t.Errorf("the agent's start: transfer %q, customParameters %v", start.Handoff.TransferID, cp)
	}
	in := h.inbound(t, tr.ID).SIP.Inbound
	if in.CallIDs["Cisco-GUID"] == "" || in.CallIDs["Cisco-GUCID"] == "" || len(in.UUI) != 1 || in.UUI[0].Text != tr.ID || in.UUI[0].PD != "" {
		t.Errorf("GET sip.inbound %+v", in)
	}
	checkCompleted(t, h.get(t, tr.ID))

	a := h.createSIP(t, "sipp-amb-a", `{"returnTransferType":"BYE"}`)
	b := h.createSIP(t, "sipp-amb-b", `{"returnTransferType":"BYE"}`)
	h.startSIPp(t, sipp, "uac_ambiguous_485.xml", 0, 30*time.Second, "-s", a.ID, "-key", "other", b.ID, "-m", "1").wait(t, 1)
	for _, id := range []string{a.ID, b.ID} {
		if got := h.get(t, id); got.Status != "ACTIVE" {
			t.Errorf("%s is %s after the refused INVITE, want ACTIVE", id, got.Status)
		}
	}
	if n := h.waitIdle(t).get(`handoff_sip_invites_total{code="485"}`); n != 1 {
		t.Errorf(`handoff_sip_invites_total{code="485"} = %v, want 1`, n)
	}
	h.stop(t)
}

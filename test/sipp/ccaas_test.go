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

// TestSIPpGenesysRefer: a Genesys-style INVITE (uac_genesys_refer.xml):
// the agent gets the UUI, its text and the Genesys call id; GET shows the
// discriminator and the text; the REFER's Refer-To is Genesys's returnUri,
// its UUI untouched, with the outcome after it. context_encoding is uui,
// and the returnUri's own UUI wins over Handoff's.
func TestSIPpGenesysRefer(t *testing.T) {
	sipp := needSIPp(t)
	agent := newRecordingAgent(t)
	h := startHandoffWith(t, handoffOptions{agentURL: agent.url, sipExtra: "  return:\n    context_encoding: uui\n"})
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

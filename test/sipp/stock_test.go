package sipp_test

// SIPp's own stock media (the pcaps the sip-tester package ships), not
// ours: the voice and the digits are unrelated captures, each with its own
// SSRC, sequence numbers and timestamps, as SBCs that generate
// telephone-events in a separate DSP send them (issue 11).

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// stockMedia is where sip-tester installs its pcaps; the scenarios name
// them by absolute path.
const stockMedia = "/usr/share/sip-tester"

// needStockMedia skips (fails under CI) without the stock pcaps.
func needStockMedia(t *testing.T, files ...string) {
	t.Helper()
	for _, f := range files {
		if _, err := os.Stat(filepath.Join(stockMedia, f)); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("SIPp's stock media %s missing (CI is set): apt-get install -y sip-tester: %v", f, err)
			}
			t.Skipf("SIPp's stock media %s missing (apt-get install sip-tester): %v", f, err)
		}
	}
}

// stockCall is what one stock-media scenario must end with.
type stockCall struct {
	scenario     string
	pcaps        []string
	transferType string // the loopback agent's: SYSTEM on #, AGENT on 0
	digits       string // collected before the finishing digit
	events       float64
}

// TestSIPpStockHash: g711a.pcap, then dtmf_2833_pound.pcap cutting it;
// the # on the digits' own SSRC reaches the agent, which finishes, and
// Handoff hangs up.
func TestSIPpStockHash(t *testing.T) {
	runStock(t, stockCall{
		scenario:     "uac_stock_hash.xml",
		pcaps:        []string{"g711a.pcap", "dtmf_2833_pound.pcap"},
		transferType: "SYSTEM",
		events:       1,
	})
}

// TestSIPpStockZero: g711a.pcap, then dtmf_2833_1.pcap cutting it and
// dtmf_2833_0.pcap; the agent collects 1 and finishes on 0 (AGENT).
func TestSIPpStockZero(t *testing.T) {
	runStock(t, stockCall{
		scenario:     "uac_stock_zero.xml",
		pcaps:        []string{"g711a.pcap", "dtmf_2833_1.pcap", "dtmf_2833_0.pcap"},
		transferType: "AGENT",
		digits:       "1",
		events:       2,
	})
}

func runStock(t *testing.T, c stockCall) {
	sipp := needSIPp(t)
	needStockMedia(t, c.pcaps...)
	h := startHandoff(t)
	tr := h.create(t, "sipp-"+c.scenario[:len(c.scenario)-len(".xml")], "PHONE_NUMBER")
	number := tr.PhoneNumber.TransferNumber
	if number == "" {
		t.Fatalf("no transferNumber in %+v", tr)
	}
	sippOK := false
	defer func() {
		if !sippOK { // where the call stands when SIPp gave up waiting for the BYE
			got := h.get(t, tr.ID)
			t.Logf("transfer %s: status %q endReason %q outputContext %+v", tr.ID, got.Status, got.EndReason, got.OutputContext)
		}
	}()
	h.runSIPp(t, sipp, 1, c.scenario, 40*time.Second, "-s", number, "-m", "1")
	sippOK = true

	got := h.get(t, tr.ID)
	if got.Status != "COMPLETED" || got.EndReason != "agent_finished" {
		t.Errorf("status %q endReason %q, want COMPLETED agent_finished", got.Status, got.EndReason)
	}
	if oc := got.OutputContext; oc == nil || oc.TransferType != c.transferType || oc.TransferVariables["digits"] != c.digits {
		t.Errorf("outputContext %+v, want transferType %s, digits %q", oc, c.transferType, c.digits)
	}

	m := h.waitIdle(t)
	// 4 s of 30 ms voice packets: about 133 went in.
	if in := m.get(`handoff_rtp_packets_total{direction="in"}`); in < 120 {
		t.Errorf("RTP packets in = %v, want >= 120", in)
	}
	if n := m.get(`handoff_dtmf_events_total{source="rfc4733"}`); n != c.events {
		t.Errorf("RFC 4733 DTMF events = %v, want %v (retransmitted end packets count once)", n, c.events)
	}
	if n := m.get(`handoff_rtp_dropped_packets_total{reason="wrong_ssrc"}`); n != 0 {
		t.Errorf("RTP packets dropped for their SSRC = %v, want 0: the digits' stream was taken for a rival", n)
	}
	h.stop(t)
}

package sipp_test

// SIPp against the real binary: each test runs handoff (built once) on free
// loopback ports with its own store, creates transfers over the HTTP API,
// runs a SIPp scenario from this directory as a subprocess, then checks
// SIPp's verdict, the transfers' final states and handoff's metrics.
//
// SIPp comes from the sip-tester package (.ci/run installs it). Without it
// the tests skip, unless CI is set, when they fail.

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	apiID     = "dev"
	apiSecret = "dev-secret"

	// Load: at least 200 calls at 20 calls/s (issue 3), each 4.2 s of RTP.
	loadCalls = 200
	loadRate  = 20

	// Upper bounds for things to happen; reaching one is a failure, never a
	// measured threshold.
	buildLimit = 3 * time.Minute
	startLimit = 30 * time.Second
	stopLimit  = 30 * time.Second
	settle     = 15 * time.Second
)

// TestSIPpDTMFHash: one caller dials a PHONE_NUMBER transfer, sends PCMU
// for 4 s and the RFC 4733 digits 1, 2, #; the loopback agent finishes on
// # and handoff hangs up (SIPp answers the BYE).
func TestSIPpDTMFHash(t *testing.T) {
	sipp := needSIPp(t)
	h := startHandoff(t)
	tr := h.create(t, "sipp-dtmf-1", "PHONE_NUMBER")
	number := tr.PhoneNumber.TransferNumber
	if number == "" {
		t.Fatalf("no transferNumber in %+v", tr)
	}

	h.runSIPp(t, sipp, 1, "uac_dtmf_hash.xml", 60*time.Second, "-s", number, "-m", "1")

	got := h.get(t, tr.ID)
	if got.Status != "COMPLETED" || got.EndReason != "agent_finished" {
		t.Errorf("status %q endReason %q, want COMPLETED agent_finished", got.Status, got.EndReason)
	}
	if got.CallReceivedAt == "" || got.CompletedAt == "" {
		t.Errorf("callReceivedAt %q completedAt %q, want both set", got.CallReceivedAt, got.CompletedAt)
	}
	oc := got.OutputContext
	if oc == nil {
		t.Fatalf("no outputContext: %+v", got)
	}
	if oc.TransferType != "SYSTEM" {
		t.Errorf("outputContext.transferType %q, want SYSTEM", oc.TransferType)
	}
	if d := oc.TransferVariables["digits"]; d != "12" {
		t.Errorf("outputContext.transferVariables.digits %q, want \"12\"", d)
	}

	m := h.waitIdle(t)
	// 200 audio packets and 3 DTMF events of 10 packets went in; the
	// greeting and the echo came out.
	if in := m.get(`handoff_rtp_packets_total{direction="in"}`); in < 200 {
		t.Errorf("RTP packets in = %v, want >= 200", in)
	}
	if out := m.get(`handoff_rtp_packets_total{direction="out"}`); out < 200 {
		t.Errorf("RTP packets out = %v, want >= 200 (greeting + echo)", out)
	}
	if n := m.get(`handoff_dtmf_events_total{source="rfc4733"}`); n != 3 {
		t.Errorf("RFC 4733 DTMF events = %v, want 3 (retransmitted end packets count once)", n)
	}
	h.stop(t)
}

// TestSIPpLoad: loadCalls calls at loadRate calls/s, each to its own
// PHONE_NUMBER transfer (one per line of the -inf file), 4.2 s of RTP each,
// then BYE from the caller. No call may fail; every transfer ends
// COMPLETED with caller_hangup; nothing stays behind in handoff.
func TestSIPpLoad(t *testing.T) {
	sipp := needSIPp(t)
	h := startHandoff(t)
	h.client.CloseIdleConnections()
	base := h.metrics(t).get("go_goroutines")

	// The transfers, created concurrently (the pool leases each a number).
	ids := make([]string, loadCalls)
	numbers := make([]string, loadCalls)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range ids {
		ids[i] = fmt.Sprintf("sipp-load-%03d", i)
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			numbers[i] = h.create(t, ids[i], "PHONE_NUMBER").PhoneNumber.TransferNumber
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	var inf strings.Builder
	inf.WriteString("SEQUENTIAL\n")
	for _, n := range numbers {
		fmt.Fprintf(&inf, "%s;\n", n)
	}
	csvPath := filepath.Join(h.dir, "transfers.csv")
	if err := os.WriteFile(csvPath, []byte(inf.String()), 0o644); err != nil {
		t.Fatal(err)
	}

	// 200 calls at 20/s take 10 s to start and 4.2 s each; the limit is
	// for a handoff that stalls (the race detector slows it a lot).
	h.runSIPp(t, sipp, loadCalls, "uac_load.xml", 120*time.Second,
		"-inf", csvPath,
		"-m", strconv.Itoa(loadCalls),
		"-r", strconv.Itoa(loadRate), "-rp", "1000",
		"-l", strconv.Itoa(loadCalls))

	bad := 0
	for _, id := range ids {
		got := h.get(t, id)
		if got.Status != "COMPLETED" || got.EndReason != "caller_hangup" {
			if bad++; bad <= 10 {
				t.Errorf("transfer %s: status %q endReason %q, want COMPLETED caller_hangup", id, got.Status, got.EndReason)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d transfers did not end COMPLETED/caller_hangup", bad, loadCalls)
	}

	m := h.waitIdle(t)
	if n := m.get(`handoff_sip_invites_total{code="200"}`); n != loadCalls {
		t.Errorf("INVITEs answered 200 = %v, want %d", n, loadCalls)
	}
	if n := m.get(`handoff_sip_calls_ended_total{reason="caller_hangup"}`); n != loadCalls {
		t.Errorf("calls ended by caller_hangup = %v, want %d", n, loadCalls)
	}
	// Each call plays 200 packets; allow for a few lost at the edges on a
	// busy machine, but RTP must have flowed on every call, both ways.
	if in := m.get(`handoff_rtp_packets_total{direction="in"}`); in < 0.9*loadCalls*200 {
		t.Errorf("RTP packets in = %v, want >= %v", in, 0.9*loadCalls*200)
	}
	if out := m.get(`handoff_rtp_packets_total{direction="out"}`); out < 0.9*loadCalls*200 {
		t.Errorf("RTP packets out = %v, want >= %v", out, 0.9*loadCalls*200)
	}
	// No goroutine outlives its call: back to the idle count (a little
	// slack for timers and the HTTP connection of the scrape itself).
	h.client.CloseIdleConnections()
	h.waitGoroutines(t, base+4)
	h.stop(t)
}

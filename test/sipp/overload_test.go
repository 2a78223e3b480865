package sipp_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/handoff/handoff/internal/testenv"
)

// Overload shedding against SIPp's own call-rate scenario (the one
// scripts/load-rate.sh offers): with a latency target no INVITE can meet
// (sip.overload.max_latency 1µs) the shedder cuts the admitted share
// after the first windows, and the read path refuses new INVITEs with a
// stateless 503 that SIPp accepts, ACKs (the read path absorbs the ACK) and
// counts as a refused call. Nothing is lost: every call is either answered
// and completed or refused with its transfer left ACTIVE for a retry, and
// the refusals carry their reason and Retry-After.
func TestSIPpOverloadSheds(t *testing.T) {
	sippRefusals(t, "  overload:\n    max_latency: 1us\n", "overload_latency", "sipp-shed")
}

// The node's max_cps against the same scenario: beyond it the read path
// refuses with the same stateless 503 (that sipgo never sees those INVITEs
// is TestReadPathRefusesBeyondMaxCPS's to prove), which SIPp takes and
// ACKs, and the calls within it complete.
func TestSIPpMaxCPSRefusesOnTheReadPath(t *testing.T) {
	sippRefusals(t, "  limits:\n    max_cps: 50\n", "max_cps", "sipp-cps")
}

// sippRefusals offers SIPp's call-rate scenario (300 calls at 200/s) to a
// handoff with sipExtra in its sip: section, and checks that every call is
// either answered and completed or refused with reason (a stateless 503
// with Reason, Retry-After and our tag), its transfer left ACTIVE.
func sippRefusals(t *testing.T, sipExtra, reason, prefix string) {
	sipp := needSIPp(t)
	h := startHandoffWith(t, handoffOptions{sipExtra: sipExtra})
	const calls = 300 // at 200/s: windows of 100 ms hold the 10 INVITEs one needs to be judged
	ids := make([]string, calls)
	var inf strings.Builder
	inf.WriteString("SEQUENTIAL\n")
	for i := range ids {
		ids[i] = fmt.Sprintf("%s-%03d", prefix, i)
		h.createSIP(t, ids[i], `{"returnTransferType":"BYE"}`)
		fmt.Fprintf(&inf, "%s;\n", ids[i])
	}
	csvPath := filepath.Join(h.dir, prefix+".csv")
	if err := os.WriteFile(csvPath, []byte(inf.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	run := h.startSIPp(t, sipp, "uac_rate.xml", 0, 90*time.Second,
		"-inf", csvPath, "-m", strconv.Itoa(calls), "-r", "200", "-rp", "1000", "-d", "200", "-l", strconv.Itoa(calls))
	run.wait(t, calls)

	m := h.waitIdle(t)
	refused := m.get(`handoff_sip_admission_refused_total{reason="` + reason + `"}`)
	answered, with503 := m.get(`handoff_sip_invites_total{code="200"}`), m.get(`handoff_sip_invites_total{code="503"}`)
	t.Logf("answered %v, refused %v (%s)", answered, refused, reason)
	if refused == 0 || answered == 0 || with503 != refused || answered+refused != calls {
		t.Fatalf("answered %v, 503 %v, refused for %s %v; want both kinds, adding up to %d", answered, with503, reason, refused, calls)
	}
	msgs := run.messages(t)
	if !strings.Contains(msgs, `Reason: SIP;cause=503;text="`+reason+`"`) || !strings.Contains(msgs, ";tag=shed") ||
		!strings.Contains(msgs, "Retry-After: 1") {
		t.Fatalf("SIPp saw no stateless 503 with its Reason, Retry-After and our tag:\n%s", testenv.Tail(msgs, 60))
	}
	completed, active := 0, 0
	for _, id := range ids {
		switch got := h.get(t, id); {
		case got.Status == "COMPLETED" && got.EndReason == "caller_hangup":
			completed++
		case got.Status == "ACTIVE":
			active++
		default:
			t.Errorf("transfer %s: %s %s, want COMPLETED caller_hangup or (refused) ACTIVE", id, got.Status, got.EndReason)
		}
	}
	if float64(completed) != answered || float64(active) != refused {
		t.Fatalf("%d completed and %d still ACTIVE, want %v and %v", completed, active, answered, refused)
	}
}

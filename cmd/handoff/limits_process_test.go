package main

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/emiago/sipgo"

	"github.com/handoff/handoff/internal/siptest"
)

// setMaxCalls sets sip.limits.max_calls in the configuration file at path
// (written by writeCallConfig), write then rename, as a reload expects.
func setMaxCalls(t *testing.T, path string, maxCalls int) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(raw), "\n")
	out := make([]string, 0, len(lines)+2)
	for i := 0; i < len(lines); i++ {
		if lines[i] == "  limits:" {
			i++ // and its max_calls line
			continue
		}
		out = append(out, lines[i])
		if lines[i] == "sip:" {
			out = append(out, "  limits:", fmt.Sprintf("    max_calls: %d", maxCalls))
		}
	}
	if err := os.WriteFile(path+".tmp", []byte(strings.Join(out, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
}

// sip.limits.max_calls from the file refuses the call over it (503 with its
// Reason, counted) and turns OPTIONS to 503; a SIGHUP raising it admits the
// next call and leaves the call in progress alone.
func TestMaxCallsFromFileAndReload(t *testing.T) {
	t.Parallel()
	path, sipPort := writeCallConfig(t, "43200-43299", "")
	setMaxCalls(t, path, 1)
	p := startHandoff(t, "", nil, "-config", path)
	first := p.connect(t, siptest.NewPhone(t, "127.0.0.1"), p.create(ivr, sipTransfer("limit-1", nil)), 25)

	phone := siptest.NewPhone(t, "127.0.0.1")
	if res := options(phone, sipPort); res.StatusCode != 503 || res.GetHeader("Reason") == nil ||
		!strings.Contains(res.GetHeader("Reason").Value(), `text="max_calls"`) {
		t.Fatalf("OPTIONS at max_calls: %d %v", res.StatusCode, res.GetHeader("Reason"))
	}
	second := p.create(ivr, sipTransfer("limit-2", nil))
	if _, err := phone.Invite(str(second, "sip.transferUri"), phone.Offer("0"), sipgo.AnswerOptions{}); siptest.StatusOf(err) != 503 {
		t.Fatalf("second call at max_calls 1: %v, want 503", err)
	}
	if !p.metric(`handoff_sip_admission_refused_total{reason="max_calls"} 1`) {
		t.Error(`handoff_sip_admission_refused_total{reason="max_calls"} is not 1`)
	}

	setMaxCalls(t, path, 2)
	p.signal(syscall.SIGHUP)
	rec := p.waitLog("configuration reloaded")
	if applied, _ := rec["applied"].([]any); !slices.Contains(applied, any("sip.limits.max_calls")) {
		t.Fatalf("reload applied %v", rec["applied"])
	}
	if res := options(phone, sipPort); res.StatusCode != 200 {
		t.Fatalf("OPTIONS after raising max_calls: %d", res.StatusCode)
	}
	again := p.connect(t, phone, second, 25)
	if got := exchangeAudio(first, 25); got == 0 {
		t.Error("the first call lost its media across the reload")
	}
	first.Hangup()
	again.Hangup()
	p.signal(syscall.SIGTERM)
	if code := p.wait(); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

package main

import (
	"fmt"
	"syscall"
	"testing"

	"github.com/handoff/handoff/internal/siptest"
	"github.com/handoff/handoff/internal/testenv"
)

// TestCallKilledMidwayEndsAfterRestart: SIGKILL takes the process and its
// call away; when it starts again the transfer is COMPLETED with end
// reason node_restarted instead of staying ONGOING forever, and the
// transfers it had acknowledged are all still there.
func TestCallKilledMidwayEndsAfterRestart(t *testing.T) {
	t.Parallel()
	cfgPath, _ := writeCallConfig(t, "43100-43199", "node:\n  id: node-crash\n")
	p := startHandoff(t, "", nil, "-config", cfgPath)
	p.create(ivr, sipTransfer("waiting", nil))
	created := p.create(ivr, sipTransfer("killed-call", nil))
	p.connect(t, siptest.NewPhone(t, "127.0.0.1"), created, 10)

	p.signal(syscall.SIGKILL)
	p.wait()
	p = startHandoff(t, "", []string{fmt.Sprintf("HANDOFF_SIP_LISTEN=udp://127.0.0.1:%d", testenv.FreeUDPPort(t))}, "-config", cfgPath)
	_, out := p.get(ivr, "killed-call")
	if str(out, "status") != "COMPLETED" || str(out, "endReason") != "node_restarted" || str(out, "completedAt") == "" {
		t.Fatalf("after the restart: %v, want COMPLETED with endReason node_restarted", out)
	}
	if _, out := p.get(ivr, "waiting"); str(out, "status") != "ACTIVE" {
		t.Fatalf("an unclaimed transfer did not survive the crash as ACTIVE: %v", out)
	}
}

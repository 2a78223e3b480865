package sip

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/handoff/handoff/agent"
	"github.com/handoff/handoff/transfer"
)

// placeRingingCall calls transfer id and records the status and To tag of
// every response the phone sees; onResponse may act on each (release a
// gated agent). It returns the answered, acknowledged call.
func placeRingingCall(t *testing.T, g *gateway, id string, onResponse func(*sip.Response)) (*call, []int, map[int]string) {
	t.Helper()
	p := newPhone(t)
	var codes []int
	tags := map[int]string{}
	c, err := p.Invite(g.srv.TransferURI(id), p.Offer("0"), sipgo.AnswerOptions{OnResponse: func(res *sip.Response) error {
		codes = append(codes, res.StatusCode)
		tags[res.StatusCode], _ = res.To().Params.Get("tag")
		onResponse(res)
		return nil
	}})
	if err != nil {
		t.Fatalf("INVITE: %v (responses %v)", err, codes)
	}
	if err := c.Dlg.Ack(t.Context()); err != nil {
		t.Fatal(err)
	}
	g.WaitStatus(id, transfer.StatusOngoing)
	return c, codes, tags
}

// newGatedGateway is a gateway whose agent connects only when the test
// opens the gate (at the latest when the test ends).
func newGatedGateway(t *testing.T, opts ...gatewayOption) (*gateway, func()) {
	gp := &gatedPipeline{Pipeline: agent.Loopback{}, opened: make(chan struct{}, 1), gate: make(chan struct{})}
	var once sync.Once
	release := func() { once.Do(func() { close(gp.gate) }) }
	g := newGateway(t, append([]gatewayOption{func(c *Config) { c.Pipeline = gp }}, opts...)...)
	t.Cleanup(release) // before the gateway's shutdown (cleanups run last first)
	return g, release
}

// An agent slow to connect: the caller hears 180 Ringing (with the To tag
// the 200 OK then carries) before the answer. The agent connects only once
// the phone has seen the 180, so no clock decides the outcome.
func TestSlowAgentRingsBeforeAnswer(t *testing.T) {
	g, release := newGatedGateway(t) // the default RingingAfter
	g.createSIP("slow-agent")
	c, codes, tags := placeRingingCall(t, g, "slow-agent", func(res *sip.Response) {
		if res.StatusCode == sip.StatusRinging {
			release()
		}
	})
	ringing := slices.Index(codes, sip.StatusRinging)
	if ringing < 0 || codes[len(codes)-1] != sip.StatusOK || ringing > len(codes)-2 {
		t.Fatalf("responses %v, want 180 before 200", codes)
	}
	if tags[sip.StatusRinging] == "" || tags[sip.StatusRinging] != tags[sip.StatusOK] {
		t.Fatalf("To tags: 180 %q, 200 %q", tags[sip.StatusRinging], tags[sip.StatusOK])
	}
	c.Hangup()
	g.WaitStatus("slow-agent", transfer.StatusCompleted)
}

// An agent that connects before the threshold: no 180, straight to 200.
func TestFastAgentAnswersWithoutRinging(t *testing.T) {
	g := newGateway(t, func(c *Config) { c.RingingAfter = time.Minute })
	g.createSIP("fast-agent")
	c, codes, _ := placeRingingCall(t, g, "fast-agent", func(*sip.Response) {})
	if slices.Contains(codes, sip.StatusRinging) || codes[len(codes)-1] != sip.StatusOK {
		t.Fatalf("responses %v, want no 180 and a 200", codes)
	}
	c.Hangup()
}

// A negative RingingAfter turns ringing off: an agent connecting for a
// second (twice the default threshold) still gets no 180.
func TestRingingOff(t *testing.T) {
	g, release := newGatedGateway(t, func(c *Config) { c.RingingAfter = -1 })
	g.createSIP("no-ringing")
	c, codes, _ := placeRingingCall(t, g, "no-ringing", func(res *sip.Response) {
		if res.StatusCode == sip.StatusTrying {
			time.AfterFunc(time.Second, release)
		}
	})
	if slices.Contains(codes, sip.StatusRinging) {
		t.Fatalf("responses %v, want no 180 with ringing off", codes)
	}
	c.Hangup()
}

package sip

import (
	"context"
	"fmt"
	"math"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	dto "github.com/prometheus/client_model/go"

	"github.com/handoff/handoff/agent"
	"github.com/handoff/handoff/transfer"
)

// fakeClock is admission control's time in tests: it moves only when told.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// refused503 checks err is a 503 whose Reason names reason and which has a
// Retry-After of retry.
func refused503(t *testing.T, err error, reason, retry string) {
	t.Helper()
	var e *sipgo.ErrDialogResponse
	if !errorsAs(err, &e) || e.Res.StatusCode != sip.StatusServiceUnavailable {
		t.Fatalf("INVITE: %v, want 503 (%s)", err, reason)
	}
	if h := e.Res.GetHeader("Reason"); h == nil || h.Value() != `SIP;cause=503;text="`+reason+`"` {
		t.Fatalf("Reason %v, want text=%q", h, reason)
	}
	if h := e.Res.GetHeader("Retry-After"); h == nil || h.Value() != retry {
		t.Fatalf("Retry-After %v, want %s", h, retry)
	}
}

// refusedCount is the admission refusals counted for reason.
func (g *gateway) refusedCount(reason string) int {
	var m dto.Metric
	if err := g.srv.gate.metrics.refused.WithLabelValues(reason).Write(&m); err != nil {
		g.t.Fatal(err)
	}
	return int(m.GetCounter().GetValue())
}

// call places an answered call to a new SIP transfer id from p.
func (g *gateway) call(p *phone, id string) *call {
	g.t.Helper()
	g.createSIP(id)
	return p.MustAnswer(g.srv.TransferURI(id), p.Offer("0"))
}

// try places a call to a new SIP transfer id and returns its error.
func (g *gateway) try(p *phone, id string) error {
	g.t.Helper()
	g.createSIP(id)
	c, err := p.Invite(g.srv.TransferURI(id), p.Offer("0"), answerNone)
	if err == nil {
		_ = c.Dlg.Ack(context.Background())
		c.Hangup()
		g.t.Fatalf("INVITE %s was admitted", id)
	}
	return err
}

// waitCalls waits until the gate counts n calls.
func (g *gateway) waitCalls(n int) {
	g.t.Helper()
	eventually(g.t, fmt.Sprintf("%d calls counted", n), func() bool {
		g.srv.gate.mu.Lock()
		defer g.srv.gate.mu.Unlock()
		return g.srv.gate.calls == n
	})
}

func TestMaxCallsRefusesTheThirdUntilOneHangsUp(t *testing.T) {
	g := newGateway(t, func(c *Config) { c.Limits = Limits{MaxCalls: 2, RetryAfter: 3 * time.Second} })
	p := newPhone(t)
	first, second := g.call(p, "mc-1"), g.call(p, "mc-2")
	refused503(t, g.try(p, "mc-3"), "max_calls", "3")
	// Over TCP too (the refusal is written on the INVITE's connection).
	g.createSIP("mc-tcp")
	_, err := p.Invite("sip:mc-tcp@"+g.tcp+";transport=tcp", p.Offer("0"), answerNone)
	refused503(t, err, "max_calls", "3")
	if st := g.Get("mc-3").StatusAt(g.svc.Now()); st != transfer.StatusActive || g.Get("mc-3").Claim != nil {
		t.Fatalf("refused transfer: %s, claim %v", st, g.Get("mc-3").Claim)
	}
	first.Hangup()
	g.waitCalls(1)
	third := p.MustAnswer(g.srv.TransferURI("mc-3"), p.Offer("0"))
	second.Hangup()
	third.Hangup()
	g.waitCalls(0)
	if n := g.refusedCount("max_calls"); n != 2 {
		t.Fatalf("max_calls refusals counted %d, want 2", n)
	}
}

func TestMaxCPS(t *testing.T) {
	clock := newFakeClock()
	g := newGateway(t, func(c *Config) {
		c.Limits = Limits{MaxCPS: 2}
		c.clock = clock.now
	})
	p := newPhone(t)
	g.call(p, "cps-1").Hangup()
	g.call(p, "cps-2").Hangup()
	refused503(t, g.try(p, "cps-3"), "max_cps", "1") // the bucket holds one second's worth
	clock.advance(500 * time.Millisecond)            // one call's worth back
	g.call(p, "cps-4").Hangup()
	refused503(t, g.try(p, "cps-5"), "max_cps", "1")
	if n := g.refusedCount("max_cps"); n != 2 {
		t.Fatalf("max_cps refusals counted %d, want 2", n)
	}
}

func TestPerSourceLimitsCountEachSource(t *testing.T) {
	clock := newFakeClock()
	g := newGateway(t, func(c *Config) {
		c.Limits = Limits{PerSourceMaxCalls: 1, PerSourceMaxCPS: 2}
		c.clock = clock.now
	})
	one, two := newPhone(t), newRawUDP(t, "127.0.0.2", g.addr)
	a := g.call(one, "src-a")
	refused503(t, g.try(one, "src-a2"), "per_source_max_calls", "1")
	g.createSIP("src-b")
	res, hangup := two.rawCall(g.srv.TransferURI("src-b")) // another source, its own budget
	if res.StatusCode != 200 {
		t.Fatalf("127.0.0.2 while 127.0.0.1 is full: %d", res.StatusCode)
	}
	a.Hangup()
	hangup()
	g.waitCalls(0)
	g.call(one, "src-a3").Hangup()
	g.waitCalls(0)
	// 127.0.0.1 has spent both tokens of its cps bucket; 127.0.0.2 one.
	refused503(t, g.try(one, "src-a4"), "per_source_max_cps", "1")
	g.createSIP("src-b2")
	if res, hangup := two.rawCall(g.srv.TransferURI("src-b2")); res.StatusCode == 200 {
		hangup()
	} else {
		t.Fatalf("127.0.0.2's second call: %d", res.StatusCode)
	}
	if n, m := g.refusedCount("per_source_max_calls"), g.refusedCount("per_source_max_cps"); n != 1 || m != 1 {
		t.Fatalf("per-source refusals counted %d calls, %d cps; want 1 and 1", n, m)
	}
}

func TestTrunkCountsItsAddressesAsOneSource(t *testing.T) {
	g := newGateway(t, func(c *Config) {
		c.Limits = Limits{PerSourceMaxCalls: 1, Trunks: map[string][]netip.Prefix{
			"carrier": {netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("127.0.0.2/32")},
		}}
	})
	a := g.call(newPhone(t), "trunk-a")
	g.createSIP("trunk-b")
	res, _ := newRawUDP(t, "127.0.0.2", g.addr).rawCall(g.srv.TransferURI("trunk-b"))
	rawRefused(t, res, "per_source_max_calls")
	res, hangup := newRawUDP(t, "127.0.0.3", g.addr).rawCall(g.srv.TransferURI("trunk-b"))
	if res.StatusCode != 200 { // not in the trunk: a source of its own
		t.Fatalf("127.0.0.3: %d", res.StatusCode)
	}
	hangup()
	a.Hangup()
}

// optionsStatus sends an out-of-dialog OPTIONS from p and returns the answer.
func optionsStatus(t *testing.T, p *phone, addr string) *sip.Response {
	t.Helper()
	req := sip.NewRequest(sip.OPTIONS, sip.Uri{Scheme: "sip", Host: "127.0.0.1", Port: portOf(addr)})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := p.Client.Do(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestOptionsAnswer503WhileFull(t *testing.T) {
	g := newGateway(t, func(c *Config) { c.Limits = Limits{MaxCalls: 1} })
	p := newPhone(t)
	if res := optionsStatus(t, p, g.addr); res.StatusCode != 200 {
		t.Fatalf("OPTIONS with room: %d", res.StatusCode)
	}
	c := g.call(p, "opt-full")
	res := optionsStatus(t, p, g.addr)
	if h := res.GetHeader("Reason"); res.StatusCode != 503 || res.GetHeader("Retry-After") == nil || h == nil || !strings.Contains(h.Value(), "max_calls") {
		t.Fatalf("OPTIONS while full: %d, Reason %v", res.StatusCode, h)
	}
	c.Hangup()
	g.waitCalls(0)
	if res := optionsStatus(t, p, g.addr); res.StatusCode != 200 {
		t.Fatalf("OPTIONS after the hang-up: %d", res.StatusCode)
	}
}

// slowStore holds correlation lookups while hold is set, so a test can
// make several INVITEs slow by the fake clock at once.
type slowStore struct {
	transfer.Store
	hold    atomic.Bool
	waiting atomic.Int32
	release chan struct{}
}

func (s *slowStore) Get(ctx context.Context, id string) (*transfer.Transfer, error) {
	if s.hold.Load() {
		s.waiting.Add(1)
		<-s.release
	}
	return s.Store.Get(ctx, id)
}

// slowCalls places n calls at once whose handling takes d by clock.
func (g *gateway) slowCalls(p *phone, slow *slowStore, clock *fakeClock, n int, d time.Duration) {
	g.t.Helper()
	slow.hold.Store(true)
	answered := make(chan *call, n)
	for i := range n {
		id := fmt.Sprintf("slow-%d", i)
		g.createSIP(id)
		go func() {
			c, err := p.Invite(g.srv.TransferURI(id), p.Offer("0"), answerNone)
			if err != nil {
				c = nil
			}
			answered <- c
		}()
	}
	eventually(g.t, "slow lookups waiting", func() bool { return int(slow.waiting.Load()) == n })
	slow.hold.Store(false)
	clock.advance(d)
	close(slow.release)
	for range n {
		c := <-answered
		if c == nil {
			g.t.Fatal("a slow INVITE was not answered")
		}
		_ = c.Dlg.Ack(context.Background())
		c.Hangup()
	}
}

// The node's own handling time over sip.overload.max_latency for a window
// sheds a share of new INVITEs; windows on target bring the share back.
func TestShedderTripsOnSlowHandlingAndRecovers(t *testing.T) {
	clock := newFakeClock()
	slow := &slowStore{release: make(chan struct{})}
	g := newGatewayOn(t, func(s transfer.Store) transfer.Store { slow.Store = s; return slow }, func(c *Config) {
		c.Overload = OverloadConfig{MaxLatency: 50 * time.Millisecond}
		c.clock = clock.now
	})
	p := newPhone(t)
	g.call(p, "first").Hangup() // opens the first window at the fake epoch
	g.slowCalls(p, slow, clock, minWindowSamples, 200*time.Millisecond)
	clock.advance(overloadWindow) // their window closes over target
	// Admitted share 0.8: of five INVITEs, the first is shed, four pass.
	refused503(t, g.try(p, "shed-1"), "overload_latency", "1")
	for i := range 4 {
		g.call(p, fmt.Sprintf("kept-%d", i)).Hangup()
	}
	refused503(t, g.try(p, "shed-2"), "overload_latency", "1")
	// Four windows on target (here idle) and every INVITE passes again.
	clock.advance(4 * overloadWindow)
	for i := range 6 {
		g.call(p, fmt.Sprintf("after-%d", i)).Hangup()
	}
	if n := g.refusedCount("overload_latency"); n != 2 {
		t.Fatalf("overload_latency refusals counted %d, want 2", n)
	}
	// What the gate admitted was timed, each once: 1 + 10 + 4 + 6 INVITEs,
	// ten of them in 200 ms.
	var m dto.Metric
	if err := g.srv.gate.metrics.handling.Write(&m); err != nil {
		t.Fatal(err)
	}
	if h := m.GetHistogram(); h.GetSampleCount() != 21 || math.Abs(h.GetSampleSum()-2) > 1e-9 {
		t.Fatalf("handling time observed %d times, %v s in all; want 21, 2 s", h.GetSampleCount(), h.GetSampleSum())
	}
}

// A full backlog (sip.overload.max_pending) sheds new INVITEs and answers
// OPTIONS 503, while the retransmission of the INVITE that fills it is
// absorbed by its transaction; once it is answered, calls pass again.
func TestBacklogShedsNewInvitesButNotRetransmissions(t *testing.T) {
	gp := &gatedPipeline{Pipeline: agent.Loopback{}, opened: make(chan struct{}, 1), gate: make(chan struct{})}
	g := newGateway(t, func(c *Config) {
		c.Overload = OverloadConfig{MaxPending: 1}
		c.Pipeline = gp
		c.RingingAfter = -1 // the only provisional answer is the 100
	})
	g.createSIP("held")
	raw := newRawUDP(t, "127.0.0.1", g.addr)
	invite := raw.invite(g.srv.TransferURI("held"))
	if res := raw.read(); res.StatusCode != sip.StatusTrying {
		t.Fatalf("first answer %d", res.StatusCode)
	}
	<-gp.opened // pending: waiting for its agent
	raw.send(raw.request(invite))
	if res := raw.read(); res.StatusCode != sip.StatusTrying {
		t.Fatalf("retransmitted INVITE got %d, want its 100 again", res.StatusCode)
	}
	p := newPhone(t)
	refused503(t, g.try(p, "behind"), "overload_pending", "1")
	if res := optionsStatus(t, p, g.addr); res.StatusCode != 503 {
		t.Fatalf("OPTIONS with a full backlog: %d", res.StatusCode)
	}
	cancel := invite
	cancel.method = "CANCEL"
	raw.send(raw.request(cancel))
	res := raw.read()
	for res.StatusCode != sip.StatusRequestTerminated {
		res = raw.read()
	}
	raw.ack(invite, res)
	close(gp.gate)
	g.waitCalls(0)
	p.MustAnswer(g.srv.TransferURI("behind"), p.Offer("0")).Hangup()
	if n := g.refusedCount("overload_pending"); n != 1 {
		t.Fatalf("overload_pending refusals counted %d, want 1", n)
	}
}

func TestSetLimitsAppliesToTheNextInvite(t *testing.T) {
	g := newGateway(t, func(c *Config) { c.Limits = Limits{MaxCalls: 1} })
	p := newPhone(t)
	c := g.call(p, "reload-1")
	refused503(t, g.try(p, "reload-2"), "max_calls", "1")
	g.srv.SetLimits(Limits{MaxCalls: 2}, OverloadConfig{})
	d := p.MustAnswer(g.srv.TransferURI("reload-2"), p.Offer("0"))
	c.Hangup()
	d.Hangup()
}

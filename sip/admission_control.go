package sip

import (
	"log/slog"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limits bounds the calls a node takes. Every refusal is a stateless
// 503 with Retry-After and a Reason naming the limit; 0 means unlimited.
type Limits struct {
	// MaxCalls bounds the calls in progress, those being set up included.
	MaxCalls int
	// MaxCPS bounds new INVITEs per second (a token bucket holding one
	// second's worth).
	MaxCPS float64
	// PerSourceMaxCalls and PerSourceMaxCPS bound the same per source: a
	// trunk when the INVITE's source IP is in one of Trunks' prefixes,
	// else the source IP itself.
	PerSourceMaxCalls int
	PerSourceMaxCPS   float64
	// Trunks names groups of source prefixes that count as one source (a
	// carrier sending from several SBC addresses).
	Trunks map[string][]netip.Prefix
	// RetryAfter is sent with max_calls and overload refusals; cps refusals
	// say when the next call fits, at least this. Default 1 s.
	RetryAfter time.Duration
}

// DefaultLimitsRetryAfter is Limits.RetryAfter when it is left zero.
const DefaultLimitsRetryAfter = time.Second

// Reasons of limit refusals (Reason header text and metric label): the
// names of the configuration keys that refused.
const (
	reasonMaxCalls          = "max_calls"
	reasonMaxCPS            = "max_cps"
	reasonPerSourceMaxCalls = "per_source_max_calls"
	reasonPerSourceMaxCPS   = "per_source_max_cps"
)

// admissionReasons lists every refusal reason, for the metric's series.
var admissionReasons = []string{
	reasonMaxCalls, reasonMaxCPS, reasonPerSourceMaxCalls, reasonPerSourceMaxCPS,
	reasonOverloadPending, reasonOverloadLatency,
}

// minSourceSweep is the least number of tracked sources before idle ones
// are swept.
const minSourceSweep = 1024

// refusal is why the gate turned an INVITE away, and when to come back.
type refusal struct {
	reason     string
	retryAfter time.Duration
}

// retryAfterValue and reasonValue are the Retry-After and Reason (RFC
// 3326) header values of r's 503, the same from the read path and the
// handler.
func (r *refusal) retryAfterValue() string { return retryAfterSeconds(r.retryAfter) }
func (r *refusal) reasonValue() string     { return `SIP;cause=503;text="` + r.reason + `"` }

// gate is admission control: the fixed limits and the shedder, in front of
// everything an INVITE costs (authentication, store, ports, agent). One
// mutex: each INVITE takes it a few times, for microseconds.
type gate struct {
	now     func() time.Time
	clocked bool // now is a test's clock: the kernel's receive stamps do not apply
	log     *slog.Logger
	metrics *admissionMetrics

	mu       sync.Mutex
	limits   Limits
	trunks   []trunk
	calls    int
	cps      *rate.Limiter // nil: unlimited
	sources  map[sourceKey]*sourceLoad
	sweepAt  int
	shed     shedder
	byCallID map[string]*ticket // pending INVITEs, to time their agent start
	warned   bool               // "shedding" logged, "stopped" not yet
	// seen holds the new INVITEs the UDP read path admitted (early.go), by
	// Call-ID, for inviteMemory: their retransmissions pass it, and their
	// handler takes their receipt time and place in the backlog. seenOrder
	// is their order of arrival, to forget them.
	seen      map[string]*earlyInvite
	seenOrder []seenEntry
}

// earlyInvite is a new INVITE admitted by the read path.
type earlyInvite struct {
	received time.Time         // the kernel's receipt time, on the gate's clock
	taken    bool              // its handler has entered the gate
	cps      *rate.Reservation // its token of the node's max_cps (nil: unlimited)
}

type seenEntry struct {
	callID string
	until  time.Time
}

// inviteMemory is how long the read path remembers an admitted INVITE:
// 64*T1, when its client stops retransmitting it (RFC 3261 Timer B).
const inviteMemory = 32 * time.Second

// trunk is one named group of source prefixes.
type trunk struct {
	name     string
	prefixes []netip.Prefix
}

// sourceKey is what per-source limits count by: a trunk, else an IP.
type sourceKey struct {
	trunk string
	ip    netip.Addr
}

type sourceLoad struct {
	calls int
	cps   *rate.Limiter // nil: unlimited
}

// ticket is one admitted INVITE, from the gate until its handler returns.
type ticket struct {
	g        *gate
	source   *sourceKey // nil: not counted per source
	callID   string
	entered  time.Time
	timed    bool // its handling time has been observed
	answered bool // its final response has been sent
	left     bool
}

func newGate(l Limits, o OverloadConfig, now func() time.Time, log *slog.Logger) *gate {
	clocked := now != nil
	if now == nil {
		now = time.Now
	}
	g := &gate{now: now, clocked: clocked, log: log, metrics: newAdmissionMetrics(),
		sources: map[sourceKey]*sourceLoad{}, sweepAt: minSourceSweep, byCallID: map[string]*ticket{},
		shed: newShedder(o), seen: map[string]*earlyInvite{}}
	g.set(l, o)
	return g
}

// set applies new limits; the calls counted and the shedder's state stay.
func (g *gate) set(l Limits, o OverloadConfig) {
	if l.RetryAfter <= 0 {
		l.RetryAfter = DefaultLimitsRetryAfter
	}
	g.limits = l
	g.trunks = g.trunks[:0]
	for name, prefixes := range l.Trunks {
		g.trunks = append(g.trunks, trunk{name: name, prefixes: prefixes})
	}
	slices.SortFunc(g.trunks, func(a, b trunk) int { return strings.Compare(a.name, b.name) })
	now := g.now()
	g.cps = retune(g.cps, l.MaxCPS, now)
	for _, s := range g.sources {
		s.cps = retune(s.cps, l.PerSourceMaxCPS, now)
	}
	g.shed.cfg = o
}

// SetLimits replaces the admission limits and overload thresholds (a
// configuration reload); calls in progress are kept and still counted.
func (s *Server) SetLimits(l Limits, o OverloadConfig) {
	s.gate.mu.Lock()
	defer s.gate.mu.Unlock()
	s.gate.set(l, o)
}

// early judges a new INVITE with callID as the UDP read path reads it,
// delay after the kernel received it: nil passes it (admitted, and
// pending from now), else the shedder's or the node's max_cps refusal.
// A retransmission of an INVITE it passed passes again, unjudged.
// backlogged says the read path's hand-off queue to sipgo is full: sipgo
// is a queue's length behind, so a new INVITE is refused at once
// (overload_pending) rather than waiting for room behind it.
func (g *gate) early(callID string, delay time.Duration, backlogged bool) *refusal {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	g.forget(now)
	if _, seen := g.seen[callID]; seen {
		return nil
	}
	if g.clocked {
		delay = 0
	}
	g.shed.observeQueue(now, delay)
	g.metrics.queued.Observe(delay.Seconds())
	if backlogged {
		return &refusal{reason: reasonOverloadPending, retryAfter: g.limits.RetryAfter}
	}
	// The node's max_cps is a fixed limit as cheap to judge here as the
	// shedder: refusing beyond it costs no parse and no goroutine.
	node, wait := take(g.cps, now)
	if wait > 0 {
		return &refusal{reason: reasonMaxCPS, retryAfter: max(g.limits.RetryAfter, wait)}
	}
	if reason := g.shed.admit(now); reason != "" {
		cancel(node, now)
		g.shedLog()
		return &refusal{reason: reason, retryAfter: g.limits.RetryAfter}
	}
	g.seen[callID] = &earlyInvite{received: now.Add(-delay), cps: node}
	g.seenOrder = append(g.seenOrder, seenEntry{callID: callID, until: now.Add(inviteMemory)})
	g.metrics.pending.Inc()
	return nil
}

// forget drops the read path's INVITEs older than inviteMemory; one that
// never reached its handler (sipgo could not parse it) leaves the backlog.
func (g *gate) forget(now time.Time) {
	n := 0
	for ; n < len(g.seenOrder) && !now.Before(g.seenOrder[n].until); n++ {
		id := g.seenOrder[n].callID
		if e := g.seen[id]; e != nil && !e.taken {
			g.shed.answered()
			g.metrics.pending.Dec()
		}
		delete(g.seen, id)
	}
	g.seenOrder = g.seenOrder[n:]
}

// enter admits one new INVITE from src (host:port) or says why not. One
// the read path admitted is not judged again by the shedder, and counts
// from its receipt.
func (g *gate) enter(src, callID string) (*ticket, *refusal) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	entered, pre := now, (*earlyInvite)(nil)
	if e := g.seen[callID]; e != nil && !e.taken {
		e.taken, entered, pre = true, e.received, e
	} else if reason := g.shed.admit(now); reason != "" {
		g.shedLog()
		return nil, &refusal{reason: reason, retryAfter: g.limits.RetryAfter}
	}
	key := g.sourceOf(src)
	if r := g.check(key, now, pre); r != nil {
		g.shed.answered() // not pending after all
		if pre != nil {
			g.metrics.pending.Dec()
		}
		return nil, r
	}
	t := &ticket{g: g, callID: callID, entered: entered}
	g.calls++
	if key != nil {
		g.source(*key).calls++
		t.source = key
	}
	if _, dup := g.byCallID[callID]; !dup && callID != "" {
		g.byCallID[callID] = t
	}
	if pre == nil {
		g.metrics.pending.Inc()
	}
	return t, nil
}

// check applies the fixed limits; it spends a token of each cps bucket
// only when the INVITE passes them all. pre is the read path's admission
// of it (nil: none), which took its node max_cps token already: a refusal
// here gives that token back.
func (g *gate) check(key *sourceKey, now time.Time, pre *earlyInvite) *refusal {
	r := g.checkCalls(key)
	if r == nil {
		r = g.checkRates(key, now, pre != nil)
	}
	if r != nil && pre != nil {
		cancel(pre.cps, now)
	}
	return r
}

// checkCalls applies the concurrent-call limits.
func (g *gate) checkCalls(key *sourceKey) *refusal {
	l := &g.limits
	if l.MaxCalls > 0 && g.calls >= l.MaxCalls {
		return &refusal{reason: reasonMaxCalls, retryAfter: l.RetryAfter}
	}
	if key != nil && l.PerSourceMaxCalls > 0 && g.source(*key).calls >= l.PerSourceMaxCalls {
		return &refusal{reason: reasonPerSourceMaxCalls, retryAfter: l.RetryAfter}
	}
	return nil
}

// checkRates applies the cps limits: the node's unless the read path
// (rated) did, then the source's.
func (g *gate) checkRates(key *sourceKey, now time.Time, rated bool) *refusal {
	l := &g.limits
	var node *rate.Reservation
	if !rated {
		var wait time.Duration
		if node, wait = take(g.cps, now); wait > 0 {
			return &refusal{reason: reasonMaxCPS, retryAfter: max(l.RetryAfter, wait)}
		}
	}
	if key != nil {
		if _, wait := take(g.source(*key).cps, now); wait > 0 {
			cancel(node, now)
			return &refusal{reason: reasonPerSourceMaxCPS, retryAfter: max(l.RetryAfter, wait)}
		}
	}
	return nil
}

// cancel gives back the token r took (nil: none was taken).
func cancel(r *rate.Reservation, now time.Time) {
	if r != nil {
		r.CancelAt(now)
	}
}

// take spends one token of lim (nil: unlimited), or says how long until
// one is there.
func take(lim *rate.Limiter, now time.Time) (*rate.Reservation, time.Duration) {
	if lim == nil {
		return nil, 0
	}
	r := lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return nil, d
	}
	return r, 0
}

// sourceOf is the per-source identity of src, nil when no per-source limit
// is set (or src is not an address).
func (g *gate) sourceOf(src string) *sourceKey {
	if g.limits.PerSourceMaxCalls <= 0 && g.limits.PerSourceMaxCPS <= 0 {
		return nil
	}
	ap, err := netip.ParseAddrPort(src)
	if err != nil {
		return nil
	}
	ip := ap.Addr().Unmap()
	for _, t := range g.trunks {
		for _, p := range t.prefixes {
			if p.Contains(ip) {
				return &sourceKey{trunk: t.name}
			}
		}
	}
	return &sourceKey{ip: ip}
}

// source is the load record of key, created on first use.
func (g *gate) source(key sourceKey) *sourceLoad {
	s, ok := g.sources[key]
	if !ok {
		g.sweep()
		s = &sourceLoad{cps: retune(nil, g.limits.PerSourceMaxCPS, g.now())}
		g.sources[key] = s
	}
	return s
}

// sweep forgets the sources that hold nothing (no call, a full bucket)
// once the table has doubled since the last sweep, so a flood of
// addresses costs memory only for its last second.
func (g *gate) sweep() {
	if len(g.sources) < g.sweepAt {
		return
	}
	now := g.now()
	for k, s := range g.sources {
		if s.calls == 0 && (s.cps == nil || s.cps.TokensAt(now) >= float64(s.cps.Burst())) {
			delete(g.sources, k)
		}
	}
	g.sweepAt = max(minSourceSweep, 2*len(g.sources))
}

// retune makes lim a bucket of perSecond (one second's worth deep), or nil
// for unlimited; an existing bucket keeps its tokens.
func retune(lim *rate.Limiter, perSecond float64, now time.Time) *rate.Limiter {
	if perSecond <= 0 {
		return nil
	}
	burst := max(1, int(math.Ceil(perSecond)))
	if lim == nil {
		return rate.NewLimiter(rate.Limit(perSecond), burst)
	}
	lim.SetLimitAt(now, rate.Limit(perSecond))
	lim.SetBurstAt(now, burst)
	return lim
}

// busy says why the node (or the source src) could not take a call now,
// for OPTIONS: a dispatcher probing with OPTIONS takes a full node out of
// rotation. Partial shedding and cps do not count: they pass within a
// second, and a node in and out of rotation at the probe interval would
// swing its load on and off (RFC 7339 §1).
func (g *gate) busy(src string) *refusal {
	g.mu.Lock()
	defer g.mu.Unlock()
	l := &g.limits
	switch key := g.sourceOf(src); {
	case g.shed.full():
		return &refusal{reason: reasonOverloadPending, retryAfter: l.RetryAfter}
	case l.MaxCalls > 0 && g.calls >= l.MaxCalls:
		return &refusal{reason: reasonMaxCalls, retryAfter: l.RetryAfter}
	case key != nil && l.PerSourceMaxCalls > 0 && g.sources[*key] != nil && g.sources[*key].calls >= l.PerSourceMaxCalls:
		return &refusal{reason: reasonPerSourceMaxCalls, retryAfter: l.RetryAfter}
	}
	return nil
}

// shedLog says when latency shedding starts (once per episode; the
// metric counts every refusal).
func (g *gate) shedLog() {
	if g.shed.shedding() && !g.warned {
		g.warned = true
		g.log.Warn("overload: shedding new INVITEs", "admitted_share", float64(g.shed.share)/shareAll,
			"max_latency", g.shed.cfg.MaxLatency.String(), "pending", g.shed.pending)
	}
}

// timed records t's handling time at now, once (the first of its agent
// start and its final response).
func (t *ticket) observeHandling(now time.Time) {
	if t.timed {
		return
	}
	t.timed = true
	d := now.Sub(t.entered)
	t.g.shed.observe(now, d)
	t.g.metrics.handling.Observe(d.Seconds())
	if !t.g.shed.shedding() && t.g.warned {
		t.g.warned = false
		t.g.log.Info("overload: shedding stopped")
	}
}

// agentStarting marks the moment the INVITE of callID starts waiting for
// its agent: the rest of its set-up time is not ours.
func (g *gate) agentStarting(callID string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if t := g.byCallID[callID]; t != nil {
		t.observeHandling(g.now())
	}
}

// answer marks t's final response sent: it leaves the backlog.
func (t *ticket) answer() {
	g := t.g
	g.mu.Lock()
	defer g.mu.Unlock()
	t.answerLocked()
}

func (t *ticket) answerLocked() {
	if t.answered {
		return
	}
	t.observeHandling(t.g.now())
	t.answered = true
	t.g.shed.answered()
	t.g.metrics.pending.Dec()
	if t.g.byCallID[t.callID] == t {
		delete(t.g.byCallID, t.callID)
	}
}

// leave releases t's call slot when its handler returns (the call ended,
// or the INVITE got its answer without us, e.g. 487 after a CANCEL).
func (t *ticket) leave() {
	g := t.g
	g.mu.Lock()
	defer g.mu.Unlock()
	if t.left {
		return
	}
	t.left = true
	t.answerLocked()
	g.calls--
	if t.source != nil {
		if s := g.sources[*t.source]; s != nil {
			s.calls--
		}
	}
}

// retryAfterSeconds is d as a Retry-After value: whole seconds, rounded up.
func retryAfterSeconds(d time.Duration) string {
	return strconv.Itoa(int(math.Ceil(d.Seconds())))
}

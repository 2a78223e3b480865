package sip

import "time"

// OverloadConfig is the node's self-protection beyond fixed limits: when it
// falls behind, new INVITEs are shed before they cost anything, so the
// calls already admitted keep their latency. docs/operations.md, Overload.
type OverloadConfig struct {
	// MaxPending sheds every new INVITE while this many are unanswered
	// (received, no final response yet); 0 turns it off.
	MaxPending int
	// MaxLatency is the target of the node's own INVITE handling time: from
	// receipt to the final response or to the start of the agent session,
	// whichever comes first (the agent's connect time is not ours). While
	// more than a tenth of a window's INVITEs take longer (its 90th
	// percentile is over target), a growing share of new INVITEs is shed;
	// 0 turns it off.
	MaxLatency time.Duration
	// MaxQueueDelay is the target of the time new INVITEs wait in the UDP
	// socket before the read path reads them (the kernel's receive stamp
	// to the read): when every new INVITE of a window waited longer (its
	// minimum is over target: a standing queue, as CoDel judges one, not a
	// burst), the admitted share falls as for MaxLatency. This sees the
	// node falling behind before any handling time can, since it is the
	// wait before handling begins; 0 turns it off.
	MaxQueueDelay time.Duration
}

// The shedding controller's constants (docs/operations.md, Overload).
const (
	// overloadWindow is how often the latency signal is judged.
	overloadWindow = 100 * time.Millisecond
	// shareAll is the whole admitted share: shares are in thousandths, so
	// the controller is exact integer arithmetic.
	shareAll = 1000
	// shareDecrease (of shareAll) multiplies the admitted share after a
	// window over target: 0.8.
	shareDecrease = 800
	// shareIncrease is added back after each window on target (or idle): 0.05.
	shareIncrease = 50
	// minWindowSamples is how many INVITEs a window needs to be judged: one
	// slow INVITE at low traffic (a disk stall) is no overload, and overload
	// comes with traffic (10 per 100 ms is 100 calls/s).
	minWindowSamples = 10
	// slowShare is the share of a window's INVITEs over MaxLatency that makes
	// it overloaded: its 90th percentile is over target.
	slowShare = 10 // percent
)

// Defaults of the overload thresholds in cmd/handoff (the sip package's
// zero values turn them off).
const (
	DefaultMaxPending    = 1000
	DefaultMaxLatency    = 50 * time.Millisecond
	DefaultMaxQueueDelay = 5 * time.Millisecond
)

// Reasons of overload refusals (Reason header text and metric label).
const (
	reasonOverloadPending = "overload_pending"
	reasonOverloadLatency = "overload_latency"
)

// shedder decides which new INVITEs an overloaded node sheds. Two signals:
// the backlog of unanswered INVITEs, a hard cap (a tail drop); and the
// handling time, judged per window by its 90th percentile (the latency
// that matters to callers is a tail), which drives the admitted share down
// multiplicatively and back up additively (the loss-based scheme of RFC
// 7339, applied to ourselves).
// It has no clock or goroutine of its own: callers pass the time, so tests
// drive it deterministically. Not safe for concurrent use (the gate locks).
type shedder struct {
	cfg     OverloadConfig
	pending int           // unanswered INVITEs
	window  time.Time     // start of the window being measured
	samples int           // handling times seen in it
	slow    int           // of them, over MaxLatency
	queued  int           // queue delays seen in it
	least   time.Duration // the smallest of them
	share   int           // thousandths of new INVITEs admitted, in [0, shareAll]
	credit  int           // admissions owed at the current share, in thousandths
}

func newShedder(cfg OverloadConfig) shedder {
	return shedder{cfg: cfg, share: shareAll}
}

// admit decides on one new INVITE at now: "" admits it (and counts it
// pending), otherwise the reason it is shed.
func (s *shedder) admit(now time.Time) string {
	s.roll(now)
	if s.full() {
		return reasonOverloadPending
	}
	if s.share < shareAll {
		s.credit += s.share
		if s.credit < shareAll {
			return reasonOverloadLatency
		}
		s.credit -= shareAll
	}
	s.pending++
	return ""
}

// full reports whether the backlog is at its cap.
func (s *shedder) full() bool {
	return s.cfg.MaxPending > 0 && s.pending >= s.cfg.MaxPending
}

// observe records one admitted INVITE's handling time d, measured at now.
func (s *shedder) observe(now time.Time, d time.Duration) {
	s.roll(now)
	s.samples++
	if s.cfg.MaxLatency > 0 && d > s.cfg.MaxLatency {
		s.slow++
	}
}

// observeQueue records how long one new INVITE waited in the socket,
// read at now.
func (s *shedder) observeQueue(now time.Time, d time.Duration) {
	s.roll(now)
	if s.queued == 0 || d < s.least {
		s.least = d
	}
	s.queued++
}

// overloaded judges the window that ends: too many slow INVITEs, or a
// standing queue in the socket (every INVITE of the window waited longer
// than MaxQueueDelay: CoDel's test, so a burst or a stalled thread, which
// some INVITEs of the window escape, is not taken for overload).
func (s *shedder) overloaded() bool {
	slow := s.samples >= minWindowSamples && 100*s.slow > slowShare*s.samples
	queue := s.cfg.MaxQueueDelay > 0 && s.queued >= minWindowSamples && s.least > s.cfg.MaxQueueDelay
	return slow || queue
}

// answered takes an INVITE out of the backlog.
func (s *shedder) answered() { s.pending-- }

// shedding reports whether the latency signal is shedding some INVITEs.
func (s *shedder) shedding() bool { return s.share < shareAll }

// roll closes the windows that ended by now and adjusts the share: down
// after a window over target (with enough samples to judge), up after
// each other one.
func (s *shedder) roll(now time.Time) {
	if s.window.IsZero() {
		s.window = now
		return
	}
	n := int(now.Sub(s.window) / overloadWindow)
	if n <= 0 {
		return
	}
	if s.overloaded() {
		s.share = s.share * shareDecrease / shareAll
	} else {
		s.share += shareIncrease
	}
	s.share += min(n-1, shareAll/shareIncrease) * shareIncrease // the idle windows after it
	if s.share >= shareAll {
		s.share, s.credit = shareAll, 0
	}
	s.window = s.window.Add(time.Duration(n) * overloadWindow)
	s.samples, s.slow, s.queued, s.least = 0, 0, 0, 0
}

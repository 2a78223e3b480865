package sip

import (
	"testing"
	"time"
)

// admitN offers n INVITEs at now and returns which were shed ("" admitted).
func admitN(s *shedder, now time.Time, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s.admit(now)
	}
	return out
}

// observeN records n handling times of d at now.
func observeN(s *shedder, now time.Time, n int, d time.Duration) {
	for range n {
		s.observe(now, d)
	}
}

func TestShedderJudgesAWindowByItsNinetiethPercentile(t *testing.T) {
	t0 := time.Unix(0, 0)
	w := func(i int) time.Time { return t0.Add(time.Duration(i) * overloadWindow) }
	s := newShedder(OverloadConfig{MaxLatency: 50 * time.Millisecond})
	s.admit(t0)
	observeN(&s, t0, minWindowSamples-1, time.Second) // too few to judge
	if got := s.admit(w(1)); got != "" || s.shedding() {
		t.Fatalf("shed after %d slow INVITEs: %q", minWindowSamples-1, got)
	}
	// One slow INVITE in ten is the 90th percentile on target.
	observeN(&s, w(1), 9, 10*time.Millisecond)
	observeN(&s, w(1), 1, time.Second)
	if got := s.admit(w(2)); got != "" || s.shedding() {
		t.Fatalf("shed after a window with one slow INVITE in ten: %q", got)
	}
	// Two in ten is over it.
	observeN(&s, w(2), 8, 10*time.Millisecond)
	observeN(&s, w(2), 2, time.Second)
	if got := s.admit(w(3)); got != reasonOverloadLatency {
		t.Fatalf("after a window with two slow INVITEs in ten: %q, want shed", got)
	}
}

// The queue signal is CoDel's: a window trips it only when every INVITE
// of it waited longer than MaxQueueDelay (a standing queue), not when some
// did (a burst, or the read thread stalled for a moment).
func TestShedderJudgesTheQueueByItsMinimum(t *testing.T) {
	t0 := time.Unix(0, 0)
	w := func(i int) time.Time { return t0.Add(time.Duration(i) * overloadWindow) }
	s := newShedder(OverloadConfig{MaxQueueDelay: 5 * time.Millisecond})
	s.admit(t0)
	queueN := func(at time.Time, n int, d time.Duration) {
		for range n {
			s.observeQueue(at, d)
		}
	}
	queueN(t0, minWindowSamples-1, time.Second) // too few to judge
	if got := s.admit(w(1)); got != "" || s.shedding() {
		t.Fatalf("shed after %d queued INVITEs: %q", minWindowSamples-1, got)
	}
	// Nine of ten waited 200 ms, one was read at once: no standing queue.
	queueN(w(1), 9, 200*time.Millisecond)
	queueN(w(1), 1, time.Millisecond)
	if got := s.admit(w(2)); got != "" || s.shedding() {
		t.Fatalf("shed after a window whose fastest INVITE waited 1 ms: %q", got)
	}
	// All ten over target: shed.
	queueN(w(2), 10, 6*time.Millisecond)
	if got := s.admit(w(3)); got != reasonOverloadLatency {
		t.Fatalf("after a window with every INVITE queued 6 ms: %q, want shed", got)
	}
	// Off: the same window is not judged.
	off := newShedder(OverloadConfig{})
	off.admit(t0)
	for range 10 {
		off.observeQueue(t0, time.Second)
	}
	if got := off.admit(w(1)); got != "" {
		t.Fatalf("with MaxQueueDelay 0: %q", got)
	}
}

func TestShedderSharesAndRecovers(t *testing.T) {
	t0 := time.Unix(0, 0)
	s := newShedder(OverloadConfig{MaxLatency: 50 * time.Millisecond})
	s.admit(t0)
	observeN(&s, t0, minWindowSamples, 80*time.Millisecond)
	// Share 0.8: one in five shed, the first at once.
	want := []string{reasonOverloadLatency, "", "", "", "", reasonOverloadLatency}
	got := admitN(&s, t0.Add(overloadWindow), len(want))
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("at share 0.8: %q, want %q", got, want)
		}
	}
	// A second window over target: 0.64.
	observeN(&s, t0.Add(overloadWindow), minWindowSamples, 80*time.Millisecond)
	s.roll(t0.Add(2 * overloadWindow))
	if s.share != 640 {
		t.Fatalf("share %d after two windows over target, want 640", s.share)
	}
	// Seven quiet windows bring it back to 0.99, the eighth to all.
	s.roll(t0.Add(9 * overloadWindow))
	if s.share != 990 || !s.shedding() {
		t.Fatalf("share %d after 7 quiet windows, want 990", s.share)
	}
	s.roll(t0.Add(10 * overloadWindow))
	if s.shedding() || s.credit != 0 {
		t.Fatalf("share %d, credit %d after 8 quiet windows", s.share, s.credit)
	}
	// Hours of silence cost one step, not one per window.
	s.roll(t0.Add(10*time.Hour + 50*time.Millisecond))
	if !s.window.Equal(t0.Add(10 * time.Hour)) {
		t.Fatalf("window %v", s.window)
	}
}

func TestShedderBacklogCap(t *testing.T) {
	t0 := time.Unix(0, 0)
	s := newShedder(OverloadConfig{MaxPending: 2})
	if got := admitN(&s, t0, 3); got[0] != "" || got[1] != "" || got[2] != reasonOverloadPending {
		t.Fatalf("with a backlog of 2: %q", got)
	}
	s.answered()
	if got := s.admit(t0); got != "" {
		t.Fatalf("after an answer: %q", got)
	}
	// Without MaxLatency, slow windows shed nothing.
	observeN(&s, t0, minWindowSamples, time.Hour)
	s.roll(t0.Add(overloadWindow))
	if s.shedding() {
		t.Fatal("latency shedding without max_latency")
	}
}

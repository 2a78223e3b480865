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

func TestShedderNeedsAWindowOfSlowInvites(t *testing.T) {
	t0 := time.Unix(0, 0)
	s := newShedder(OverloadConfig{MaxLatency: 50 * time.Millisecond})
	s.admit(t0)
	for range minWindowSamples - 1 { // too few to judge the window
		s.observe(t0, time.Second)
	}
	if got := admitN(&s, t0.Add(overloadWindow), 3); got[0] != "" || got[1] != "" || got[2] != "" {
		t.Fatalf("shed after %d slow INVITEs: %q", minWindowSamples-1, got)
	}
	// A window whose fastest INVITE is on target is not overloaded either.
	for _, d := range []time.Duration{time.Second, 10 * time.Millisecond, time.Second} {
		s.observe(t0.Add(overloadWindow), d)
	}
	if got := s.admit(t0.Add(2 * overloadWindow)); got != "" || s.shedding() {
		t.Fatalf("shed after a window with one fast INVITE: %q", got)
	}
}

func TestShedderSharesAndRecovers(t *testing.T) {
	t0 := time.Unix(0, 0)
	s := newShedder(OverloadConfig{MaxLatency: 50 * time.Millisecond})
	s.admit(t0)
	for range minWindowSamples {
		s.observe(t0, 80*time.Millisecond)
	}
	// Share 0.8: one in five shed, the first at once.
	want := []string{reasonOverloadLatency, "", "", "", "", reasonOverloadLatency}
	got := admitN(&s, t0.Add(overloadWindow), len(want))
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("at share 0.8: %q, want %q", got, want)
		}
	}
	// A second window over target: 0.64.
	for range minWindowSamples {
		s.observe(t0.Add(overloadWindow), 80*time.Millisecond)
	}
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
	for range minWindowSamples {
		s.observe(t0, time.Hour)
	}
	s.roll(t0.Add(overloadWindow))
	if s.shedding() {
		t.Fatal("latency shedding without max_latency")
	}
}

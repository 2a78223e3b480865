package main

import "fmt"

// report prints one run's figures; its last line, "CPUMS <target> <ms per
// call-second>", is for scripts/load-media.sh's ratio.
func (r *mediaRun) report(w0, w1 window) {
	name, n := r.t.name(), len(r.calls)
	secs := w1.at.Sub(w0.at).Seconds()
	out, back := w1.out.minus(w0.out), w1.back.minus(w0.back)
	fmt.Printf("%s: %d calls up (%d failed to set up), RTP both ways, measured over %.1f s\n", name, n, r.failed.Load(), secs)
	if _, ok := r.t.counts(); ok {
		in := w1.self.in - w0.self.in
		fmt.Printf("%s: caller->%s: %d sent, %d received: loss %s; late %s (dropped late by %s)\n",
			name, name, out.sent, in, share(out.sent-in, out.sent), share(w1.self.late-w0.self.late, in), name)
		sent := w1.self.out - w0.self.out
		fmt.Printf("%s: %s->caller: %d sent, %d received (%d expected by sequence): loss %s; late %s (over %s behind the stream's best)\n",
			name, name, sent, back.received, back.expected, share(back.expected-back.received, back.expected),
			share(back.late, back.received), r.cfg.late)
	} else {
		for _, d := range []struct {
			dir string
			f   flow
		}{{"A->B", out}, {"B->A", back}} {
			fmt.Printf("%s: %s: %d sent, %d received: loss %s; late %s (over %s behind the stream's best)\n",
				name, d.dir, d.f.sent, d.f.received, share(d.f.sent-d.f.received, d.f.sent), share(d.f.late, d.f.received), r.cfg.late)
		}
	}
	cpu := float64(w1.ticks-w0.ticks) / clockTicks
	perCallSec := 1000 * cpu / (float64(n) * secs)
	fmt.Printf("%s: CPU %.2f s in %.1f s = %.3f ms per call-second (%.0f%% of one core)\n", name, cpu, secs, perCallSec, 100*cpu/secs)
	fmt.Printf("%s: RSS %.1f MiB idle, %.1f MiB with the calls up: %.0f KiB per concurrent call\n",
		name, float64(r.rssIdle)/1024, float64(r.rssUp)/1024, float64(r.rssUp-r.rssIdle)/float64(n))
	fmt.Printf("CPUMS %s %.4f\n", name, perCallSec)
}

// share is part of whole as a percentage with the count, e.g. "0.012% (24)".
func share(part, whole int64) string {
	if whole <= 0 {
		return fmt.Sprintf("- (%d)", part)
	}
	return fmt.Sprintf("%.3f%% (%d)", 100*float64(part)/float64(whole), part)
}

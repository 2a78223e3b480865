package main

import (
	"runtime"
	"testing"
)

// The node runs procsPerCPU Ps per CPU, unless GOMAXPROCS is set or a CPU
// quota already lowered the runtime's default.
func TestTuneProcs(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	cpus := runtime.NumCPU()
	set := func(string) (string, bool) { return "3", true }
	runtime.GOMAXPROCS(cpus)
	if n := tuneProcs(set); n != cpus || runtime.GOMAXPROCS(0) != cpus {
		t.Fatalf("with GOMAXPROCS set: %d Ps (reported %d), want the runtime's %d", runtime.GOMAXPROCS(0), n, cpus)
	}
	if n := tuneProcs(noEnv); n != procsPerCPU*cpus || runtime.GOMAXPROCS(0) != n {
		t.Fatalf("by default: %d Ps (reported %d), want %d per CPU = %d", runtime.GOMAXPROCS(0), n, procsPerCPU, procsPerCPU*cpus)
	}
	if cpus > 1 { // a quota below the CPU count (one CPU has none to show)
		runtime.GOMAXPROCS(cpus - 1)
		if n := tuneProcs(noEnv); n != cpus-1 {
			t.Fatalf("under a quota of %d CPUs: %d Ps, want the quota's", cpus-1, n)
		}
	}
}

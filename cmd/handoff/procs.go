package main

import (
	"runtime"
)

// procsPerCPU is how many Go processors (Ps) the node runs per CPU it may
// use, unless GOMAXPROCS is set. A P whose thread the kernel or the
// hypervisor preempts (another process, a softirq, CPU steal) holds its
// queue of runnable goroutines until that thread runs again; with a spare
// P per CPU the other Ps keep taking them. On the shared 2-vCPU box this
// cut INVITE→200 p99 at 900 calls/s from 100-132 ms to 20-28 ms and late
// media packets at 1 000 calls from 1.3 % to 0.2 %, for about 10 % more
// CPU per call (docs/benchmarks.md, Capacity).
const procsPerCPU = 2

// tuneProcs sets GOMAXPROCS to procsPerCPU times the runtime's default,
// unless the environment set GOMAXPROCS or a CPU quota (cgroup) lowered
// the default below the CPU count: a quota is spent by every runnable
// thread, so extra Ps would only reach its throttling sooner. It returns
// the GOMAXPROCS in effect.
func tuneProcs(lookupEnv func(string) (string, bool)) int {
	n := runtime.GOMAXPROCS(0)
	if _, set := lookupEnv("GOMAXPROCS"); set || n < runtime.NumCPU() {
		return n
	}
	runtime.GOMAXPROCS(procsPerCPU * n)
	return procsPerCPU * n
}

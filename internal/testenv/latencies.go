package testenv

import (
	"slices"
	"sync"
	"testing"
	"time"
)

// Latencies gathers per-operation latencies from a parallel benchmark's
// goroutines (each keeps its own slice and adds it once at the end) and
// reports the rate and the percentiles.
type Latencies struct {
	mu  sync.Mutex
	all []time.Duration
}

// Add merges one goroutine's latencies.
func (l *Latencies) Add(local []time.Duration) {
	l.mu.Lock()
	l.all = append(l.all, local...)
	l.mu.Unlock()
}

// RunParallel runs op b.N times from 8×GOMAXPROCS goroutines, reporting
// allocations, and returns the wall time it took. op returns how long its
// timed part took (set-up it does first stays out of the latencies), or an
// error, which fails b and stops that goroutine.
func (l *Latencies) RunParallel(b *testing.B, op func() (time.Duration, error)) time.Duration {
	b.SetParallelism(8)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		local := make([]time.Duration, 0, 1024)
		for pb.Next() {
			d, err := op()
			if err != nil {
				b.Error(err)
				return
			}
			local = append(local, d)
		}
		l.Add(local)
	})
	elapsed := time.Since(start)
	b.StopTimer()
	return elapsed
}

// Report reports operations per second over elapsed (when rate is set) and
// the p50 and p99 latencies in milliseconds.
func (l *Latencies) Report(b *testing.B, elapsed time.Duration, rate bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.all) == 0 {
		return
	}
	slices.Sort(l.all)
	p := func(q float64) float64 {
		return float64(l.all[int(q*float64(len(l.all)-1))].Microseconds()) / 1000
	}
	if rate {
		b.ReportMetric(float64(len(l.all))/elapsed.Seconds(), "ops/s")
	}
	b.ReportMetric(p(0.50), "p50-ms")
	b.ReportMetric(p(0.99), "p99-ms")
}

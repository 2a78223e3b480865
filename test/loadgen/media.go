package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// mediaConfig is one concurrent-media run.
type mediaConfig struct {
	calls      int
	rate       float64       // calls set up per second
	warm, hold time.Duration // after the last set-up: settle, then measure
	ip         string
	late       time.Duration
	pid        int // the process measured (handoff or rtpengine)
}

// call is one call's legs: the caller's, and the far end's when the
// generator is both ends (rtpengine).
type call struct {
	caller, far *leg
	hangup      func()
}

// target is what the media flows through.
type target interface {
	name() string
	setup(ctx context.Context, i int, ssrc uint32) (*call, error)
	// counts is the target's own count of the RTP packets it received,
	// found late and sent (handoff's metrics); ok is false when it keeps
	// none.
	counts() (c selfCount, ok bool)
	close()
}

// selfCount is what a target says it received, dropped late and sent.
type selfCount struct{ in, late, out int64 }

// window is what is measured at one moment.
type window struct {
	at        time.Time
	ticks     int64
	out, back flow // caller to far end, and back
	self      selfCount
}

func (r *mediaRun) snapshot() window {
	w := window{at: time.Now()}
	w.ticks, _ = cpuTicks(r.cfg.pid)
	r.mu.Lock()
	callers, fars := r.callers, r.fars
	r.mu.Unlock()
	w.out = flowOf(callers, fars)
	w.back = flowOf(fars, callers)
	w.self, _ = r.t.counts()
	return w
}

type mediaRun struct {
	cfg            mediaConfig
	t              target
	p              pacer
	mu             sync.Mutex
	callers, fars  []*leg
	calls          []*call
	failed         atomic.Int64
	rssIdle, rssUp int64
}

// runMedia sets up the calls at the configured rate with RTP both ways,
// measures over the hold window, prints the figures and hangs up.
func runMedia(cfg mediaConfig, t target) error {
	r := &mediaRun{cfg: cfg, t: t}
	r.rssIdle, _ = rssKiB(cfg.pid)
	stop := make(chan struct{})
	go r.p.run(stop)
	r.setupAll()
	if len(r.calls) == 0 {
		close(stop)
		return fmt.Errorf("%s: no call could be set up (%d failed)", t.name(), r.failed.Load())
	}
	time.Sleep(cfg.warm)
	w0 := r.snapshot()
	time.Sleep(cfg.hold)
	w1 := r.snapshot()
	r.rssUp, _ = rssKiB(cfg.pid)
	close(stop)
	r.report(w0, w1)
	r.hangupAll()
	return nil
}

// setupAll sets the calls up, cfg.rate per second, at most 64 at once.
func (r *mediaRun) setupAll() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	every := time.Duration(float64(time.Second) / r.cfg.rate)
	for i := range r.cfg.calls {
		time.Sleep(every)
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			c, err := r.t.setup(ctx, i, uint32(0x10000+i))
			if err != nil {
				if r.failed.Add(1) <= 3 {
					fmt.Printf("%s: call %d: %v\n", r.t.name(), i, err)
				}
				return
			}
			r.add(c)
		})
	}
	wg.Wait()
}

func (r *mediaRun) add(c *call) {
	r.mu.Lock()
	r.calls = append(r.calls, c)
	r.callers = append(r.callers, c.caller)
	if c.far != nil {
		r.fars = append(r.fars, c.far)
	}
	r.mu.Unlock()
	r.p.add(c.caller)
	if c.far != nil {
		r.p.add(c.far)
	}
}

func (r *mediaRun) hangupAll() {
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	for _, c := range r.calls {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			c.hangup()
		})
	}
	wg.Wait()
}

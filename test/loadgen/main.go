// Command loadgen drives Handoff's load tests (scripts/load*.sh):
//
//	loadgen transfers -api URL -n N [-type SIP|PHONE_NUMBER] [-prefix P]
//	    creates N transfers over the API, in parallel, and prints what each
//	    call dials (the SIP transfer id, or the leased number), one a line.
//
//	loadgen media -target handoff -api URL -sip HOST:PORT -pid PID [flags]
//	loadgen media -target rtpengine -ng HOST:PORT -pid PID [flags]
//	    the concurrent-media test: sets up -calls calls at -rate per second,
//	    each with a 50 packet/s PCMU stream each way (to handoff, whose
//	    loopback agent echoes it; or through rtpengine, the generator being
//	    both ends), lets them settle for -warm, measures for -hold and
//	    prints, per direction, packets sent and received, the loss and the
//	    packets late (more than -late behind the stream's best arrival,
//	    judged by RTP timestamp; handoff's inbound lateness is its own count
//	    of late drops), then the CPU time of process -pid per call-second
//	    and its RSS per concurrent call. The streams are spread over each
//	    20 ms so they do not leave in one burst.
//
// Everything stays on the given loopback address.
package main

import (
	"flag"
	"fmt"
	"os"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: loadgen transfers|media [flags] (see go doc ./test/loadgen)")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "transfers":
		err = transfers(os.Args[2:])
	case "media":
		err = media(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q: want transfers or media", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func transfers(args []string) error {
	fs := flag.NewFlagSet("transfers", flag.ExitOnError)
	api := fs.String("api", "http://127.0.0.1:8080", "handoff's API")
	n := fs.Int("n", 100, "transfers to create")
	typ := fs.String("type", "SIP", "SIP or PHONE_NUMBER")
	prefix := fs.String("prefix", fmt.Sprintf("load-%d", time.Now().Unix()), "transfer id prefix")
	workers := fs.Int("workers", 16, "requests in parallel")
	_ = fs.Parse(args)
	out, err := newAPI(*api).createMany(*prefix, *typ, *n, *workers)
	for _, v := range out {
		fmt.Println(v)
	}
	return err
}

func media(args []string) error {
	fs := flag.NewFlagSet("media", flag.ExitOnError)
	which := fs.String("target", "handoff", "handoff or rtpengine")
	api := fs.String("api", "http://127.0.0.1:8080", "handoff's API")
	sipAddr := fs.String("sip", "127.0.0.1:5060", "handoff's SIP address (UDP)")
	ng := fs.String("ng", "127.0.0.1:2223", "rtpengine's ng control address")
	cfg := mediaConfig{}
	fs.IntVar(&cfg.calls, "calls", 200, "concurrent calls")
	fs.Float64Var(&cfg.rate, "rate", 100, "calls set up per second")
	fs.DurationVar(&cfg.warm, "warm", 3*time.Second, "settling time after the last set-up")
	fs.DurationVar(&cfg.hold, "hold", 20*time.Second, "measuring window")
	fs.StringVar(&cfg.ip, "ip", "127.0.0.1", "local address of every socket")
	fs.DurationVar(&cfg.late, "late", 40*time.Millisecond, "a packet this far behind its stream's best is late")
	fs.IntVar(&cfg.pid, "pid", 0, "process whose CPU and RSS are measured")
	_ = fs.Parse(args)
	if cfg.pid == 0 || cfg.calls <= 0 || cfg.rate <= 0 {
		return fmt.Errorf("media: -pid, and positive -calls and -rate, are required")
	}
	t, err := newTarget(*which, *api, *sipAddr, *ng, cfg)
	if err != nil {
		return err
	}
	defer t.close()
	return runMedia(cfg, t)
}

func newTarget(which, api, sipAddr, ng string, cfg mediaConfig) (target, error) {
	run := fmt.Sprintf("media-%d", time.Now().UnixNano())
	switch which {
	case "handoff":
		a := newAPI(api)
		ids, err := a.createMany(run, "SIP", cfg.calls, 16)
		if err != nil {
			return nil, err
		}
		c, err := newCaller(cfg.ip)
		if err != nil {
			return nil, err
		}
		return &handoffTarget{api: a, sip: sipAddr, ids: ids, c: c, ip: cfg.ip, late: cfg.late}, nil
	case "rtpengine":
		n, err := newNG(ng)
		if err != nil {
			return nil, err
		}
		return &rtpengineTarget{ng: n, run: run, ip: cfg.ip, late: cfg.late}, nil
	}
	return nil, fmt.Errorf("media: -target %q: want handoff or rtpengine", which)
}

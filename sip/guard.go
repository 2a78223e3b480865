package sip

import (
	"container/list"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"golang.org/x/time/rate"
)

// FloodConfig limits out-of-dialog requests (INVITE, OPTIONS, REGISTER, …)
// per source IP, so a scanner or a runaway peer cannot take the node down.
type FloodConfig struct {
	// Rate is the sustained requests per second allowed per source IP; 0
	// turns the limit off.
	Rate float64
	// Burst is how many may come at once.
	Burst int
	// LimitTrusted applies the limit to sources in TrustedCIDRs too (off by
	// default: an SBC sends every call from one address).
	LimitTrusted bool
	// MaxSources bounds how many sources are tracked (least recent evicted).
	MaxSources int
}

// scannerAgents are User-Agent fragments of SIP scanners; their requests are
// dropped without an answer, which gives them nothing to map.
var scannerAgents = []string{
	"friendly-scanner", "sipvicious", "sipcli", "sip-scan", "sipscan", "vaxsipuseragent",
	"pplsip", "iwar", "sundayddr", "smap", "siparmyknife", "gulp", "sipsak-scan",
}

func isScanner(req *sip.Request) bool {
	h := req.GetHeader("User-Agent")
	if h == nil {
		return false
	}
	ua := strings.ToLower(h.Value())
	for _, s := range scannerAgents {
		if strings.Contains(ua, s) {
			return true
		}
	}
	return false
}

// limiter keeps one token bucket per source IP, least recently seen
// evicted past max, so its memory is bounded whatever the flood.
type limiter struct {
	mu      sync.Mutex
	rate    rate.Limit
	burst   int
	max     int
	order   *list.List // of netip.Addr, most recent at the front
	sources map[netip.Addr]*sourceBucket
}

type sourceBucket struct {
	lim  *rate.Limiter
	elem *list.Element
}

func newLimiter(cfg FloodConfig) *limiter {
	if cfg.Rate <= 0 {
		return nil
	}
	if cfg.Burst <= 0 {
		cfg.Burst = int(cfg.Rate) + 1
	}
	if cfg.MaxSources <= 0 {
		cfg.MaxSources = 10000
	}
	return &limiter{rate: rate.Limit(cfg.Rate), burst: cfg.Burst, max: cfg.MaxSources,
		order: list.New(), sources: map[netip.Addr]*sourceBucket{}}
}

// allow spends a token of src's bucket and, when none is left, says how
// long until one is.
func (l *limiter) allow(src netip.Addr, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.sources[src]
	if ok {
		l.order.MoveToFront(b.elem)
	} else {
		if l.order.Len() >= l.max {
			oldest := l.order.Back()
			delete(l.sources, oldest.Value.(netip.Addr))
			l.order.Remove(oldest)
		}
		b = &sourceBucket{lim: rate.NewLimiter(l.rate, l.burst), elem: l.order.PushFront(src)}
		l.sources[src] = b
	}
	r := b.lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// guard wraps an out-of-dialog handler: scanners are dropped silently, and
// a source over its rate gets 503 with Retry-After (INVITE) or nothing.
// Requests inside a dialog are never limited.
func (s *Server) guard(next sipgo.RequestHandler) sipgo.RequestHandler {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		if isScanner(req) {
			s.metrics.dropped.WithLabelValues("scanner").Inc()
			return
		}
		if s.limiter != nil && !(req.To() != nil && req.To().Params.Has("tag")) {
			src, err := netip.ParseAddrPort(req.Source())
			exempt := err != nil || (!s.cfg.Flood.LimitTrusted && s.auth.trustedSource(req.Source()))
			if !exempt {
				if ok, wait := s.limiter.allow(src.Addr().Unmap(), time.Now()); !ok {
					s.metrics.dropped.WithLabelValues("rate_limited").Inc()
					if req.IsInvite() {
						s.respond(req, tx, sip.StatusServiceUnavailable, "Rate Limited", retryAfter(wait+time.Second))
					}
					return
				}
			}
		}
		next(req, tx)
	}
}

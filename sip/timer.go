package sip

import (
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
)

// statusIntervalTooSmall is 422 Session Interval Too Small (RFC 4028).
const statusIntervalTooSmall = 422

// sessionTimer keeps an RFC 4028 session interval. We always leave the
// refreshing to the caller (refresher=uac), so we never send re-INVITEs and
// never meet glare; we only watch that refreshes keep coming.
type sessionTimer struct {
	mu       sync.Mutex
	interval time.Duration // 0: no session timer
}

// negotiateSessionTimer reads Session-Expires from a request. It returns the
// interval to run (0 when the caller did not ask, or does not support
// timers), or a Min-SE header to refuse an interval that is too small (422).
func negotiateSessionTimer(req *sip.Request, minSE time.Duration) (time.Duration, sip.Header) {
	if !supportsTimer(req) {
		return 0, nil
	}
	interval, _ := sessionExpires(req)
	if interval == 0 {
		return 0, nil
	}
	if interval < minSE {
		return 0, sip.NewHeader("Min-SE", strconv.Itoa(int(minSE/time.Second)))
	}
	return interval, nil
}

// sessionExpires reads a message's Session-Expires (or its compact form
// x): the interval (0 without a usable one) and the refresher parameter.
func sessionExpires(m interface{ GetHeader(string) sip.Header }) (interval time.Duration, refresher string) {
	h := m.GetHeader("Session-Expires")
	if h == nil {
		h = m.GetHeader("x")
	}
	if h == nil {
		return 0, ""
	}
	v, params, _ := strings.Cut(h.Value(), ";")
	secs, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || secs <= 0 {
		return 0, ""
	}
	for _, p := range strings.Split(params, ";") {
		if k, val, ok := strings.Cut(strings.TrimSpace(p), "="); ok && strings.EqualFold(k, "refresher") {
			refresher = strings.ToLower(strings.TrimSpace(val))
		}
	}
	return time.Duration(secs) * time.Second, refresher
}

func supportsTimer(req *sip.Request) bool {
	for _, name := range []string{"Supported", "k", "Require"} {
		for _, h := range req.GetHeaders(name) {
			for _, opt := range strings.Split(h.Value(), ",") {
				if strings.EqualFold(strings.TrimSpace(opt), "timer") {
					return true
				}
			}
		}
	}
	return false
}

func (t *sessionTimer) refresh(interval time.Duration) {
	t.mu.Lock()
	t.interval = interval
	t.mu.Unlock()
}

func (t *sessionTimer) headers() []sip.Header {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.interval == 0 {
		return nil
	}
	return []sip.Header{
		sip.NewHeader("Session-Expires", strconv.Itoa(int(t.interval/time.Second))+";refresher=uac"),
		sip.NewHeader("Require", "timer"),
	}
}

// deadline is when, without a refresh, we give up on the session: before
// it expires by min(32 s, interval/3), as RFC 4028 §10 asks of the side
// that does not refresh.
func (t *sessionTimer) deadline() time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.interval == 0 {
		return 0
	}
	return t.interval - min(32*time.Second, t.interval/3)
}

// newTimer starts the expiry timer; with no session timer it never fires.
func (t *sessionTimer) newTimer() *time.Timer {
	timer := time.NewTimer(time.Hour)
	t.reset(timer)
	return timer
}

func (t *sessionTimer) reset(timer *time.Timer) {
	if d := t.deadline(); d > 0 {
		timer.Reset(d)
	} else {
		timer.Stop()
	}
}

package webhook

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// backoff is the delay after the attempt-th failed attempt (attempt >= 1):
// base doubled per earlier failure, capped at max, then jittered down by up
// to half ("equal jitter": never below half the nominal delay, so retries
// of many events spread out without collapsing to zero).
func backoff(attempt int, base, max time.Duration, jitter float64) time.Duration {
	d := base
	for i := 1; i < attempt && d < max; i++ {
		d *= 2
	}
	d = min(d, max)
	return d/2 + time.Duration(jitter*float64(d/2))
}

// maxRetryAfter caps what an endpoint can ask for; max age caps it anyway.
const maxRetryAfter = 7 * 24 * time.Hour

// retryAfter reads a Retry-After header: delay-seconds or an HTTP date.
// ok is false when there is none or it does not parse.
func retryAfter(h http.Header, now time.Time) (d time.Duration, ok bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if s, err := strconv.ParseUint(v, 10, 64); err == nil {
		return time.Duration(min(s, uint64(maxRetryAfter/time.Second))) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return min(max(t.Sub(now), 0), maxRetryAfter), true
}

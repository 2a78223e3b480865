package testenv

import (
	"testing"
	"time"
)

// eventuallyLimit is generous: machines running -race under load are slow,
// and only a failing test ever waits this long.
const eventuallyLimit = 15 * time.Second

// Eventually polls cond every 5 ms until it holds, failing t with what it
// waited for after eventuallyLimit.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	Poll(t, eventuallyLimit, 5*time.Millisecond, what, cond)
}

// Poll is Eventually with its own bound and interval, for waits that take
// longer by design (retries with backoff, a lease running out) or whose
// cond is costly (a scrape of a running process).
func Poll(t testing.TB, limit, interval time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting: %s", limit, what)
		}
		time.Sleep(interval)
	}
}
